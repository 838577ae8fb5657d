/**
 * `struct virtio_net_hdr` (linux/virtio_net.h; virtio 1.x spec §5.1.6 "Device Operation"): the
 * 10-byte header in front of every packet on a TUN opened with IFF_VNET_HDR. It carries checksum
 * offload (NEEDS_CSUM: the transport checksum field holds only the pseudo-header sum and the
 * receiver of the header completes it; DATA_VALID: already verified) and segmentation offload
 * (gso_type/gso_size: one TCP "super-segment" the kernel cuts into gso_size-byte segments).
 *
 * Byte order: the kernel's TUN reads and writes the header little-endian when the device was set
 * to little-endian (TUNSETVNETLE) or when the host is little-endian (legacy virtio is host-endian:
 * `tun_is_little_endian()` in drivers/net/tun.c). Every supported host (x86-64, arm64, riscv64) is
 * little-endian, so the fields are read and written little-endian and TUNSETVNETLE is not needed.
 */
import type { TxMeta } from '../stack/transport.js';
import { checksum, pseudoHeaderSum } from '../stack/wire/checksum.js';
import { IpProtocol } from '../stack/wire/ip-protocol.js';
import { Ipv4Packet } from '../stack/wire/ipv4.js';
import { Ipv6Packet } from '../stack/wire/ipv6.js';

/** sizeof(struct virtio_net_hdr): the header size we ask for with TUNSETVNETHDRSZ. */
export const VIRTIO_NET_HDR_LENGTH = 10;

/** `flags` bits (VIRTIO_NET_HDR_F_*). */
export const VnetFlags = Object.freeze({
  /** The transport checksum must be completed from csum_start (it holds the pseudo-header sum). */
  NEEDS_CSUM: 1,
  /** The checksum was verified by whoever wrote the packet. */
  DATA_VALID: 2,
  /** gso fields carry receive-coalescing info (not used on TUN). */
  RSC_INFO: 4,
});

/** `gso_type` values (VIRTIO_NET_HDR_GSO_*); ECN is a bit OR'ed into TCPV4/TCPV6. */
export const VnetGso = Object.freeze({
  NONE: 0,
  TCPV4: 1,
  /** UDP fragmentation offload (UFO): never requested. */
  UDP: 3,
  TCPV6: 4,
  /** UDP segmentation (USO): never requested (no TUN_F_USO4/6). */
  UDP_L4: 5,
  /** The super-segment had CWR set: only the first segment keeps it. */
  ECN: 0x80,
});

/** Why a virtio-net header was rejected. */
export type VnetDrop = 'vnet-truncated' | 'vnet-gso-unsupported';

function u16le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

function setU16le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}

/** A zero-copy view of a virtio_net_hdr at the start of `bytes` (field names as in the C struct). */
export class VirtioNetHdr {
  constructor(readonly bytes: Uint8Array) {}

  /** Why the header cannot be used, or undefined: after this no getter reads out of bounds. */
  check(): VnetDrop | undefined {
    return this.bytes.length < VIRTIO_NET_HDR_LENGTH ? 'vnet-truncated' : undefined;
  }

  /** `flags`: VnetFlags bits. */
  get flags(): number {
    return this.bytes[0]!;
  }

  set flags(v: number) {
    this.bytes[0] = v;
  }

  /** `gso_type`: a VnetGso value, possibly with the ECN bit. */
  get gsoType(): number {
    return this.bytes[1]!;
  }

  set gsoType(v: number) {
    this.bytes[1] = v;
  }

  /** `hdr_len`: bytes of headers (IP + TCP) copied into every segment. */
  get hdrLen(): number {
    return u16le(this.bytes, 2);
  }

  set hdrLen(v: number) {
    setU16le(this.bytes, 2, v);
  }

  /** `gso_size`: payload bytes per segment (the MSS). */
  get gsoSize(): number {
    return u16le(this.bytes, 4);
  }

  set gsoSize(v: number) {
    setU16le(this.bytes, 4, v);
  }

  /** `csum_start`: where checksumming starts, from the start of the IP packet. */
  get csumStart(): number {
    return u16le(this.bytes, 6);
  }

  set csumStart(v: number) {
    setU16le(this.bytes, 6, v);
  }

  /** `csum_offset`: where the checksum goes, from csum_start (16 for TCP, 6 for UDP). */
  get csumOffset(): number {
    return u16le(this.bytes, 8);
  }

  set csumOffset(v: number) {
    setU16le(this.bytes, 8, v);
  }
}

/** A virtio_net_hdr as plain data. */
export interface VirtioNetHdrRepr {
  /** VnetFlags bits. */
  readonly flags: number;
  /** VnetGso value without the ECN bit: NONE, TCPV4 or TCPV6. */
  readonly gsoType: number;
  /** The ECN bit of gso_type. */
  readonly ecn: boolean;
  readonly hdrLen: number;
  readonly gsoSize: number;
  readonly csumStart: number;
  readonly csumOffset: number;
}

/** Parses a header; GSO types other than NONE/TCPV4/TCPV6 (the UDP ones we never ask for) are refused. */
function parse(h: VirtioNetHdr): VirtioNetHdrRepr | VnetDrop {
  const drop = h.check();
  if (drop !== undefined) return drop;
  const raw = h.gsoType;
  const gsoType = raw & ~VnetGso.ECN;
  if (gsoType !== VnetGso.NONE && gsoType !== VnetGso.TCPV4 && gsoType !== VnetGso.TCPV6)
    return 'vnet-gso-unsupported';
  return {
    flags: h.flags,
    gsoType,
    ecn: (raw & VnetGso.ECN) !== 0,
    hdrLen: h.hdrLen,
    gsoSize: h.gsoSize,
    csumStart: h.csumStart,
    csumOffset: h.csumOffset,
  };
}

/** Always VIRTIO_NET_HDR_LENGTH. */
function length(_r: VirtioNetHdrRepr): number {
  return VIRTIO_NET_HDR_LENGTH;
}

/** Writes `r` at `buf[offset..offset + 10)`. */
function emit(r: VirtioNetHdrRepr, buf: Uint8Array, offset = 0): void {
  buf[offset] = r.flags;
  buf[offset + 1] = r.gsoType | (r.ecn ? VnetGso.ECN : 0);
  setU16le(buf, offset + 2, r.hdrLen);
  setU16le(buf, offset + 4, r.gsoSize);
  setU16le(buf, offset + 6, r.csumStart);
  setU16le(buf, offset + 8, r.csumOffset);
}

/** Parse, size and emit virtio-net headers. */
export const VirtioNetHdrRepr = { parse, length, emit };

/**
 * Writes the header for a packet the stack sends with `meta` (undefined: a plain packet, all
 * zeroes, GSO_NONE) at `buf[offset..offset + 10)`. No allocation: this runs for every write.
 */
export function emitTxHeader(meta: TxMeta | undefined, buf: Uint8Array, offset: number): void {
  if (meta === undefined || (!meta.needsCsum && meta.gsoType === VnetGso.NONE)) {
    buf.fill(0, offset, offset + VIRTIO_NET_HDR_LENGTH);
    return;
  }
  buf[offset] = meta.needsCsum ? VnetFlags.NEEDS_CSUM : 0;
  buf[offset + 1] = meta.gsoType;
  setU16le(buf, offset + 2, meta.gsoType === VnetGso.NONE ? 0 : meta.hdrLen);
  setU16le(buf, offset + 4, meta.gsoType === VnetGso.NONE ? 0 : meta.gsoSize);
  setU16le(buf, offset + 6, meta.needsCsum ? meta.csumStart : 0);
  setU16le(buf, offset + 8, meta.needsCsum ? meta.csumOffset : 0);
}

/**
 * Recomputes the TCP or UDP checksum of `packet` from scratch (RFC 9293 §3.1, RFC 768), in place:
 * what a device does for a packet the kernel handed over NEEDS_CSUM (its field holds only the
 * pseudo-header sum) or DATA_VALID, so that it can be verified like any other, e.g. after a fault
 * injector may have corrupted it. IPv4 fragments, IPv6 packets with extension headers and other
 * protocols are left alone; so is anything that fails its IP header check.
 */
export function fillTransportChecksum(packet: Uint8Array): void {
  let src: Uint8Array;
  let dst: Uint8Array;
  let protocol: number;
  let body: Uint8Array;
  if (packet.length > 0 && packet[0]! >> 4 === 4) {
    const ip = new Ipv4Packet(packet);
    if (ip.check() !== undefined || ip.isFragment) return;
    src = ip.src;
    dst = ip.dst;
    protocol = ip.protocol;
    body = ip.payload;
  } else {
    const ip = new Ipv6Packet(packet);
    if (ip.check() !== undefined) return;
    src = ip.src;
    dst = ip.dst;
    protocol = ip.nextHeader;
    body = ip.payload;
  }
  const at = protocol === IpProtocol.TCP ? 16 : protocol === IpProtocol.UDP ? 6 : -1;
  if (at < 0 || body.length < at + 2) return;
  body[at] = 0;
  body[at + 1] = 0;
  let sum = checksum(body, pseudoHeaderSum(src, dst, protocol, body.length));
  // RFC 768: a computed UDP checksum of zero is sent as all ones (zero means "none").
  if (sum === 0 && protocol === IpProtocol.UDP) sum = 0xffff;
  body[at] = sum >>> 8;
  body[at + 1] = sum & 0xff;
}
