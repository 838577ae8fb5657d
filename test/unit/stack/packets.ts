/**
 * Builders for the packets a client on the far side of the TUN sends, and a stack under test that
 * records what it transmits. Shared by the stack's packet-trace tests.
 */

import type { StackOptions } from '../../../src/stack/options.js';
import { seededRandom } from '../../../src/stack/random.js';
import { Stack } from '../../../src/stack/stack.js';
import { parseAddress } from '../../../src/stack/wire/address.js';
import { pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { Icmpv4Repr } from '../../../src/stack/wire/icmpv4.js';
import { Icmpv6Repr } from '../../../src/stack/wire/icmpv6.js';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { Ipv4Packet, Ipv4Repr } from '../../../src/stack/wire/ipv4.js';
import { Ipv6Repr } from '../../../src/stack/wire/ipv6.js';
import { emitIpv6FragmentHeader } from '../../../src/stack/wire/ipv6-ext.js';
import { TcpFlags, TcpRepr } from '../../../src/stack/wire/tcp.js';
import { UdpRepr } from '../../../src/stack/wire/udp.js';

/** An address from its text form (throws on typos in tests). */
export function addr(s: string): Uint8Array {
  const a = parseAddress(s);
  if (a === undefined) throw new Error(`bad address ${s}`);
  return a;
}

/** The client (kernel side of the TUN) and a remote host we impersonate. */
export const CLIENT4 = addr('198.18.0.1');
export const REMOTE4 = addr('198.18.5.9');
export const CLIENT6 = addr('fd00::1');
export const REMOTE6 = addr('fd00:5::9');

/** A stack whose transmitted packets are copied into `sent`. */
export function testStack(options: StackOptions = {}): { stack: Stack; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const stack = new Stack({ transmit: (p) => sent.push(p.slice()), random: seededRandom(1), options });
  return { stack, sent };
}

/** An IP packet carrying `payload` (already a full transport message). */
export function ipPacket(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  payload: Uint8Array,
  identification = 0x1234,
): Uint8Array {
  if (src.length === 4) {
    const r: Ipv4Repr = {
      src,
      dst,
      protocol,
      payloadLength: payload.length,
      ttl: 64,
      identification,
      dontFragment: false,
      dscp: 0,
      ecn: 0,
    };
    const b = new Uint8Array(Ipv4Repr.length(r));
    Ipv4Repr.emit(r, b);
    b.set(payload, 20);
    return b;
  }
  const r: Ipv6Repr = {
    src,
    dst,
    nextHeader: protocol,
    payloadLength: payload.length,
    hopLimit: 64,
    trafficClass: 0,
    flowLabel: 0,
  };
  const b = new Uint8Array(Ipv6Repr.length(r));
  Ipv6Repr.emit(r, b);
  b.set(payload, 40);
  return b;
}

/** Echo request data of `size` bytes: 0, 1, 2, … as ping's pattern. */
export function pattern(size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => i & 0xff);
}

/** A ping: ICMP or ICMPv6 echo request from `src` to `dst`. */
export function echoRequest(
  src: Uint8Array,
  dst: Uint8Array,
  size = 56,
  identifier = 0x77,
  sequence = 1,
): Uint8Array {
  const data = pattern(size);
  if (src.length === 4) {
    const r: Icmpv4Repr = { kind: 'echo-request', identifier, sequence, data };
    const msg = new Uint8Array(Icmpv4Repr.length(r));
    Icmpv4Repr.emit(r, msg);
    return ipPacket(src, dst, IpProtocol.ICMP, msg);
  }
  const r: Icmpv6Repr = { kind: 'echo-request', identifier, sequence, data };
  const msg = new Uint8Array(Icmpv6Repr.length(r));
  Icmpv6Repr.emit(r, msg, pseudoHeaderSum(src, dst, IpProtocol.ICMPV6, msg.length));
  return ipPacket(src, dst, IpProtocol.ICMPV6, msg);
}

/** A UDP datagram in an IP packet. */
export function udpPacket(
  src: Uint8Array,
  dst: Uint8Array,
  srcPort: number,
  dstPort: number,
  data: Uint8Array,
): Uint8Array {
  const r: UdpRepr = { srcPort, dstPort, payloadLength: data.length };
  const msg = new Uint8Array(UdpRepr.length(r));
  msg.set(data, 8);
  UdpRepr.emit(r, msg, pseudoHeaderSum(src, dst, IpProtocol.UDP, msg.length));
  return ipPacket(src, dst, IpProtocol.UDP, msg);
}

/** A TCP segment in an IP packet. */
export function tcpPacket(
  src: Uint8Array,
  dst: Uint8Array,
  fields: { srcPort: number; dstPort: number; seq: number; ack?: number; flags: number; data?: Uint8Array },
): Uint8Array {
  const data = fields.data ?? new Uint8Array(0);
  const r: TcpRepr = {
    srcPort: fields.srcPort,
    dstPort: fields.dstPort,
    seq: fields.seq,
    ack: fields.ack ?? 0,
    flags: fields.flags,
    window: 64240,
    urgentPointer: 0,
    mss: (fields.flags & TcpFlags.SYN) !== 0 ? 1460 : undefined,
    sackPermitted: false,
    sackBlocks: [],
    payloadLength: data.length,
  };
  const msg = new Uint8Array(TcpRepr.length(r));
  msg.set(data, TcpRepr.headerLength(r));
  TcpRepr.emit(r, msg, pseudoHeaderSum(src, dst, IpProtocol.TCP, msg.length));
  return ipPacket(src, dst, IpProtocol.TCP, msg);
}

/** Splits an IPv4 packet into fragments carrying `chunk` bytes each (a multiple of 8), as Linux would. */
export function fragmentV4(packet: Uint8Array, chunk: number): Uint8Array[] {
  const ip = new Ipv4Packet(packet);
  const payload = ip.payload;
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += chunk) {
    const size = Math.min(chunk, payload.length - off);
    const f = new Uint8Array(20 + size);
    f.set(packet.subarray(0, 20));
    f.set(payload.subarray(off, off + size), 20);
    const v = new Ipv4Packet(f);
    v.totalLength = f.length;
    v.fragmentOffset = off;
    v.moreFragments = off + size < payload.length;
    v.fillChecksum();
    out.push(f);
  }
  return out;
}

/** Splits an IPv6 packet (no extension headers) into fragments with a Fragment header. */
export function fragmentV6(packet: Uint8Array, chunk: number, identification = 0xabcdef): Uint8Array[] {
  const nextHeader = packet[6]!;
  const payload = packet.subarray(40);
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += chunk) {
    const size = Math.min(chunk, payload.length - off);
    const f = new Uint8Array(48 + size);
    f.set(packet.subarray(0, 40));
    f[6] = IpProtocol.FRAGMENT;
    f[4] = (8 + size) >>> 8;
    f[5] = (8 + size) & 0xff;
    emitIpv6FragmentHeader(f, 40, nextHeader, off, off + size < payload.length, identification);
    f.set(payload.subarray(off, off + size), 48);
    out.push(f);
  }
  return out;
}
