/**
 * HyStart++ (RFC 9406): leave the initial slow start when the per-round minimum RTT rises, through
 * Conservative Slow Start (CSS), before a burst of losses forces the exit.
 *
 * Rounds (RFC 9406 §4.2: a round ends when the ACK for windowEnd = SND.NXT arrives) are tracked
 * in acknowledged bytes: at a round's first ACK the flight left after it is exactly the data up to
 * SND.NXT, so the round ends once that many more bytes are acknowledged. No sequence numbers are
 * needed, and the controller stays independent of the sender's variables.
 *
 * Conservative by construction: it only reacts after N_RTT_SAMPLE samples in both rounds, and the
 * delay threshold is at least 4 ms, so sub-millisecond jitter on local paths never ends slow
 * start. A sender without per-ACK RTT samples (no timestamps, one timed segment per RTT) never
 * collects 8 samples per round, and HyStart++ then simply never triggers.
 */

/** RFC 9406 §4.3: the smallest delay increase that ends slow start. */
const MIN_RTT_THRESH_MS = 4;
/** RFC 9406 §4.3: the largest delay increase needed to end slow start. */
const MAX_RTT_THRESH_MS = 16;
/** RFC 9406 §4.3: the delay threshold is lastRoundMinRTT / 8 within those bounds. */
const MIN_RTT_DIVISOR = 8;
/** RFC 9406 §4.3: RTT samples needed in a round before it is judged. */
const N_RTT_SAMPLE = 8;
/** RFC 9406 §4.3: rounds of CSS before congestion avoidance. */
const CSS_ROUNDS = 5;

/** RFC 9406 §4.3: in CSS the slow-start increase is divided by 4. */
export const CSS_GROWTH_DIVISOR = 4;

/** Where HyStart++ has the slow start: normal, conservative, or finished (go to congestion avoidance). */
export type HyStartPhase = 'slow-start' | 'css' | 'done';

/** RFC 9406 HyStart++ state for one connection's initial slow start. */
export class HyStartPlusPlus {
  private state: HyStartPhase = 'slow-start';
  /** Bytes acknowledged so far, the clock that rounds are measured on. */
  private ackedTotal = 0;
  /** `ackedTotal` at which the current round ends (windowEnd, in acknowledged bytes). */
  private windowEnd = 0;
  private inRound = false;
  private lastRoundMinRtt = Number.POSITIVE_INFINITY;
  private currentRoundMinRtt = Number.POSITIVE_INFINITY;
  private rttSampleCount = 0;
  private cssBaselineMinRtt = Number.POSITIVE_INFINITY;
  private cssRounds = 0;

  /** The current phase. */
  get phase(): HyStartPhase {
    return this.state;
  }

  /**
   * One ACK during slow start: `ackedBytes` newly acknowledged, the RTT sample if any, and the
   * flight left after this ACK (SND.NXT − SND.UNA). Returns the phase that governs this ACK's
   * growth; `done` means leave slow start now with ssthresh = cwnd (RFC 9406 §4.2).
   */
  onAck(ackedBytes: number, rttMs: number | undefined, flightAfterAck: number): HyStartPhase {
    if (this.state === 'done') return 'done';
    this.ackedTotal += ackedBytes;
    // Past windowEnd, as Linux (after(snd_una, end_seq)): the ACK that reaches it still belongs to the round.
    if (!this.inRound || this.ackedTotal > this.windowEnd) {
      // RFC 9406 §4.2: "If CSS_ROUNDS rounds are complete, enter congestion avoidance."
      if (this.inRound && this.state === 'css' && ++this.cssRounds >= CSS_ROUNDS) {
        this.state = 'done';
        return 'done';
      }
      this.startRound(flightAfterAck);
    }
    if (rttMs !== undefined && rttMs >= 0 && rttMs !== Number.POSITIVE_INFINITY) {
      if (rttMs < this.currentRoundMinRtt) this.currentRoundMinRtt = rttMs;
      this.rttSampleCount++;
    }
    if (this.rttSampleCount < N_RTT_SAMPLE) return this.state;
    if (this.state === 'slow-start') {
      if (this.lastRoundMinRtt === Number.POSITIVE_INFINITY) return this.state;
      const rttThresh = Math.max(
        MIN_RTT_THRESH_MS,
        Math.min(this.lastRoundMinRtt / MIN_RTT_DIVISOR, MAX_RTT_THRESH_MS),
      );
      if (this.currentRoundMinRtt >= this.lastRoundMinRtt + rttThresh) {
        // The delay rose: the queue is building. Slow down instead of stopping (CSS).
        this.cssBaselineMinRtt = this.currentRoundMinRtt;
        this.cssRounds = 0;
        this.state = 'css';
      }
    } else if (this.currentRoundMinRtt < this.cssBaselineMinRtt) {
      // RFC 9406 §4.2: the increase was spurious; resume slow start.
      this.cssBaselineMinRtt = Number.POSITIVE_INFINITY;
      this.state = 'slow-start';
    }
    return this.state;
  }

  /** Loss or a timeout ended slow start: HyStart++ is for the initial slow start only (RFC 9406 §4.2). */
  disable(): void {
    this.state = 'done';
  }

  /** After an idle restart: forget the rounds (their RTTs are stale) and slow start afresh. */
  restart(): void {
    if (this.state === 'done') return;
    this.state = 'slow-start';
    this.inRound = false;
    this.lastRoundMinRtt = Number.POSITIVE_INFINITY;
    this.currentRoundMinRtt = Number.POSITIVE_INFINITY;
    this.rttSampleCount = 0;
    this.cssBaselineMinRtt = Number.POSITIVE_INFINITY;
    this.cssRounds = 0;
  }

  /** RFC 9406 §4.2: at the start of each round, shift the current minimum into the last. */
  private startRound(flightAfterAck: number): void {
    this.inRound = true;
    this.windowEnd = this.ackedTotal + flightAfterAck;
    this.lastRoundMinRtt = this.currentRoundMinRtt;
    this.currentRoundMinRtt = Number.POSITIVE_INFINITY;
    this.rttSampleCount = 0;
  }
}
