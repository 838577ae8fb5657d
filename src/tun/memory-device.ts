/**
 * In-memory devices for tests and embedding. A MemoryDevice hands injected packets to its sink and
 * collects what is written; memoryPair() wires two devices back to back for stack-to-stack tests.
 *
 * Like a TUN, the device reuses one receive buffer: the packet given to `receive()` is valid only
 * during the call, and by default its bytes are overwritten (poisoned) right after, so a consumer
 * that keeps a reference instead of copying fails loudly in tests.
 */
import type { Device, DeviceOffload, DeviceStats, PacketSink } from './device.js';
import { NO_OFFLOAD, newDeviceStats } from './device.js';

/** Options of a MemoryDevice. */
export interface MemoryDeviceOptions {
  /** Interface name reported by the device. Default 'mem0'. */
  name?: string;
  /** MTU; writes of longer packets fail (txErrors), as a strict test link. Default 1500. */
  mtu?: number;
  /** Overwrite the receive buffer with 0xEE after each receive() (catches kept references). Default true. */
  poison?: boolean;
  /** Packets held before start() (inject) or in flight to a peer; beyond it they are dropped. Default 4096. */
  queueLimit?: number;
  /** Called with a copy of every written packet; when unset, writes are queued for take()/drain(). */
  onTransmit?: (packet: Uint8Array) => void;
}

/** Default queueLimit. */
export const DEFAULT_MEMORY_QUEUE_LIMIT = 4096;
const POISON = 0xee;

/** A Device in memory: inject() feeds the sink, write() feeds onTransmit or a queue. */
export class MemoryDevice implements Device {
  /** Interface name. */
  readonly name: string;
  /** MTU enforced on write(). */
  readonly mtu: number;
  /** Counters. */
  readonly stats: DeviceStats = newDeviceStats();
  /** No offload: written packets are plain IP packets. */
  readonly offload: DeviceOffload = NO_OFFLOAD;
  /** Receives a copy of every written packet; when unset, writes queue for take()/drain(). */
  onTransmit: ((packet: Uint8Array) => void) | undefined;

  readonly #poison: boolean;
  readonly #queueLimit: number;
  #rxBuf = new Uint8Array(2048);
  #sink: PacketSink | undefined;
  #closed = false;
  /** Packets injected before start(), delivered by start(). */
  #pending: Uint8Array[] = [];
  #txQueue: Uint8Array[] = [];
  /** Set by memoryPair(): writes go to the peer instead. */
  #peer: MemoryDevice | undefined;
  /** Packets from the peer waiting for the next setImmediate batch. */
  #inbound: Uint8Array[] = [];
  #inboundScheduled: NodeJS.Immediate | undefined;

  /** A new, unstarted device. */
  constructor(opts: MemoryDeviceOptions = {}) {
    this.name = opts.name ?? 'mem0';
    this.mtu = opts.mtu ?? 1500;
    this.#poison = opts.poison ?? true;
    this.#queueLimit = opts.queueLimit ?? DEFAULT_MEMORY_QUEUE_LIMIT;
    this.onTransmit = opts.onTransmit;
  }

  /** Whether start() was called and close() was not. */
  get started(): boolean {
    return this.#sink !== undefined && !this.#closed;
  }

  /** Starts delivering to `sink`; packets injected before are delivered now as one batch. */
  start(sink: PacketSink): void {
    if (this.#sink !== undefined) throw new Error(`device ${this.name} is already started`);
    if (this.#closed) throw new Error(`device ${this.name} is closed`);
    this.#sink = sink;
    const pending = this.#pending;
    this.#pending = [];
    if (pending.length > 0) this.injectBatch(pending);
  }

  /** Delivers a copy of `packet` to the sink synchronously, then flush(). Before start() it is held (bounded). */
  inject(packet: Uint8Array): void {
    this.injectBatch([packet]);
  }

  /** Delivers copies of `packets` as one batch: receive() each, then one flush(). */
  injectBatch(packets: readonly Uint8Array[]): void {
    if (this.#closed) return;
    const sink = this.#sink;
    if (sink === undefined) {
      for (const p of packets) {
        if (this.#pending.length >= this.#queueLimit) this.stats.rxErrors++;
        else this.#pending.push(p.slice());
      }
      return;
    }
    this.stats.rxWakeups++;
    for (const p of packets) {
      if (this.#closed) break;
      if (p.length > this.#rxBuf.length) this.#rxBuf = new Uint8Array(Math.max(p.length, 65536));
      const buf = this.#rxBuf;
      buf.set(p);
      this.stats.rxPackets++;
      this.stats.rxBytes += p.length;
      sink.receive(buf.subarray(0, p.length), 0);
      if (this.#poison) buf.fill(POISON, 0, p.length);
    }
    sink.flush();
  }

  /** Copies `packet` to the peer, onTransmit or the queue. False (counted) when too long, closed or queue full. */
  write(packet: Uint8Array): boolean {
    if (this.#closed || packet.length === 0 || packet.length > this.mtu) {
      this.stats.txErrors++;
      return false;
    }
    const peer = this.#peer;
    if (peer !== undefined) {
      if (!peer.#enqueueInbound(packet)) {
        this.stats.txDropped++;
        return false;
      }
    } else if (this.onTransmit !== undefined) {
      this.onTransmit(packet.slice());
    } else {
      if (this.#txQueue.length >= this.#queueLimit) {
        this.stats.txDropped++;
        return false;
      }
      this.#txQueue.push(packet.slice());
    }
    this.stats.txPackets++;
    this.stats.txBytes += packet.length;
    return true;
  }

  /** The oldest queued written packet, if any. */
  take(): Uint8Array | undefined {
    return this.#txQueue.shift();
  }

  /** All queued written packets, oldest first, emptying the queue. */
  drain(): Uint8Array[] {
    const q = this.#txQueue;
    this.#txQueue = [];
    return q;
  }

  /** Stops delivering; pending packets are discarded. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#pending = [];
    this.#inbound = [];
    if (this.#inboundScheduled !== undefined) clearImmediate(this.#inboundScheduled);
    this.#inboundScheduled = undefined;
    return Promise.resolve();
  }

  /** Links two devices: each one's writes arrive at the other. */
  static link(a: MemoryDevice, b: MemoryDevice): void {
    a.#peer = b;
    b.#peer = a;
  }

  #enqueueInbound(packet: Uint8Array): boolean {
    if (this.#closed) return true; // The peer is gone: the packet is lost on the wire, as on a real link.
    if (this.#inbound.length >= this.#queueLimit) return false;
    this.#inbound.push(packet.slice());
    this.#inboundScheduled ??= setImmediate(this.#deliverInbound);
    return true;
  }

  readonly #deliverInbound = (): void => {
    this.#inboundScheduled = undefined;
    const batch = this.#inbound;
    this.#inbound = [];
    if (batch.length > 0) this.injectBatch(batch);
  };
}

/**
 * Two devices wired back to back: a packet written to one is received by the other, asynchronously
 * (setImmediate), all packets written in one turn of the event loop delivered as one batch.
 */
export function memoryPair(
  a: MemoryDeviceOptions = {},
  b: MemoryDeviceOptions = {},
): [MemoryDevice, MemoryDevice] {
  const left = new MemoryDevice({ name: 'mem0', ...a });
  const right = new MemoryDevice({ name: 'mem1', ...b });
  MemoryDevice.link(left, right);
  return [left, right];
}
