/**
 * TCP segmentation offload as packet traces. Two stacks get the same inputs at the same times:
 * one sends MSS-sized segments, the other may send super-segments (IpOptions.tso with
 * tcp.gsoMaxBytes) marked for the device to cut. A model of the kernel's cutting
 * (tcp_gso_segment: the header copied, seq advanced, PSH/FIN only on the last piece, the partial
 * checksum completed) turns the second stack's output into segments that must equal the first's,
 * field for field and byte for byte: windows, cwnd, Nagle, SWS, retransmission and SACK recovery
 * decide the same with and without GSO.
 */
import { describe, expect, it } from 'vitest';
import { completeChecksum } from '../../../src/stack/ip/output.js';
import type { StackOptions } from '../../../src/stack/options.js';
import { seededRandom } from '../../../src/stack/random.js';
import { Stack } from '../../../src/stack/stack.js';
import type { TcpConnection } from '../../../src/stack/tcp/connection.js';
import { TcpEvent } from '../../../src/stack/tcp/state.js';
import { GsoType, RxFlags, type TxMeta } from '../../../src/stack/transport.js';
import { checksum, pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { Ipv6Packet } from '../../../src/stack/wire/ipv6.js';
import { seqAdd, seqGt } from '../../../src/stack/wire/seq.js';
import { formatTcpFlags, TcpFlags, TcpRepr, TcpSegment } from '../../../src/stack/wire/tcp.js';
import { TcpOptions } from '../../../src/stack/wire/tcp-options.js';
import { CLIENT4, CLIENT6, ipPacket, pattern, REMOTE4, REMOTE6 } from '../stack/packets.js';

/** A packet the stack transmitted, with a copy of its TxMeta. */
interface Sent {
  packet: Uint8Array;
  meta: Omit<TxMeta, 'clear'>;
}

/** One TCP segment on the wire (after the kernel model cut any super-segment). */
interface Wire {
  flags: string;
  seq: number;
  ack: number;
  window: number;
  payload: Uint8Array;
  /** The TCP header bytes (options included) with the checksum: equal across both stacks. */
  header: string;
  checksumOk: boolean;
}

/** The kernel's side of a virtio-net GSO write (net/ipv4/tcp_offload.c tcp_gso_segment, simplified). */
function cut(sent: Sent): Uint8Array[] {
  const { packet, meta } = sent;
  if (meta.gsoType === GsoType.NONE) {
    const p = packet.slice();
    if (meta.needsCsum) completeChecksum(p, meta.csumStart, meta.csumOffset);
    return [p];
  }
  const ipLen = meta.csumStart;
  const hdrLen = meta.hdrLen;
  const payload = packet.subarray(hdrLen);
  const v4 = meta.gsoType === GsoType.TCPV4;
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += meta.gsoSize) {
    const size = Math.min(meta.gsoSize, payload.length - off);
    const last = off + size === payload.length;
    const p = new Uint8Array(hdrLen + size);
    p.set(packet.subarray(0, hdrLen));
    p.set(payload.subarray(off, off + size), hdrLen);
    const tcp = new TcpSegment(p.subarray(ipLen));
    tcp.seqNumber = seqAdd(tcp.seqNumber, off);
    if (!last) p[ipLen + 13]! &= ~(TcpFlags.PSH | TcpFlags.FIN);
    let src: Uint8Array;
    let dst: Uint8Array;
    if (v4) {
      const ip = new Ipv4Packet(p);
      ip.totalLength = p.length;
      ip.fillChecksum();
      src = ip.src;
      dst = ip.dst;
    } else {
      const ip = new Ipv6Packet(p);
      ip.payloadLength = p.length - 40;
      src = ip.src;
      dst = ip.dst;
    }
    const sum = pseudoHeaderSum(src, dst, IpProtocol.TCP, p.length - ipLen);
    p[ipLen + 16] = sum >>> 8;
    p[ipLen + 17] = sum & 0xff;
    completeChecksum(p, ipLen, 16);
    out.push(p);
  }
  return out;
}

function parseWire(p: Uint8Array): Wire {
  const v4 = p[0]! >> 4 === 4;
  const ip = v4 ? new Ipv4Packet(p) : new Ipv6Packet(p);
  expect(ip.check()).toBeUndefined();
  const body = ip.payload;
  const seg = new TcpSegment(body);
  const r = TcpRepr.parse(seg, new TcpOptions());
  if (typeof r === 'string') throw new Error(r);
  return {
    flags: formatTcpFlags(r.flags),
    seq: r.seq,
    ack: r.ack,
    window: r.window,
    payload: seg.payload.slice(),
    header: Buffer.from(body.subarray(0, seg.headerLength)).toString('hex'),
    checksumOk:
      checksum(body, pseudoHeaderSum(ip.src, ip.dst, IpProtocol.TCP, body.length)) === 0 &&
      (!v4 || (ip as Ipv4Packet).verifyChecksum()),
  };
}

/** One stack with a scripted client; the test drives two of these in lock-step. */
class Side {
  readonly stack: Stack;
  readonly sent: Sent[] = [];
  conn: TcpConnection | undefined;
  readonly client: Uint8Array;
  readonly server: Uint8Array;

  constructor(
    options: StackOptions,
    readonly ipv6: boolean,
  ) {
    this.stack = new Stack({
      transmit: (packet, meta) => this.sent.push({ packet: packet.slice(), meta: { ...meta } }),
      random: seededRandom(7),
      options,
    });
    this.stack.tcp.listening = true;
    this.client = ipv6 ? CLIENT6 : CLIENT4;
    this.server = ipv6 ? REMOTE6 : REMOTE4;
  }

  settle(now: number): void {
    for (let i = 0; i < 100; i++) {
      this.stack.tcp.now = now;
      this.stack.flush(now);
      if (!this.stack.tcp.hasEvents()) return;
      this.stack.tcp.takeEvents((c, bits) => {
        if ((bits & TcpEvent.SYN) !== 0) {
          this.conn = c;
          c.accept();
        }
      });
    }
  }

  input(r: TcpRepr, data: Uint8Array, now: number, rxFlags = 0): void {
    const msg = new Uint8Array(TcpRepr.length(r));
    msg.set(data, TcpRepr.headerLength(r));
    TcpRepr.emit(r, msg, pseudoHeaderSum(this.client, this.server, IpProtocol.TCP, msg.length));
    this.stack.input(ipPacket(this.client, this.server, IpProtocol.TCP, msg), now, rxFlags);
    this.settle(now);
  }

  app(now: number, f: (c: TcpConnection) => void): void {
    this.stack.tcp.now = now;
    f(this.conn!);
    this.settle(now);
  }

  advance(from: number, to: number): void {
    for (let i = 0; i < 10_000; i++) {
      const d = this.stack.nextDeadline();
      if (d === undefined || d > to) break;
      const at = Math.max(from, d);
      this.stack.tcp.now = at;
      this.stack.poll(at);
      this.settle(at);
    }
  }

  take(): Sent[] {
    return this.sent.splice(0);
  }
}

const CLIENT_ISN = 5000;
const MSS = 1460;

/** Options of the offloading stack; `gso` 0 leaves only checksum offload. */
function gsoOptions(gso = 65535): StackOptions {
  return { tso: true, txHeadroom: 10, tcp: { gsoMaxBytes: gso } };
}

/**
 * The MSS-sized stack and the GSO stack, driven together by a client that offers timestamps,
 * SACK and window scaling. Every step returns the MSS stack's segments after checking that the
 * GSO stack's output, cut by the kernel model, is the same.
 */
class Pair {
  readonly plain: Side;
  readonly gso: Side;
  now = 1000;
  seq = CLIENT_ISN;
  /** Everything the client received in order (the stack's data). */
  received: Uint8Array[] = [];
  stackNxt = 0;
  /** Data segments the link loses, by their ordinal among data segments sent (0, 1, …). */
  lose = new Set<number>();
  private dataSegments = 0;
  /** Segments received beyond a hole, by sequence number. */
  private readonly ooo = new Map<number, Wire>();
  tsLast = 0;
  superSegments = 0;
  readonly superMeta: Sent['meta'][] = [];

  constructor(
    readonly ipv6 = false,
    gsoStack: StackOptions = gsoOptions(),
  ) {
    this.plain = new Side({}, ipv6);
    this.gso = new Side(gsoStack, ipv6);
  }

  private repr(flags: number, extra: Partial<TcpRepr> = {}): TcpRepr {
    return {
      srcPort: 40000,
      dstPort: 80,
      seq: this.seq,
      ack: this.stackNxt,
      flags,
      window: 0xffff,
      urgentPointer: 0,
      sackPermitted: false,
      sackBlocks: [],
      timestamp: { tsVal: this.now, tsEcr: this.tsLast },
      payloadLength: 0,
      ...extra,
    };
  }

  /** Collects both stacks' output, compares it, and tracks what the client received. */
  private collect(): Wire[] {
    const plain = this.plain.take().map((s) => {
      expect(s.meta.needsCsum).toBe(false);
      expect(s.meta.gsoType).toBe(GsoType.NONE);
      return parseWire(s.packet);
    });
    const cutGso: Wire[] = [];
    for (const s of this.gso.take()) {
      if (s.meta.gsoType !== GsoType.NONE) {
        this.superSegments++;
        this.superMeta.push(s.meta);
      }
      for (const p of cut(s)) cutGso.push(parseWire(p));
    }
    expect(cutGso.map(fmt)).toEqual(plain.map(fmt));
    for (const [i, w] of plain.entries()) {
      expect(w.checksumOk, `checksum of ${fmt(w)}`).toBe(true);
      expect(cutGso[i]!.checksumOk, `checksum of cut ${fmt(cutGso[i]!)}`).toBe(true);
      expect(cutGso[i]!.header).toBe(w.header);
      expect(cutGso[i]!.payload).toEqual(w.payload);
    }
    for (const w of plain) this.deliver(w);
    return plain;
  }

  /** The client's receive side: in-order data, out-of-order segments held for SACK. */
  private deliver(w: Wire): void {
    if (w.flags.includes('syn')) {
      this.stackNxt = seqAdd(w.seq, 1);
      return;
    }
    if (w.payload.length > 0 && this.lose.has(this.dataSegments++)) return;
    if (seqGt(w.seq, this.stackNxt)) {
      this.ooo.set(w.seq, w);
      return;
    }
    if (w.seq !== this.stackNxt) return; // a duplicate
    for (let next: Wire | undefined = w; next !== undefined; next = this.ooo.get(this.stackNxt)) {
      this.ooo.delete(next.seq);
      if (next.payload.length > 0) this.received.push(next.payload);
      this.stackNxt = seqAdd(next.seq, next.payload.length + (next.flags.includes('fin') ? 1 : 0));
    }
  }

  /** SACK blocks for what is held beyond the hole (RFC 2018 §4, at most 3 with timestamps). */
  sackBlocks(): [number, number][] {
    const blocks: [number, number][] = [];
    const seqs = [...this.ooo.keys()].sort((a, b) => (seqGt(a, b) ? 1 : -1));
    for (const s of seqs) {
      const w = this.ooo.get(s)!;
      const end = seqAdd(s, w.payload.length);
      const last = blocks.at(-1);
      if (last !== undefined && last[1] === s) last[1] = end;
      else blocks.push([s, end]);
    }
    return blocks.slice(0, 3);
  }

  handshake(): Wire[] {
    const syn = this.repr(TcpFlags.SYN, {
      ack: 0,
      mss: MSS,
      windowScale: 7,
      sackPermitted: true,
      timestamp: { tsVal: this.now, tsEcr: 0 },
    });
    for (const side of [this.plain, this.gso]) side.input(syn, new Uint8Array(0), this.now);
    this.seq = seqAdd(this.seq, 1);
    const out = this.collect();
    expect(out.map((w) => w.flags)).toEqual(['syn|ack']);
    this.ack();
    return out;
  }

  /** The client acknowledges `ack` (default: all received in order), SACKing `sack` (default: what it holds). */
  ack(ack = this.stackNxt, sack: [number, number][] = this.sackBlocks()): Wire[] {
    const r = this.repr(TcpFlags.ACK, { ack, sackBlocks: sack });
    for (const side of [this.plain, this.gso]) side.input(r, new Uint8Array(0), this.now);
    return this.collect();
  }

  write(data: Uint8Array): Wire[] {
    for (const side of [this.plain, this.gso]) side.app(this.now, (c) => c.write(data, false));
    return this.collect();
  }

  app(f: (c: TcpConnection) => void): Wire[] {
    for (const side of [this.plain, this.gso]) side.app(this.now, f);
    return this.collect();
  }

  advance(ms: number): Wire[] {
    const to = this.now + ms;
    for (const side of [this.plain, this.gso]) side.advance(this.now, to);
    this.now = to;
    return this.collect();
  }

  /** The bytes the client received in order, joined. */
  data(): Buffer {
    return Buffer.concat(this.received);
  }

  /** True when the client received exactly `data`. */
  got(data: Uint8Array): boolean {
    return this.data().equals(data);
  }
}

/** One line per segment, for trace comparisons. */
function fmt(w: Wire): string {
  return `[${w.flags}] seq=${w.seq} ack=${w.ack} win=${w.window} len=${w.payload.length}`;
}

/** Acks everything in order until the stack has nothing more to send (bounded). */
function drain(p: Pair, total: number): void {
  for (let round = 0; round < 200 && p.data().length < total; round++) {
    p.now += 5;
    p.ack();
  }
}

for (const ipv6 of [false, true]) {
  const family = ipv6 ? 'IPv6' : 'IPv4';
  describe(`TSO over ${family}`, () => {
    it('sends a bulk write as super-segments that cut into the MSS-sized trace', () => {
      const p = new Pair(ipv6);
      p.handshake();
      const data = pattern(200_000);
      const first = p.write(data);
      // The initial window (RFC 6928: 10 segments) goes as one super-segment.
      expect(first.length).toBe(10);
      expect(p.superSegments).toBe(1);
      drain(p, data.length);
      expect(p.got(data)).toBe(true);
      expect(p.superSegments).toBeGreaterThan(3);
    });

    it('marks super-segments GSO with the MSS, the header length and the pseudo-header checksum', () => {
      const p = new Pair(ipv6);
      p.handshake();
      p.gso.sent.length = 0;
      for (const side of [p.plain, p.gso]) side.app(p.now, (c) => c.write(pattern(50_000), false));
      const [s] = p.gso.take();
      p.plain.take();
      const ipLen = ipv6 ? 40 : 20;
      const mss = MSS - (ipv6 ? 20 : 0) - 12; // timestamps take 12 bytes of each segment
      expect(s!.meta).toMatchObject({
        headroom: 10,
        needsCsum: true,
        csumStart: ipLen,
        csumOffset: 16,
        gsoType: ipv6 ? GsoType.TCPV6 : GsoType.TCPV4,
        gsoSize: mss,
        hdrLen: ipLen + 32,
      });
      const packet = s!.packet;
      expect(packet.length).toBe(ipLen + 32 + 10 * mss);
      const ip = ipv6 ? new Ipv6Packet(packet) : new Ipv4Packet(packet);
      const tcpLength = packet.length - ipLen;
      const field = (packet[ipLen + 16]! << 8) | packet[ipLen + 17]!;
      // Linux's __tcp_v4_send_check: ~tcp_v4_check(len, saddr, daddr, 0), the folded pseudo-header sum.
      expect(field).toBe(pseudoHeaderSum(ip.src, ip.dst, IpProtocol.TCP, tcpLength));
      if (!ipv6) expect((ip as Ipv4Packet).verifyChecksum()).toBe(true);
    });

    it('holds a sub-MSS tail behind Nagle exactly as MSS-sized sending does, and sends it with the FIN', () => {
      const p = new Pair(ipv6);
      p.handshake();
      const data = pattern(5 * 1000 + 700);
      p.write(data); // 4 full segments go (with mss 1448/1428), the tail waits
      p.now += 10;
      p.ack();
      p.app((c) => c.shutdown());
      drain(p, data.length);
      expect(p.got(data)).toBe(true);
    });

    it('sends the tail at once with setNoDelay(true)', () => {
      const p = new Pair(ipv6);
      p.handshake();
      p.app((c) => c.setNoDelay(true));
      const data = pattern(3 * 1448 + 100);
      const out = p.write(data);
      expect(out.at(-1)!.flags).toBe('psh|ack');
      expect(p.got(data)).toBe(true);
    });

    it('retransmits a lost super-segment after the RTO, again as super-segments once cwnd grows', () => {
      const p = new Pair(ipv6);
      p.handshake();
      const data = pattern(100_000);
      for (let i = 0; i < 10; i++) p.lose.add(i);
      const first = p.write(data);
      expect(first.length).toBe(10);
      expect(p.superSegments).toBe(1);
      expect(p.data().length).toBe(0); // the whole super-segment was lost
      const rto = p.advance(1500);
      expect(rto.map((w) => w.seq)).toEqual([first[0]!.seq]);
      p.now += 5;
      const next = p.ack();
      expect(next.map((w) => w.seq)).toEqual([first[1]!.seq, first[2]!.seq]);
      expect(p.superSegments).toBe(2); // the 2-segment retransmission went as one
      drain(p, data.length);
      expect(p.got(data)).toBe(true);
    });

    it('recovers from a loss reported by SACK with the same segments', () => {
      const p = new Pair(ipv6);
      p.handshake();
      const data = pattern(150_000);
      p.lose.add(1);
      const first = p.write(data);
      expect(first.length).toBe(10);
      // One ACK for segment 0, then a SACKing duplicate ACK per segment beyond the hole.
      for (let i = 0; i < 9; i++) p.ack();
      expect(p.plain.conn!.ctx.stats.tcpFastRetransmits).toBe(1);
      drain(p, data.length);
      expect(p.got(data)).toBe(true);
      expect(p.superSegments).toBeGreaterThan(1);
    });
  });
}

describe('TSO switches', () => {
  it('sends no super-segment when gsoMaxBytes is 0, only checksum-offloaded data segments', () => {
    const p = new Pair(false, gsoOptions(0));
    p.handshake();
    const data = pattern(100_000);
    p.write(data);
    drain(p, data.length);
    expect(p.got(data)).toBe(true);
    expect(p.superSegments).toBe(0);
  });

  it('caps a super-segment at gsoMaxBytes, in whole MSS', () => {
    const p = new Pair(false, gsoOptions(20 + 60 + 3 * 1448 + 100));
    p.handshake();
    const data = pattern(100_000);
    p.write(data);
    drain(p, data.length);
    expect(p.got(data)).toBe(true);
    expect(p.superMeta.length).toBeGreaterThan(0);
    for (const m of p.superMeta) expect(m.gsoSize).toBe(1448);
  });

  it('leaves packets plain without tso or checksum offload (the default)', () => {
    const side = new Side({}, false);
    const r: TcpRepr = {
      srcPort: 40000,
      dstPort: 80,
      seq: CLIENT_ISN,
      ack: 0,
      flags: TcpFlags.SYN,
      window: 0xffff,
      urgentPointer: 0,
      mss: MSS,
      sackPermitted: false,
      sackBlocks: [],
      payloadLength: 0,
    };
    side.input(r, new Uint8Array(0), 1000);
    const [synAck] = side.take();
    expect(synAck!.meta).toMatchObject({ headroom: 0, needsCsum: false, gsoType: GsoType.NONE });
  });

  it('allocates packets with the headroom free in front of them', () => {
    const buffers: Uint8Array[] = [];
    const stack = new Stack({
      transmit: (packet) => buffers.push(packet),
      random: seededRandom(1),
      options: gsoOptions(),
    });
    const packet = stack.output.allocate(CLIENT4, REMOTE4, IpProtocol.UDP, 8);
    expect(packet.byteOffset).toBe(10);
    expect(packet.length).toBe(28);
  });
});

describe('receiving super-segments', () => {
  it('takes a 64 KB segment as one, its checksum left to the kernel (NEEDS_CSUM)', () => {
    const side = new Side({ tcp: { recvBufferBytes: 256 * 1024 } }, false);
    const base: TcpRepr = {
      srcPort: 40000,
      dstPort: 80,
      seq: CLIENT_ISN,
      ack: 0,
      flags: TcpFlags.SYN,
      window: 0xffff,
      urgentPointer: 0,
      mss: MSS,
      windowScale: 7,
      sackPermitted: false,
      sackBlocks: [],
      payloadLength: 0,
    };
    side.input(base, new Uint8Array(0), 1000);
    const synAck = parseWire(side.take()[0]!.packet);
    const ack = seqAdd(synAck.seq, 1);
    const est = {
      ...base,
      mss: undefined,
      windowScale: undefined,
      flags: TcpFlags.ACK,
      seq: CLIENT_ISN + 1,
      ack,
    };
    side.input(est, new Uint8Array(0), 1001);
    const data = pattern(65_000);
    const r: TcpRepr = { ...est, flags: TcpFlags.ACK | TcpFlags.PSH, payloadLength: data.length };
    const msg = new Uint8Array(TcpRepr.length(r));
    msg.set(data, TcpRepr.headerLength(r));
    TcpRepr.emit(r, msg, 0);
    // As the kernel hands it over: the field holds only the pseudo-header sum.
    const partial = pseudoHeaderSum(CLIENT4, REMOTE4, IpProtocol.TCP, msg.length);
    msg[16] = partial >>> 8;
    msg[17] = partial & 0xff;
    side.stack.input(ipPacket(CLIENT4, REMOTE4, IpProtocol.TCP, msg), 1002, RxFlags.CHECKSUM_VERIFIED);
    side.settle(1002);
    const got = side.conn!.read(1 << 20);
    expect(got).toEqual(data);
    const acks = side.take().map((s) => parseWire(s.packet));
    expect(acks.at(-1)!.ack).toBe(CLIENT_ISN + 1 + data.length);
    expect(seqGt(acks.at(-1)!.ack, CLIENT_ISN)).toBe(true);
  });
});
