/**
 * IPv4 and IPv6 input: validate, reassemble, and demultiplex to ICMP, TCP and UDP for ANY
 * destination address: the stack impersonates every remote host behind the TUN.
 *
 * Every malformed packet is dropped and counted by reason; nothing here throws on packet bytes.
 */
import type { StackStats } from '../stats.js';
import type { IpPacketInfo, TransportHandler } from '../transport.js';
import { isBroadcastV4, isMulticast } from '../wire/address.js';
import { IpProtocol } from '../wire/ip-protocol.js';
import { Ipv4Packet } from '../wire/ipv4.js';
import { Ipv6Packet } from '../wire/ipv6.js';
import { Ipv6ExtensionChain } from '../wire/ipv6-ext.js';
import type { Icmp } from './icmp.js';
import { type Reassembler, reassemblyKey } from './reassembly.js';

/** ICMPv4 Destination Unreachable, code 2 (RFC 792). */
const PROTOCOL_UNREACHABLE = 2;
/** ICMPv6 Parameter Problem, code 1: unrecognized Next Header (RFC 4443 §3.4). */
const UNRECOGNIZED_NEXT_HEADER = 1;
/** ICMPv4/ICMPv6 Time Exceeded, code 1: fragment reassembly time exceeded. */
const REASSEMBLY_TIME_EXCEEDED = 1;

/** The handlers above the IP layer; a missing handler behaves like a host with no listener. */
export interface Transports {
  tcp: TransportHandler;
  udp: TransportHandler;
}

/** Validates, reassembles and demultiplexes received IP packets. */
export class IpLayer {
  private readonly chain = new Ipv6ExtensionChain();

  constructor(
    private readonly stats: StackStats,
    private readonly icmp: Icmp,
    private readonly reassembler: Reassembler,
    private readonly transports: Transports,
    private readonly info: IpPacketInfo,
  ) {}

  /** One packet from the device. */
  input(packet: Uint8Array, now: number, rxFlags: number): void {
    if (packet.length === 0) return this.stats.drop('ip-empty');
    const version = packet[0]! >> 4;
    if (version === 4) return this.inputV4(packet, now, rxFlags);
    if (version === 6) return this.inputV6(packet, now, rxFlags, false);
    this.stats.drop('ip-bad-version');
  }

  /** Expires reassembly queues, answering with Time Exceeded where a first fragment came. */
  expire(now: number): void {
    this.reassembler.expire(now, (e) => {
      this.stats.drop('frag-timeout');
      if (e.firstFragment === undefined) return;
      // RFC 792 / RFC 8200 §4.5: Time Exceeded, code 1, only when the first fragment arrived.
      if (e.ipv6)
        this.icmp.errorV6(e.firstFragment, { kind: 'time-exceeded', code: REASSEMBLY_TIME_EXCEEDED }, now);
      else this.icmp.errorV4(e.firstFragment, { kind: 'time-exceeded', code: REASSEMBLY_TIME_EXCEEDED }, now);
    });
  }

  private inputV4(packet: Uint8Array, now: number, rxFlags: number): void {
    const ip = new Ipv4Packet(packet);
    const bad = ip.check();
    if (bad !== undefined) return this.stats.drop(bad);
    if (!ip.verifyChecksum()) return this.stats.drop('ipv4-bad-checksum');
    // RFC 1122 §3.2.1.3: a source must be one unicast host.
    if (isMulticast(ip.src) || isBroadcastV4(ip.src)) return this.stats.drop('ipv4-bad-source');
    // We impersonate unicast hosts only; broadcasts and multicast (mDNS, SSDP, IGMP) stop here.
    if (isMulticast(ip.dst) || isBroadcastV4(ip.dst)) return this.stats.drop('ipv4-multicast-destination');
    this.stats.rxIpv4++;
    if (ip.isFragment) return this.fragmentV4(ip, packet, now);
    this.deliverV4(ip, packet.subarray(0, ip.totalLength), now, rxFlags);
  }

  private fragmentV4(ip: Ipv4Packet, packet: Uint8Array, now: number): void {
    const data = ip.payload;
    const offset = ip.fragmentOffset;
    const more = ip.moreFragments;
    // RFC 791 §3.2: every fragment but the last carries a multiple of 8 bytes.
    if (more && (data.length & 7) !== 0) return this.stats.drop('ipv4-fragment-bad-length');
    if (ip.headerLength + offset + data.length > 0xffff) return this.stats.drop('ipv4-fragment-too-large');
    const key = reassemblyKey(4, ip.src, ip.dst, ip.protocol, ip.identification);
    const header = offset === 0 ? packet.subarray(0, ip.headerLength) : undefined;
    const done = this.reassembler.add(key, false, offset, more, data, header, now);
    this.stats.fragmentsReceived++;
    if (done === undefined) return;
    if (typeof done === 'string') return this.stats.drop(done);
    this.stats.datagramsReassembled++;
    const whole = new Uint8Array(done.header.length + done.payload.length);
    whole.set(done.header);
    whole.set(done.payload, done.header.length);
    const view = new Ipv4Packet(whole);
    view.totalLength = whole.length;
    view.moreFragments = false;
    view.fragmentOffset = 0;
    view.fillChecksum();
    this.deliverV4(view, whole, now, 0);
  }

  private deliverV4(ip: Ipv4Packet, packet: Uint8Array, now: number, rxFlags: number): void {
    const payload = ip.payload;
    const info = this.info;
    info.version = 4;
    info.src = ip.src;
    info.dst = ip.dst;
    info.packet = packet;
    info.transportOffset = ip.headerLength;
    info.rxFlags = rxFlags;
    switch (ip.protocol) {
      case IpProtocol.ICMP:
        return this.icmp.inputV4(ip, payload);
      case IpProtocol.TCP:
        this.stats.rxTcp++;
        return this.deliver(this.transports.tcp, payload, now);
      case IpProtocol.UDP:
        this.stats.rxUdp++;
        return this.deliver(this.transports.udp, payload, now);
      default:
        // RFC 1122 §3.2.2.1: a host SHOULD answer an unknown protocol with Protocol Unreachable.
        this.stats.drop('ipv4-unknown-protocol');
        this.icmp.errorV4(
          packet,
          { kind: 'dest-unreachable', code: PROTOCOL_UNREACHABLE, nextHopMtu: 0 },
          now,
        );
    }
  }

  private inputV6(packet: Uint8Array, now: number, rxFlags: number, reassembled: boolean): void {
    const ip = new Ipv6Packet(packet);
    const bad = ip.check();
    if (bad !== undefined) return this.stats.drop(bad);
    if (isMulticast(ip.src)) return this.stats.drop('ipv6-bad-source');
    // Router and neighbour solicitations and MLD reports from the kernel go to multicast groups;
    // we impersonate unicast hosts only.
    if (isMulticast(ip.dst)) return this.stats.drop('ipv6-multicast-destination');
    const end = 40 + ip.payloadLength;
    const whole = packet.subarray(0, end);
    const chain = this.chain;
    const chainBad = chain.parse(ip);
    if (chainBad === 'ipv6-param-problem') {
      this.stats.drop(chainBad);
      if (chain.problemIcmpAllowed) {
        this.icmp.errorV6(
          whole,
          { kind: 'parameter-problem', code: chain.problemCode, pointer: chain.problemPointer },
          now,
        );
      }
      return;
    }
    if (chainBad !== undefined) return this.stats.drop(chainBad);
    if (!reassembled) this.stats.rxIpv6++;
    if (chain.hasFragment && (chain.fragmentOffset !== 0 || chain.moreFragments)) {
      if (reassembled) return this.stats.drop('ipv6-fragment-nested');
      return this.fragmentV6(ip, whole, now);
    }
    // An atomic fragment (RFC 6946) is processed as a whole packet.
    const upper = chain.upperProtocol;
    const upperOffset = chain.upperOffset;
    const payload = whole.subarray(upperOffset);
    const info = this.info;
    info.version = 6;
    info.src = ip.src;
    info.dst = ip.dst;
    info.packet = whole;
    info.transportOffset = upperOffset;
    info.rxFlags = reassembled ? 0 : rxFlags;
    switch (upper) {
      case IpProtocol.ICMPV6:
        return this.icmp.inputV6(ip, payload);
      case IpProtocol.TCP:
        this.stats.rxTcp++;
        return this.deliver(this.transports.tcp, payload, now);
      case IpProtocol.UDP:
        this.stats.rxUdp++;
        return this.deliver(this.transports.udp, payload, now);
      case IpProtocol.NONE:
        return this.stats.drop('ipv6-no-next-header');
      default:
        // RFC 8200 §4: an unrecognized Next Header is answered with Parameter Problem, code 1,
        // pointing at the field that named it.
        this.stats.drop('ipv6-unknown-protocol');
        this.icmp.errorV6(
          whole,
          { kind: 'parameter-problem', code: UNRECOGNIZED_NEXT_HEADER, pointer: chain.nextHeaderFieldOffset },
          now,
        );
    }
  }

  private fragmentV6(ip: Ipv6Packet, packet: Uint8Array, now: number): void {
    const chain = this.chain;
    const dataStart = chain.fragmentHeaderOffset + 8;
    const data = packet.subarray(dataStart);
    const offset = chain.fragmentOffset;
    const more = chain.moreFragments;
    // RFC 8200 §4.5: a non-final fragment whose length is not a multiple of 8 gets Parameter
    // Problem code 0 pointing at Payload Length; one reaching past 65535 points at Fragment Offset.
    if (more && (data.length & 7) !== 0) {
      this.stats.drop('ipv6-fragment-bad-length');
      return this.icmp.errorV6(packet, { kind: 'parameter-problem', code: 0, pointer: 4 }, now);
    }
    // The reassembled Payload Length counts the unfragmentable extension headers too.
    if (chain.fragmentHeaderOffset - 40 + offset + data.length > 0xffff) {
      this.stats.drop('ipv6-fragment-too-large');
      return this.icmp.errorV6(
        packet,
        { kind: 'parameter-problem', code: 0, pointer: chain.fragmentHeaderOffset + 2 },
        now,
      );
    }
    const key = reassemblyKey(6, ip.src, ip.dst, 0, chain.fragmentIdentification);
    // The first fragment's unfragmentable part, with its fragment header, rebuilds the datagram.
    const header = offset === 0 ? packet.subarray(0, dataStart) : undefined;
    const done = this.reassembler.add(key, true, offset, more, data, header, now);
    this.stats.fragmentsReceived++;
    if (done === undefined) return;
    if (typeof done === 'string') return this.stats.drop(done);
    this.stats.datagramsReassembled++;
    // Drop the fragment header: the byte that named it takes its Next Header (RFC 8200 §4.5).
    const h = done.header;
    const unfragmentable = h.length - 8;
    const whole = new Uint8Array(unfragmentable + done.payload.length);
    whole.set(h.subarray(0, unfragmentable));
    whole.set(done.payload, unfragmentable);
    whole[namingByteOffset(h, unfragmentable)] = h[unfragmentable]!;
    const view = new Ipv6Packet(whole);
    view.payloadLength = whole.length - 40;
    this.inputV6(whole, now, 0, true);
  }

  private deliver(handler: TransportHandler, payload: Uint8Array, now: number): void {
    const bad = handler.input(this.info, payload, now);
    if (bad !== undefined) this.stats.drop(bad);
  }
}

/**
 * The offset of the Next Header byte that names the header at `target`, walking the extension
 * headers of an unfragmentable part that was already validated once.
 */
function namingByteOffset(h: Uint8Array, target: number): number {
  let field = 6;
  let offset = 40;
  let type = h[6]!;
  while (offset < target) {
    field = offset;
    // A Fragment header is 8 bytes whatever its second (reserved) byte holds.
    const length = type === IpProtocol.FRAGMENT ? 8 : (h[offset + 1]! + 1) * 8;
    type = h[offset]!;
    offset += length;
  }
  return field;
}
