/**
 * The TCP receive buffer: in-order bytes (up to RCV.NXT) the application has not read yet. The
 * connection derives the advertised window from `free` (RFC 9293 §3.8.6.2.2), so a slow reader
 * closes the window.
 *
 * Storage is a queue of blocks that segments are copied into (a segment's packet buffer is not
 * ours to keep). `read` never copies: it hands out a view of one block, and a handed-out range is
 * never written again (later data lands after it, in the block's unwritten tail). Each byte is
 * thus copied once, from the packet into a block. A ring buffer was measured as the alternative:
 * it copies every byte twice (in, then out into an array the caller may keep), allocates on every
 * read, and once grown stays as big as the window on an idle connection.
 *
 * Memory follows use, not capacity: nothing is allocated before the first write, and block sizes
 * start at 4 KiB and double up to 64 KiB, never beyond the free space. A buffer emptied by a reader
 * that keeps up keeps only its partly filled tail block (so it allocates once per block, not once
 * per segment); `trim()` releases that too.
 *
 * With a BlockPool, full-size (MAX_BLOCK) blocks come from the pool and go back to it: each view
 * `read` hands out of one is lent, and the block is retired once full and read (or trimmed), so it
 * is reused when the reader has released its views (see block-pool.ts).
 */
import type { BlockPool } from './block-pool.js';
import { COMPACT_MIN, checkSize, EMPTY, MAX_BLOCK, MIN_BLOCK } from './blocks.js';

/** In-order received bytes of one connection waiting for the application. */
export class RecvBuffer {
  #capacity: number;
  /**
   * Live blocks are blocks[head ..]; block i holds written bytes [0, fills[i]), unread from
   * #readPos in the head block and from 0 in the others. Every block but the last is full.
   */
  readonly #blocks: Uint8Array[] = [];
  readonly #fills: number[] = [];
  #head = 0;
  #readPos = 0;
  #length = 0;
  #totalRead = 0;
  /** Size of the next block to allocate (before clamping to the free space). */
  #blockHint = MIN_BLOCK;
  /** Bytes of the live blocks. */
  #storage = 0;

  /**
   * A buffer holding at most `capacity` bytes; no storage is allocated until the first write.
   * Full-size blocks come from `pool` when one is given.
   */
  constructor(
    capacity: number,
    private readonly pool?: BlockPool,
  ) {
    checkSize('capacity', capacity);
    this.#capacity = capacity;
  }

  /** Max bytes held; settable (auto-tuning grows it up to a max; never shrinks below length). */
  get capacity(): number {
    return this.#capacity;
  }

  set capacity(value: number) {
    checkSize('capacity', value);
    this.#capacity = Math.max(value, this.#length);
  }

  /** Unread bytes held. */
  get length(): number {
    return this.#length;
  }

  /** Free space: capacity - length (the connection advertises it as the window). */
  get free(): number {
    return this.#capacity - this.#length;
  }

  /** Total bytes ever read (for auto-tuning: bytes the app consumed per RTT). */
  get totalRead(): number {
    return this.#totalRead;
  }

  /** Bytes of memory this buffer holds in blocks (for stats and tests). */
  get storageBytes(): number {
    return this.#storage;
  }

  /** Appends in-order bytes (copies); returns how many fit: all of them when data.length <= free. */
  write(data: Uint8Array): number {
    const n = Math.min(data.length, this.#capacity - this.#length);
    if (n <= 0) return 0;
    const blocks = this.#blocks;
    const last = blocks.length - 1;
    let done = 0;
    if (last >= 0) {
      const block = blocks[last]!;
      const used = this.#fills[last]!;
      done = Math.min(block.length - used, n);
      if (done > 0) {
        block.set(done === data.length ? data : data.subarray(0, done), used);
        this.#fills[last] = used + done;
      }
    }
    if (done < n) {
      const rest = n - done;
      // Never larger than the bytes that could still be written: capacity bounds the memory.
      const room = this.#capacity - this.#length - done;
      const size = Math.max(rest, Math.min(this.#blockHint, room));
      this.#blockHint = Math.min(this.#blockHint * 2, MAX_BLOCK);
      const fresh = this.pool !== undefined ? this.pool.allocate(size) : new Uint8Array(size);
      this.#storage += size;
      fresh.set(done === 0 && n === data.length ? data : data.subarray(done, n), 0);
      blocks.push(fresh);
      this.#fills.push(rest);
    }
    this.#length += n;
    return n;
  }

  /**
   * Removes up to `max` bytes and returns them as one Uint8Array the caller owns: it is never
   * written again. Zero copy: the result is a view of an internal block (respect its byteOffset),
   * so it holds at most the unread bytes of one block, possibly fewer than min(max, length): call
   * again for the rest. Never returns undefined while bytes remain and `max` >= 1.
   */
  read(max: number): Uint8Array | undefined {
    const pos = this.#readPos;
    const n = Math.min(Math.floor(max), this.#length, (this.#fills[this.#head] ?? 0) - pos);
    if (!(n >= 1)) return undefined;
    const block = this.#blocks[this.#head]!;
    this.pool?.lend(block);
    const end = pos + n;
    this.#length -= n;
    this.#totalRead += n;
    this.#readPos = end;
    // A block is dead once full and fully read. The tail block with room left stays, even when
    // the buffer is now empty: more data lands in it.
    if (end === block.length) this.#dropHead();
    return block.subarray(pos, end);
  }

  /**
   * Releases the storage of an empty buffer (for an idle connection); a no-op while bytes remain.
   * Block sizes start again from MIN_BLOCK, so a quiet connection's next small segment stays small.
   */
  trim(): void {
    if (this.#length !== 0) return;
    for (let i = this.#head; i < this.#blocks.length; i++) this.pool?.retire(this.#blocks[i]!);
    this.#blocks.length = 0;
    this.#fills.length = 0;
    this.#head = 0;
    this.#readPos = 0;
    this.#storage = 0;
    this.#blockHint = MIN_BLOCK;
  }

  #dropHead(): void {
    const blocks = this.#blocks;
    this.#storage -= blocks[this.#head]!.length;
    this.pool?.retire(blocks[this.#head]!);
    blocks[this.#head++] = EMPTY;
    this.#readPos = 0;
    if (this.#head === blocks.length) {
      blocks.length = 0;
      this.#fills.length = 0;
      this.#head = 0;
    } else if (this.#head >= COMPACT_MIN && this.#head * 2 >= blocks.length) {
      blocks.splice(0, this.#head);
      this.#fills.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
