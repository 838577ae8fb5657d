/**
 * The receiver's out-of-order queue (RFC 9293 §3.10.7.4: segments beyond RCV.NXT are held until
 * the gap before them fills) and the SACK blocks it yields (RFC 2018 §4, D-SACK per RFC 2883 §4).
 *
 * Held data is a short array of disjoint, non-adjacent ranges sorted by sequence number; each range
 * keeps the copied segment bytes as a list of chunks, so merging never re-copies data. The common
 * case (a hole at RCV.NXT and data streaming in behind the last range) appends in O(1). Each range
 * carries the stamp of the last segment that landed in it, which orders SACK blocks by recency
 * without allocating anything per segment. All sequence comparisons are modular (RFC 9293 §3.4).
 */

import { seqAdd, seqGt, seqLe, seqLt, seqMax, seqMin, seqSub } from '../wire/seq.js';

/** One contiguous run of held bytes `[left, right)`. */
interface HeldRange {
  left: number;
  right: number;
  /** The bytes in sequence order; their lengths add up to `right - left`. */
  chunks: Uint8Array[];
  /** Recency of the last segment that landed here (RFC 2018 §4 block order). */
  stamp: number;
}

/** Copies `data[start, end)` into a buffer of its own (the caller's packet buffer is reused). */
function copyOf(data: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(data.subarray(start, end));
  return out;
}

/** Receiver-side queue of data above RCV.NXT, with SACK block reporting. */
export class OutOfOrderQueue {
  private readonly maxBytes: number;
  private readonly maxSegments: number;
  private readonly dsack: boolean;
  private readonly list: HeldRange[] = [];
  private held = 0;
  private chunkCount = 0;
  private clock = 0;
  private pendingDsack = false;
  private dsackLeft = 0;
  private dsackRight = 0;

  /**
   * `maxBytes` bounds the bytes held and `maxSegments` the stored segments (chunks); a segment
   * that would exceed either is refused. `dsack` enables reporting duplicates (RFC 2883).
   */
  constructor(maxBytes: number, maxSegments: number, dsack = true) {
    this.maxBytes = maxBytes;
    this.maxSegments = maxSegments;
    this.dsack = dsack;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.held;
  }

  /** Ranges held. */
  get ranges(): number {
    return this.list.length;
  }

  /** Segments (copied chunks) held: what `maxSegments` bounds. */
  get segments(): number {
    return this.chunkCount;
  }

  /** A D-SACK block waits to lead the next SACK option (send `sackBlocks` even with no ranges). */
  get dsackPending(): boolean {
    return this.pendingDsack;
  }

  /**
   * Stores `data` at `seq` (after RCV.NXT; the caller trims to the receive window first, so the
   * length stays far below 2^31). Copies the bytes. Where the segment overlaps held data the old
   * bytes are kept (identical from a correct peer) and the first duplicated part is remembered as
   * a D-SACK block. Touching ranges merge. Returns false, storing nothing, when `maxBytes` or
   * `maxSegments` would be exceeded (the peer retransmits). A fully duplicate segment returns true.
   */
  insert(seq: number, data: Uint8Array): boolean {
    const len = data.length;
    if (len === 0) return true;
    const s = seq >>> 0;
    const e = seqAdd(s, len);
    const rs = this.list;
    const n = rs.length;
    const last = rs[n - 1];
    // i: the first range that overlaps or abuts [s, e); j: one past the last such range.
    const i = last === undefined || seqGt(s, last.right) ? n : this.firstEndingAtOrAfter(s);
    let j = i;
    while (j < n && seqLe(rs[j]!.left, e)) j++;

    let gapBytes = 0;
    let gapPieces = 0;
    let dupLeft = 0;
    let dupRight = 0;
    let cursor = s;
    for (let k = i; k < j; k++) {
      const r = rs[k]!;
      if (seqLt(cursor, r.left)) {
        gapBytes += seqSub(r.left, cursor);
        gapPieces++;
      }
      const ol = seqMax(s, r.left);
      const or = seqMin(e, r.right);
      if (dupLeft === dupRight && seqLt(ol, or)) {
        dupLeft = ol;
        dupRight = or;
      }
      cursor = seqMax(cursor, r.right);
    }
    if (seqLt(cursor, e)) {
      gapBytes += seqSub(e, cursor);
      gapPieces++;
    }

    if (gapBytes === 0) {
      // Entirely held already: a duplicate lies within exactly one range (ranges never abut).
      rs[i]!.stamp = ++this.clock;
      this.noteDuplicate(s, e);
      return true;
    }
    if (this.held + gapBytes > this.maxBytes || this.chunkCount + gapPieces > this.maxSegments) {
      return false;
    }
    this.held += gapBytes;
    this.chunkCount += gapPieces;
    if (dupLeft !== dupRight) this.noteDuplicate(dupLeft, dupRight);
    const stamp = ++this.clock;

    if (i === j) {
      rs.splice(i, 0, { left: s, right: e, chunks: [copyOf(data, 0, len)], stamp });
      return true;
    }
    const first = rs[i]!;
    let chunks = first.chunks;
    if (seqLt(s, first.left)) {
      chunks = [copyOf(data, 0, seqSub(first.left, s))];
      for (const c of first.chunks) chunks.push(c);
    }
    cursor = first.right;
    for (let k = i + 1; k < j; k++) {
      const r = rs[k]!;
      // Held ranges never abut, so a gap of new bytes always precedes the next one.
      chunks.push(copyOf(data, seqSub(cursor, s), seqSub(r.left, s)));
      for (const c of r.chunks) chunks.push(c);
      cursor = r.right;
    }
    if (seqLt(cursor, e)) chunks.push(copyOf(data, seqSub(cursor, s), len));
    first.left = seqMin(s, first.left);
    first.right = seqMax(e, cursor);
    first.chunks = chunks;
    first.stamp = stamp;
    if (j - i > 1) rs.splice(i + 1, j - i - 1);
    return true;
  }

  /**
   * Removes the data that became contiguous at `rcvNxt` and passes it in order to `sink` (chunks
   * may be views of stored buffers); returns the new RCV.NXT. Data entirely before `rcvNxt` is
   * discarded. The queue is updated before `sink` runs, so a sink may safely call back in.
   */
  drainInOrder(rcvNxt: number, sink: (chunk: Uint8Array) => void): number {
    const rs = this.list;
    let nxt = rcvNxt >>> 0;
    let drop = 0;
    while (drop < rs.length && seqLe(rs[drop]!.right, nxt)) drop++;
    let ready: HeldRange | undefined;
    const head = rs[drop];
    if (head !== undefined && seqLe(head.left, nxt)) {
      this.trimFront(head, nxt);
      ready = head;
      nxt = head.right;
    }
    const removed = ready === undefined ? drop : drop + 1;
    for (let k = 0; k < removed; k++) {
      const r = rs[k]!;
      this.held -= seqSub(r.right, r.left);
      this.chunkCount -= r.chunks.length;
    }
    if (removed > 0) rs.splice(0, removed);
    if (ready !== undefined) for (const c of ready.chunks) sink(c);
    return nxt;
  }

  /**
   * Writes the SACK blocks to send into `left`/`right` (right edge exclusive) and returns how many,
   * at most `max` (RFC 2018 §4): a pending D-SACK block first (RFC 2883 §4, reported once), then
   * the block holding the most recently received segment, then the others from most to least
   * recently received ("most recently reported": each segment's block led the ACK it triggered).
   * Ranges at or before `rcvNxt` are skipped (the caller drains before acknowledging). Call once
   * per ACK sent: a D-SACK block is consumed by the call that reports it.
   */
  sackBlocks(rcvNxt: number, max: number, left: Uint32Array, right: Uint32Array): number {
    const limit = Math.min(max, left.length, right.length);
    if (limit <= 0) return 0;
    const nxt = rcvNxt >>> 0;
    let count = 0;
    if (this.pendingDsack) {
      left[0] = this.dsackLeft;
      right[0] = this.dsackRight;
      count = 1;
      this.pendingDsack = false;
    }
    // Stamps are unique, so each pass picks the next most recent range: O(ranges × max).
    let below = Number.POSITIVE_INFINITY;
    while (count < limit) {
      let best: HeldRange | undefined;
      for (const r of this.list) {
        if (r.stamp < below && seqGt(r.left, nxt) && (best === undefined || r.stamp > best.stamp)) best = r;
      }
      if (best === undefined) break;
      left[count] = best.left;
      right[count] = best.right;
      below = best.stamp;
      count++;
    }
    return count;
  }

  /**
   * Records `[left, right)` as received twice, to lead the next SACK option as a D-SACK block
   * (RFC 2883 §4): the connection calls this for a duplicate at or below RCV.NXT; `insert` does
   * it for duplicates of held data. Only the latest duplicate is kept. No-op when D-SACK is off.
   */
  noteDuplicate(left: number, right: number): void {
    if (!this.dsack || !seqLt(left, right)) return;
    this.pendingDsack = true;
    this.dsackLeft = left >>> 0;
    this.dsackRight = right >>> 0;
  }

  /** Drops everything (connection reset or closed). */
  clear(): void {
    this.list.length = 0;
    this.held = 0;
    this.chunkCount = 0;
    this.pendingDsack = false;
  }

  /** Index of the first range whose right edge is at or after `seq` (ranges are sorted). */
  private firstEndingAtOrAfter(seq: number): number {
    const rs = this.list;
    let lo = 0;
    let hi = rs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLt(rs[mid]!.right, seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Cuts the bytes before `seq` off the front of `r` (which ends after `seq`). */
  private trimFront(r: HeldRange, seq: number): void {
    let cut = seqSub(seq, r.left);
    if (cut <= 0) return;
    this.held -= cut;
    r.left = seq;
    let k = 0;
    while (cut > 0) {
      const c = r.chunks[k]!;
      if (c.length <= cut) {
        cut -= c.length;
        k++;
      } else {
        r.chunks[k] = c.subarray(cut);
        cut = 0;
      }
    }
    if (k > 0) {
      r.chunks.splice(0, k);
      this.chunkCount -= k;
    }
  }
}
