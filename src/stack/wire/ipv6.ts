/**
 * The IPv6 fixed header (RFC 8200 §3): a zero-copy view over the bytes and a representation of its
 * fields. Extension headers are walked by `Ipv6ExtensionChain` (ipv6-ext.ts).
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * |Version| Traffic Class |           Flow Label                  |
 * |         Payload Length        |  Next Header  |   Hop Limit   |
 * |                 Source Address (16 bytes)                     |
 * |              Destination Address (16 bytes)                   |
 * ```
 */
import { IpProtocol } from './ip-protocol.js';

/** Length of the IPv6 fixed header. */
export const IPV6_HEADER_LENGTH = 40;

/** The minimum link MTU every IPv6 link must carry (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;

/** Why an IPv6 packet was dropped. */
export type Ipv6Drop = 'ipv6-truncated' | 'ipv6-bad-version' | 'ipv6-jumbogram';

/** A zero-copy view of an IPv6 packet; call `check()` before reading any other field. */
export class Ipv6Packet {
  /** Wraps `bytes`, which start at the IPv6 header; nothing is copied or validated. */
  constructor(readonly bytes: Uint8Array) {}

  /**
   * Validates the lengths (RFC 8200 §3) so that no getter reads out of bounds. Bytes past the
   * payload (link padding) are allowed and ignored. A zero Payload Length with a Hop-by-Hop header
   * announces a jumbogram (RFC 2675 §3), which this stack does not support.
   */
  check(): Ipv6Drop | undefined {
    const b = this.bytes;
    if (b.length < IPV6_HEADER_LENGTH) return 'ipv6-truncated';
    if (b[0]! >>> 4 !== 6) return 'ipv6-bad-version';
    const payloadLength = (b[4]! << 8) | b[5]!;
    if (payloadLength === 0 && b[6] === IpProtocol.HOPOPTS) return 'ipv6-jumbogram';
    if (IPV6_HEADER_LENGTH + payloadLength > b.length) return 'ipv6-truncated';
    return undefined;
  }

  /** Version: 6. */
  get version(): number {
    return this.bytes[0]! >>> 4;
  }
  set version(v: number) {
    this.bytes[0] = ((v & 0x0f) << 4) | (this.bytes[0]! & 0x0f);
  }

  /** Traffic Class (RFC 8200 §7): DSCP in the upper six bits, ECN in the lower two. */
  get trafficClass(): number {
    return ((this.bytes[0]! & 0x0f) << 4) | (this.bytes[1]! >>> 4);
  }
  set trafficClass(v: number) {
    this.bytes[0] = (this.bytes[0]! & 0xf0) | ((v >>> 4) & 0x0f);
    this.bytes[1] = ((v & 0x0f) << 4) | (this.bytes[1]! & 0x0f);
  }

  /** Flow Label, 20 bits (RFC 6437). */
  get flowLabel(): number {
    return ((this.bytes[1]! & 0x0f) << 16) | (this.bytes[2]! << 8) | this.bytes[3]!;
  }
  set flowLabel(v: number) {
    this.bytes[1] = (this.bytes[1]! & 0xf0) | ((v >>> 16) & 0x0f);
    this.bytes[2] = (v >>> 8) & 0xff;
    this.bytes[3] = v & 0xff;
  }

  /** Payload Length: bytes after the fixed header, extension headers included. */
  get payloadLength(): number {
    return (this.bytes[4]! << 8) | this.bytes[5]!;
  }
  set payloadLength(v: number) {
    this.bytes[4] = (v >>> 8) & 0xff;
    this.bytes[5] = v & 0xff;
  }

  /** Next Header: the first extension header or the upper-layer protocol (see `IpProtocol`). */
  get nextHeader(): number {
    return this.bytes[6]!;
  }
  set nextHeader(v: number) {
    this.bytes[6] = v & 0xff;
  }

  /** Hop Limit. */
  get hopLimit(): number {
    return this.bytes[7]!;
  }
  set hopLimit(v: number) {
    this.bytes[7] = v & 0xff;
  }

  /** Source Address: a 16-byte subarray of the packet (zero-copy); the setter copies 16 bytes in. */
  get src(): Uint8Array {
    return this.bytes.subarray(8, 24);
  }
  set src(a: Uint8Array) {
    copyAddress(this.bytes, 8, a);
  }

  /** Destination Address: a 16-byte subarray of the packet (zero-copy); the setter copies 16 bytes in. */
  get dst(): Uint8Array {
    return this.bytes.subarray(24, 40);
  }
  set dst(a: Uint8Array) {
    copyAddress(this.bytes, 24, a);
  }

  /** The payload as Payload Length says: bytes [40, 40 + payloadLength), extension headers included. */
  get payload(): Uint8Array {
    return this.bytes.subarray(IPV6_HEADER_LENGTH, IPV6_HEADER_LENGTH + this.payloadLength);
  }
}

function copyAddress(b: Uint8Array, at: number, a: Uint8Array): void {
  for (let i = 0; i < 16; i++) b[at + i] = a[i]!;
}

/**
 * The IPv6 fixed header's fields. `src` and `dst` from `parse` are subarrays of the packet
 * (zero-copy): copy them before keeping them past the packet's buffer.
 */
export interface Ipv6Repr {
  /** Source address, 16 bytes. */
  readonly src: Uint8Array;
  /** Destination address, 16 bytes. */
  readonly dst: Uint8Array;
  /** Next Header of the fixed header (see `IpProtocol`). */
  readonly nextHeader: number;
  /** Bytes after the fixed header, extension headers included. */
  readonly payloadLength: number;
  /** Hop Limit. */
  readonly hopLimit: number;
  /** Traffic Class, 0-255. */
  readonly trafficClass: number;
  /** Flow Label, 0-0xfffff. */
  readonly flowLabel: number;
}

/** Reads an `Ipv6Repr` from a packet whose `check()` passed; IPv6 has no header checksum (RFC 8200 §3). */
function parse(p: Ipv6Packet): Ipv6Repr {
  return {
    src: p.src,
    dst: p.dst,
    nextHeader: p.nextHeader,
    payloadLength: p.payloadLength,
    hopLimit: p.hopLimit,
    trafficClass: p.trafficClass,
    flowLabel: p.flowLabel,
  };
}

/** The whole packet's length for `r`: 40 + payloadLength. */
function length(r: Ipv6Repr): number {
  return IPV6_HEADER_LENGTH + r.payloadLength;
}

/**
 * Writes the 40-byte fixed header for `r` at `buf[0..40)`. `buf` is the packet (length
 * `length(r)`) or any buffer of at least 40 bytes; the payload is not touched.
 */
function emit(r: Ipv6Repr, buf: Uint8Array): void {
  if (buf.length < IPV6_HEADER_LENGTH) throw new RangeError('Ipv6Repr.emit: buffer shorter than 40 bytes');
  if (r.payloadLength > 0xffff) throw new RangeError('Ipv6Repr.emit: payloadLength exceeds 65535');
  buf[0] = 0x60 | ((r.trafficClass >>> 4) & 0x0f);
  buf[1] = ((r.trafficClass & 0x0f) << 4) | ((r.flowLabel >>> 16) & 0x0f);
  buf[2] = (r.flowLabel >>> 8) & 0xff;
  buf[3] = r.flowLabel & 0xff;
  buf[4] = r.payloadLength >>> 8;
  buf[5] = r.payloadLength & 0xff;
  buf[6] = r.nextHeader & 0xff;
  buf[7] = r.hopLimit & 0xff;
  copyAddress(buf, 8, r.src);
  copyAddress(buf, 24, r.dst);
}

/** Parse, size and emit an `Ipv6Repr`. */
export const Ipv6Repr = { parse, length, emit };
