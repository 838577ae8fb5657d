/**
 * Building and sending the IP packets the stack originates, fragmenting those larger than the MTU
 * (IPv4: RFC 791 §3.2; IPv6 source fragmentation: RFC 8200 §4.5).
 *
 * Offload: every packet is allocated with `txHeadroom` free bytes in front of it (the device's
 * virtio-net header goes there, saving a copy), and goes out with the one reused TxMeta. A TCP
 * packet sent through `sendPartial` leaves its checksum to the device (NEEDS_CSUM) and may be a
 * super-segment for the device to cut (GSO), which is never fragmented.
 */
import type { IpOptions } from '../options.js';
import type { RandomSource } from '../random.js';
import type { StackStats } from '../stats.js';
import { GsoType, TxMeta } from '../transport.js';
import { sum16 } from '../wire/checksum.js';
import { IpProtocol } from '../wire/ip-protocol.js';
import { IPV4_HEADER_LENGTH, Ipv4Packet, Ipv4Repr } from '../wire/ipv4.js';
import { IPV6_HEADER_LENGTH, Ipv6Packet, Ipv6Repr } from '../wire/ipv6.js';
import { emitIpv6FragmentHeader } from '../wire/ipv6-ext.js';

/**
 * Where the stack's finished packets go; `packet` and `meta` are valid only during the call. A
 * device without offload may ignore `meta`: the stack asks for none unless its options say so.
 */
export type Transmit = (packet: Uint8Array, meta: TxMeta) => void;

const IPV6_FRAGMENT_HEADER_LENGTH = 8;
/**
 * Packets from `allocate` rotate through this many scratch buffers, so a packet stays valid until
 * this many more are allocated: enough for the longest chain the stack builds (an ICMP error
 * quoting a rebuilt packet holds two), and no allocation or garbage per packet sent.
 */
const POOL_SLOTS = 4;
/** Smallest scratch buffer (grown to the largest packet seen in its slot). */
const POOL_MIN_BYTES = 2048;
/** Offset of the checksum field in a TCP header (RFC 9293 §3.1). */
const TCP_CHECKSUM_OFFSET = 16;

/**
 * Completes a partial checksum the way a device does for NEEDS_CSUM: the field at
 * `start + offset` holds the pseudo-header sum, so the one's complement of the sum from `start`
 * to the end of the packet is the checksum (RFC 1071).
 */
export function completeChecksum(packet: Uint8Array, start: number, offset: number): void {
  const at = start + offset;
  const sum = ~sum16(packet.subarray(start)) & 0xffff;
  packet[at] = sum >>> 8;
  packet[at + 1] = sum & 0xff;
}

/** Allocates, fills and sends packets we originate. */
export class IpOutput {
  private ipv4Identification: number;
  /** The metadata every packet goes out with (reused). */
  private readonly meta = new TxMeta();
  /** Scratch buffers `allocate` builds packets in, in rotation (see POOL_SLOTS). */
  private readonly pool: Uint8Array[] = [];
  private poolNext = 0;

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

  /** The device cuts TCP super-segments (options.tso). */
  get tso(): boolean {
    return this.options.tso;
  }

  /** The device completes checksums marked NEEDS_CSUM (options.txChecksumOffload, implied by tso). */
  get checksumOffload(): boolean {
    return this.options.txChecksumOffload || this.options.tso;
  }

  /** A zeroed packet buffer of `length` bytes with `txHeadroom` free bytes in front of it. */
  private newPacket(length: number): Uint8Array {
    const headroom = this.options.txHeadroom;
    return headroom === 0 ? new Uint8Array(length) : new Uint8Array(headroom + length).subarray(headroom);
  }

  /**
   * A zeroed packet of `length` bytes with `txHeadroom` free bytes in front, in the next scratch
   * buffer of the rotation: valid until POOL_SLOTS more packets are allocated. Devices copy or
   * write synchronously (the Device contract), so a sent packet's buffer is free again.
   */
  private pooledPacket(length: number): Uint8Array {
    const headroom = this.options.txHeadroom;
    const need = headroom + length;
    const i = this.poolNext;
    this.poolNext = i + 1 === POOL_SLOTS ? 0 : i + 1;
    let slot = this.pool[i];
    if (slot === undefined || slot.length < need) {
      slot = new Uint8Array(Math.max(need, POOL_MIN_BYTES));
      this.pool[i] = slot;
    }
    const packet = slot.subarray(headroom, need);
    packet.fill(0);
    return packet;
  }

  /** The IP header length for an address family, chosen by address length. */
  static headerLength(src: Uint8Array): number {
    return src.length === 4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
  }

  /**
   * A packet from `src` to `dst` with its IP header written and `payloadLength` bytes of room
   * after it (at `IpOutput.headerLength(src)`). It lives in a reused scratch buffer: fill it and
   * send it (or copy it) before POOL_SLOTS more packets are allocated.
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
      const buf = this.pooledPacket(Ipv4Repr.length(repr));
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
    const buf = this.pooledPacket(Ipv6Repr.length(repr));
    Ipv6Repr.emit(repr, buf);
    return buf;
  }

  /** Sends a complete packet from `allocate`, in fragments when it exceeds the MTU. */
  send(packet: Uint8Array): void {
    this.meta.clear();
    if (packet.length <= this.options.mtu) {
      this.emit(packet);
      return;
    }
    this.stats.datagramsFragmented++;
    if (packet[0]! >> 4 === 4) this.fragmentIpv4(packet);
    else this.fragmentIpv6(packet);
  }

  /**
   * Sends a TCP packet from `allocate` whose checksum field holds only the pseudo-header sum over
   * the whole segment (Linux's CHECKSUM_PARTIAL, `__tcp_v4_send_check`): the device completes it.
   * With `gsoSize` > 0 and more payload than that, the packet is a super-segment the device cuts
   * into `gsoSize`-byte segments (never fragmented here). Call only when `checksumOffload` (and
   * `tso` for a super-segment) is true.
   */
  sendPartial(packet: Uint8Array, transportOffset: number, gsoSize: number): void {
    const meta = this.meta;
    meta.clear();
    const hdrLen = transportOffset + ((packet[transportOffset + 12]! >>> 4) << 2);
    const gso = gsoSize > 0 && packet.length - hdrLen > gsoSize;
    if (!gso && packet.length > this.options.mtu) {
      // Not a super-segment and too large for the link: sum it here and fragment as usual.
      completeChecksum(packet, transportOffset, TCP_CHECKSUM_OFFSET);
      this.send(packet);
      return;
    }
    meta.needsCsum = true;
    meta.csumStart = transportOffset;
    meta.csumOffset = TCP_CHECKSUM_OFFSET;
    if (gso) {
      meta.gsoType = packet[0]! >> 4 === 4 ? GsoType.TCPV4 : GsoType.TCPV6;
      meta.gsoSize = gsoSize;
      meta.hdrLen = hdrLen;
    }
    this.emit(packet);
  }

  private emit(packet: Uint8Array): void {
    this.stats.txPackets++;
    this.stats.txBytes += packet.length;
    this.meta.headroom = this.options.txHeadroom;
    this.transmit(packet, this.meta);
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
      const frag = this.newPacket(headerLength + size);
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
      const frag = this.newPacket(IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH + size);
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
