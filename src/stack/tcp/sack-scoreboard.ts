/**
 * The sender's SACK scoreboard and the loss-recovery queries of RFC 6675 §4 (Update, IsLost,
 * SetPipe, NextSeg), on byte ranges rather than per-segment flags.
 *
 * Terms map to ours as follows (RFC 6675 §2 counts octets inclusively; we use exclusive ends):
 * HighACK + 1 = `sndUna`, HighData + 1 = `sndNxt`, HighRxt + 1 = `highRxt` (one past the last
 * retransmitted byte; `sndUna` when nothing was retransmitted in this recovery).
 *
 * SACKed data is a sorted array of disjoint, non-adjacent ranges in two Uint32Arrays of fixed
 * capacity, so memory is bounded and no query allocates. All comparisons are modular (RFC 9293 §3.4).
 */

import { StackOptionError } from '../options.js';
import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqMax, seqMin, seqSub } from '../wire/seq.js';

/** DupThresh (RFC 6675 §2, RFC 5681 §3.2): duplicate ACKs, or SACKed segments, that signal a loss. */
export const DUP_THRESH = 3;

/** Default bound on the SACKed ranges tracked (FreeBSD's net.inet.tcp.sack.maxholes is 128). */
export const DEFAULT_SACK_MAX_BLOCKS = 256;

/** What NextSeg() decided: retransmit a hole, send new data, or nothing (RFC 6675 §4). */
export type NextSegKind = 'retransmit' | 'new' | 'none';

const EMPTY = new Uint32Array(0);

/** Sender-side record of SACKed ranges above SND.UNA (RFC 6675 §3, §4). */
export class SackScoreboard {
  private readonly capacity: number;
  private lefts: Uint32Array = EMPTY;
  private rights: Uint32Array = EMPTY;
  private n = 0;
  private sacked = 0;
  private dsack = false;
  private segSeq = 0;
  private segLen = 0;
  private segRule: 0 | 1 | 2 | 3 | 4 = 0;

  /** Tracks at most `maxBlocks` separate SACKed ranges (blocks beyond that are not recorded). */
  constructor(maxBlocks = DEFAULT_SACK_MAX_BLOCKS) {
    if (!Number.isInteger(maxBlocks) || maxBlocks < 1 || maxBlocks > 65536) {
      throw new StackOptionError(`maxBlocks must be an integer from 1 to 65536, got ${maxBlocks}`);
    }
    this.capacity = maxBlocks;
  }

  /**
   * Forgets everything: on a new connection, or after an RTO (RFC 6675 §5.1 lets the sender keep
   * SACK information, RFC 2018 §8 says it MAY be kept; Linux clears it in tcp_enter_loss, and the
   * caller decides).
   */
  reset(): void {
    this.n = 0;
    this.sacked = 0;
    this.dsack = false;
    this.segRule = 0;
  }

  /** Bytes SACKed above SND.UNA. */
  get sackedBytes(): number {
    return this.sacked;
  }

  /** Separate SACKed ranges held. */
  get ranges(): number {
    return this.n;
  }

  /**
   * Whether the last update's first block was a D-SACK (RFC 2883 §4): at or below SND.UNA, or
   * inside the second block. Such a block reports a duplicate, never new data.
   */
  get lastUpdateDsack(): boolean {
    return this.dsack;
  }

  /** Start of the range chosen by the last `nextSeg` (SND.NXT for new data). */
  get nextSegSeq(): number {
    return this.segSeq;
  }

  /** Length (at most MSS, within the hole) chosen by the last `nextSeg`; for new data, MSS. */
  get nextSegLen(): number {
    return this.segLen;
  }

  /** The NextSeg() rule (RFC 6675 §4, 1 to 4) behind the last `nextSeg`, 0 for none. */
  get nextSegRule(): 0 | 1 | 2 | 3 | 4 {
    return this.segRule;
  }

  /**
   * RFC 6675 §4 Update(): applies an ACK's cumulative `sndUna` and its `count` SACK blocks. Blocks
   * that are empty, reversed, end at or below `sndUna` or beyond `sndNxt` are ignored as invalid
   * (RFC 2018 §3 receivers only report received data; Linux's tcp_is_sackblock_valid); a block
   * straddling `sndUna` counts from `sndUna`. Returns the bytes newly SACKed (RFC 6675 §5's test
   * for a duplicate ACK that "SACKs new data"). When `maxBlocks` ranges are held, a block needing a
   * new range is dropped: that data then just counts as in flight, which is conservative.
   */
  update(sndUna: number, sndNxt: number, count: number, left: Uint32Array, right: Uint32Array): number {
    const una = sndUna >>> 0;
    const nxt = sndNxt >>> 0;
    this.trim(una);
    const blocks = Math.min(count, left.length, right.length);
    const l0 = left[0] ?? 0;
    const r0 = right[0] ?? 0;
    this.dsack =
      blocks > 0 &&
      seqLt(l0, r0) &&
      (seqLe(r0, una) || (blocks > 1 && seqLe(left[1]!, l0) && seqLe(r0, right[1]!)));
    let added = 0;
    for (let b = 0; b < blocks; b++) {
      const l = left[b]!;
      const r = right[b]!;
      if (!seqLt(l, r) || seqLe(r, una) || seqGt(r, nxt)) continue;
      added += this.add(seqMax(l, una), r);
    }
    return added;
  }

  /** The highest SACKed sequence (a right edge, exclusive), or `sndUna` when none is above it. */
  highSacked(sndUna: number): number {
    return this.n === 0 ? sndUna >>> 0 : seqMax(this.rights[this.n - 1]!, sndUna >>> 0);
  }

  /** Whether the byte at `seq` has been SACKed. */
  isSacked(seq: number): boolean {
    const i = this.firstEndingAfter(seq);
    return i < this.n && seqLe(this.lefts[i]!, seq);
  }

  /**
   * RFC 6675 §4 IsLost(SeqNum): true when DupThresh discontiguous SACKed ranges lie above `seq`,
   * or more than (DupThresh - 1) * `mss` bytes above it are SACKed. Discontiguous ranges stand in
   * for the RFC's SACKed segments (a byte scoreboard keeps no segment boundaries; gVisor counts
   * the same way); the byte test covers contiguous runs. A SACKed `seq` is never lost.
   */
  isLost(seq: number, mss: number): boolean {
    const i = this.firstEndingAfter(seq);
    if (i < this.n && seqLe(this.lefts[i]!, seq)) return false;
    const limit = (DUP_THRESH - 1) * mss;
    let ranges = 0;
    let bytes = 0;
    // Walking down from the top, the answer is known after at most DupThresh ranges.
    for (let k = this.n - 1; k >= i; k--) {
      ranges++;
      bytes += seqSub(this.rights[k]!, this.lefts[k]!);
      if (ranges >= DUP_THRESH || bytes > limit) return true;
    }
    return false;
  }

  /**
   * RFC 6675 §4 SetPipe(): the bytes in flight. Every un-SACKed byte in [sndUna, sndNxt) counts
   * once if not IsLost, and once more if retransmitted in this recovery (below `highRxt`).
   * IsLost is the same for every byte of a hole, so this walks holes, not bytes.
   */
  pipe(sndUna: number, sndNxt: number, highRxt: number, mss: number): number {
    const una = sndUna >>> 0;
    const nxt = sndNxt >>> 0;
    this.trim(una);
    const rxt = seqMin(seqMax(highRxt >>> 0, una), nxt);
    const limit = (DUP_THRESH - 1) * mss;
    let pipe = 0;
    let rangesAbove = 0;
    let bytesAbove = 0;
    let hi = nxt;
    for (let k = this.n; k >= 0; k--) {
      const lo = k > 0 ? seqMin(this.rights[k - 1]!, nxt) : una;
      const hole = seqSub(hi, lo);
      if (hole > 0) {
        const lost = rangesAbove >= DUP_THRESH || bytesAbove > limit;
        if (!lost) pipe += hole;
        const retransmitted = seqSub(seqMin(hi, rxt), lo);
        if (retransmitted > 0) pipe += retransmitted;
      }
      if (k > 0) {
        rangesAbove++;
        bytesAbove += seqSub(this.rights[k - 1]!, this.lefts[k - 1]!);
        hi = seqMin(this.lefts[k - 1]!, nxt);
      }
    }
    return pipe;
  }

  /**
   * RFC 6675 §4 NextSeg(). Sets `nextSegSeq`, `nextSegLen` and `nextSegRule`:
   * (1) the first un-SACKed byte at or after `highRxt`, below the highest SACKed byte, that
   *     IsLost: retransmit up to `mss` bytes of its hole;
   * (2) else, when `newDataAvailable` (data queued and the peer's window allows): new data at
   *     `sndNxt` (length `mss`; the caller caps it by the data and the window);
   * (3) else, that same first un-SACKed byte even though not yet lost: retransmit;
   * (4) else, when `rescue` (the caller's check that HighACK > RescueRxt or RescueRxt is unset) and
   *     un-SACKed data is outstanding: up to `mss` bytes ending at the highest un-SACKed byte.
   * After rules 1 and 3 the caller sets `highRxt` to the end of what it retransmitted; after rule
   * 4 it sets RescueRxt = RecoveryPoint and leaves `highRxt` alone (RFC 6675 §4 rule 4). A
   * retransmission never covers SACKed bytes: its length stops at the hole's end.
   */
  nextSeg(
    sndUna: number,
    sndNxt: number,
    highRxt: number,
    mss: number,
    newDataAvailable: boolean,
    rescue: boolean,
  ): NextSegKind {
    const una = sndUna >>> 0;
    const nxt = sndNxt >>> 0;
    this.trim(una);
    this.segSeq = 0;
    this.segLen = 0;
    this.segRule = 0;
    const n = this.n;

    // The first un-SACKed byte at or after HighRxt (1.a), if below the highest SACKed byte (1.b).
    let s = seqMax(highRxt >>> 0, una);
    let i = this.firstEndingAfter(s);
    if (i < n && seqLe(this.lefts[i]!, s)) {
      s = this.rights[i]!;
      i++;
    }
    const candidate = i < n && seqLt(s, nxt);
    if (candidate) {
      const holeEnd = seqMin(this.lefts[i]!, nxt);
      if (this.isLost(s, mss)) return this.choose(1, s, Math.min(mss, seqSub(holeEnd, s)), 'retransmit');
    }
    if (newDataAvailable) return this.choose(2, nxt, mss, 'new');
    if (candidate) {
      const holeEnd = seqMin(this.lefts[i]!, nxt);
      return this.choose(3, s, Math.min(mss, seqSub(holeEnd, s)), 'retransmit');
    }
    if (rescue && this.sacked < seqSub(nxt, una)) {
      // The highest un-SACKed byte ends either at SND.NXT or where the top SACKed range begins.
      const topReachesNxt = n > 0 && seqGe(this.rights[n - 1]!, nxt);
      const end = topReachesNxt ? this.lefts[n - 1]! : nxt;
      const holeStart = topReachesNxt
        ? n > 1
          ? this.rights[n - 2]!
          : una
        : n > 0
          ? this.rights[n - 1]!
          : una;
      const start = seqMax(seqMax(holeStart, una), seqAdd(end, -mss));
      if (seqLt(start, end)) return this.choose(4, start, seqSub(end, start), 'retransmit');
    }
    return 'none';
  }

  private choose(rule: 1 | 2 | 3 | 4, seq: number, len: number, kind: NextSegKind): NextSegKind {
    this.segRule = rule;
    this.segSeq = seq >>> 0;
    this.segLen = len;
    return kind;
  }

  /** Index of the first range whose right edge is after `seq`. */
  private firstEndingAfter(seq: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLe(this.rights[mid]!, seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the first range whose right edge is at or after `seq` (touching or above it). */
  private firstEndingAtOrAfter(seq: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLt(this.rights[mid]!, seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Forgets SACKed bytes at or below the cumulative ACK (they left the scoreboard). */
  private trim(una: number): void {
    const k = this.firstEndingAfter(una);
    for (let j = 0; j < k; j++) this.sacked -= seqSub(this.rights[j]!, this.lefts[j]!);
    if (k > 0) {
      this.lefts.copyWithin(0, k, this.n);
      this.rights.copyWithin(0, k, this.n);
      this.n -= k;
    }
    if (this.n > 0 && seqLt(this.lefts[0]!, una)) {
      this.sacked -= seqSub(una, this.lefts[0]!);
      this.lefts[0] = una;
    }
  }

  /**
   * Doubles the range arrays (from 8, up to the capacity): idle connections, which never see a
   * SACK block, hold none (2 KiB saved per connection at the default 256 blocks).
   */
  private grow(): void {
    const size = Math.min(this.capacity, Math.max(8, this.lefts.length * 2));
    const lefts = new Uint32Array(size);
    const rights = new Uint32Array(size);
    lefts.set(this.lefts.subarray(0, this.n));
    rights.set(this.rights.subarray(0, this.n));
    this.lefts = lefts;
    this.rights = rights;
  }

  /** Merges `[l, r)` into the ranges; returns the bytes it added. */
  private add(l: number, r: number): number {
    const i = this.firstEndingAtOrAfter(l);
    let j = i;
    while (j < this.n && seqLe(this.lefts[j]!, r)) j++;
    if (i === j) {
      if (this.n === this.capacity) return 0;
      if (this.n === this.lefts.length) this.grow();
      this.lefts.copyWithin(i + 1, i, this.n);
      this.rights.copyWithin(i + 1, i, this.n);
      this.lefts[i] = l;
      this.rights[i] = r;
      this.n++;
      const added = seqSub(r, l);
      this.sacked += added;
      return added;
    }
    let before = 0;
    for (let k = i; k < j; k++) before += seqSub(this.rights[k]!, this.lefts[k]!);
    const newLeft = seqMin(l, this.lefts[i]!);
    const newRight = seqMax(r, this.rights[j - 1]!);
    this.lefts[i] = newLeft;
    this.rights[i] = newRight;
    if (j - i > 1) {
      this.lefts.copyWithin(i + 1, j, this.n);
      this.rights.copyWithin(i + 1, j, this.n);
      this.n -= j - i - 1;
    }
    const added = seqSub(newRight, newLeft) - before;
    this.sacked += added;
    return added;
  }
}
