/**
 * What the send and receive buffers share: block sizing (blocks double from 4 KiB to 64 KiB, so a
 * quiet connection stays small and a busy one allocates rarely), compaction slack, and the check
 * of sizes handed in by callers.
 */

/** First block size. */
export const MIN_BLOCK = 4096;
/** Largest block: block sizes double with each allocation up to this. */
export const MAX_BLOCK = 65536;
/** Dead queue entries tolerated before compaction is considered. */
export const COMPACT_MIN = 64;
/** A shared empty array. */
export const EMPTY = new Uint8Array(0);

/** Throws a RangeError unless `n` is a non-negative safe integer (caller bugs, never packet bytes). */
export function checkSize(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer: ${n}`);
}
