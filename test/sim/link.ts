/**
 * A seeded simulated link between two stacks, in virtual time: each direction has a delay, jitter,
 * loss, duplication and reordering drawn from one seeded PRNG, so a run is reproducible from its
 * seed. Time advances to the next event (a packet arrival or a stack deadline), never the wall clock.
 */

import type { StackOptions } from '../../src/stack/options.js';
import { seededRandom } from '../../src/stack/random.js';
import { Stack } from '../../src/stack/stack.js';

/** Impairments of one direction. */
export interface LinkImpairment {
  /** One-way delay in ms. */
  delayMs: number;
  /** Extra uniform random delay in [0, jitterMs) (reorders packets when large enough). */
  jitterMs?: number;
  /** Probability a packet is lost. */
  loss?: number;
  /** Probability a packet is delivered twice. */
  duplicate?: number;
  /** Probability a packet is held back by an extra `reorderMs`. */
  reorder?: number;
  reorderMs?: number;
  /** Bottleneck rate in bytes per ms (serialization delay); unlimited when absent. */
  bytesPerMs?: number;
}

interface InFlight {
  at: number;
  seq: number;
  packet: Uint8Array;
  to: 0 | 1;
}

/** Two stacks joined by an impaired link, driven in virtual time. */
export class SimLink {
  readonly stacks: [Stack, Stack];
  now = 0;
  private queue: InFlight[] = [];
  private seq = 0;
  private readonly rand: () => number;
  private busyUntil: [number, number] = [0, 0];
  /** Packets lost, duplicated and delivered, per direction (0: a→b, 1: b→a). */
  readonly counters = { lost: [0, 0], duplicated: [0, 0], delivered: [0, 0] };

  constructor(
    seed: number,
    private readonly impair: [LinkImpairment, LinkImpairment],
    options: [StackOptions, StackOptions] = [{}, {}],
  ) {
    const r = seededRandom(seed);
    this.rand = () => r() / 0x100000000;
    this.stacks = [
      new Stack({
        transmit: (p) => this.send(0, p),
        random: seededRandom(seed ^ 0x1111),
        options: options[0],
      }),
      new Stack({
        transmit: (p) => this.send(1, p),
        random: seededRandom(seed ^ 0x2222),
        options: options[1],
      }),
    ];
  }

  private send(from: 0 | 1, packet: Uint8Array): void {
    const im = this.impair[from];
    const to: 0 | 1 = from === 0 ? 1 : 0;
    if (this.rand() < (im.loss ?? 0)) {
      this.counters.lost[from]!++;
      return;
    }
    let at = this.now;
    if (im.bytesPerMs !== undefined) {
      const start = Math.max(this.busyUntil[from], this.now);
      this.busyUntil[from] = start + packet.length / im.bytesPerMs;
      at = this.busyUntil[from];
    }
    at += im.delayMs + (im.jitterMs ?? 0) * this.rand();
    if (this.rand() < (im.reorder ?? 0)) at += im.reorderMs ?? im.delayMs;
    const copy = packet.slice();
    this.push({ at, seq: this.seq++, packet: copy, to });
    if (this.rand() < (im.duplicate ?? 0)) {
      this.counters.duplicated[from]!++;
      this.push({ at: at + 0.01, seq: this.seq++, packet: copy, to });
    }
  }

  private push(f: InFlight): void {
    // Sorted insert from the back: arrivals are mostly in time order.
    const q = this.queue;
    let i = q.length;
    while (i > 0 && (q[i - 1]!.at > f.at || (q[i - 1]!.at === f.at && q[i - 1]!.seq > f.seq))) i--;
    q.splice(i, 0, f);
  }

  /** Flushes both stacks' pending output at the current time. */
  flush(): void {
    this.stacks[0].flush(this.now);
    this.stacks[1].flush(this.now);
  }

  /**
   * Runs events until `until()` is true or `maxMs` of virtual time pass. `afterEach` runs after
   * every event (the test's "application" reads and writes there). Returns the virtual time.
   */
  run(until: () => boolean, maxMs: number, afterEach: () => void = () => {}): number {
    const end = this.now + maxMs;
    for (let guard = 0; guard < 50_000_000 && !until(); guard++) {
      const next = this.queue[0];
      const d0 = this.stacks[0].nextDeadline() ?? Number.POSITIVE_INFINITY;
      const d1 = this.stacks[1].nextDeadline() ?? Number.POSITIVE_INFINITY;
      const t = Math.min(next?.at ?? Number.POSITIVE_INFINITY, d0, d1);
      if (t === Number.POSITIVE_INFINITY || t > end) {
        this.now = Math.min(end, t);
        break;
      }
      this.now = Math.max(this.now, t);
      if (next !== undefined && next.at <= this.now) {
        this.queue.shift();
        this.counters.delivered[next.to === 1 ? 0 : 1]!++;
        this.stacks[next.to].input(next.packet, this.now);
      }
      if (d0 <= this.now) this.stacks[0].poll(this.now);
      if (d1 <= this.now) this.stacks[1].poll(this.now);
      afterEach();
      this.flush();
    }
    return this.now;
  }
}
