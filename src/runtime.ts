/**
 * The runtime: drives the pure stack with a real clock, one real timer and a device. It is the
 * device's PacketSink: every received packet goes to `stack.input`, and after each drained batch
 * the single timer is re-armed for the stack's next deadline.
 */
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RandomSource } from './stack/random.js';
import { Stack, type StackConfig } from './stack/stack.js';
import type { Device, PacketSink } from './tun/device.js';

/** A RandomSource drawing from the operating system's CSPRNG, 1024 values per refill. */
export function cryptoRandom(): RandomSource {
  const pool = new Uint32Array(1024);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++]!;
  };
}

/** Options of a runtime: the stack's config less what the runtime supplies. */
export type RuntimeOptions = Omit<StackConfig, 'transmit' | 'random'> & { readonly random?: RandomSource };

/** Joins a device and a stack, with the one timer the stack needs. */
export class StackRuntime implements PacketSink {
  /** The stack this runtime drives. */
  readonly stack: Stack;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(
    readonly device: Device,
    options: RuntimeOptions = {},
  ) {
    this.stack = new Stack({
      ...options,
      options: { mtu: device.mtu, ...options.options },
      random: options.random ?? cryptoRandom(),
      transmit: (packet) => {
        device.write(packet);
      },
    });
  }

  /** Starts reading the device. */
  start(): void {
    this.device.start(this);
  }

  /** Milliseconds on the monotonic clock the stack runs on. */
  now(): number {
    return performance.now();
  }

  /** PacketSink: one packet from the device. */
  receive(packet: Uint8Array, rxFlags: number): void {
    this.stack.input(packet, this.now(), rxFlags);
  }

  /** PacketSink: the end of a batch; re-arm the timer. */
  flush(): void {
    this.schedule();
  }

  /** Re-arms the single timer for the stack's earliest deadline. Call after any call into the stack. */
  schedule(): void {
    if (this.closed) return;
    const deadline = this.stack.nextDeadline();
    if (deadline === undefined) {
      this.cancelTimer();
      return;
    }
    if (this.timer !== undefined && this.timerAt <= deadline) return;
    this.cancelTimer();
    this.timerAt = deadline;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Number.POSITIVE_INFINITY;
        this.stack.poll(this.now());
        this.schedule();
      },
      Math.max(0, Math.ceil(deadline - this.now())),
    );
    this.timer.unref();
  }

  /** Stops the timer and closes the device. */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelTimer();
    await this.device.close();
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }
}
