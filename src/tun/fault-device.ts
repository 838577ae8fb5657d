/**
 * A Device wrapper that injects seeded network faults (loss, duplication, reordering, delay with
 * jitter) on each direction separately, in the spirit of `tc netem`, for TCP-under-faults tests.
 *
 * Decisions are reproducible: each direction has its own PRNG seeded from `seed`, and every packet
 * draws the same four numbers whatever the outcome, so packet k of a direction always gets the same
 * fate for a given seed, independent of the other direction and of timing. Only the release times
 * of delayed packets depend on the real clock.
 */
import { RxFlags } from '../stack/transport.js';
import type { Device, DeviceOffload, DeviceStats, PacketSink } from './device.js';
import { NO_OFFLOAD } from './device.js';
import { fillTransportChecksum } from './vnet.js';

/** Faults for one direction. Probabilities are in [0, 1]; times in milliseconds. */
export interface FaultSpec {
  /** Probability a packet is lost. */
  loss?: number;
  /** Probability a packet is delivered twice. */
  duplicate?: number;
  /** Probability a packet is held back and delivered after the next one (or after `reorderHoldMs`). */
  reorder?: number;
  /** Constant delay added to every packet. */
  delayMs?: number;
  /** Uniform random extra delay in [0, jitterMs); unequal delays reorder packets, as in netem. */
  jitterMs?: number;
}

/** Options of a FaultDevice. */
export interface FaultOptions {
  /** PRNG seed (32-bit integer). */
  seed: number;
  /** Faults on received packets (device → sink). */
  rx?: FaultSpec;
  /** Faults on written packets (write() → device). */
  tx?: FaultSpec;
  /** Packets held (delayed or reordered) per direction; beyond it they are dropped. Default 4096. */
  queueLimit?: number;
  /** Longest a reordered packet waits for a successor, in ms. Default 20. */
  reorderHoldMs?: number;
}

/** What a FaultDevice did in one direction. */
export interface FaultCounters {
  /** Packets offered to the direction. */
  packets: number;
  lost: number;
  duplicated: number;
  reordered: number;
  delayed: number;
  /** Dropped because the hold queue was full. */
  queueDropped: number;
}

/** The fate of one packet. */
export interface FaultDecision {
  readonly lose: boolean;
  readonly duplicate: boolean;
  readonly reorder: boolean;
  readonly delayMs: number;
}

/** Default queueLimit. */
export const DEFAULT_FAULT_QUEUE_LIMIT = 4096;

/** mulberry32: a tiny, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkSpec(what: string, spec: FaultSpec): void {
  for (const key of ['loss', 'duplicate', 'reorder'] as const) {
    const p = spec[key];
    if (p !== undefined && !(p >= 0 && p <= 1))
      throw new RangeError(`${what}.${key} must be in [0, 1], not ${p}`);
  }
  for (const key of ['delayMs', 'jitterMs'] as const) {
    const t = spec[key];
    if (t !== undefined && !(t >= 0 && Number.isFinite(t)))
      throw new RangeError(`${what}.${key} must be a non-negative number, not ${t}`);
  }
}

/** Draws fates for one direction: four PRNG draws per packet, always. */
export class FaultPlan {
  readonly #rand: () => number;
  readonly #spec: FaultSpec;

  /** A plan for `spec` seeded with `seed`. */
  constructor(spec: FaultSpec, seed: number) {
    this.#spec = spec;
    this.#rand = mulberry32(seed);
  }

  /** The next packet's fate. */
  next(): FaultDecision {
    const s = this.#spec;
    const r = this.#rand;
    const lose = r() < (s.loss ?? 0);
    const duplicate = r() < (s.duplicate ?? 0);
    const reorder = r() < (s.reorder ?? 0);
    const delayMs = (s.delayMs ?? 0) + r() * (s.jitterMs ?? 0);
    return { lose, duplicate, reorder, delayMs };
  }
}

interface Held {
  packet: Uint8Array;
  dueMs: number;
}

/** One direction: applies fates and emits packets now or later through `emit`. */
class FaultLane {
  readonly counters: FaultCounters = {
    packets: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    delayed: 0,
    queueDropped: 0,
  };
  readonly #plan: FaultPlan;
  readonly #queueLimit: number;
  readonly #holdMs: number;
  /** Emits a batch of packets released later (delayed or held for reordering). */
  readonly #emit: (packets: Uint8Array[]) => void;
  /** Delayed packets, sorted by due time. */
  #delayed: Held[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The packet held back by a reorder decision. */
  #reorderHeld: Uint8Array | undefined;
  #reorderTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(plan: FaultPlan, queueLimit: number, holdMs: number, emit: (packets: Uint8Array[]) => void) {
    this.#plan = plan;
    this.#queueLimit = queueLimit;
    this.#holdMs = holdMs;
    this.#emit = emit;
  }

  /** Applies a fate to `packet`; returns false if it was dropped for want of queue space. `out` collects packets to emit now. */
  offer(packet: Uint8Array, out: Uint8Array[]): boolean {
    const c = this.counters;
    c.packets++;
    const d = this.#plan.next();
    if (d.lose) {
      c.lost++;
      return true;
    }
    if (d.duplicate) c.duplicated++;
    const copies = d.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.#queued() >= this.#queueLimit && (d.delayMs > 0 || (d.reorder && i === 0))) {
        c.queueDropped++;
        return false;
      }
      if (d.reorder && i === 0 && this.#reorderHeld === undefined) {
        c.reordered++;
        this.#reorderHeld = packet.slice();
        this.#reorderTimer = setTimeout(this.#releaseReorder, this.#holdMs);
        continue;
      }
      if (d.delayMs > 0) {
        c.delayed++;
        this.#schedule(packet.slice(), performance.now() + d.delayMs);
      } else {
        out.push(packet);
        this.#appendReordered(out);
      }
    }
    return true;
  }

  #queued(): number {
    return this.#delayed.length + (this.#reorderHeld === undefined ? 0 : 1);
  }

  /** The held packet goes right after the packet that overtook it. */
  #appendReordered(out: Uint8Array[]): void {
    const held = this.#reorderHeld;
    if (held === undefined) return;
    this.#reorderHeld = undefined;
    clearTimeout(this.#reorderTimer);
    out.push(held);
  }

  readonly #releaseReorder = (): void => {
    const out: Uint8Array[] = [];
    this.#appendReordered(out);
    if (out.length > 0 && !this.#closed) this.#emit(out);
  };

  #schedule(packet: Uint8Array, dueMs: number): void {
    const q = this.#delayed;
    let i = q.length;
    while (i > 0 && q[i - 1]!.dueMs > dueMs) i--;
    q.splice(i, 0, { packet, dueMs });
    if (i === 0) this.#arm();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    const first = this.#delayed[0];
    this.#timer =
      first === undefined
        ? undefined
        : setTimeout(this.#releaseDue, Math.max(0, first.dueMs - performance.now()));
  }

  readonly #releaseDue = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const out: Uint8Array[] = [];
    const q = this.#delayed;
    let n = 0;
    while (n < q.length && q[n]!.dueMs <= now + 0.5) {
      out.push(q[n]!.packet);
      this.#appendReordered(out);
      n++;
    }
    q.splice(0, n);
    this.#arm();
    if (out.length > 0 && !this.#closed) this.#emit(out);
  };

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#reorderTimer);
    this.#delayed = [];
    this.#reorderHeld = undefined;
  }
}

/** A Device that loses, duplicates, reorders and delays packets of another device, reproducibly from a seed. */
export class FaultDevice implements Device {
  /** What the receive direction did. */
  readonly rxFaults: FaultCounters;
  /** What the transmit direction did. */
  readonly txFaults: FaultCounters;
  readonly #inner: Device;
  readonly #rx: FaultLane;
  readonly #tx: FaultLane;
  #sink: PacketSink | undefined;
  readonly #now: Uint8Array[] = [];

  /** Wraps `inner` with the faults of `opts`. */
  constructor(inner: Device, opts: FaultOptions) {
    checkSpec('rx', opts.rx ?? {});
    checkSpec('tx', opts.tx ?? {});
    const limit = opts.queueLimit ?? DEFAULT_FAULT_QUEUE_LIMIT;
    const holdMs = opts.reorderHoldMs ?? 20;
    this.#inner = inner;
    // Distinct seeds per direction (golden-ratio offset), so one direction never shifts the other's draws.
    this.#rx = new FaultLane(new FaultPlan(opts.rx ?? {}, opts.seed), limit, holdMs, (ps) =>
      this.#deliver(ps),
    );
    this.#tx = new FaultLane(
      new FaultPlan(opts.tx ?? {}, (opts.seed ^ 0x9e3779b9) >>> 0),
      limit,
      holdMs,
      (ps) => {
        for (const p of ps) this.#inner.write(p);
      },
    );
    this.rxFaults = this.#rx.counters;
    this.txFaults = this.#tx.counters;
  }

  /** The wrapped device's name. */
  get name(): string {
    return this.#inner.name;
  }

  /** No offload, whatever the wrapped device grants: faults apply to plain packets only. */
  readonly offload: DeviceOffload = NO_OFFLOAD;

  /** The wrapped device's MTU. */
  get mtu(): number {
    return this.#inner.mtu;
  }

  /** The wrapped device's counters (faults are counted in rxFaults/txFaults). */
  get stats(): DeviceStats {
    return this.#inner.stats;
  }

  /** Starts the wrapped device; received packets pass the rx faults on their way to `sink`. */
  start(sink: PacketSink): void {
    this.#sink = sink;
    const out = this.#now;
    this.#inner.start({
      receive: (packet, rxFlags) => {
        // A packet the kernel vouched for (offload) gets a real checksum first, so a corruption
        // fault is caught by verification and a held packet needs no flags to travel with it.
        if ((rxFlags & RxFlags.CHECKSUM_VERIFIED) !== 0) fillTransportChecksum(packet);
        this.#rx.offer(packet, out);
        for (const p of out) sink.receive(p, 0);
        out.length = 0;
      },
      flush: () => sink.flush(),
    });
  }

  /** Passes `packet` through the tx faults; false (counted in txFaults.queueDropped) when the hold queue is full. */
  write(packet: Uint8Array): boolean {
    const out: Uint8Array[] = [];
    if (!this.#tx.offer(packet, out)) return false;
    let ok = true;
    for (const p of out) ok = this.#inner.write(p) && ok;
    return ok;
  }

  /** Discards held packets and closes the wrapped device. */
  close(): Promise<void> {
    this.#rx.close();
    this.#tx.close();
    return this.#inner.close();
  }

  #deliver(packets: Uint8Array[]): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    for (const p of packets) sink.receive(p, 0);
    sink.flush();
  }
}
