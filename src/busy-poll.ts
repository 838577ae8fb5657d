/**
 * Busy polling (opt-in; `--busy-poll DUR`, `RuntimeOptions.busyPollMs`): after a packet goes in
 * or out, the event loop keeps turning for a short window instead of sleeping, so the next
 * packet or upstream byte is picked up by a poll that does not block (libuv polls with a zero
 * timeout while an immediate is pending) rather than by a wake-up from a sleep.
 *
 * Why: on a request-response exchange the relay sleeps twice (waiting for the upstream's answer,
 * then for the client's next request), and each wake-up costs tens of microseconds on a VM (the
 * scheduler, an inter-processor interrupt). Spinning through those gaps removes most of the
 * latency the relay adds to a round trip and raises serial UDP and request-response rates.
 * The price is CPU: while packets keep coming closer together than the window, one core runs
 * at 100%, and each quiet spell costs one window of spinning. That is why it is off by
 * default, as Linux's own busy polling (net.core.busy_poll) is; an idle relay never spins.
 */

/** The longest window accepted (10 ms): longer spins buy nothing but CPU. */
export const MAX_BUSY_POLL_MS = 10;

/** Keeps one event loop awake for `windowMs` after the last packet. */
export class BusyPoll {
  private hotUntil = 0;
  private spinning = false;
  private stopped = false;
  /** Loop turns spent spinning (for tests and stats). */
  turns = 0;

  /** `windowMs` 0 disables it (touch() then costs one comparison). */
  constructor(readonly windowMs: number) {
    if (!Number.isFinite(windowMs) || windowMs < 0 || windowMs > MAX_BUSY_POLL_MS) {
      throw new RangeError(`busy-poll window must be from 0 to ${MAX_BUSY_POLL_MS} ms, got ${windowMs}`);
    }
  }

  /** A packet went in or out: keep the loop turning until `windowMs` from now. */
  touch(): void {
    if (this.windowMs === 0 || this.stopped) return;
    this.hotUntil = performance.now() + this.windowMs;
    if (!this.spinning) {
      this.spinning = true;
      setImmediate(this.spin);
    }
  }

  /** Stops for good (the loop may then sleep, and exit). */
  stop(): void {
    this.stopped = true;
  }

  private readonly spin = (): void => {
    if (!this.stopped && performance.now() < this.hotUntil) {
      this.turns++;
      setImmediate(this.spin);
    } else {
      this.spinning = false;
    }
  };
}
