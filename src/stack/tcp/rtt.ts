/**
 * The retransmission timer's value (RFC 6298): the smoothed RTT, its variation, the RTO and its
 * exponential backoff. Pure arithmetic: the connection measures RTTs (applying Karn's rule, or
 * timestamps per RFC 7323 §4) and owns the timer; this only says how long the timer should be.
 */

import { StackOptionError } from '../options.js';

/** Bounds and clock of the RTO computation, all in milliseconds. */
export interface RttOptions {
  /** The RTO before any RTT was measured (RFC 6298 §2.1). */
  readonly initialRtoMs: number;
  /** The lowest RTO (RFC 6298 §2.4 says 1 s; see DEFAULT_RTT_OPTIONS). */
  readonly minRtoMs: number;
  /** The highest RTO, also the cap of the backoff (RFC 6298 §2.5: at least 60 s). */
  readonly maxRtoMs: number;
  /** The clock granularity G (RFC 6298 §2.2); our clock is a float, 1 ms keeps RTO > SRTT. */
  readonly clockGranularityMs: number;
}

/**
 * The defaults: initial RTO 1 s (RFC 6298 §2.1), max 120 s (Linux's TCP_RTO_MAX), G = 1 ms, and a
 * min RTO of 200 ms (Linux's TCP_RTO_MIN) instead of RFC 6298 §2.4's 1 s. We deviate like Linux,
 * Windows and the BSDs do: the 1 s floor dates from coarse 500 ms timer ticks, and over the short
 * paths this stack serves (a local TUN, then a proxy) it turns every tail loss into a second of
 * stall. 200 ms still exceeds the common delayed-ACK timers (RFC 9293 §3.8.6.3: under 500 ms,
 * Linux 40 ms), and a spurious timeout is undone (F-RTO / undo in the congestion controller).
 */
export const DEFAULT_RTT_OPTIONS: RttOptions = Object.freeze({
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 120_000,
  clockGranularityMs: 1,
});

/** RFC 6298 §2.3: alpha = 1/8. */
const ALPHA = 1 / 8;
/** RFC 6298 §2.3: beta = 1/4. */
const BETA = 1 / 4;
/** RFC 6298 §2: K = 4. */
const K = 4;
/** RFC 6298 §5.7: the RTO once data flows after the SYN timed out and nothing was measured. */
const SYN_TIMEOUT_FALLBACK_MS = 3000;

function checkOption(name: string, value: number, min: number): void {
  if (!Number.isFinite(value) || value < min) {
    throw new StackOptionError(`${name} must be a finite number >= ${min}, got ${value}`);
  }
}

/** RFC 6298 SRTT/RTTVAR/RTO state of one connection. */
export class RttEstimator {
  private readonly opts: RttOptions;
  private srtt: number | undefined = undefined;
  private rttvar = 0;
  private minRtt = Number.POSITIVE_INFINITY;
  /** The RTO before backoff, already clamped to [min, max]. */
  private baseRto: number;
  private backoffCount = 0;

  /** Fills defaults and validates them (throws StackOptionError, never on packet input). */
  constructor(opts: Partial<RttOptions> = {}) {
    const o: RttOptions = { ...DEFAULT_RTT_OPTIONS, ...opts };
    checkOption('minRtoMs', o.minRtoMs, 0);
    checkOption('maxRtoMs', o.maxRtoMs, o.minRtoMs);
    checkOption('initialRtoMs', o.initialRtoMs, 0);
    checkOption('clockGranularityMs', o.clockGranularityMs, 0);
    this.opts = o;
    this.baseRto = this.clamp(o.initialRtoMs);
  }

  /** SRTT in ms, undefined until the first measurement (RFC 6298 §2.1). */
  get srttMs(): number | undefined {
    return this.srtt;
  }

  /** RTTVAR in ms; 0 until the first measurement. */
  get rttvarMs(): number {
    return this.rttvar;
  }

  /**
   * The lowest RTT sample seen on this connection (Infinity until one arrives): the path's
   * propagation delay for CUBIC and HyStart++. Unlike Linux's 5-minute windowed minimum it never
   * expires; a route change that lengthens the path is not noticed (connections here are short).
   */
  get minRttMs(): number {
    return this.minRtt;
  }

  /** The current RTO including backoff: min(max, base * 2^backoffs) (RFC 6298 §5.5). */
  get rtoMs(): number {
    if (this.backoffCount === 0) return this.baseRto;
    return Math.min(this.opts.maxRtoMs, this.baseRto * 2 ** this.backoffCount);
  }

  /** Number of consecutive backoffs (for the retry limit); a new sample resets it. */
  get backoffs(): number {
    return this.backoffCount;
  }

  /**
   * One RTT measurement. The caller applies Karn's rule (no samples from retransmitted segments,
   * RFC 6298 §3) or uses timestamps (RFC 7323 §4). A fresh sample ends the backoff: RFC 6298 §5
   * keeps the backed-off RTO only until a new RTT is measured.
   *
   * `samplesPerRtt` is RFC 7323 Appendix G's ExpectedSamples: with timestamps every ACK yields a
   * sample, which with alpha 1/8 and beta 1/4 would weigh history by ACK count rather than by
   * time and collapse RTTVAR within one window. Passing ceil(FlightSize / (2 * SMSS)) divides
   * alpha and beta by it, so SRTT and RTTVAR still move about once per RTT. The default 1 is
   * RFC 6298 exactly (one sample per RTT, the timing of a single segment). Linux instead keeps a
   * per-RTT maximum deviation (mdev_max); Appendix G is the documented, simpler equivalent.
   * Non-finite or negative samples are ignored.
   */
  sample(rttMs: number, samplesPerRtt = 1): void {
    if (!(rttMs >= 0) || rttMs === Number.POSITIVE_INFINITY) return;
    if (rttMs < this.minRtt) this.minRtt = rttMs;
    if (this.srtt === undefined) {
      // RFC 6298 §2.2: the first measurement.
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
    } else {
      // RFC 6298 §2.3: RTTVAR first, with the old SRTT.
      const n = samplesPerRtt >= 1 && Number.isFinite(samplesPerRtt) ? samplesPerRtt : 1;
      const alpha = ALPHA / n;
      const beta = BETA / n;
      this.rttvar = (1 - beta) * this.rttvar + beta * Math.abs(this.srtt - rttMs);
      this.srtt = (1 - alpha) * this.srtt + alpha * rttMs;
    }
    // RFC 6298 §2.2/§2.3: RTO = SRTT + max(G, K*RTTVAR), then §2.4/§2.5 bounds.
    this.baseRto = this.clamp(this.srtt + Math.max(this.opts.clockGranularityMs, K * this.rttvar));
    this.backoffCount = 0;
  }

  /** RFC 6298 §5.5: double the RTO (bounded by max) after a retransmission timeout. */
  backoff(): void {
    // Bounded so 2^n stays finite; the RTO is capped long before.
    if (this.backoffCount < 1024) this.backoffCount++;
  }

  /**
   * RFC 6298 §5.7: call when the handshake completes after the SYN (or SYN-ACK) was retransmitted.
   * If no RTT was measured (Karn's rule excludes the retransmitted SYN), the RTO becomes 3 s (or
   * the initial RTO if larger, within the bounds) and the backoff clears; with a measurement the
   * measured RTO stands and this does nothing.
   */
  resetForData(): void {
    if (this.srtt !== undefined) return;
    this.baseRto = this.clamp(Math.max(SYN_TIMEOUT_FALLBACK_MS, this.opts.initialRtoMs));
    this.backoffCount = 0;
  }

  private clamp(rto: number): number {
    return Math.min(this.opts.maxRtoMs, Math.max(this.opts.minRtoMs, rto));
  }
}
