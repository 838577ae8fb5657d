/**
 * A scripted TCP peer for packet-trace tests: the "client" on the TUN side sends hand-built
 * segments to the stack (the "server") in virtual time, and checks every segment the stack sends
 * with partial matchers (`expectSegment({ flags: 'syn|ack', ack: 101 })`). Several peers may share
 * one stack (`peer.sibling(port)`), each seeing only the segments addressed to it.
 */

import { expect } from 'vitest';
import type { StackOptions } from '../../../src/stack/options.js';
import { seededRandom } from '../../../src/stack/random.js';
import { Stack } from '../../../src/stack/stack.js';
import type { TcpConnection } from '../../../src/stack/tcp/connection.js';
import { TcpEvent } from '../../../src/stack/tcp/state.js';
import { pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { Ipv6Packet } from '../../../src/stack/wire/ipv6.js';
import { seqAdd, seqGt } from '../../../src/stack/wire/seq.js';
import {
  fillTcpChecksum,
  formatTcpFlags,
  parseTcpFlags,
  TcpFlags,
  TcpRepr,
  TcpSegment,
} from '../../../src/stack/wire/tcp.js';
import { TcpOptions } from '../../../src/stack/wire/tcp-options.js';
import { CLIENT4, CLIENT6, ipPacket, REMOTE4, REMOTE6 } from '../stack/packets.js';

/** A parsed segment the stack sent: fields, payload, options, and formatted flags ('syn|ack'). */
export interface Segment {
  flags: string;
  seq: number;
  ack: number;
  window: number;
  payload: Uint8Array;
  mss?: number;
  wscale?: number;
  sackPermitted: boolean;
  ts?: [number, number];
  sack: [number, number][];
  ipv6: boolean;
  /** Source and destination ports. */
  srcPort: number;
  dstPort: number;
  /** Both the IP header checksum (IPv4) and the TCP checksum verified. */
  checksumOk: boolean;
}

/** What a peer sends; every field is optional (see `TcpPeer.send`). */
export interface SendSpec {
  flags?: string;
  seq?: number;
  ack?: number;
  window?: number;
  data?: Uint8Array | string;
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  /** [TSval, TSecr]; null sends no timestamp even when timestamps were negotiated. */
  ts?: [number, number] | null;
  sack?: [number, number][];
  /** Raw bytes for the options area (a multiple of 4 long), replacing every option above. */
  rawOptions?: Uint8Array;
}

/** A partial match on a segment the stack sent (see `TcpPeer.expectSegment`). */
export interface SegmentMatch {
  flags?: string;
  seq?: number;
  ack?: number;
  window?: number;
  len?: number;
  data?: Uint8Array | string;
  mss?: number;
  /** The shift, or null for "no window scale option". */
  wscale?: number | null;
  sackPermitted?: boolean;
  /** true: a timestamp option is present; false: none. */
  ts?: boolean;
  sack?: [number, number][];
}

/** The SYN options of a handshake. */
export interface SynSpec {
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  ts?: [number, number];
  window?: number;
}

/** Options of `TcpPeer.create`. */
export interface PeerOptions {
  stack?: StackOptions;
  ipv6?: boolean;
  accept?: 'auto' | 'manual';
  /** The peer's source port (default 40000) and the port it connects to (default 80). */
  srcPort?: number;
  dstPort?: number;
}

const encoder = new TextEncoder();

function bytesOf(d: Uint8Array | string): Uint8Array {
  return typeof d === 'string' ? encoder.encode(d) : d;
}

/** What peers on one stack share: the stack, the clock, and the routing of output and events. */
class Shared {
  now = 1000;
  readonly stack: Stack;
  readonly peers: TcpPeer[] = [];
  /** Segments addressed to no peer, and non-TCP packets. */
  readonly stray: Uint8Array[] = [];

  constructor(options: StackOptions | undefined) {
    this.stack = new Stack({ transmit: (p) => this.transmit(p.slice()), random: seededRandom(1), options });
    this.stack.tcp.listening = true;
  }

  private transmit(packet: Uint8Array): void {
    const seg = parseSegment(packet);
    const peer = seg && this.peers.find((p) => p.srcPort === seg.dstPort && p.ipv6 === seg.ipv6);
    if (seg === undefined || peer === undefined) this.stray.push(packet);
    else peer.receive(seg);
  }

  /** Flushes the stack and delivers events (auto-accepting SYNs) until nothing more happens. */
  settle(): void {
    const stack = this.stack;
    for (let round = 0; round < 100; round++) {
      stack.tcp.now = this.now;
      stack.flush(this.now);
      if (!stack.tcp.hasEvents()) return;
      stack.tcp.takeEvents((c, bits) => {
        const peer = this.peers.find(
          (p) => p.srcPort === c.remotePort && p.ipv6 === (c.remoteAddress.length === 16),
        );
        if (peer === undefined) return;
        peer.event(c, bits);
      });
    }
    throw new Error('stack did not settle in 100 rounds');
  }
}

/** Parses an IP packet carrying TCP; undefined for anything else. */
function parseSegment(packet: Uint8Array): Segment | undefined {
  let src: Uint8Array;
  let dst: Uint8Array;
  let body: Uint8Array;
  let ipOk = true;
  const ipv6 = packet[0]! >>> 4 === 6;
  if (ipv6) {
    const ip = new Ipv6Packet(packet);
    if (ip.check() !== undefined || ip.nextHeader !== IpProtocol.TCP) return undefined;
    src = ip.src;
    dst = ip.dst;
    body = ip.payload;
  } else {
    const ip = new Ipv4Packet(packet);
    if (ip.check() !== undefined || ip.protocol !== IpProtocol.TCP) return undefined;
    src = ip.src;
    dst = ip.dst;
    body = ip.payload;
    ipOk = ip.verifyChecksum();
  }
  const view = new TcpSegment(body);
  const opts = new TcpOptions();
  const r = TcpRepr.parse(view, opts);
  if (typeof r === 'string') return undefined;
  const tcpOk = view.verifyChecksum(pseudoHeaderSum(src, dst, IpProtocol.TCP, body.length));
  const seg: Segment = {
    flags: formatTcpFlags(r.flags),
    seq: r.seq,
    ack: r.ack,
    window: r.window,
    payload: view.payload.slice(),
    sackPermitted: r.sackPermitted,
    sack: r.sackBlocks.map(([a, b]) => [a, b]),
    ipv6,
    srcPort: r.srcPort,
    dstPort: r.dstPort,
    checksumOk: ipOk && tcpOk,
  };
  if (r.mss !== undefined) seg.mss = r.mss;
  if (r.windowScale !== undefined) seg.wscale = r.windowScale;
  if (r.timestamp !== undefined) seg.ts = [r.timestamp.tsVal, r.timestamp.tsEcr];
  return seg;
}

function describeSegment(s: Segment): string {
  const opts: string[] = [];
  if (s.mss !== undefined) opts.push(`mss=${s.mss}`);
  if (s.wscale !== undefined) opts.push(`ws=${s.wscale}`);
  if (s.sackPermitted) opts.push('sackOK');
  if (s.ts !== undefined) opts.push(`ts=${s.ts[0]},${s.ts[1]}`);
  if (s.sack.length > 0) opts.push(`sack=${s.sack.map(([a, b]) => `${a}-${b}`).join(',')}`);
  return `[${s.flags}] seq=${s.seq} ack=${s.ack} win=${s.window} len=${s.payload.length} ${opts.join(' ')}`;
}

/** A scripted TCP peer (the "client" on the TUN side) talking to the stack (the "server"). */
export class TcpPeer {
  /** The stack-side connection once a SYN arrived (auto-accepted unless accept: 'manual'). */
  conn: TcpConnection | undefined;
  /** Events delivered so far: [bits, ...] in order (SYN/ESTABLISHED/READABLE/WRITABLE/CLOSED). */
  readonly events: number[] = [];
  /** The peer's next sequence number (advanced by send() for SYN/FIN/data unless given explicitly). */
  seq = 100;
  /** The highest sequence the stack has sent (seq + SYN + data + FIN): the default ACK. */
  stackNxt = 0;
  /** The last TSval the stack sent (the peer's default TSecr). */
  lastStackTsVal = 0;
  /** Timestamps were offered in our SYN and echoed in the SYN-ACK: send() adds them by default. */
  tsOn = false;
  private tsBase = 0;
  private tsBaseAt = 0;
  private synHadTs = false;
  private seenStack = false;
  private readonly queue: Segment[] = [];
  readonly local: Uint8Array;
  readonly remote: Uint8Array;

  private constructor(
    private readonly shared: Shared,
    /** The peer's port (the stack's remote port). */
    readonly srcPort: number,
    /** The port the peer connects to (the stack's local port). */
    readonly dstPort: number,
    /** True for IPv6 (fd00::1 → fd00:5::9), else IPv4 (198.18.0.1 → 198.18.5.9). */
    readonly ipv6: boolean,
    /** 'manual' leaves SYNs in SYN-PENDING for the test to accept() or reject(). */
    readonly accept: 'auto' | 'manual',
  ) {
    this.local = ipv6 ? CLIENT6 : CLIENT4;
    this.remote = ipv6 ? REMOTE6 : REMOTE4;
    shared.peers.push(this);
  }

  /** A peer with a fresh listening stack (seeded randomness, default options unless given). */
  static create(opts: PeerOptions = {}): TcpPeer {
    return new TcpPeer(
      new Shared(opts.stack),
      opts.srcPort ?? 40000,
      opts.dstPort ?? 80,
      opts.ipv6 ?? false,
      opts.accept ?? 'auto',
    );
  }

  /** Another peer on the same stack and clock, from source port `srcPort`. */
  sibling(
    srcPort: number,
    opts: { ipv6?: boolean; accept?: 'auto' | 'manual'; dstPort?: number } = {},
  ): TcpPeer {
    return new TcpPeer(
      this.shared,
      srcPort,
      opts.dstPort ?? this.dstPort,
      opts.ipv6 ?? this.ipv6,
      opts.accept ?? this.accept,
    );
  }

  /** The stack under test. */
  get stack(): Stack {
    return this.shared.stack;
  }

  /** Virtual time in ms (starts at 1000), shared by sibling peers. */
  get now(): number {
    return this.shared.now;
  }

  set now(t: number) {
    this.shared.now = t;
  }

  /** Packets the stack sent that no peer took (non-TCP, or to another port). */
  get stray(): Uint8Array[] {
    return this.shared.stray;
  }

  /** Drops counted for `reason` so far. */
  drops(reason: string): number {
    return this.stack.stats.drops.get(reason) ?? 0;
  }

  /** Called by the shared transmit hook with a segment addressed to this peer. */
  receive(seg: Segment): void {
    this.queue.push(seg);
    if (seg.ts !== undefined) this.lastStackTsVal = seg.ts[0];
    if (seg.flags === 'syn|ack') this.tsOn = this.synHadTs && seg.ts !== undefined;
    if (seg.flags.includes('rst')) return;
    const end = seqAdd(
      seg.seq,
      seg.payload.length + (seg.flags.includes('syn') ? 1 : 0) + (seg.flags.includes('fin') ? 1 : 0),
    );
    // A SYN starts a new sequence space (a new connection on the same four-tuple).
    if (!this.seenStack || seg.flags.includes('syn') || seqGt(end, this.stackNxt)) this.stackNxt = end;
    this.seenStack = true;
  }

  /** Called by the shared event loop with events of a connection of this peer. */
  event(c: TcpConnection, bits: number): void {
    if ((bits & TcpEvent.SYN) !== 0) {
      this.conn = c;
      if (this.accept === 'auto') c.accept();
    }
    if (c === this.conn) this.events.push(bits);
  }

  /** The peer's TS clock: 1 tick per ms from the TSval of its SYN. */
  tsVal(): number {
    return (this.tsBase + Math.floor(this.now - this.tsBaseAt)) >>> 0;
  }

  /**
   * Sends one segment from the peer; defaults: seq = this.seq, ack = stack's last seq+len seen,
   * flags 'ack', window 65535, no options (timestamps [tsVal(), last stack TSval] once
   * negotiated). Then flushes the stack and delivers events. this.seq advances past SYN, data and
   * FIN only when `seq` was not given explicitly, except that a SYN always sets it to seq + 1.
   */
  send(s: SendSpec = {}): void {
    const flags = parseTcpFlags(s.flags ?? 'ack');
    if (flags === undefined) throw new Error(`bad flags ${s.flags}`);
    const data = s.data === undefined ? new Uint8Array(0) : bytesOf(s.data);
    const syn = (flags & TcpFlags.SYN) !== 0;
    const seq = (s.seq ?? this.seq) >>> 0;
    let ts = s.ts;
    if (syn) {
      this.synHadTs = ts !== undefined && ts !== null;
      if (ts !== undefined && ts !== null) {
        this.tsBase = ts[0];
        this.tsBaseAt = this.now;
      }
    }
    if (ts === undefined && this.tsOn && !syn) ts = [this.tsVal(), this.lastStackTsVal];
    const r: TcpRepr = {
      srcPort: this.srcPort,
      dstPort: this.dstPort,
      seq,
      ack: s.ack ?? ((flags & TcpFlags.ACK) !== 0 ? this.stackNxt : 0),
      flags,
      window: s.window ?? 65535,
      urgentPointer: 0,
      mss: s.mss,
      windowScale: s.wscale,
      sackPermitted: s.sackPermitted ?? false,
      sackBlocks: s.sack ?? [],
      timestamp: ts === undefined || ts === null ? undefined : { tsVal: ts[0], tsEcr: ts[1] },
      payloadLength: data.length,
    };
    const msg = s.rawOptions === undefined ? this.emit(r, data) : this.emitRaw(r, s.rawOptions, data);
    const end = seqAdd(seq, data.length + (syn ? 1 : 0) + ((flags & TcpFlags.FIN) !== 0 ? 1 : 0));
    if (syn && (flags & TcpFlags.ACK) === 0) this.seq = end;
    else if (s.seq === undefined) this.seq = end;
    this.sendRaw(ipPacket(this.local, this.remote, IpProtocol.TCP, msg));
  }

  private emit(r: TcpRepr, data: Uint8Array): Uint8Array {
    const msg = new Uint8Array(TcpRepr.length(r));
    msg.set(data, TcpRepr.headerLength(r));
    TcpRepr.emit(r, msg, pseudoHeaderSum(this.local, this.remote, IpProtocol.TCP, msg.length));
    return msg;
  }

  private emitRaw(r: TcpRepr, options: Uint8Array, data: Uint8Array): Uint8Array {
    const bare: TcpRepr = {
      ...r,
      mss: undefined,
      windowScale: undefined,
      sackPermitted: false,
      sackBlocks: [],
    };
    const plain = this.emit({ ...bare, timestamp: undefined, payloadLength: 0 }, new Uint8Array(0));
    const msg = new Uint8Array(20 + options.length + data.length);
    msg.set(plain.subarray(0, 20));
    msg[12] = ((20 + options.length) >>> 2) << 4;
    msg.set(options, 20);
    msg.set(data, 20 + options.length);
    fillTcpChecksum(msg, pseudoHeaderSum(this.local, this.remote, IpProtocol.TCP, msg.length));
    return msg;
  }

  /** Hands any IP packet to the stack at `now`, then flushes and delivers events. */
  sendRaw(packet: Uint8Array): void {
    this.stack.input(packet, this.now);
    this.shared.settle();
  }

  /** Advances virtual time by `ms`, running stack.poll at each deadline on the way (and flush + events). */
  advance(ms: number): void {
    const target = this.now + ms;
    const stack = this.stack;
    for (let i = 0; i < 100_000; i++) {
      const d = stack.nextDeadline();
      if (d === undefined || d > target) break;
      this.now = Math.max(this.now, d);
      stack.tcp.now = this.now;
      stack.poll(this.now);
      this.shared.settle();
    }
    this.now = target;
  }

  /** Consumes the next segment the stack sent and checks the given fields (partial match); returns it parsed. */
  expectSegment(m: SegmentMatch = {}): Segment {
    const s = this.queue.shift();
    if (s === undefined)
      throw new Error(`expected a segment ${JSON.stringify(m)} at t=${this.now}, got none`);
    const where = `t=${this.now} ${describeSegment(s)}`;
    expect(s.checksumOk, `checksum of ${where}`).toBe(true);
    if (m.flags !== undefined) {
      const f = parseTcpFlags(m.flags);
      if (f === undefined) throw new Error(`bad flags ${m.flags}`);
      expect(s.flags, `flags of ${where}`).toBe(formatTcpFlags(f));
    }
    if (m.seq !== undefined) expect(s.seq, `seq of ${where}`).toBe(m.seq >>> 0);
    if (m.ack !== undefined) expect(s.ack, `ack of ${where}`).toBe(m.ack >>> 0);
    if (m.window !== undefined) expect(s.window, `window of ${where}`).toBe(m.window);
    if (m.len !== undefined) expect(s.payload.length, `len of ${where}`).toBe(m.len);
    if (m.data !== undefined) expect(s.payload, `data of ${where}`).toEqual(bytesOf(m.data));
    if (m.mss !== undefined) expect(s.mss, `mss of ${where}`).toBe(m.mss);
    if (m.wscale !== undefined) expect(s.wscale, `wscale of ${where}`).toBe(m.wscale ?? undefined);
    if (m.sackPermitted !== undefined)
      expect(s.sackPermitted, `sackPermitted of ${where}`).toBe(m.sackPermitted);
    if (m.ts !== undefined) expect(s.ts !== undefined, `timestamp of ${where}`).toBe(m.ts);
    if (m.sack !== undefined)
      expect(s.sack, `sack of ${where}`).toEqual(m.sack.map(([a, b]) => [a >>> 0, b >>> 0]));
    return s;
  }

  /** Fails if the stack sent anything not yet consumed. */
  expectNoSegment(): void {
    const pending = this.queue.map(describeSegment);
    expect(pending, `unexpected segments at t=${this.now}`).toEqual([]);
  }

  /** Takes every pending segment. */
  segments(): Segment[] {
    const all = this.queue.splice(0);
    for (const s of all) expect(s.checksumOk, `checksum of ${describeSegment(s)}`).toBe(true);
    return all;
  }

  /**
   * Full handshake with the given SYN options (default: MSS 1460 only; pass {} for none); returns
   * the stack's ISS. Accepts a pending SYN itself under accept: 'manual'. Leaves the connection
   * ESTABLISHED, with the SYN-ACK consumed and the peer's sequence at ISN + 1.
   */
  handshake(syn: SynSpec = { mss: 1460 }): number {
    this.send({ flags: 'syn', seq: this.seq, ...syn });
    if (this.conn?.state === 'SYN-PENDING') this.appAccept();
    const synAck = this.expectSegment({ flags: 'syn|ack', ack: this.seq });
    this.send({ flags: 'ack', ack: seqAdd(synAck.seq, 1), window: syn.window });
    expect(this.conn?.state).toBe('ESTABLISHED');
    return synAck.seq;
  }

  /** Runs `f` on the connection as an owner call (tcp.now set), then flushes and delivers events. */
  app<T>(f: (c: TcpConnection) => T): T {
    const c = this.conn;
    if (c === undefined) throw new Error('no connection');
    this.stack.tcp.now = this.now;
    const result = f(c);
    this.shared.settle();
    return result;
  }

  /** App write on the stack's connection; returns the bytes taken. */
  appWrite(data: Uint8Array | string): number {
    const b = bytesOf(data);
    return this.app((c) => c.write(b, false));
  }

  /** App read of up to `max` bytes (default all). */
  appRead(max = Number.MAX_SAFE_INTEGER): Uint8Array | undefined {
    return this.app((c) => c.read(max));
  }

  /** App shutdown (FIN after queued data). */
  appShutdown(): void {
    this.app((c) => c.shutdown());
  }

  /** App abort (RST). */
  appAbort(): void {
    this.app((c) => c.abort());
  }

  /** Accepts a SYN left pending (accept: 'manual'). */
  appAccept(): void {
    this.app((c) => c.accept());
  }

  /** Rejects a SYN left pending (accept: 'manual'). */
  appReject(how: 'rst' | 'drop'): void {
    this.app((c) => c.reject(how));
  }

  /** The connection's state ('CLOSED' when none). */
  get state(): string {
    return this.conn?.state ?? 'CLOSED';
  }

  /** Every event bit delivered so far, OR-ed. */
  get allEvents(): number {
    let bits = 0;
    for (const b of this.events) bits |= b;
    return bits;
  }
}
