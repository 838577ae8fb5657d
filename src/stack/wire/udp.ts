/**
 * The UDP header (RFC 768): a zero-copy view over the bytes and a representation of its fields.
 *
 * ```
 *  0      7 8     15 16    23 24    31
 * |     Source      |   Destination   |
 * |      Port       |      Port       |
 * |     Length      |    Checksum     |
 * ```
 *
 * Checksums cover the pseudo-header (RFC 768; RFC 8200 §8.1 for IPv6), passed in as a folded sum
 * from `pseudoHeaderSum(src, dst, IpProtocol.UDP, udpLength)` in checksum.ts, where `udpLength` is
 * the UDP Length field (header plus payload).
 */
import { checksum } from './checksum.js';

/** Length of the UDP header. */
export const UDP_HEADER_LENGTH = 8;

/** Why a UDP datagram was dropped. */
export type UdpDrop = 'udp-truncated' | 'udp-bad-length' | 'udp-bad-checksum';

/** A zero-copy view of a UDP datagram; call `check()` before reading any other field. */
export class UdpDatagram {
  /** Wraps `bytes`: the IP payload, starting at the UDP header; nothing is copied or validated. */
  constructor(readonly bytes: Uint8Array) {}

  /**
   * Validates the lengths so that no getter reads out of bounds: a whole header, and a Length field
   * between 8 and the bytes present. Bytes past Length are ignored, as Linux's udp_rcv trims them.
   */
  check(): UdpDrop | undefined {
    const b = this.bytes;
    if (b.length < UDP_HEADER_LENGTH) return 'udp-truncated';
    const length = (b[4]! << 8) | b[5]!;
    if (length < UDP_HEADER_LENGTH || length > b.length) return 'udp-bad-length';
    return undefined;
  }

  /** Source Port (0 when the sender expects no reply, RFC 768). */
  get srcPort(): number {
    return (this.bytes[0]! << 8) | this.bytes[1]!;
  }
  set srcPort(v: number) {
    this.bytes[0] = (v >>> 8) & 0xff;
    this.bytes[1] = v & 0xff;
  }

  /** Destination Port. */
  get dstPort(): number {
    return (this.bytes[2]! << 8) | this.bytes[3]!;
  }
  set dstPort(v: number) {
    this.bytes[2] = (v >>> 8) & 0xff;
    this.bytes[3] = v & 0xff;
  }

  /** Length: header plus payload, in bytes. */
  get length(): number {
    return (this.bytes[4]! << 8) | this.bytes[5]!;
  }
  set length(v: number) {
    this.bytes[4] = (v >>> 8) & 0xff;
    this.bytes[5] = v & 0xff;
  }

  /** Checksum field as stored (0 means none was computed, IPv4 only). */
  get checksum(): number {
    return (this.bytes[6]! << 8) | this.bytes[7]!;
  }
  set checksum(v: number) {
    this.bytes[6] = (v >>> 8) & 0xff;
    this.bytes[7] = v & 0xff;
  }

  /** The payload as Length says: bytes [8, length). */
  get payload(): Uint8Array {
    return this.bytes.subarray(UDP_HEADER_LENGTH, this.length);
  }

  /**
   * True when the checksum over pseudo-header, header and payload is correct. A zero field means
   * "no checksum" over IPv4 (RFC 768) but is invalid over IPv6 (RFC 8200 §8.1).
   */
  verifyChecksum(pseudoSum: number, ipv6: boolean): boolean {
    if (this.bytes[6] === 0 && this.bytes[7] === 0) return !ipv6;
    return checksum(this.bytes.subarray(0, this.length), pseudoSum) === 0;
  }

  /** Computes and stores the checksum; a computed 0 is sent as 0xffff (RFC 768). */
  fillChecksum(pseudoSum: number): void {
    this.bytes[6] = 0;
    this.bytes[7] = 0;
    this.checksum = checksum(this.bytes.subarray(0, this.length), pseudoSum) || 0xffff;
  }
}

/** The UDP header fields. */
export interface UdpRepr {
  /** Source Port. */
  readonly srcPort: number;
  /** Destination Port. */
  readonly dstPort: number;
  /** Bytes after the header: Length - 8. */
  readonly payloadLength: number;
}

/** Reads a `UdpRepr` from a datagram whose `check()` passed; `verifyChecksum` is a separate step. */
function parse(d: UdpDatagram): UdpRepr {
  return { srcPort: d.srcPort, dstPort: d.dstPort, payloadLength: d.length - UDP_HEADER_LENGTH };
}

/** The datagram's length for `r`: 8 + payloadLength. */
function length(r: UdpRepr): number {
  return UDP_HEADER_LENGTH + r.payloadLength;
}

/**
 * Writes the header for `r` at `buf[0..8)` and its checksum over header and the payload already at
 * `buf[8..8+payloadLength)` (copy it there first: one allocation, one copy). `pseudoSum` must be
 * computed with the length `length(r)`. The checksum is always filled, IPv4 included.
 */
function emit(r: UdpRepr, buf: Uint8Array, pseudoSum: number): void {
  const total = UDP_HEADER_LENGTH + r.payloadLength;
  if (total > 0xffff) throw new RangeError('UdpRepr.emit: payloadLength exceeds 65527');
  if (buf.length < total) throw new RangeError('UdpRepr.emit: buffer shorter than length(r)');
  buf[0] = (r.srcPort >>> 8) & 0xff;
  buf[1] = r.srcPort & 0xff;
  buf[2] = (r.dstPort >>> 8) & 0xff;
  buf[3] = r.dstPort & 0xff;
  buf[4] = total >>> 8;
  buf[5] = total & 0xff;
  buf[6] = 0;
  buf[7] = 0;
  const c = checksum(buf.subarray(0, total), pseudoSum) || 0xffff;
  buf[6] = c >>> 8;
  buf[7] = c & 0xff;
}

/** Parse, size and emit a `UdpRepr`. */
export const UdpRepr = { parse, length, emit };
