/**
 * ICMP for IPv4 (RFC 792), with the Path MTU "fragmentation needed" field of RFC 1191 §4: a
 * zero-copy view and a repr covering echo and the error messages this stack sends and reads.
 */

import { getU16, setU16 } from './bytes.js';
import { checksum } from './checksum.js';

/** ICMPv4 message types (RFC 792). */
export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;

/** Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1). */
export const Icmpv4DestUnreachableCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAG_NEEDED: 4,
  SOURCE_ROUTE_FAILED: 5,
  NET_UNKNOWN: 6,
  HOST_UNKNOWN: 7,
  SOURCE_HOST_ISOLATED: 8,
  NET_PROHIBITED: 9,
  HOST_PROHIBITED: 10,
  NET_TOS: 11,
  HOST_TOS: 12,
  ADMIN_PROHIBITED: 13,
} as const;

/** Time Exceeded codes (RFC 792). */
export const Icmpv4TimeExceededCode = { TTL: 0, REASSEMBLY: 1 } as const;

/** Length of the fixed ICMPv4 header (type, code, checksum, 4 type-specific bytes). */
export const ICMPV4_HEADER_LENGTH = 8;

/** Why an ICMPv4 message was dropped. */
export type Icmpv4Drop = 'icmpv4-truncated' | 'icmpv4-bad-checksum' | 'icmpv4-unsupported-type';

/** Zero-copy view of an ICMPv4 message. */
export class Icmpv4Packet {
  /** Wraps `bytes`, which must span exactly the message (the IPv4 payload). */
  constructor(readonly bytes: Uint8Array) {}

  /** Validates the length; after it returns undefined no getter reads out of bounds. */
  check(): Icmpv4Drop | undefined {
    return this.bytes.length < ICMPV4_HEADER_LENGTH ? 'icmpv4-truncated' : undefined;
  }

  /** Message type, see `Icmpv4Type`. */
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

  /** Echo identifier (bytes 4-5). */
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

  /** Next-hop MTU of "fragmentation needed" (type 3 code 4, bytes 6-7, RFC 1191 §4). */
  get nextHopMtu(): number {
    return getU16(this.bytes, 6);
  }
  set nextHopMtu(v: number) {
    setU16(this.bytes, 6, v);
  }

  /** Octet pointer of Parameter Problem (type 12, byte 4). */
  get pointer(): number {
    return this.bytes[4]!;
  }
  set pointer(v: number) {
    this.bytes[4] = v;
  }

  /** Echo data, or the invoking datagram of an error message. */
  get data(): Uint8Array {
    return this.bytes.subarray(ICMPV4_HEADER_LENGTH);
  }

  /** True when the checksum over the whole message is valid (RFC 792). */
  verifyChecksum(): boolean {
    return checksum(this.bytes) === 0;
  }

  /** Computes and stores the checksum over the whole message. */
  fillChecksum(): void {
    const b = this.bytes;
    setU16(b, 2, 0);
    setU16(b, 2, checksum(b));
  }
}

/** An echo request or reply (RFC 792 "Echo or Echo Reply Message"). */
export interface Icmpv4EchoRepr {
  /** Which of the two. */
  readonly kind: 'echo-request' | 'echo-reply';
  /** Identifier to match replies to requests. */
  readonly identifier: number;
  /** Sequence number to match replies to requests. */
  readonly sequence: number;
  /** Echo data, returned unchanged in the reply. */
  readonly data: Uint8Array;
}

/** Destination Unreachable; `nextHopMtu` is meaningful only with code FRAG_NEEDED (RFC 1191 §4), else 0. */
export interface Icmpv4DestUnreachableRepr {
  /** Discriminant. */
  readonly kind: 'dest-unreachable';
  /** See `Icmpv4DestUnreachableCode`. */
  readonly code: number;
  /** MTU of the next hop for code 4, 0 otherwise. */
  readonly nextHopMtu: number;
  /** The start of the datagram that caused the error. */
  readonly invoking: Uint8Array;
}

/** Time Exceeded (TTL or reassembly). */
export interface Icmpv4TimeExceededRepr {
  /** Discriminant. */
  readonly kind: 'time-exceeded';
  /** See `Icmpv4TimeExceededCode`. */
  readonly code: number;
  /** The start of the datagram that caused the error. */
  readonly invoking: Uint8Array;
}

/** Parameter Problem with the pointer to the offending octet (code 0). */
export interface Icmpv4ParameterProblemRepr {
  /** Discriminant. */
  readonly kind: 'parameter-problem';
  /** Offset of the offending octet in the invoking datagram. */
  readonly pointer: number;
  /** The start of the datagram that caused the error. */
  readonly invoking: Uint8Array;
}

/** An ICMPv4 message this stack understands. Data and invoking bytes are views, not copies. */
export type Icmpv4Repr =
  | Icmpv4EchoRepr
  | Icmpv4DestUnreachableRepr
  | Icmpv4TimeExceededRepr
  | Icmpv4ParameterProblemRepr;

/**
 * Validates `p` and its checksum and returns its repr, or a drop reason. Echo codes other than 0
 * are accepted as Linux does (`icmp_echo` ignores the code); Parameter Problem's code is not kept
 * (we only send code 0). Other types (redirect, timestamp, ...) are 'icmpv4-unsupported-type'.
 */
function parse(p: Icmpv4Packet): Icmpv4Repr | Icmpv4Drop {
  const drop = p.check();
  if (drop !== undefined) return drop;
  if (!p.verifyChecksum()) return 'icmpv4-bad-checksum';
  switch (p.type) {
    case Icmpv4Type.ECHO_REQUEST:
    case Icmpv4Type.ECHO_REPLY:
      return {
        kind: p.type === Icmpv4Type.ECHO_REQUEST ? 'echo-request' : 'echo-reply',
        identifier: p.identifier,
        sequence: p.sequence,
        data: p.data,
      };
    case Icmpv4Type.DEST_UNREACHABLE: {
      const code = p.code;
      const nextHopMtu = code === Icmpv4DestUnreachableCode.FRAG_NEEDED ? p.nextHopMtu : 0;
      return { kind: 'dest-unreachable', code, nextHopMtu, invoking: p.data };
    }
    case Icmpv4Type.TIME_EXCEEDED:
      return { kind: 'time-exceeded', code: p.code, invoking: p.data };
    case Icmpv4Type.PARAMETER_PROBLEM:
      return { kind: 'parameter-problem', pointer: p.pointer, invoking: p.data };
    default:
      return 'icmpv4-unsupported-type';
  }
}

/** Message bytes: the 8-byte header plus data or invoking bytes. */
function length(r: Icmpv4Repr): number {
  return ICMPV4_HEADER_LENGTH + ('data' in r ? r.data : r.invoking).length;
}

/**
 * Writes `r` into `buf[0..length(r))`: header, unused bytes zeroed, data or invoking bytes copied,
 * checksum filled.
 */
function emit(r: Icmpv4Repr, buf: Uint8Array): void {
  const p = new Icmpv4Packet(buf.subarray(0, length(r)));
  buf.fill(0, 0, ICMPV4_HEADER_LENGTH);
  switch (r.kind) {
    case 'echo-request':
    case 'echo-reply':
      p.type = r.kind === 'echo-request' ? Icmpv4Type.ECHO_REQUEST : Icmpv4Type.ECHO_REPLY;
      p.identifier = r.identifier;
      p.sequence = r.sequence;
      buf.set(r.data, ICMPV4_HEADER_LENGTH);
      break;
    case 'dest-unreachable':
      p.type = Icmpv4Type.DEST_UNREACHABLE;
      p.code = r.code;
      if (r.code === Icmpv4DestUnreachableCode.FRAG_NEEDED) p.nextHopMtu = r.nextHopMtu;
      buf.set(r.invoking, ICMPV4_HEADER_LENGTH);
      break;
    case 'time-exceeded':
      p.type = Icmpv4Type.TIME_EXCEEDED;
      p.code = r.code;
      buf.set(r.invoking, ICMPV4_HEADER_LENGTH);
      break;
    case 'parameter-problem':
      p.type = Icmpv4Type.PARAMETER_PROBLEM;
      p.pointer = r.pointer;
      buf.set(r.invoking, ICMPV4_HEADER_LENGTH);
      break;
  }
  p.fillChecksum();
}

/** Parse, size and emit ICMPv4 messages. */
export const Icmpv4Repr = { parse, length, emit };
