/**
 * The IPv4 header (RFC 791 §3.1): a zero-copy view over the bytes and a representation of the
 * fields this stack reads and writes.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * |Version|  IHL  |   DSCP    |ECN|          Total Length         |
 * |         Identification        |Flags|      Fragment Offset    |
 * |  Time to Live |    Protocol   |         Header Checksum       |
 * |                       Source Address                          |
 * |                    Destination Address                        |
 * |                    Options                    |    Padding    |
 * ```
 */
import { checksum } from './checksum.js';

export { IpProtocol } from './ip-protocol.js';

/** Length of an IPv4 header without options: the only header length this stack emits. */
export const IPV4_HEADER_LENGTH = 20;

/** Why an IPv4 packet was dropped. */
export type Ipv4Drop =
  | 'ipv4-truncated'
  | 'ipv4-bad-version'
  | 'ipv4-bad-header-length'
  | 'ipv4-bad-total-length'
  | 'ipv4-bad-checksum';

const FLAG_DF = 0x40;
const FLAG_MF = 0x20;

/** A zero-copy view of an IPv4 packet; call `check()` before reading any other field. */
export class Ipv4Packet {
  /** Wraps `bytes`, which start at the IPv4 header; nothing is copied or validated. */
  constructor(readonly bytes: Uint8Array) {}

  /**
   * Validates the lengths (RFC 791 §3.1, RFC 1122 §3.2.1.1-2) so that no getter reads out of
   * bounds. Bytes past Total Length (link padding) are allowed and ignored.
   */
  check(): Ipv4Drop | undefined {
    const b = this.bytes;
    if (b.length < IPV4_HEADER_LENGTH) return 'ipv4-truncated';
    if (b[0]! >>> 4 !== 4) return 'ipv4-bad-version';
    const headerLength = (b[0]! & 0x0f) * 4;
    if (headerLength < IPV4_HEADER_LENGTH) return 'ipv4-bad-header-length';
    if (headerLength > b.length) return 'ipv4-truncated';
    const totalLength = (b[2]! << 8) | b[3]!;
    if (totalLength < headerLength) return 'ipv4-bad-total-length';
    if (totalLength > b.length) return 'ipv4-truncated';
    return undefined;
  }

  /** Version: 4. */
  get version(): number {
    return this.bytes[0]! >>> 4;
  }
  set version(v: number) {
    this.bytes[0] = ((v & 0x0f) << 4) | (this.bytes[0]! & 0x0f);
  }

  /** Internet Header Length, in 32-bit words (5 without options). */
  get ihl(): number {
    return this.bytes[0]! & 0x0f;
  }
  set ihl(v: number) {
    this.bytes[0] = (this.bytes[0]! & 0xf0) | (v & 0x0f);
  }

  /** The header length in bytes: IHL * 4. */
  get headerLength(): number {
    return (this.bytes[0]! & 0x0f) * 4;
  }

  /** Differentiated Services Code Point (RFC 2474 §3): the upper six bits of the old TOS byte. */
  get dscp(): number {
    return this.bytes[1]! >>> 2;
  }
  set dscp(v: number) {
    this.bytes[1] = ((v & 0x3f) << 2) | (this.bytes[1]! & 0x03);
  }

  /** Explicit Congestion Notification (RFC 3168 §5): the lower two bits of the old TOS byte. */
  get ecn(): number {
    return this.bytes[1]! & 0x03;
  }
  set ecn(v: number) {
    this.bytes[1] = (this.bytes[1]! & 0xfc) | (v & 0x03);
  }

  /** Total Length: header plus payload, in bytes. */
  get totalLength(): number {
    return (this.bytes[2]! << 8) | this.bytes[3]!;
  }
  set totalLength(v: number) {
    this.bytes[2] = (v >>> 8) & 0xff;
    this.bytes[3] = v & 0xff;
  }

  /** Identification: groups the fragments of one datagram (RFC 791 §3.2, RFC 6864). */
  get identification(): number {
    return (this.bytes[4]! << 8) | this.bytes[5]!;
  }
  set identification(v: number) {
    this.bytes[4] = (v >>> 8) & 0xff;
    this.bytes[5] = v & 0xff;
  }

  /** Flags, 3 bits: reserved (must be zero), DF, MF (RFC 791 §3.1). */
  get flags(): number {
    return this.bytes[6]! >>> 5;
  }
  set flags(v: number) {
    this.bytes[6] = ((v & 0x07) << 5) | (this.bytes[6]! & 0x1f);
  }

  /** The DF flag: this datagram must not be fragmented. */
  get dontFragment(): boolean {
    return (this.bytes[6]! & FLAG_DF) !== 0;
  }
  set dontFragment(v: boolean) {
    this.bytes[6] = v ? this.bytes[6]! | FLAG_DF : this.bytes[6]! & ~FLAG_DF;
  }

  /** The MF flag: more fragments follow. */
  get moreFragments(): boolean {
    return (this.bytes[6]! & FLAG_MF) !== 0;
  }
  set moreFragments(v: boolean) {
    this.bytes[6] = v ? this.bytes[6]! | FLAG_MF : this.bytes[6]! & ~FLAG_MF;
  }

  /** Fragment Offset in BYTES (the 13-bit field counts 8-byte units); the setter drops the low 3 bits. */
  get fragmentOffset(): number {
    return (((this.bytes[6]! & 0x1f) << 8) | this.bytes[7]!) * 8;
  }
  set fragmentOffset(bytes: number) {
    const units = (bytes >>> 3) & 0x1fff;
    this.bytes[6] = (this.bytes[6]! & 0xe0) | (units >>> 8);
    this.bytes[7] = units & 0xff;
  }

  /** True for any fragment of a larger datagram: MF set or a non-zero offset (RFC 791 §3.2). */
  get isFragment(): boolean {
    return (this.bytes[6]! & (FLAG_MF | 0x1f)) !== 0 || this.bytes[7] !== 0;
  }

  /** Time to Live. */
  get ttl(): number {
    return this.bytes[8]!;
  }
  set ttl(v: number) {
    this.bytes[8] = v & 0xff;
  }

  /** Protocol of the payload (see `IpProtocol`). */
  get protocol(): number {
    return this.bytes[9]!;
  }
  set protocol(v: number) {
    this.bytes[9] = v & 0xff;
  }

  /** Header Checksum field as stored. */
  get headerChecksum(): number {
    return (this.bytes[10]! << 8) | this.bytes[11]!;
  }
  set headerChecksum(v: number) {
    this.bytes[10] = (v >>> 8) & 0xff;
    this.bytes[11] = v & 0xff;
  }

  /** Source Address: a 4-byte subarray of the packet (zero-copy); the setter copies 4 bytes in. */
  get src(): Uint8Array {
    return this.bytes.subarray(12, 16);
  }
  set src(a: Uint8Array) {
    copyAddress(this.bytes, 12, a);
  }

  /** Destination Address: a 4-byte subarray of the packet (zero-copy); the setter copies 4 bytes in. */
  get dst(): Uint8Array {
    return this.bytes.subarray(16, 20);
  }
  set dst(a: Uint8Array) {
    copyAddress(this.bytes, 16, a);
  }

  /** The options bytes between the fixed header and the payload (RFC 791 §3.1), uninterpreted. */
  get options(): Uint8Array {
    return this.bytes.subarray(IPV4_HEADER_LENGTH, this.headerLength);
  }

  /** The payload as Total Length says: bytes [headerLength, totalLength), trailing padding excluded. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength, this.totalLength);
  }

  /** True when the header checksum over the whole header (options included) is correct (RFC 1071). */
  verifyChecksum(): boolean {
    return checksum(this.bytes.subarray(0, this.headerLength)) === 0;
  }

  /** Computes and stores the header checksum (RFC 791 §3.1: the field counts as zero). */
  fillChecksum(): void {
    this.bytes[10] = 0;
    this.bytes[11] = 0;
    this.headerChecksum = checksum(this.bytes.subarray(0, this.headerLength));
  }
}

function copyAddress(b: Uint8Array, at: number, a: Uint8Array): void {
  b[at] = a[0]!;
  b[at + 1] = a[1]!;
  b[at + 2] = a[2]!;
  b[at + 3] = a[3]!;
}

/**
 * The IPv4 header fields this stack uses. `src` and `dst` from `parse` are subarrays of the packet
 * (zero-copy): copy them before keeping them past the packet's buffer.
 */
export interface Ipv4Repr {
  /** Source address, 4 bytes. */
  readonly src: Uint8Array;
  /** Destination address, 4 bytes. */
  readonly dst: Uint8Array;
  /** Protocol of the payload (see `IpProtocol`). */
  readonly protocol: number;
  /** Bytes after the header: Total Length - header length. */
  readonly payloadLength: number;
  /** Time to Live. */
  readonly ttl: number;
  /** Identification. */
  readonly identification: number;
  /** The DF flag. */
  readonly dontFragment: boolean;
  /** Differentiated Services Code Point, 0-63. */
  readonly dscp: number;
  /** Explicit Congestion Notification, 0-3. */
  readonly ecn: number;
}

/**
 * Reads an `Ipv4Repr` from a packet whose `check()` passed, verifying the header checksum unless
 * the caller already did (`checksumVerified`, e.g. an offloaded checksum). Options are skipped, not
 * interpreted: RFC 1122 §3.2.1.8 lets a host ignore the ones it does not implement.
 */
function parse(p: Ipv4Packet, checksumVerified = false): Ipv4Repr | Ipv4Drop {
  if (!checksumVerified && !p.verifyChecksum()) return 'ipv4-bad-checksum';
  return {
    src: p.src,
    dst: p.dst,
    protocol: p.protocol,
    payloadLength: p.totalLength - p.headerLength,
    ttl: p.ttl,
    identification: p.identification,
    dontFragment: p.dontFragment,
    dscp: p.dscp,
    ecn: p.ecn,
  };
}

/** The whole packet's length for `r`: 20 + payloadLength (this stack never emits options). */
function length(r: Ipv4Repr): number {
  return IPV4_HEADER_LENGTH + r.payloadLength;
}

/**
 * Writes the 20-byte header for `r` at `buf[0..20)` with a correct checksum, MF clear and offset 0
 * (a fragmenting caller sets those through `Ipv4Packet` and refills the checksum). `buf` is the
 * packet (length `length(r)`) or any buffer of at least 20 bytes; the payload is not touched.
 */
function emit(r: Ipv4Repr, buf: Uint8Array): void {
  if (buf.length < IPV4_HEADER_LENGTH) throw new RangeError('Ipv4Repr.emit: buffer shorter than 20 bytes');
  const totalLength = IPV4_HEADER_LENGTH + r.payloadLength;
  if (totalLength > 0xffff) throw new RangeError('Ipv4Repr.emit: payloadLength exceeds 65515');
  buf[0] = 0x45;
  buf[1] = ((r.dscp & 0x3f) << 2) | (r.ecn & 0x03);
  buf[2] = (totalLength >>> 8) & 0xff;
  buf[3] = totalLength & 0xff;
  buf[4] = (r.identification >>> 8) & 0xff;
  buf[5] = r.identification & 0xff;
  buf[6] = r.dontFragment ? FLAG_DF : 0;
  buf[7] = 0;
  buf[8] = r.ttl & 0xff;
  buf[9] = r.protocol & 0xff;
  buf[10] = 0;
  buf[11] = 0;
  copyAddress(buf, 12, r.src);
  copyAddress(buf, 16, r.dst);
  const c = checksum(buf.subarray(0, IPV4_HEADER_LENGTH));
  buf[10] = c >>> 8;
  buf[11] = c & 0xff;
}

/** Parse, size and emit an `Ipv4Repr`. */
export const Ipv4Repr = { parse, length, emit };
