/**
 * Busy polling (`--busy-poll auto|off|DUR`, `RuntimeOptions.busyPoll`): after a packet goes in
 * or out, the event loop keeps turning for a short window instead of sleeping, so the next
 * packet or upstream byte is picked up by a poll that does not block (libuv polls with a zero
 * timeout while an immediate is pending) rather than by a wake-up from a sleep.
 *
 * Why: on a request-response exchange the relay sleeps twice (waiting for the upstream's answer,
 * then for the client's next request), and each wake-up costs tens of microseconds on a VM (the
 * scheduler, an inter-processor interrupt). Spinning through those gaps removes most of the
 * latency the relay adds to a round trip and raises serial UDP and request-response rates.
 *
 * The price is CPU, and 'auto' (the default) bounds it:
 * - a window of AUTO_WINDOW_MS (120 µs): gaps longer than that are slept through;
 * - a spin that ends with nothing arriving is wasted. Wasted spinning may take AUTO_WASTE_SHARE
 *   (5%) of each 100 ms period, plus half the spinning of that period that did end with a packet;
 *   past that the loop sleeps normally until the next period. Sparse traffic (a packet every
 *   millisecond, a ping, keystrokes) therefore costs at most 5% of a core, an idle relay nothing;
 * - spinning that does end with a packet (traffic denser than the window) is not capped: there a
 *   core runs at up to 100% in exchange for the wake-ups it saves (measured here: 1.4 to 1.7
 *   times the CPU for about 1.6 times the serial request-response rate), and the odd longer gap in such traffic
 *   is paid for by the spins that hit.
 * A fixed DUR (`--busy-poll 200us`) spins that long after every packet with no budget; 'off' (or
 * 0) never spins, as Linux's own net.core.busy_poll defaults to.
 */
import { performance } from 'node:perf_hooks';

/** The longest window accepted (10 ms): longer spins buy nothing but CPU. */
export const MAX_BUSY_POLL_MS = 10;
/** The window of 'auto'. */
export const AUTO_WINDOW_MS = 0.12;
/** The share of wall time that spins ending with nothing may take under 'auto'. */
export const AUTO_WASTE_SHARE = 0.05;
/** The period over which 'auto' budgets wasted spinning. */
export const AUTO_PERIOD_MS = 100;
/** Wasted spinning 'auto' allows per ms of spinning that ended with a packet, on top of the share. */
export const AUTO_WASTE_PER_HIT_MS = 0.5;

/** A busy-poll setting: 'auto', or a fixed window in ms (0: off). */
export type BusyPollSetting = 'auto' | number;

/** Counters of a BusyPoll (stats). */
export interface BusyPollStats {
  /** Loop turns spent spinning. */
  turns: number;
  /** Spins that ended with nothing arriving. */
  idleSpins: number;
  /** Periods in which 'auto' ran out of its waste budget and stopped spinning. */
  capped: number;
}

/** Keeps one event loop awake for a window after the last packet. */
export class BusyPoll {
  /** The window in ms (0: off). */
  readonly windowMs: number;
  /** Wasted spinning allowed per period, in ms (Infinity for a fixed window). */
  readonly wasteBudgetMs: number;
  private hotUntil = 0;
  private lastTouch = 0;
  private spinning = false;
  private stopped = false;
  private periodEnd = 0;
  private wastedMs = 0;
  private usefulMs = 0;
  private readonly wastePerHit: number;
  /** Counters. */
  readonly stats: BusyPollStats = { turns: 0, idleSpins: 0, capped: 0 };

  /** `setting` 0 disables it (touch() then costs one comparison); `now` is injectable for tests. */
  constructor(
    setting: BusyPollSetting,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (setting === 'auto') {
      this.windowMs = AUTO_WINDOW_MS;
      this.wasteBudgetMs = AUTO_WASTE_SHARE * AUTO_PERIOD_MS;
      this.wastePerHit = AUTO_WASTE_PER_HIT_MS;
      return;
    }
    if (
      typeof setting !== 'number' ||
      !Number.isFinite(setting) ||
      setting < 0 ||
      setting > MAX_BUSY_POLL_MS
    ) {
      throw new RangeError(
        `busy-poll window must be 'auto' or from 0 to ${MAX_BUSY_POLL_MS} ms, got ${setting}`,
      );
    }
    this.windowMs = setting;
    this.wasteBudgetMs = Number.POSITIVE_INFINITY;
    this.wastePerHit = 0;
  }

  /** Loop turns spent spinning (for tests). */
  get turns(): number {
    return this.stats.turns;
  }

  /** A packet went in or out: keep the loop turning until the window from now has passed. */
  touch(): void {
    if (this.windowMs === 0 || this.stopped) return;
    const now = this.now();
    // Spinning since the last touch, and this packet came: that spinning paid off.
    if (this.spinning) this.usefulMs += now - this.lastTouch;
    this.lastTouch = now;
    this.hotUntil = now + this.windowMs;
    if (this.spinning) return;
    if (now >= this.periodEnd) {
      this.periodEnd = now + AUTO_PERIOD_MS;
      this.wastedMs = 0;
      this.usefulMs = 0;
    } else if (this.overBudget()) return;
    this.spinning = true;
    setImmediate(this.spin);
  }

  /** Stops for good (the loop may then sleep, and exit). */
  stop(): void {
    this.stopped = true;
  }

  private readonly spin = (): void => {
    const now = this.now();
    if (!this.stopped && now < this.hotUntil) {
      this.stats.turns++;
      setImmediate(this.spin);
      return;
    }
    this.spinning = false;
    if (this.stopped) return;
    // The window passed with nothing: that spin was waste.
    this.stats.idleSpins++;
    const over = this.overBudget();
    this.wastedMs += now - this.lastTouch;
    if (!over && this.overBudget()) this.stats.capped++;
  };

  /** This period's wasted spinning has used up its budget. */
  private overBudget(): boolean {
    return this.wastedMs >= this.wasteBudgetMs + this.wastePerHit * this.usefulMs;
  }
}
