/**
 * A seeded simulated link between two stacks, in virtual time. Each direction has a bottleneck
 * (a serialization rate with a bounded drop-tail queue), a one-way delay, jitter, loss,
 * duplication and reordering, all drawn from one seeded PRNG, so a run is reproducible from its
 * seed. Time jumps to the next event (a packet arrival or a stack deadline), never the wall clock.
 *
 * The loop behaves like the runtime: a packet goes into its stack, due timers run, the owner's
 * events are delivered, and only a stack with output pending is flushed.
 */

import type { StackOptions } from '../../src/stack/options.js';
import { seededRandom } from '../../src/stack/random.js';
import { Stack } from '../../src/stack/stack.js';
import type { TcpEventHandler } from '../../src/stack/tcp/tcp-layer.js';

/** Impairments of one direction. */
export interface LinkImpairment {
  /** One-way propagation delay in ms. */
  delayMs: number;
  /** Extra uniform random delay in [0, jitterMs) (reorders packets when large enough). */
  jitterMs?: number;
  /** Probability a packet is lost (after the bottleneck, like a lossy wire). */
  loss?: number;
  /** Probability a packet is delivered twice. */
  duplicate?: number;
  /** Probability a packet is held back by an extra `reorderMs` (arrives after later ones). */
  reorder?: number;
  /** Extra delay of a reordered packet; defaults to `delayMs`. */
  reorderMs?: number;
  /** Bottleneck rate in bytes per ms (serialization delay); unlimited when absent. */
  bytesPerMs?: number;
  /** Bottleneck buffer in bytes: a packet that does not fit is dropped (drop-tail). Unbounded when absent. */
  queueBytes?: number;
}

/** Per-direction counters (index 0: stack 0 → stack 1, index 1: stack 1 → stack 0). */
export interface LinkCounters {
  /** Packets offered by the sending stack. */
  sent: [number, number];
  /** Packets dropped by random loss. */
  lost: [number, number];
  /** Packets dropped because the bottleneck queue was full. */
  queueDrops: [number, number];
  /** Extra copies delivered. */
  duplicated: [number, number];
  /** Packets held back for reordering. */
  reordered: [number, number];
  /** Packets handed to the receiving stack. */
  delivered: [number, number];
}

/**
 * Packets in flight as a binary min-heap over parallel arrays, ordered by arrival time then by
 * the order they were scheduled (so equal times keep FIFO order, deterministically).
 */
class ArrivalHeap {
  private readonly at: number[] = [];
  private readonly order: number[] = [];
  private readonly packets: Uint8Array[] = [];
  private readonly to: number[] = [];
  private counter = 0;

  get size(): number {
    return this.at.length;
  }

  /** Arrival time of the earliest packet (Infinity when empty). */
  peekAt(): number {
    return this.at.length === 0 ? Number.POSITIVE_INFINITY : this.at[0]!;
  }

  /** Destination of the earliest packet. */
  peekTo(): 0 | 1 {
    return this.to[0] as 0 | 1;
  }

  /** Bytes of the earliest packet. */
  peekPacket(): Uint8Array {
    return this.packets[0]!;
  }

  push(at: number, packet: Uint8Array, to: 0 | 1): void {
    const ats = this.at;
    const orders = this.order;
    const packets = this.packets;
    const tos = this.to;
    const order = this.counter++;
    let i = ats.length;
    ats.push(at);
    orders.push(order);
    packets.push(packet);
    tos.push(to);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pa = ats[p]!;
      if (pa < at || (pa === at && orders[p]! < order)) break;
      ats[i] = pa;
      orders[i] = orders[p]!;
      packets[i] = packets[p]!;
      tos[i] = tos[p]!;
      i = p;
    }
    ats[i] = at;
    orders[i] = order;
    packets[i] = packet;
    tos[i] = to;
  }

  /** Removes the earliest packet. */
  pop(): void {
    const ats = this.at;
    const orders = this.order;
    const packets = this.packets;
    const tos = this.to;
    const at = ats.pop()!;
    const order = orders.pop()!;
    const packet = packets.pop()!;
    const to = tos.pop()!;
    const n = ats.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && (ats[r]! < ats[l]! || (ats[r] === ats[l] && orders[r]! < orders[l]!))) c = r;
      const ca = ats[c]!;
      if (at < ca || (at === ca && order < orders[c]!)) break;
      ats[i] = ca;
      orders[i] = orders[c]!;
      packets[i] = packets[c]!;
      tos[i] = tos[c]!;
      i = c;
    }
    ats[i] = at;
    orders[i] = order;
    packets[i] = packet;
    tos[i] = to;
  }
}

/** Two stacks joined by an impaired link, driven in virtual time. */
export class SimLink {
  readonly stacks: [Stack, Stack];
  /** Virtual time in ms. */
  now = 0;
  /** Events run by `run` (packet arrivals and timer expiries). */
  steps = 0;
  readonly counters: LinkCounters = {
    sent: [0, 0],
    lost: [0, 0],
    queueDrops: [0, 0],
    duplicated: [0, 0],
    reordered: [0, 0],
    delivered: [0, 0],
  };
  private readonly heap = new ArrivalHeap();
  private readonly rand: () => number;
  /** When each direction's bottleneck finishes serializing what it holds. */
  private readonly busyUntil: [number, number] = [0, 0];

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

  /** Packets in flight on the link. */
  get inFlight(): number {
    return this.heap.size;
  }

  private send(from: 0 | 1, packet: Uint8Array): void {
    const im = this.impair[from];
    const c = this.counters;
    const to: 0 | 1 = from === 0 ? 1 : 0;
    c.sent[from]++;
    const now = this.now;
    let at = now;
    const rate = im.bytesPerMs;
    if (rate !== undefined) {
      const start = Math.max(this.busyUntil[from], now);
      // Drop-tail: the bytes still queued are what the bottleneck has left to serialize.
      if (im.queueBytes !== undefined && (start - now) * rate + packet.length > im.queueBytes) {
        c.queueDrops[from]++;
        return;
      }
      at = start + packet.length / rate;
      this.busyUntil[from] = at;
    }
    const rand = this.rand;
    if (im.loss !== undefined && rand() < im.loss) {
      c.lost[from]++;
      return;
    }
    at += im.delayMs;
    if (im.jitterMs !== undefined) at += im.jitterMs * rand();
    if (im.reorder !== undefined && rand() < im.reorder) {
      c.reordered[from]++;
      at += im.reorderMs ?? im.delayMs;
    }
    // The stack's bytes are valid only during the call.
    const copy = packet.slice();
    this.heap.push(at, copy, to);
    if (im.duplicate !== undefined && rand() < im.duplicate) {
      c.duplicated[from]++;
      this.heap.push(at + 0.01, copy, to);
    }
  }

  /** Flushes what the stacks have pending (after owner calls made outside `run`). */
  flush(): void {
    for (const s of this.stacks) if (s.tcp.hasOutput()) s.flush(this.now);
  }

  /**
   * Runs events until `until()` is true, nothing is left to do, or `maxMs` of virtual time pass.
   * After each event the owners' events go to `handlers[i]` for stack i (the test's application
   * reads and writes there), then stacks with output are flushed. `tick`, when given, also runs
   * every `everyMs` (an application timer, e.g. a paced reader). Returns the virtual time.
   */
  run(
    until: () => boolean,
    maxMs: number,
    handlers: [TcpEventHandler, TcpEventHandler],
    tick?: { everyMs: number; fn: () => void },
  ): number {
    const end = this.now + maxMs;
    const heap = this.heap;
    const [s0, s1] = this.stacks;
    let nextTick = tick === undefined ? Number.POSITIVE_INFINITY : this.now + tick.everyMs;
    this.deliverEvents(handlers);
    this.flush();
    for (let guard = 0; guard < 100_000_000 && !until(); guard++) {
      const arrival = heap.peekAt();
      const d0 = s0.nextDeadline() ?? Number.POSITIVE_INFINITY;
      const d1 = s1.nextDeadline() ?? Number.POSITIVE_INFINITY;
      const t = Math.min(arrival, d0, d1, nextTick);
      if (t === Number.POSITIVE_INFINITY || t > end) {
        this.now = Math.min(end, t);
        break;
      }
      if (t > this.now) this.now = t;
      const now = this.now;
      this.steps++;
      if (arrival <= now) {
        const to = heap.peekTo();
        const packet = heap.peekPacket();
        heap.pop();
        this.counters.delivered[to === 1 ? 0 : 1]++;
        this.stacks[to].input(packet, now);
      }
      if (d0 <= now) s0.poll(now);
      if (d1 <= now) s1.poll(now);
      if (tick !== undefined && nextTick <= now) {
        nextTick += tick.everyMs;
        s0.tcp.now = now;
        s1.tcp.now = now;
        tick.fn();
      }
      this.deliverEvents(handlers);
      if (s0.tcp.hasOutput()) s0.flush(now);
      if (s1.tcp.hasOutput()) s1.flush(now);
    }
    return this.now;
  }

  private deliverEvents(handlers: [TcpEventHandler, TcpEventHandler]): void {
    for (let i = 0; i < 2; i++) {
      const tcp = this.stacks[i]!.tcp;
      if (!tcp.hasEvents()) continue;
      // Owner calls use the layer's time.
      tcp.now = this.now;
      tcp.takeEvents(handlers[i]!);
    }
  }
}
