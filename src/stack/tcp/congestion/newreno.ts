/**
 * NewReno's window arithmetic: RFC 5681 slow start and congestion avoidance with RFC 3465
 * Appropriate Byte Counting (L = 2*SMSS), RFC 5681 eq. 4 on loss. The recovery procedure itself
 * (RFC 6582 partial ACKs, RFC 6675 pipe, PRR) is the sender's; see types.ts for the model.
 * The window is kept in bytes, as RFC 5681 does.
 */

import {
  byteCount,
  type CongestionControl,
  initialWindow,
  type LossPhase,
  MAX_WINDOW_BYTES,
  validMss,
} from './types.js';

/** RFC 3465 §2.2: the slow-start increase per ACK is at most L*SMSS, L = 2. */
const ABC_L = 2;
/** RFC 9293 §3.7.1: the send MSS assumed when none is known. */
const DEFAULT_MSS = 536;

/** RFC 5681 congestion control with RFC 3465 byte counting. */
export class NewReno implements CongestionControl {
  /** Which algorithm this is. */
  readonly name = 'newreno' as const;
  private mss: number;
  private cwndBytes: number;
  private ssthreshBytes = Number.POSITIVE_INFINITY;
  /** RFC 3465 §2.1 bytes_acked: congestion-avoidance credit toward the next SMSS. */
  private bytesAcked = 0;
  private phase: LossPhase = 'open';
  /** No ACK or event yet: setMss may still re-derive the initial window. */
  private pristine = true;
  private undoValid = false;
  private undoCwnd = 0;
  private undoSsthresh = Number.POSITIVE_INFINITY;

  /** A controller at the RFC 6928 initial window for `mss` (536 if `mss` is unusable). */
  constructor(mss: number, _now: number) {
    this.mss = validMss(mss) ?? DEFAULT_MSS;
    this.cwndBytes = initialWindow(this.mss);
  }

  /** Congestion window in bytes. */
  get cwnd(): number {
    return this.cwndBytes;
  }

  /** Slow-start threshold in bytes (Infinity until the first congestion event). */
  get ssthresh(): number {
    return this.ssthreshBytes;
  }

  /** See CongestionControl.onAck. */
  onAck(ackedBytes: number, now: number, _rttMs: number | undefined, bytesInFlight: number): void {
    let acked = byteCount(ackedBytes);
    if (acked === 0) return;
    this.pristine = false;
    if (this.phase === 'recovery') this.onRecoveryEnd(now);
    // New data acknowledged: a later timeout is a new loss, not a repeat (RFC 5681 §3.1).
    this.phase = 'open';
    // Application-limited: the window was not used, so it has not been validated (RFC 7661).
    if (byteCount(bytesInFlight) < this.cwndBytes / 2) return;

    if (this.cwndBytes < this.ssthreshBytes) {
      // RFC 5681 §3.1 eq. 2 with RFC 3465 §2.2: cwnd += min(N, L*SMSS), up to ssthresh.
      const increase = Math.min(acked, ABC_L * this.mss);
      const room = this.ssthreshBytes - this.cwndBytes;
      if (increase <= room) {
        this.cwndBytes = Math.min(this.cwndBytes + increase, MAX_WINDOW_BYTES);
        return;
      }
      // Crossing ssthresh: the rest of this ACK counts toward congestion avoidance (as Linux).
      this.cwndBytes = this.ssthreshBytes;
      acked -= room;
    }

    // RFC 5681 §3.1 / RFC 3465 §2.1: one SMSS per cwnd of acknowledged bytes.
    this.bytesAcked += acked;
    if (this.bytesAcked >= this.cwndBytes) {
      const steps = Math.floor(this.bytesAcked / this.cwndBytes);
      this.bytesAcked -= steps * this.cwndBytes;
      this.cwndBytes = Math.min(this.cwndBytes + steps * this.mss, MAX_WINDOW_BYTES);
    }
  }

  /** RFC 5681 §3.2 step 2 (eq. 4) and RFC 6675 §5 step 4.2: ssthresh = cwnd = max(FlightSize/2, 2*SMSS). */
  onCongestionEvent(_now: number, bytesInFlight: number): void {
    // Duplicate ACKs while recovering from a timeout belong to that loss (Linux's Loss state).
    if (this.phase === 'loss') return;
    this.pristine = false;
    if (this.phase === 'open') this.saveUndo();
    this.ssthreshBytes = this.lossThreshold(bytesInFlight);
    this.cwndBytes = this.ssthreshBytes;
    this.bytesAcked = 0;
    this.phase = 'recovery';
  }

  /** RFC 6582 §3.2 step 6 / RFC 6675: recovery over, continue in congestion avoidance at ssthresh. */
  onRecoveryEnd(_now: number): void {
    if (this.phase !== 'recovery') return;
    this.cwndBytes = Math.max(this.mss, Math.min(this.ssthreshBytes, MAX_WINDOW_BYTES));
    this.bytesAcked = 0;
    this.phase = 'open';
  }

  /** RFC 5681 §3.1 eq. 4 and the loss window: cwnd = 1 SMSS. */
  onRetransmitTimeout(_now: number, bytesInFlight: number): void {
    this.pristine = false;
    if (this.phase === 'open') {
      this.saveUndo();
      this.ssthreshBytes = this.lossThreshold(bytesInFlight);
    }
    this.cwndBytes = this.mss;
    this.bytesAcked = 0;
    this.phase = 'loss';
  }

  /** RFC 5681 §4.1 restart window min(IW, cwnd); ssthresh kept at >= 3/4 cwnd like Linux. */
  onIdleRestart(_now: number): void {
    if (this.phase === 'open') {
      this.ssthreshBytes = Math.max(this.ssthreshBytes, Math.floor((this.cwndBytes * 3) / 4));
    }
    this.cwndBytes = Math.min(this.cwndBytes, initialWindow(this.mss));
    this.bytesAcked = 0;
  }

  /** See CongestionControl.setMss. */
  setMss(mss: number): void {
    const m = validMss(mss);
    if (m === undefined) return;
    this.mss = m;
    if (this.pristine) {
      this.cwndBytes = initialWindow(m);
      return;
    }
    this.cwndBytes = Math.min(Math.max(this.cwndBytes, m), MAX_WINDOW_BYTES);
    this.ssthreshBytes = Math.max(this.ssthreshBytes, 2 * m);
  }

  /**
   * A spurious reduction (RFC 4015 §2 response): like Linux's tcp_undo_cwnd_reduction,
   * cwnd = max(cwnd, prior cwnd) and ssthresh = max(ssthresh, prior ssthresh).
   */
  undo(): void {
    if (!this.undoValid) return;
    this.undoValid = false;
    this.cwndBytes = Math.min(Math.max(this.cwndBytes, this.undoCwnd, this.mss), MAX_WINDOW_BYTES);
    this.ssthreshBytes = Math.max(this.ssthreshBytes, this.undoSsthresh, 2 * this.mss);
    this.bytesAcked = 0;
    this.phase = 'open';
  }

  /** RFC 5681 eq. 4: max(FlightSize / 2, 2*SMSS), in whole bytes. */
  private lossThreshold(bytesInFlight: number): number {
    return Math.max(Math.min(Math.floor(byteCount(bytesInFlight) / 2), MAX_WINDOW_BYTES), 2 * this.mss);
  }

  private saveUndo(): void {
    this.undoValid = true;
    this.undoCwnd = this.cwndBytes;
    this.undoSsthresh = this.ssthreshBytes;
  }
}
