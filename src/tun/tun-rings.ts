/**
 * The TUN device's io_uring paths (uring.ts does the ring itself): a write ring that batches a
 * turn's packets into one submission, and a read ring that reads several packets per submission
 * into fixed slots. TunDevice (linux-tun.ts) keeps the packet formats, the counters' meaning and
 * the plain read()/write() paths; each ring reports through its owner's callbacks and, when it
 * fails for good, says why once (`onBroken`) and is then left for the plain path.
 */
import type { DeviceStats } from './device.js';
import { Errno, errnoName, libc } from './libc.js';
import { DEFAULT_URING_ENTRIES, openUring, type Uring } from './uring.js';

/** Packets larger than this (with their headers) bypass the write arena: one copy of a 64 KB super-segment costs more than the system call it would save. */
const URING_MAX_PACKET = 4096;
/** user_data tag bit of a queued write: it was a TCP super-segment. */
const TAG_GSO = 1;
/** Reads per io_uring_enter after a drain that found the queue empty early. */
const MIN_READ_AHEAD = 4;
/** The read ring's arena: slots of the largest packet plus headers, as many as fit (at least MIN_READ_AHEAD). */
const URING_RX_ARENA_BYTES = 256 * 1024;

/**
 * A turn's writes in one io_uring submission. slot() gives room in the batch, commit() queues it,
 * and the batch goes out in a microtask once the turn's synchronous work is done (or at once
 * when full). A lone packet is written with write() instead (cheaper than a submit).
 */
export class TunWriteRing {
  #ring: Uring | undefined;
  #submitPending = false;

  private constructor(
    ring: Uring,
    private readonly fd: number,
    /** The device's counters: completions are counted in them. */
    private readonly stats: DeviceStats,
    /** Header bytes before each packet on the fd. */
    private readonly prefix: number,
    private readonly onBroken: (note: string) => void,
  ) {
    this.#ring = ring;
  }

  /** A write ring on `fd`, or why not (one line). */
  static open(
    fd: number,
    stats: DeviceStats,
    prefix: number,
    onBroken: (note: string) => void,
    entries = DEFAULT_URING_ENTRIES,
  ): TunWriteRing | string {
    let self: TunWriteRing | undefined;
    const ring = openUring(fd, (result, length, tag) => self!.#completed(result, length, tag), entries);
    if (typeof ring === 'string') return ring;
    self = new TunWriteRing(ring, fd, stats, prefix, onBroken);
    return self;
  }

  /** The ring still works. */
  get active(): boolean {
    return this.#ring !== undefined;
  }

  /**
   * Room for `length` bytes (headers, then the packet) in this turn's batch; undefined when the
   * packet goes with write() (over 4 KB, or the ring broke): flush() first, to keep the order.
   */
  slot(length: number): Uint8Array | undefined {
    const ring = this.#ring;
    if (ring === undefined || length > URING_MAX_PACKET) return undefined;
    const room = ring.reserve(length);
    if (room !== undefined) return room;
    this.flush();
    return this.#ring?.reserve(length);
  }

  /** Queues the `length` bytes of the last slot() (a TCP super-segment when `gso`). */
  commit(length: number, gso: boolean): void {
    this.#ring!.queueWrite(length, gso ? TAG_GSO : 0);
    if (!this.#submitPending) {
      this.#submitPending = true;
      queueMicrotask(this.#submitQueued);
    }
  }

  readonly #submitQueued = (): void => {
    this.#submitPending = false;
    this.flush();
  };

  /** Hands what is queued to the kernel now. */
  flush(): void {
    const ring = this.#ring;
    if (ring === undefined || ring.queued === 0) return;
    const single = ring.withdrawSingle();
    if (single !== undefined) {
      const c = libc();
      const n = c.write(this.fd, single, single.length);
      this.#completed(n < 0 ? -c.errno() : n, single.length, ring.lastTag);
      return;
    }
    this.stats.txBatches++;
    const errno = ring.submit();
    if (errno !== 0) {
      // io_uring_enter keeps failing: write() from now on (what it refused was counted as errors).
      ring.close();
      this.#ring = undefined;
      this.onBroken(`io_uring_enter failed (${errnoName(errno)}); writing with write()`);
    }
  }

  /** A queued write completed: `result` bytes or -errno, of `length` bytes with the headers. */
  #completed(result: number, length: number, tag: number): void {
    const stats = this.stats;
    if (result === length) {
      stats.txPackets++;
      stats.txBytes += length - this.prefix;
      if ((tag & TAG_GSO) !== 0) stats.txGsoPackets++;
    } else if (result === -Errno.EAGAIN || result === -Errno.ENOBUFS) stats.txDropped++;
    else stats.txErrors++;
  }

  /** Writes what is queued, then releases the ring. Idempotent. */
  close(): void {
    this.flush();
    this.#ring?.close();
    this.#ring = undefined;
  }
}

/** Where a read ring's packets and failures go: the device's own handling of a read. */
export interface ReadRingOwner {
  /** A packet read into `buf[start, end)` (its headers first). */
  packet(buf: Uint8Array, start: number, end: number): void;
  /** A read that returned nothing usable (0 bytes, or headers only). */
  emptyRead(): void;
  /** A read that failed with `errno` (not EAGAIN or EINTR). */
  readFailed(errno: number): void;
  /** Reading stopped (closing, or a fatal error): completions are ignored. */
  stopped(): boolean;
}

/**
 * Several reads per io_uring submission, each into its own arena slot. RWF_NOWAIT makes the
 * first read that finds the queue empty answer EAGAIN, which ends the drain. The read-ahead
 * doubles while every read finds a packet and shrinks to twice what the last submit found
 * otherwise, so a lone packet costs a few empty reads, not a batch. Slots are one 64-byte unit
 * longer than the largest packet expected, so a read that fills one was cut short (the MTU was
 * raised after open): the packet is counted lost and the ring gives up for read().
 */
export class TunReadRing {
  #ring: Uring | undefined;
  /** The ring's arena (mapped until the ring's submit in progress, if any, returns). */
  readonly #arena: Uint8Array;
  #readAhead = MIN_READ_AHEAD;
  /** Per submit: packets delivered; a read found the queue empty; a read was cut short. */
  #got = 0;
  #empty = false;
  #cut = false;

  private constructor(
    ring: Uring,
    /** Bytes per slot, and how many slots. */
    private readonly slot: number,
    private readonly slots: number,
    /** Header bytes before each packet on the fd. */
    private readonly prefix: number,
    private readonly stats: DeviceStats,
    private readonly owner: ReadRingOwner,
  ) {
    this.#ring = ring;
    this.#arena = ring.arena;
  }

  /** A read ring on `fd` for packets up to `maxPacket` bytes, or why not (one line). */
  static open(
    fd: number,
    maxPacket: number,
    prefix: number,
    batch: number,
    stats: DeviceStats,
    owner: ReadRingOwner,
    entries = DEFAULT_URING_ENTRIES,
  ): TunReadRing | string {
    const slot = ((maxPacket + prefix) | 63) + 1;
    const slots = Math.min(batch, Math.max(MIN_READ_AHEAD, Math.floor(URING_RX_ARENA_BYTES / slot)));
    let self: TunReadRing | undefined;
    const ring = openUring(
      fd,
      (result, _length, tag) => self!.#completed(result, tag),
      entries,
      slots * slot,
    );
    if (typeof ring === 'string') return ring;
    self = new TunReadRing(ring, slot, Math.min(slots, ring.room), prefix, stats, owner);
    return self;
  }

  /** The ring still works. */
  get active(): boolean {
    return this.#ring !== undefined;
  }

  /**
   * Reads until the queue is empty (returns 'empty') or `budget` reads were made ('more'); a
   * string is why the ring gave up (reads go to read() from then on; nothing queued was lost).
   * Packets go to the owner as they complete; returns how many in `delivered`.
   */
  drain(budget: number): 'empty' | 'more' | string {
    this.delivered = 0;
    const owner = this.owner;
    while (budget > 0 && !owner.stopped()) {
      const ring = this.#ring!;
      const k = Math.min(this.#readAhead, budget, ring.room);
      for (let i = 0; i < k; i++) ring.queueRead(i * this.slot, this.slot, i);
      this.#got = 0;
      this.#empty = false;
      const errno = ring.submit();
      budget -= k;
      if (errno !== 0)
        return this.#giveUp(`io_uring_enter failed for reads (${errnoName(errno)}); reading with read()`);
      if (this.#cut)
        return this.#giveUp(
          'a packet larger than the io_uring read slots (MTU raised?); reading with read()',
        );
      if (this.#empty) {
        this.#readAhead = Math.max(MIN_READ_AHEAD, Math.min(this.slots, this.#got * 2));
        return 'empty';
      }
      this.#readAhead = Math.min(this.slots, k * 2);
    }
    return 'more';
  }

  /** Packets the last drain() delivered. */
  delivered = 0;

  #giveUp(note: string): string {
    this.close();
    return note;
  }

  /** A read completed: `result` bytes into slot `tag`, or -errno. */
  #completed(result: number, tag: number): void {
    const owner = this.owner;
    if (owner.stopped()) return;
    if (result >= this.slot) {
      this.stats.rxErrors++;
      this.#cut = true;
    } else if (result > this.prefix) {
      this.#got++;
      this.delivered++;
      const at = tag * this.slot;
      owner.packet(this.#arena, at, at + result);
    } else if (result === -Errno.EAGAIN) this.#empty = true;
    else if (result >= 0) owner.emptyRead();
    else if (result !== -Errno.EINTR) owner.readFailed(-result);
  }

  /** Releases the ring (after the submit in progress, if called from a packet). Idempotent. */
  close(): void {
    this.#ring?.close();
    this.#ring = undefined;
  }
}
