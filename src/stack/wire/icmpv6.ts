/**
 * ICMP for IPv6 (RFC 4443): a zero-copy view and a repr covering echo and the four error messages.
 * The checksum covers the IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1, next header 58).
 * How much of the invoking packet an error carries (up to the 1280-byte minimum MTU, RFC 4443
 * §2.4(c)) is the IP layer's policy: the repr just carries `invoking`.
 */

import { getU16, getU32, setU16, setU32 } from './bytes.js';
import { checksum } from './checksum.js';

/** ICMPv6 message types (RFC 4443 §2.1; NDP from RFC 4861 §4, MLD from RFC 2710 §3 and RFC 3810 §5). */
export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  MLD_QUERY: 130,
  MLD_REPORT: 131,
  MLD_DONE: 132,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
  REDIRECT: 137,
  MLDV2_REPORT: 143,
} as const;

/** Destination Unreachable codes (RFC 4443 §3.1). */
export const Icmpv6DestUnreachableCode = {
  NO_ROUTE: 0,
  ADMIN_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS: 3,
  PORT: 4,
  SOURCE_POLICY: 5,
  REJECT_ROUTE: 6,
} as const;

/** Time Exceeded codes (RFC 4443 §3.3). */
export const Icmpv6TimeExceededCode = { HOP_LIMIT: 0, REASSEMBLY: 1 } as const;

/** Parameter Problem codes (RFC 4443 §3.4). */
export const Icmpv6ParameterProblemCode = { HEADER_FIELD: 0, NEXT_HEADER: 1, OPTION: 2 } as const;

/** Length of the fixed ICMPv6 header (type, code, checksum, 4 type-specific bytes). */
export const ICMPV6_HEADER_LENGTH = 8;

/** Why an ICMPv6 message was dropped; NDP, MLD and unknown types are 'icmpv6-unsupported-type'. */
export type Icmpv6Drop = 'icmpv6-truncated' | 'icmpv6-bad-checksum' | 'icmpv6-unsupported-type';

/** Zero-copy view of an ICMPv6 message. */
export class Icmpv6Packet {
  /** Wraps `bytes`, which must span exactly the message (the upper-layer payload). */
  constructor(readonly bytes: Uint8Array) {}

  /** Validates the length; after it returns undefined no getter reads out of bounds. */
  check(): Icmpv6Drop | undefined {
    return this.bytes.length < ICMPV6_HEADER_LENGTH ? 'icmpv6-truncated' : undefined;
  }

  /** Message type, see `Icmpv6Type`. */
  get type(): number {
    return this.bytes[0]!;
  }
  set type(v: number) {
    this.bytes[0] = v;
  }

  /** Message code. */
  get code(): number {
    return this.bytes[1]!;
  }
  set code(v: number) {
    this.bytes[1] = v;
  }

  /** Checksum field. */
  get checksum(): number {
    return getU16(this.bytes, 2);
  }
  set checksum(v: number) {
    setU16(this.bytes, 2, v);
  }

  /** Echo identifier (bytes 4-5, RFC 4443 §4.1). */
  get identifier(): number {
    return getU16(this.bytes, 4);
  }
  set identifier(v: number) {
    setU16(this.bytes, 4, v);
  }

  /** Echo sequence number (bytes 6-7). */
  get sequence(): number {
    return getU16(this.bytes, 6);
  }
  set sequence(v: number) {
    setU16(this.bytes, 6, v);
  }

  /** MTU of Packet Too Big (type 2, bytes 4-7, RFC 4443 §3.2). */
  get mtu(): number {
    return getU32(this.bytes, 4);
  }
  set mtu(v: number) {
    setU32(this.bytes, 4, v);
  }

  /** Offset of the offending octet in Parameter Problem (type 4, bytes 4-7, RFC 4443 §3.4). */
  get pointer(): number {
    return getU32(this.bytes, 4);
  }
  set pointer(v: number) {
    setU32(this.bytes, 4, v);
  }

  /** Echo data, or the invoking packet of an error message. */
  get data(): Uint8Array {
    return this.bytes.subarray(ICMPV6_HEADER_LENGTH);
  }

  /** True when the checksum with `pseudoSum` (`pseudoHeaderSum(src, dst, 58, length)`) is valid. */
  verifyChecksum(pseudoSum: number): boolean {
    return checksum(this.bytes, pseudoSum) === 0;
  }

  /** Computes and stores the checksum with `pseudoSum` (`pseudoHeaderSum(src, dst, 58, length)`). */
  fillChecksum(pseudoSum: number): void {
    const b = this.bytes;
    setU16(b, 2, 0);
    setU16(b, 2, checksum(b, pseudoSum));
  }
}

/** An echo request or reply (RFC 4443 §4). */
export interface Icmpv6EchoRepr {
  /** Which of the two. */
  readonly kind: 'echo-request' | 'echo-reply';
  /** Identifier to match replies to requests. */
  readonly identifier: number;
  /** Sequence number to match replies to requests. */
  readonly sequence: number;
  /** Echo data, returned unchanged in the reply. */
  readonly data: Uint8Array;
}

/** Destination Unreachable (RFC 4443 §3.1). */
export interface Icmpv6DestUnreachableRepr {
  /** Discriminant. */
  readonly kind: 'dest-unreachable';
  /** See `Icmpv6DestUnreachableCode`. */
  readonly code: number;
  /** As much of the invoking packet as the IP layer chose to include. */
  readonly invoking: Uint8Array;
}

/** Packet Too Big (RFC 4443 §3.2). */
export interface Icmpv6PacketTooBigRepr {
  /** Discriminant. */
  readonly kind: 'packet-too-big';
  /** MTU of the next-hop link. */
  readonly mtu: number;
  /** As much of the invoking packet as the IP layer chose to include. */
  readonly invoking: Uint8Array;
}

/** Time Exceeded (RFC 4443 §3.3). */
export interface Icmpv6TimeExceededRepr {
  /** Discriminant. */
  readonly kind: 'time-exceeded';
  /** See `Icmpv6TimeExceededCode`. */
  readonly code: number;
  /** As much of the invoking packet as the IP layer chose to include. */
  readonly invoking: Uint8Array;
}

/** Parameter Problem (RFC 4443 §3.4). */
export interface Icmpv6ParameterProblemRepr {
  /** Discriminant. */
  readonly kind: 'parameter-problem';
  /** See `Icmpv6ParameterProblemCode`. */
  readonly code: number;
  /** Offset of the offending octet in the invoking packet. */
  readonly pointer: number;
  /** As much of the invoking packet as the IP layer chose to include. */
  readonly invoking: Uint8Array;
}

/** An ICMPv6 message this stack understands. Data and invoking bytes are views, not copies. */
export type Icmpv6Repr =
  | Icmpv6EchoRepr
  | Icmpv6DestUnreachableRepr
  | Icmpv6PacketTooBigRepr
  | Icmpv6TimeExceededRepr
  | Icmpv6ParameterProblemRepr;

/**
 * Validates `p` and its checksum against `pseudoSum` and returns its repr, or a drop reason. Echo
 * codes other than 0 are accepted as Linux does. Every other type, NDP and MLD included, is
 * 'icmpv6-unsupported-type' for the IP layer to count (a TUN link has no neighbours to discover).
 */
function parse(p: Icmpv6Packet, pseudoSum: number): Icmpv6Repr | Icmpv6Drop {
  const drop = p.check();
  if (drop !== undefined) return drop;
  if (!p.verifyChecksum(pseudoSum)) return 'icmpv6-bad-checksum';
  switch (p.type) {
    case Icmpv6Type.ECHO_REQUEST:
    case Icmpv6Type.ECHO_REPLY:
      return {
        kind: p.type === Icmpv6Type.ECHO_REQUEST ? 'echo-request' : 'echo-reply',
        identifier: p.identifier,
        sequence: p.sequence,
        data: p.data,
      };
    case Icmpv6Type.DEST_UNREACHABLE:
      return { kind: 'dest-unreachable', code: p.code, invoking: p.data };
    case Icmpv6Type.PACKET_TOO_BIG:
      return { kind: 'packet-too-big', mtu: p.mtu, invoking: p.data };
    case Icmpv6Type.TIME_EXCEEDED:
      return { kind: 'time-exceeded', code: p.code, invoking: p.data };
    case Icmpv6Type.PARAMETER_PROBLEM:
      return { kind: 'parameter-problem', code: p.code, pointer: p.pointer, invoking: p.data };
    default:
      return 'icmpv6-unsupported-type';
  }
}

/** Message bytes: the 8-byte header plus data or invoking bytes. */
function length(r: Icmpv6Repr): number {
  return ICMPV6_HEADER_LENGTH + ('data' in r ? r.data : r.invoking).length;
}

/**
 * Writes `r` into `buf[0..length(r))`: header, unused bytes zeroed, data or invoking bytes copied,
 * checksum filled with `pseudoSum` (`pseudoHeaderSum(src, dst, 58, length(r))`).
 */
function emit(r: Icmpv6Repr, buf: Uint8Array, pseudoSum: number): void {
  const p = new Icmpv6Packet(buf.subarray(0, length(r)));
  buf.fill(0, 0, ICMPV6_HEADER_LENGTH);
  switch (r.kind) {
    case 'echo-request':
    case 'echo-reply':
      p.type = r.kind === 'echo-request' ? Icmpv6Type.ECHO_REQUEST : Icmpv6Type.ECHO_REPLY;
      p.identifier = r.identifier;
      p.sequence = r.sequence;
      buf.set(r.data, ICMPV6_HEADER_LENGTH);
      break;
    case 'dest-unreachable':
      p.type = Icmpv6Type.DEST_UNREACHABLE;
      p.code = r.code;
      buf.set(r.invoking, ICMPV6_HEADER_LENGTH);
      break;
    case 'packet-too-big':
      p.type = Icmpv6Type.PACKET_TOO_BIG;
      p.mtu = r.mtu;
      buf.set(r.invoking, ICMPV6_HEADER_LENGTH);
      break;
    case 'time-exceeded':
      p.type = Icmpv6Type.TIME_EXCEEDED;
      p.code = r.code;
      buf.set(r.invoking, ICMPV6_HEADER_LENGTH);
      break;
    case 'parameter-problem':
      p.type = Icmpv6Type.PARAMETER_PROBLEM;
      p.code = r.code;
      p.pointer = r.pointer;
      buf.set(r.invoking, ICMPV6_HEADER_LENGTH);
      break;
  }
  p.fillChecksum(pseudoSum);
}

/** Parse, size and emit ICMPv6 messages. */
export const Icmpv6Repr = { parse, length, emit };
