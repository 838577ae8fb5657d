/**
 * The congestion controller interface shared by NewReno and CUBIC, and the window helpers both use.
 *
 * A controller owns cwnd and ssthresh and nothing else: the sender decides what is a new ACK, when
 * loss recovery starts and ends (RFC 6582 / RFC 6675), and paces recovery with pipe or PRR
 * (RFC 6937) from the ssthresh exposed here. Every entry point takes `now` in milliseconds from a
 * monotonic clock; controllers never read a clock, never allocate per ACK and never throw.
 *
 * Recovery model (RFC 6675 §5 step 4.2 / Linux with PRR): on entering recovery cwnd = ssthresh,
 * not RFC 5681's ssthresh + 3*SMSS inflation; the sender lets PRR or pipe decide what to send
 * until recovery ends.
 */

/** Names of the available algorithms. */
export type CongestionControlName = 'newreno' | 'cubic';

/** A congestion control algorithm (one instance per connection). */
export interface CongestionControl {
  /** Which algorithm this is. */
  readonly name: CongestionControlName;
  /** Congestion window in bytes; always at least 1 SMSS, finite and an integer. */
  readonly cwnd: number;
  /** Slow-start threshold in bytes (Infinity until the first congestion event). */
  readonly ssthresh: number;
  /**
   * New data was cumulatively acknowledged outside loss recovery (RFC 5681 §3.1; RFC 3465 ABC
   * with L = 2*SMSS). `rttMs` is the RTT sample this ACK produced, if any (Karn's rule or
   * timestamps). `bytesInFlight` is FlightSize before this ACK removed its bytes
   * (SND.NXT − the old SND.UNA): when it is below cwnd/2 the sender is application-limited and
   * the window does not grow (RFC 7661 spirit, Linux's tcp_is_cwnd_limited). A call while the
   * controller is in recovery ends recovery first, as onRecoveryEnd would.
   */
  onAck(ackedBytes: number, now: number, rttMs: number | undefined, bytesInFlight: number): void;
  /**
   * Loss detected by duplicate ACKs / SACK: entering fast recovery (RFC 5681 §3.2 / RFC 6675 §5
   * step 4.2 / RFC 9438 §4.6). Call once per recovery episode with FlightSize at detection;
   * afterwards cwnd = ssthresh. Ignored after a timeout until new data is acknowledged: that
   * loss episode already reduced the window (Linux's Loss state).
   */
  onCongestionEvent(now: number, bytesInFlight: number): void;
  /** Loss recovery ended (the recovery point was cumulatively acknowledged): cwnd = ssthresh. */
  onRecoveryEnd(now: number): void;
  /**
   * Retransmission timeout (RFC 5681 §3.1 eq. 4; cwnd = loss window = 1 SMSS). ssthresh is only
   * recomputed on the first timeout from the open state: a repeated timeout without new data
   * acknowledged in between (RFC 5681 §3.1, note to eq. 4) or a timeout during fast recovery
   * (Linux's tcp_enter_loss) keeps it.
   */
  onRetransmitTimeout(now: number, bytesInFlight: number): void;
  /**
   * The sender was idle longer than an RTO (RFC 5681 §4.1): cwnd = min(IW, cwnd). Like Linux's
   * tcp_cwnd_restart (tcp_slow_start_after_idle) ssthresh first rises to at least 3/4 of the old
   * cwnd, so slow start climbs back to the previous rate quickly; RFC 5681 leaves ssthresh alone.
   */
  onIdleRestart(now: number): void;
  /**
   * The path MSS changed (e.g. after the handshake). Before any ACK or event the window becomes
   * the new IW; afterwards the window keeps its size in bytes, clamped to at least 1 SMSS.
   * Non-finite or non-positive values are ignored.
   */
  setMss(mss: number): void;
  /**
   * A spurious RTO or fast retransmit was detected (RFC 5682 F-RTO, RFC 3522 Eifel, RFC 3708
   * DSACK): restore the window saved before the latest reduction (RFC 4015 / RFC 9438 §4.9) and
   * leave recovery. Does nothing when no reduction is pending undo; one undo per reduction.
   */
  undo?(): void;
}

/** The largest window TCP can use: 2^30 bytes (RFC 7323 §2.3, window scale 14). */
export const MAX_WINDOW_BYTES = 2 ** 30;

/** RFC 6928 §2 initial window: min(10*MSS, max(2*MSS, 14600)). */
export function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}

/** The most bytes one call may report: the sequence space (2^32); more is a caller bug. */
const MAX_BYTE_COUNT = 2 ** 32;

/** A byte count from a caller, made safe: a whole number, NaN or negative as 0, huge values capped. */
export function byteCount(x: number): number {
  return x > 0 ? Math.floor(Math.min(x, MAX_BYTE_COUNT)) : 0;
}

/** The largest MSS the 16-bit MSS option can carry (RFC 9293 §3.7.1). */
const MAX_MSS = 65535;

/** A usable MSS: an integer from 1 to 65535 (larger values are capped), or undefined to ignore. */
export function validMss(mss: number): number | undefined {
  if (!(mss >= 1)) return undefined;
  return Math.min(Math.floor(mss), MAX_MSS);
}

/**
 * Where a controller is in the loss cycle: `open` (normal growth), `recovery` (after a congestion
 * event until onRecoveryEnd) or `loss` (after a timeout until new data is acknowledged).
 */
export type LossPhase = 'open' | 'recovery' | 'loss';
