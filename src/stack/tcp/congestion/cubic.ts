/**
 * CUBIC (RFC 9438). Windows are kept in segments and times in seconds internally, as the RFC
 * writes its equations (C = 0.4 is in segments/s^3); cwnd and ssthresh are exposed in bytes.
 *
 * Choices, each where the RFC leaves room or where we follow Linux:
 * - The `RTT` in target = W_cubic(t + RTT) is the minimum RTT seen, as Linux's delay_min;
 *   RFC 9438 §4.1.2 says the smoothed RTT. The minimum does not grow with our own queue, so a
 *   standing queue cannot make the target more aggressive.
 * - Multiplicative decrease uses FlightSize (RFC 9438 §4.6 Figure 5), like NewReno; the cwnd
 *   cannot run away from FlightSize because an application-limited ACK never grows it.
 * - Application-limited (FlightSize < cwnd/2 before the ACK, Linux's tcp_is_cwnd_limited): no
 *   growth, and the time between such ACKs is removed from t by moving the epoch start forward
 *   (RFC 9438 §5.8: t "MUST NOT include" those periods; Linux shifts the epoch after idle).
 * - A congestion-avoidance epoch starts at its first ACK (as Linux). If cwnd_epoch >= W_max
 *   (after an undo or an MSS change) the plateau restarts at cwnd with K = 0, as Linux does,
 *   instead of a negative K.
 * - In the Reno-friendly region cwnd = max(cwnd, W_est): W_est never lowers the window.
 * - Slow start is RFC 5681/3465 (L = 2*SMSS) with HyStart++ (RFC 9406) on the initial slow
 *   start by default, as RFC 9438 §4.10 recommends; see hystart.ts.
 */

import { CSS_GROWTH_DIVISOR, type HyStartPhase, HyStartPlusPlus } from './hystart.js';
import {
  byteCount,
  type CongestionControl,
  initialWindow,
  type LossPhase,
  MAX_WINDOW_BYTES,
  validMss,
} from './types.js';

/** RFC 9438 §5.1: C = 0.4 segments/s^3. */
export const CUBIC_C = 0.4;
/** RFC 9438 §4.6: beta_cubic = 0.7. */
export const CUBIC_BETA = 0.7;
/** RFC 9438 §4.3: alpha_cubic = 3 * (1 - beta) / (1 + beta), Reno's average rate for beta 0.7. */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

/** RFC 3465 §2.2: the slow-start increase per ACK is at most L*SMSS, L = 2. */
const ABC_L = 2;
/** RFC 9293 §3.7.1: the send MSS assumed when none is known. */
const DEFAULT_MSS = 536;
/** Absorbs the rounding of segments * mss so exact byte values are not floored one below. */
const BYTE_EPSILON = 1e-6;

/** Switches of CUBIC. */
export interface CubicOptions {
  /** Use HyStart++ (RFC 9406) in the initial slow start. Default true (RFC 9438 §4.10). */
  readonly hystart: boolean;
  /** Fast convergence (RFC 9438 §4.7). Default true (SHOULD; Linux's default too). */
  readonly fastConvergence: boolean;
}

/** The defaults. */
export const DEFAULT_CUBIC_OPTIONS: CubicOptions = Object.freeze({ hystart: true, fastConvergence: true });

/** RFC 9438 §4.2 Figure 2: K = cbrt((W_max - cwnd_epoch) / C), in seconds. */
export function cubicK(wMax: number, cwndEpoch: number): number {
  return Math.cbrt((wMax - cwndEpoch) / CUBIC_C);
}

/** RFC 9438 §4.2 Figure 1: W_cubic(t) = C * (t - K)^3 + W_max, in segments (t and K in seconds). */
export function wCubic(tSeconds: number, k: number, wMax: number): number {
  const d = tSeconds - k;
  return CUBIC_C * d * d * d + wMax;
}

/** RFC 9438 CUBIC. */
export class Cubic implements CongestionControl {
  /** Which algorithm this is. */
  readonly name = 'cubic' as const;
  private readonly fastConvergence: boolean;
  private readonly hystart: HyStartPlusPlus | undefined;
  private mss: number;
  private cwndSeg: number;
  private ssthreshSeg = Number.POSITIVE_INFINITY;
  private phase: LossPhase = 'open';
  private pristine = true;
  /** The last finite `now` seen, standing in for a non-finite one. */
  private lastNow: number;
  private lastAckAt: number | undefined = undefined;
  private minRtt = Number.POSITIVE_INFINITY;

  // RFC 9438 §4.1.2 variables, in segments and seconds (the epoch start in ms of `now`).
  private wMaxSeg: number | undefined = undefined;
  private kSec = 0;
  private epochStart: number | undefined = undefined;
  private cwndEpoch = 0;
  private wEstSeg = 0;
  private cwndPriorSeg = 0;

  // RFC 9438 §4.9 undo_* copies.
  private undoValid = false;
  private undoCwnd = 0;
  private undoCwndPrior = 0;
  private undoSsthresh = Number.POSITIVE_INFINITY;
  private undoWMax: number | undefined = undefined;
  private undoK = 0;
  private undoEpochStart: number | undefined = undefined;
  private undoCwndEpoch = 0;
  private undoWEst = 0;

  /** A controller at the RFC 6928 initial window for `mss` (536 if `mss` is unusable). */
  constructor(mss: number, now: number, options: Partial<CubicOptions> = {}) {
    const o = { ...DEFAULT_CUBIC_OPTIONS, ...options };
    this.fastConvergence = o.fastConvergence;
    this.hystart = o.hystart ? new HyStartPlusPlus() : undefined;
    this.mss = validMss(mss) ?? DEFAULT_MSS;
    this.cwndSeg = initialWindow(this.mss) / this.mss;
    this.lastNow = Number.isFinite(now) ? now : 0;
  }

  /** Congestion window in bytes. */
  get cwnd(): number {
    return Math.floor(this.cwndSeg * this.mss + BYTE_EPSILON);
  }

  /** Slow-start threshold in bytes (Infinity until the first congestion event). */
  get ssthresh(): number {
    if (this.ssthreshSeg === Number.POSITIVE_INFINITY) return this.ssthreshSeg;
    return Math.floor(this.ssthreshSeg * this.mss + BYTE_EPSILON);
  }

  /** W_max in segments (undefined before the first congestion event or HyStart++ exit). */
  get wMax(): number | undefined {
    return this.wMaxSeg;
  }

  /** K of the current epoch, in seconds. */
  get k(): number {
    return this.kSec;
  }

  /** W_est (RFC 9438 §4.3) in segments. */
  get wEst(): number {
    return this.wEstSeg;
  }

  /** cwnd_prior (RFC 9438 §4.1.2) in segments. */
  get cwndPrior(): number {
    return this.cwndPriorSeg;
  }

  /** The phase of HyStart++, or undefined when it is switched off. */
  get hystartPhase(): HyStartPhase | undefined {
    return this.hystart?.phase;
  }

  /** See CongestionControl.onAck. */
  onAck(ackedBytes: number, now: number, rttMs: number | undefined, bytesInFlight: number): void {
    const acked = byteCount(ackedBytes);
    if (acked === 0) return;
    const t = this.clock(now);
    this.pristine = false;
    if (this.phase === 'recovery') this.onRecoveryEnd(t);
    this.phase = 'open';
    const rtt = rttMs !== undefined && rttMs >= 0 && rttMs !== Number.POSITIVE_INFINITY ? rttMs : undefined;
    if (rtt !== undefined && rtt < this.minRtt) this.minRtt = rtt;

    const flight = byteCount(bytesInFlight);
    const cwndLimited = flight >= (this.cwndSeg * this.mss) / 2;
    if (!cwndLimited && this.epochStart !== undefined && this.lastAckAt !== undefined && t > this.lastAckAt) {
      // RFC 9438 §5.8: application-limited time does not advance the cubic curve.
      this.epochStart = Math.min(this.epochStart + (t - this.lastAckAt), t);
    }
    this.lastAckAt = t;

    let segments = acked / this.mss;
    if (this.cwndSeg < this.ssthreshSeg) {
      let hs: HyStartPhase = 'slow-start';
      // RFC 9406 §4.2: HyStart++ only in the initial slow start (ssthresh still unset).
      if (this.hystart !== undefined && this.ssthreshSeg === Number.POSITIVE_INFINITY) {
        hs = this.hystart.onAck(acked, rtt, Math.max(flight - acked, 0));
      }
      if (hs === 'done') {
        // RFC 9406 §4.2 ssthresh = cwnd; RFC 9438 §4.10: cwnd_prior = cwnd, W_max set at the epoch.
        this.ssthreshSeg = Math.max(this.cwndSeg, 2); // never below 2 SMSS (RFC 5681 §3.1)
        this.cwndPriorSeg = this.cwndSeg;
        this.wMaxSeg = undefined;
        this.epochStart = undefined;
        return;
      }
      if (!cwndLimited) return;
      // RFC 5681 §3.1 with RFC 3465 §2.2, divided by 4 in CSS (RFC 9406 §4.2).
      let increase = Math.min(segments, ABC_L);
      if (hs === 'css') increase /= CSS_GROWTH_DIVISOR;
      const room = this.ssthreshSeg - this.cwndSeg;
      if (increase <= room) {
        this.cwndSeg = Math.min(this.cwndSeg + increase, this.maxSeg());
        return;
      }
      // Crossing ssthresh: the rest of this ACK counts toward congestion avoidance (as Linux).
      this.cwndSeg = this.ssthreshSeg;
      segments -= room;
    }
    if (!cwndLimited) return;
    this.congestionAvoidance(segments, t);
  }

  /** RFC 9438 §4.6 multiplicative decrease with §4.7 fast convergence. */
  onCongestionEvent(now: number, bytesInFlight: number): void {
    this.clock(now);
    // Duplicate ACKs while recovering from a timeout belong to that loss (Linux's Loss state).
    if (this.phase === 'loss') return;
    this.pristine = false;
    if (this.phase === 'open') this.saveUndo();
    // §4.7: a flow below its last W_max releases bandwidth by lowering W_max further.
    if (this.fastConvergence && this.wMaxSeg !== undefined && this.cwndSeg < this.wMaxSeg) {
      this.wMaxSeg = (this.cwndSeg * (1 + CUBIC_BETA)) / 2;
    } else {
      this.wMaxSeg = this.cwndSeg;
    }
    // §4.6 Figure 5: cwnd_prior = cwnd; ssthresh = max(flight_size * beta, 2); cwnd = ssthresh.
    this.cwndPriorSeg = this.cwndSeg;
    this.ssthreshSeg = this.lossThreshold(bytesInFlight);
    this.cwndSeg = this.ssthreshSeg;
    this.epochStart = undefined;
    this.hystart?.disable();
    this.phase = 'recovery';
  }

  /** Recovery over: continue in congestion avoidance at ssthresh; the next ACK starts an epoch. */
  onRecoveryEnd(now: number): void {
    this.clock(now);
    if (this.phase !== 'recovery') return;
    this.cwndSeg = Math.max(1, Math.min(this.ssthreshSeg, this.maxSeg()));
    this.epochStart = undefined;
    this.phase = 'open';
  }

  /**
   * RFC 9438 §4.8: cwnd = 1 SMSS as Reno, ssthresh as §4.6 (first timeout from the open state
   * only, see CongestionControl). The next epoch runs with K = 0 and W_max = cwnd_epoch.
   */
  onRetransmitTimeout(now: number, bytesInFlight: number): void {
    this.clock(now);
    this.pristine = false;
    if (this.phase === 'open') {
      this.saveUndo();
      this.cwndPriorSeg = this.cwndSeg;
      this.ssthreshSeg = this.lossThreshold(bytesInFlight);
    }
    this.cwndSeg = 1;
    this.wMaxSeg = undefined;
    this.kSec = 0;
    this.epochStart = undefined;
    this.hystart?.disable();
    this.phase = 'loss';
  }

  /** RFC 5681 §4.1 restart window min(IW, cwnd); ssthresh kept at >= 3/4 cwnd like Linux. */
  onIdleRestart(now: number): void {
    this.clock(now);
    if (this.phase === 'open') this.ssthreshSeg = Math.max(this.ssthreshSeg, (this.cwndSeg * 3) / 4);
    this.cwndSeg = Math.min(this.cwndSeg, initialWindow(this.mss) / this.mss);
    this.epochStart = undefined;
    this.hystart?.restart();
  }

  /** See CongestionControl.setMss: windows keep their size in bytes; K is recomputed. */
  setMss(mss: number): void {
    const m = validMss(mss);
    if (m === undefined || m === this.mss) return;
    if (this.pristine) {
      this.mss = m;
      this.cwndSeg = initialWindow(m) / m;
      return;
    }
    const r = this.mss / m;
    this.mss = m;
    this.cwndSeg = Math.min(Math.max(this.cwndSeg * r, 1), this.maxSeg());
    this.ssthreshSeg = Math.max(this.ssthreshSeg * r, 2);
    if (this.wMaxSeg !== undefined) this.wMaxSeg *= r;
    this.cwndEpoch *= r;
    this.wEstSeg *= r;
    this.cwndPriorSeg *= r;
    this.epochStart = undefined;
    this.undoCwnd *= r;
    this.undoCwndPrior *= r;
    this.undoSsthresh = Math.max(this.undoSsthresh * r, 2);
    if (this.undoWMax !== undefined) this.undoWMax *= r;
    this.undoCwndEpoch *= r;
    this.undoWEst *= r;
    this.undoEpochStart = undefined;
  }

  /**
   * RFC 9438 §4.9: restore cwnd, cwnd_prior, ssthresh, W_max, K, t_epoch and W_est saved before
   * the reduction, if cwnd is still below the saved cwnd; otherwise keep the current values.
   */
  undo(): void {
    if (!this.undoValid) return;
    this.undoValid = false;
    this.phase = 'open';
    if (this.cwndSeg >= this.undoCwnd) return;
    this.cwndSeg = Math.max(this.undoCwnd, 1);
    this.cwndPriorSeg = this.undoCwndPrior;
    this.ssthreshSeg = this.undoSsthresh;
    this.wMaxSeg = this.undoWMax;
    this.kSec = this.undoK;
    this.epochStart = this.undoEpochStart;
    this.cwndEpoch = this.undoCwndEpoch;
    this.wEstSeg = this.undoWEst;
  }

  /** RFC 9438 §4.2-§4.5: one ACK of `segments` in congestion avoidance at time `now`. */
  private congestionAvoidance(segments: number, now: number): void {
    if (this.epochStart === undefined) this.startEpoch(now);
    const tSec = Math.max(0, now - (this.epochStart ?? now)) / 1000;
    const rttSec = this.minRtt === Number.POSITIVE_INFINITY ? 0 : this.minRtt / 1000;
    const wMax = this.wMaxSeg ?? this.cwndSeg;
    const cwnd = this.cwndSeg;

    // §4.3 Figure 4: W_est += alpha * segments_acked / cwnd; alpha = 1 once W_est >= cwnd_prior.
    const alpha = this.wEstSeg >= this.cwndPriorSeg ? 1 : CUBIC_ALPHA;
    this.wEstSeg = Math.min(this.wEstSeg + (alpha * segments) / cwnd, this.maxSeg());

    let next: number;
    if (wCubic(tSec, this.kSec, wMax) < this.wEstSeg) {
      // §4.3: the Reno-friendly region.
      next = Math.max(cwnd, this.wEstSeg);
    } else {
      // §4.2 target, bounded to [cwnd, 1.5 cwnd]; §4.4/§4.5: cwnd += (target - cwnd) / cwnd per segment.
      const w = wCubic(tSec + rttSec, this.kSec, wMax);
      const target = Math.max(cwnd, Math.min(w, 1.5 * cwnd));
      next = cwnd + Math.min(target - cwnd, ((target - cwnd) * segments) / cwnd);
    }
    this.cwndSeg = Math.min(next, this.maxSeg());
  }

  /** RFC 9438 §4.2/§4.3: t_epoch, cwnd_epoch, K and W_est at the first ACK of a new epoch. */
  private startEpoch(now: number): void {
    this.epochStart = now;
    this.cwndEpoch = this.cwndSeg;
    this.wEstSeg = this.cwndSeg;
    if (this.wMaxSeg === undefined || this.wMaxSeg <= this.cwndSeg) {
      // §4.8 after a timeout, §4.10 after HyStart++: K = 0, W_max = cwnd_epoch.
      this.wMaxSeg = this.cwndSeg;
      this.kSec = 0;
    } else {
      this.kSec = cubicK(this.wMaxSeg, this.cwndSeg);
    }
  }

  /** RFC 9438 §4.6: max(flight_size * beta_cubic, 2) segments. */
  private lossThreshold(bytesInFlight: number): number {
    return Math.max(Math.min((byteCount(bytesInFlight) / this.mss) * CUBIC_BETA, this.maxSeg()), 2);
  }

  private maxSeg(): number {
    return MAX_WINDOW_BYTES / this.mss;
  }

  /** `now` if finite (and remembered), else the last finite time: NaN never enters the state. */
  private clock(now: number): number {
    if (Number.isFinite(now)) this.lastNow = now;
    return this.lastNow;
  }

  private saveUndo(): void {
    this.undoValid = true;
    this.undoCwnd = this.cwndSeg;
    this.undoCwndPrior = this.cwndPriorSeg;
    this.undoSsthresh = this.ssthreshSeg;
    this.undoWMax = this.wMaxSeg;
    this.undoK = this.kSec;
    this.undoEpochStart = this.epochStart;
    this.undoCwndEpoch = this.cwndEpoch;
    this.undoWEst = this.wEstSeg;
  }
}
