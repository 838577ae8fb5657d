/**
 * Building and sending the IP packets the stack originates, fragmenting those larger than the MTU
 * (IPv4: RFC 791 §3.2; IPv6 source fragmentation: RFC 8200 §4.5).
 */
import type { IpOptions } from '../options.js';
import type { RandomSource } from '../random.js';
import type { StackStats } from '../stats.js';
import { IpProtocol } from '../wire/ip-protocol.js';
import { IPV4_HEADER_LENGTH, Ipv4Packet, Ipv4Repr } from '../wire/ipv4.js';
import { IPV6_HEADER_LENGTH, Ipv6Packet, Ipv6Repr } from '../wire/ipv6.js';
import { emitIpv6FragmentHeader } from '../wire/ipv6-ext.js';

/** Where the stack's finished packets go; `packet` is valid only during the call. */
export type Transmit = (packet: Uint8Array) => void;

const IPV6_FRAGMENT_HEADER_LENGTH = 8;

/** Allocates, fills and sends packets we originate. */
export class IpOutput {
  private ipv4Identification: number;

  constructor(
    private readonly transmit: Transmit,
    private readonly options: IpOptions,
    private readonly stats: StackStats,
    private readonly random: RandomSource,
  ) {
    this.ipv4Identification = random() & 0xffff;
  }

  /** The device MTU. */
  get mtu(): number {
    return this.options.mtu;
  }

  /** The IP header length for an address family, chosen by address length. */
  static headerLength(src: Uint8Array): number {
    return src.length === 4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
  }

  /**
   * A new packet from `src` to `dst` with its IP header written and `payloadLength` bytes of room
   * after it (at `IpOutput.headerLength(src)`), allocated once at its total length.
   */
  allocate(src: Uint8Array, dst: Uint8Array, protocol: number, payloadLength: number): Uint8Array {
    const ttl = this.options.defaultTtl;
    if (src.length === 4) {
      const repr: Ipv4Repr = {
        src,
        dst,
        protocol,
        payloadLength,
        ttl,
        identification: this.nextIpv4Identification(),
        dontFragment: false,
        dscp: 0,
        ecn: 0,
      };
      const buf = new Uint8Array(Ipv4Repr.length(repr));
      Ipv4Repr.emit(repr, buf);
      return buf;
    }
    const repr: Ipv6Repr = {
      src,
      dst,
      nextHeader: protocol,
      payloadLength,
      hopLimit: ttl,
      trafficClass: 0,
      flowLabel: 0,
    };
    const buf = new Uint8Array(Ipv6Repr.length(repr));
    Ipv6Repr.emit(repr, buf);
    return buf;
  }

  /** Sends a complete packet we built, in fragments when it exceeds the MTU. */
  send(packet: Uint8Array): void {
    if (packet.length <= this.options.mtu) {
      this.emit(packet);
      return;
    }
    this.stats.datagramsFragmented++;
    if (packet[0]! >> 4 === 4) this.fragmentIpv4(packet);
    else this.fragmentIpv6(packet);
  }

  private emit(packet: Uint8Array): void {
    this.stats.txPackets++;
    this.stats.txBytes += packet.length;
    this.transmit(packet);
  }

  private nextIpv4Identification(): number {
    this.ipv4Identification = (this.ipv4Identification + 1) & 0xffff;
    return this.ipv4Identification;
  }

  /** RFC 791 §3.2 fragmentation of a packet we built (20-byte header, no options). */
  private fragmentIpv4(packet: Uint8Array): void {
    const whole = new Ipv4Packet(packet);
    const headerLength = whole.headerLength;
    const payload = whole.payload;
    const chunk = ((this.options.mtu - headerLength) >>> 3) << 3;
    for (let offset = 0; offset < payload.length; offset += chunk) {
      const size = Math.min(chunk, payload.length - offset);
      const frag = new Uint8Array(headerLength + size);
      frag.set(packet.subarray(0, headerLength));
      frag.set(payload.subarray(offset, offset + size), headerLength);
      const view = new Ipv4Packet(frag);
      view.totalLength = frag.length;
      view.fragmentOffset = offset;
      view.moreFragments = offset + size < payload.length;
      view.fillChecksum();
      this.emit(frag);
    }
  }

  /** RFC 8200 §4.5 source fragmentation of a packet we built (no extension headers). */
  private fragmentIpv6(packet: Uint8Array): void {
    const whole = new Ipv6Packet(packet);
    const nextHeader = whole.nextHeader;
    const payload = whole.payload;
    const identification = this.random() >>> 0; // RFC 7739: unpredictable identifications
    const chunk =
      ((Math.max(this.options.mtu, 1280) - IPV6_HEADER_LENGTH - IPV6_FRAGMENT_HEADER_LENGTH) >>> 3) << 3;
    for (let offset = 0; offset < payload.length; offset += chunk) {
      const size = Math.min(chunk, payload.length - offset);
      const frag = new Uint8Array(IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH + size);
      frag.set(packet.subarray(0, IPV6_HEADER_LENGTH));
      const view = new Ipv6Packet(frag);
      view.nextHeader = IpProtocol.FRAGMENT;
      view.payloadLength = IPV6_FRAGMENT_HEADER_LENGTH + size;
      const more = offset + size < payload.length;
      emitIpv6FragmentHeader(frag, IPV6_HEADER_LENGTH, nextHeader, offset, more, identification);
      frag.set(payload.subarray(offset, offset + size), IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH);
      this.emit(frag);
    }
  }
}
