/**
 * The TCP send buffer: bytes the application wrote that the peer has not acknowledged yet, i.e.
 * the sequence space from SND.UNA to the end of the written data (RFC 9293 §3.3.1, fig. 3).
 * Offsets count from the first unacknowledged byte; the connection maps them to sequence numbers
 * (seq = sndUna + offset), so nothing here is modular.
 *
 * Storage is a queue of chunks. Large chunks the caller hands over (`owned`) are kept by reference
 * (zero copy); small or borrowed bytes are copied into blocks of our own that coalesce consecutive
 * writes, so 1-byte writes never make 1-byte chunks. The queue is three parallel arrays with a head
 * index, compacted once the dead prefix is half of it: append and consume are O(1) amortized.
 * copyTo finds its first chunk through a cursor (segments are built at increasing offsets) and
 * falls back to a binary search over the chunk starts.
 *
 * With a BlockPool, full-size blocks of ours come from the pool and go back to it once
 * acknowledged (a relayed download copies into them: see read-tap.ts).
 */
import type { BlockPool } from './block-pool.js';
import { COMPACT_MIN, checkSize, EMPTY, MAX_BLOCK, MIN_BLOCK } from './blocks.js';

/**
 * Owned chunks shorter than this are copied into a block: each segment would span several of them
 * (copying measured as fast or faster there) and they may pin large pooled buffers. Larger ones
 * are referenced (1448-byte chunks: about twice as fast as copying).
 */
const COPY_BELOW = 1024;

/** Unacknowledged and unsent bytes of one connection, addressed by offset from SND.UNA. */
export class SendBuffer {
  #capacity: number;
  /** Chunk i holds the stream bytes [starts[i], starts[i] + lens[i]) in bufs[i][0 .. lens[i]). */
  readonly #bufs: Uint8Array[] = [];
  readonly #lens: number[] = [];
  readonly #starts: number[] = [];
  /** Index of the first live chunk. */
  #head = 0;
  /** Index of the chunk where the last copyTo ended. */
  #cursor = 0;
  /** Stream position of the first unacknowledged byte. */
  #base = 0;
  /** Stream position just past the last written byte. */
  #end = 0;
  /** The last chunk when it is a block of ours (bytes past its length are free), else undefined. */
  #tail: Uint8Array | undefined;
  /** The block of an emptied buffer, reused by the next copy; see trim(). */
  #spare: Uint8Array | undefined;
  /** Size of the next block to allocate (before clamping to the free space). */
  #blockHint = MIN_BLOCK;
  /** Bytes of the live chunks and the spare block. */
  #storage = 0;

  /**
   * A buffer holding at most `capacity` bytes; no storage is allocated until the first append.
   * Full-size blocks come from `pool` when one is given.
   */
  constructor(
    capacity: number,
    private readonly pool?: BlockPool,
  ) {
    checkSize('capacity', capacity);
    this.#capacity = capacity;
  }

  /** Max bytes held (acked bytes free space). Settable (grows/shrinks; never below length). */
  get capacity(): number {
    return this.#capacity;
  }

  set capacity(value: number) {
    checkSize('capacity', value);
    this.#capacity = Math.max(value, this.#end - this.#base);
  }

  /** Bytes held (unacked + unsent). */
  get length(): number {
    return this.#end - this.#base;
  }

  /** Free space: capacity - length. */
  get free(): number {
    return this.#capacity - (this.#end - this.#base);
  }

  /** Live chunks in the queue (diagnostics: coalescing keeps this small under tiny writes). */
  get chunkCount(): number {
    return this.#bufs.length - this.#head;
  }

  /** Bytes of memory this buffer holds: blocks, the spare, and referenced chunks (for stats and tests). */
  get storageBytes(): number {
    return this.#storage;
  }

  /**
   * Appends up to `free` bytes of `data`; returns how many were taken. Keeps a reference to
   * `data` when `owned` is true and it is large (the caller promises never to mutate it: Node
   * stream chunks are immutable once written); otherwise copies it into a coalescing block.
   */
  append(data: Uint8Array, owned: boolean): number {
    const n = Math.min(data.length, this.free);
    if (n <= 0) return 0;
    if (owned && n >= COPY_BELOW) {
      this.#bufs.push(n === data.length ? data : data.subarray(0, n));
      this.#lens.push(n);
      this.#starts.push(this.#end);
      this.#tail = undefined;
      this.#storage += n;
    } else {
      this.#copyIn(n === data.length ? data : data.subarray(0, n));
    }
    this.#end += n;
    return n;
  }

  /**
   * Copies `len` bytes starting at `offset` into `dst` at `dstOffset` (for building a segment).
   * Throws a RangeError when [offset, offset + len) is not inside the buffer: a caller bug.
   */
  copyTo(offset: number, len: number, dst: Uint8Array, dstOffset: number): void {
    if (!(offset >= 0 && len >= 0 && offset + len <= this.#end - this.#base)) {
      throw new RangeError(`copyTo(${offset}, ${len}) outside the ${this.#end - this.#base} buffered bytes`);
    }
    if (len === 0) return;
    const bufs = this.#bufs;
    const lens = this.#lens;
    const starts = this.#starts;
    let pos = this.#base + offset;
    let i = this.#find(pos);
    let at = dstOffset;
    let left = len;
    for (;;) {
      const buf = bufs[i]!;
      const from = pos - starts[i]!;
      const take = Math.min(lens[i]! - from, left);
      dst.set(from === 0 && take === buf.length ? buf : buf.subarray(from, from + take), at);
      left -= take;
      if (left === 0) break;
      at += take;
      pos += take;
      i++;
    }
    this.#cursor = i;
  }

  /** Removes `n` acknowledged bytes from the front. Throws a RangeError past `length`: a caller bug. */
  consume(n: number): void {
    if (!(n >= 0 && n <= this.#end - this.#base)) {
      throw new RangeError(`consume(${n}) past the ${this.#end - this.#base} buffered bytes`);
    }
    if (n === 0) return;
    this.#base += n;
    if (this.#base === this.#end) {
      // Everything is acknowledged: keep our last block for the next writes, so a connection
      // whose peer acks everything at once does not allocate a block per write.
      const spare = this.#tail ?? this.#spare;
      this.#retireAll(spare);
      this.#reset();
      this.#spare = spare;
      this.#storage = spare === undefined ? 0 : spare.length;
      return;
    }
    const bufs = this.#bufs;
    const lens = this.#lens;
    const starts = this.#starts;
    let head = this.#head;
    while (starts[head]! + lens[head]! <= this.#base) {
      this.#storage -= bufs[head]!.length;
      this.pool?.retire(bufs[head]!);
      bufs[head++] = EMPTY;
    }
    this.#head = head;
    if (head >= COMPACT_MIN && head * 2 >= bufs.length) {
      bufs.splice(0, head);
      lens.splice(0, head);
      starts.splice(0, head);
      this.#cursor = Math.max(0, this.#cursor - head);
      this.#head = 0;
    }
  }

  /** Drops everything (abort). */
  clear(): void {
    this.#retireAll(undefined);
    if (this.#spare !== undefined) this.pool?.retire(this.#spare);
    this.#reset();
    this.#spare = undefined;
    this.#storage = 0;
  }

  /**
   * Releases the storage of an empty buffer (for an idle connection); a no-op while bytes remain.
   * Block sizes start again from MIN_BLOCK, so a quiet connection's next small write stays small.
   */
  trim(): void {
    if (this.#end !== this.#base) return;
    if (this.#spare !== undefined) this.pool?.retire(this.#spare);
    this.#spare = undefined;
    this.#storage = 0;
    this.#blockHint = MIN_BLOCK;
  }

  /** Gives every live chunk but `keep` to the pool, which takes back only its own blocks. */
  #retireAll(keep: Uint8Array | undefined): void {
    const pool = this.pool;
    if (pool === undefined) return;
    const bufs = this.#bufs;
    for (let i = this.#head; i < bufs.length; i++) if (bufs[i] !== keep) pool.retire(bufs[i]!);
  }

  #reset(): void {
    this.#bufs.length = 0;
    this.#lens.length = 0;
    this.#starts.length = 0;
    this.#head = 0;
    this.#cursor = 0;
    this.#base = 0;
    this.#end = 0;
    this.#tail = undefined;
  }

  /** Copies `src` (which fits in the free space) into the tail block, then into fresh blocks. */
  #copyIn(src: Uint8Array): void {
    const n = src.length;
    const bufs = this.#bufs;
    const lens = this.#lens;
    let done = 0;
    while (done < n) {
      let block = this.#tail;
      let last = bufs.length - 1;
      let used = block === undefined ? 0 : lens[last]!;
      if (block === undefined || used === block.length) {
        block = this.#spare ?? this.#allocate(n - done, done);
        this.#spare = undefined;
        bufs.push(block);
        lens.push(0);
        this.#starts.push(this.#end + done);
        this.#tail = block;
        last++;
        used = 0;
      }
      const k = Math.min(block.length - used, n - done);
      block.set(k === n ? src : src.subarray(done, done + k), used);
      lens[last] = used + k;
      done += k;
    }
  }

  /** A fresh block for `rest` more bytes, `done` of this append already placed. */
  #allocate(rest: number, done: number): Uint8Array {
    // Never larger than the bytes that could still be written: capacity bounds the memory.
    const room = this.#capacity - (this.#end - this.#base) - done;
    const size = Math.max(rest, Math.min(this.#blockHint, room));
    this.#blockHint = Math.min(this.#blockHint * 2, MAX_BLOCK);
    this.#storage += size;
    return this.pool !== undefined ? this.pool.allocate(size) : new Uint8Array(size);
  }

  /** Index of the live chunk holding stream position `pos` (base <= pos < end). */
  #find(pos: number): number {
    const starts = this.#starts;
    const lens = this.#lens;
    const count = starts.length;
    let i = this.#cursor;
    if (i >= this.#head && i < count && starts[i]! <= pos) {
      // The common case: the next segment starts in the chunk where the previous one ended,
      // or in one of the few after it.
      for (let k = 0; k < 4 && i < count; k++, i++) if (pos < starts[i]! + lens[i]!) return i;
    }
    let lo = this.#head;
    let hi = count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
