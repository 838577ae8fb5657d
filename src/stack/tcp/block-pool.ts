/**
 * Recycled MAX_BLOCK (64 KiB) blocks for the receive buffers of busy connections.
 *
 * Why: a connection receiving at full speed fills a fresh 64 KiB block per 64 KiB of data, and
 * those blocks live until the application has written them on (to the proxy's socket). Hundreds
 * of MB/s of such allocations keep V8 starting mark-compact collections (measured on an upload
 * through the relay: 42 in 4 s without the pool, 2 with it, and 1.6 times the throughput), and
 * every fresh block costs page faults. With the pool a block comes back once its owner is done
 * with it and every view of it that was lent out has been released.
 *
 * The protocol, for a block taken with `take()` (a send buffer, whose blocks are never lent,
 * just retires them once acknowledged):
 * - its owner (the receive buffer) `lend`s it each time it hands a view of it to a reader, and
 *   `retire`s it once it will write no more into it;
 * - a reader that is done with a view (the relay, once the proxy's socket has taken the bytes)
 *   may `release` it. Readers that never release are fine: their blocks are simply never reused
 *   and are collected like any other memory (the loans are held weakly).
 * A block goes back to the free list when it is retired and every loan is released; the list
 * holds at most `maxFree` blocks (the rest are dropped), so an idle stack keeps at most
 * maxFree × 64 KiB.
 *
 * A released view must not be used again by its reader: its bytes will be overwritten.
 */
import { MAX_BLOCK } from './blocks.js';

/** Free blocks a pool keeps by default: 64 (4 MiB). */
export const DEFAULT_POOLED_BLOCKS = 64;

/** The counters a BlockPool keeps (the stack's StackStats has them). */
export interface BlockPoolStats {
  /** Blocks handed out by take(). */
  tcpBlocksTaken: number;
  /** Of those, blocks that came from the free list rather than a new allocation. */
  tcpBlocksReused: number;
}

interface Loan {
  readonly block: Uint8Array;
  /** Views lent and not yet released. */
  out: number;
  /** The owner writes no more into the block. */
  retired: boolean;
}

/** A free list of MAX_BLOCK blocks with lending and release (see the module comment). */
export class BlockPool {
  readonly #free: Uint8Array[] = [];
  readonly #loans = new WeakMap<ArrayBufferLike, Loan>();
  /** Every block take() returned: only those may enter the free list. */
  readonly #issued = new WeakSet<Uint8Array>();
  /**
   * A pool keeping at most `maxFree` free blocks (0: no recycling, take() always allocates),
   * counting into `stats`.
   */
  constructor(
    readonly maxFree: number = DEFAULT_POOLED_BLOCKS,
    readonly stats: BlockPoolStats = { tcpBlocksTaken: 0, tcpBlocksReused: 0 },
  ) {
    if (!Number.isSafeInteger(maxFree) || maxFree < 0) {
      throw new RangeError(`maxFree must be a non-negative integer: ${maxFree}`);
    }
  }

  /** Blocks on the free list now. */
  get freeBlocks(): number {
    return this.#free.length;
  }

  /**
   * A block of MAX_BLOCK bytes whose owner is the caller. A reused block holds stale bytes: the
   * owner hands out only what it has written.
   */
  take(): Uint8Array {
    this.stats.tcpBlocksTaken++;
    const block = this.#free.pop();
    if (block !== undefined) {
      this.stats.tcpBlocksReused++;
      return block;
    }
    const fresh = new Uint8Array(MAX_BLOCK);
    this.#issued.add(fresh);
    return fresh;
  }

  /**
   * A block of `size` bytes for an owner to fill: a pooled one (take()) when `size` is MAX_BLOCK,
   * else a plain allocation, which lend and retire then ignore.
   */
  allocate(size: number): Uint8Array {
    return size === MAX_BLOCK ? this.take() : new Uint8Array(size);
  }

  /** A view of `block` goes to a reader, which may `release` it. Memory take() did not return is ignored. */
  lend(block: Uint8Array): void {
    if (!this.#issued.has(block)) return;
    const loan = this.#loans.get(block.buffer);
    if (loan === undefined) this.#loans.set(block.buffer, { block, out: 1, retired: false });
    else loan.out++;
  }

  /**
   * The owner writes no more into `block`: it is recycled once every lent view is released.
   * Memory take() did not return is ignored.
   */
  retire(block: Uint8Array): void {
    if (!this.#issued.has(block)) return;
    const loan = this.#loans.get(block.buffer);
    if (loan === undefined) {
      this.#recycle(block);
      return;
    }
    loan.retired = true;
    if (loan.out === 0) {
      this.#loans.delete(block.buffer);
      this.#recycle(block);
    }
  }

  /** `view` is a lent view of a pooled block (so releasing it lets the block be reused). */
  isLent(view: Uint8Array): boolean {
    return this.#loans.has(view.buffer);
  }

  /**
   * The reader is done with `view`, a view it was lent (any other memory is ignored). Each lent
   * view is released at most once; after this the reader must not touch its bytes.
   */
  release(view: Uint8Array): void {
    const loan = this.#loans.get(view.buffer);
    if (loan === undefined || loan.out === 0) return;
    loan.out--;
    if (loan.out === 0 && loan.retired) {
      this.#loans.delete(view.buffer);
      this.#recycle(loan.block);
    }
  }

  #recycle(block: Uint8Array): void {
    if (!this.#issued.has(block) || this.#free.length >= this.maxFree) return;
    this.#free.push(block);
  }
}
