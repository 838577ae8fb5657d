/**
 * IPv6 extension headers (RFC 8200 §4): a reusable walker over the header chain, a view of the
 * Fragment header and its emitter.
 */
import { IpProtocol } from './ip-protocol.js';
import { IPV6_HEADER_LENGTH, type Ipv6Packet } from './ipv6.js';

/** Why a packet's extension header chain was rejected. */
export type Ipv6ExtDrop =
  | 'ipv6-ext-truncated'
  | 'ipv6-ext-too-many'
  | 'ipv6-param-problem'
  | 'ipv6-unknown-option';

/** ICMPv6 Parameter Problem codes the walker reports (RFC 4443 §3.4). */
export const Ipv6ParamProblemCode = {
  /** Erroneous header field encountered. */
  ERRONEOUS_HEADER_FIELD: 0,
  /** Unrecognized Next Header type encountered. */
  UNRECOGNIZED_NEXT_HEADER: 1,
  /** Unrecognized IPv6 option encountered. */
  UNRECOGNIZED_OPTION: 2,
} as const;

/**
 * Extension headers walked before the chain is dropped as 'ipv6-ext-too-many'. RFC 8200 sets no
 * limit; RFC 8504 §5.3 lets a host bound it, and eight is already twice what a sane sender needs.
 */
export const IPV6_MAX_EXTENSION_HEADERS = 8;

/** Length of the Fragment header (RFC 8200 §4.5). */
export const IPV6_FRAGMENT_HEADER_LENGTH = 8;

const OPTION_PAD1 = 0;
const OPTION_PADN = 1;

/**
 * Walks the extension header chain of an `Ipv6Packet` (RFC 8200 §4) without allocating: create one
 * and call `parse()` per packet; the fields describe the last packet parsed.
 *
 * On success the walker stops at the first header that is not an extension header it walks
 * (Hop-by-Hop, Routing, Fragment, Destination Options): TCP, UDP, ICMPv6, No Next Header (59) or
 * an unknown protocol, which is not an error here (the IP layer answers a Parameter Problem code 1
 * pointing at `nextHeaderFieldOffset`, RFC 8200 §4).
 *
 * A fragment (a Fragment header with a non-zero offset or M set) also stops the walk, AT the
 * Fragment header: `upperProtocol` is 44 (FRAGMENT), `upperOffset === fragmentHeaderOffset`, the
 * fragment's data starts at `fragmentHeaderOffset + 8`, and `fragmentNextHeader` names what the
 * reassembled data starts with. After reassembly the IP layer writes `fragmentNextHeader` into the
 * byte at `nextHeaderFieldOffset`, drops the Fragment header and walks again. An atomic fragment
 * (offset 0, M clear) is walked through like any other header (RFC 6946 §4), with `hasFragment`
 * set. Stopping at the Fragment header means a caller that forgets to reassemble sees an unknown
 * protocol rather than fragment data parsed as an upper-layer header.
 */
export class Ipv6ExtensionChain {
  /** The first next header not walked: 6, 17, 58, 59, 44 for a fragment, or an unknown number. */
  upperProtocol = 0;
  /** Offset of the upper-layer header (or of the Fragment header) from the start of the IPv6 packet. */
  upperOffset = 0;
  /** Offset of the Next Header byte that holds `upperProtocol` (6 when there is no extension header). */
  nextHeaderFieldOffset = 0;
  /** True when a Fragment header was seen. */
  hasFragment = false;
  /** Offset of the Fragment header from the start of the IPv6 packet. */
  fragmentHeaderOffset = 0;
  /** The Fragment header's offset field, in bytes. */
  fragmentOffset = 0;
  /** The Fragment header's M flag. */
  moreFragments = false;
  /** The Fragment header's Identification, an unsigned 32-bit number. */
  fragmentIdentification = 0;
  /** The Fragment header's Next Header: the first header of the fragmentable part. */
  fragmentNextHeader = 0;
  /** End of the unfragmentable part: where the Fragment header starts (RFC 8200 §4.5). */
  unfragmentableEnd = 0;
  /** After 'ipv6-param-problem' (or 'ipv6-unknown-option'): the ICMPv6 Parameter Problem code. */
  problemCode = 0;
  /** After 'ipv6-param-problem': the Pointer, an offset from the start of the IPv6 packet. */
  problemPointer = 0;
  /**
   * After 'ipv6-param-problem': whether an ICMPv6 error may be sent. False for option action 01,
   * and for a multicast destination except option action 10 (RFC 8200 §4.2, RFC 4443 §2.4 (e.3)).
   * The IP layer still applies RFC 4443 §2.4's other rules (source address, rate limit).
   */
  problemIcmpAllowed = false;

  /** Walks the chain starting at packet.nextHeader over packet.payload; `p.check()` must have passed. */
  parse(p: Ipv6Packet): Ipv6ExtDrop | undefined {
    const b = p.bytes;
    const end = IPV6_HEADER_LENGTH + p.payloadLength;
    const dstMulticast = b[24] === 0xff;
    this.reset();
    let nextHeader = b[6]!;
    let nextHeaderField = 6;
    let offset = IPV6_HEADER_LENGTH;
    for (let count = 0; isWalkedHeader(nextHeader); count++) {
      if (count === IPV6_MAX_EXTENSION_HEADERS) return 'ipv6-ext-too-many';
      // RFC 8200 §4.1: Hop-by-Hop may only follow the fixed header; elsewhere 0 is unrecognized.
      if (nextHeader === IpProtocol.HOPOPTS && offset !== IPV6_HEADER_LENGTH) {
        return this.problem(Ipv6ParamProblemCode.UNRECOGNIZED_NEXT_HEADER, nextHeaderField, !dstMulticast);
      }
      if (nextHeader === IpProtocol.FRAGMENT) {
        const drop = this.readFragment(b, offset, end);
        if (drop !== undefined) return drop;
        if (this.fragmentOffset !== 0 || this.moreFragments) {
          this.upperProtocol = IpProtocol.FRAGMENT;
          this.upperOffset = offset;
          this.nextHeaderFieldOffset = nextHeaderField;
          return undefined;
        }
        nextHeaderField = offset;
        nextHeader = b[offset]!;
        offset += IPV6_FRAGMENT_HEADER_LENGTH;
        continue;
      }
      // Hop-by-Hop, Routing and Destination Options share Next Header, Hdr Ext Len (8-byte units
      // beyond the first 8), RFC 8200 §4.3, §4.4, §4.6.
      if (offset + 2 > end) return 'ipv6-ext-truncated';
      const headerEnd = offset + (b[offset + 1]! + 1) * 8;
      if (headerEnd > end) return 'ipv6-ext-truncated';
      if (nextHeader === IpProtocol.ROUTING) {
        // RFC 8200 §4.4: no Routing Type is recognized here (type 0 is deprecated by RFC 5095), so
        // Segments Left 0 means ignore the header, anything else is an error at the type field.
        if (b[offset + 3] !== 0) {
          return this.problem(Ipv6ParamProblemCode.ERRONEOUS_HEADER_FIELD, offset + 2, !dstMulticast);
        }
      } else {
        const drop = this.walkOptions(b, offset + 2, headerEnd, dstMulticast);
        if (drop !== undefined) return drop;
      }
      nextHeaderField = offset;
      nextHeader = b[offset]!;
      offset = headerEnd;
    }
    this.upperProtocol = nextHeader;
    this.upperOffset = offset;
    this.nextHeaderFieldOffset = nextHeaderField;
    return undefined;
  }

  private reset(): void {
    this.upperProtocol = 0;
    this.upperOffset = 0;
    this.nextHeaderFieldOffset = 0;
    this.hasFragment = false;
    this.fragmentHeaderOffset = 0;
    this.fragmentOffset = 0;
    this.moreFragments = false;
    this.fragmentIdentification = 0;
    this.fragmentNextHeader = 0;
    this.unfragmentableEnd = 0;
    this.problemCode = 0;
    this.problemPointer = 0;
    this.problemIcmpAllowed = false;
  }

  private problem(code: number, pointer: number, icmpAllowed: boolean): 'ipv6-param-problem' {
    this.problemCode = code;
    this.problemPointer = pointer;
    this.problemIcmpAllowed = icmpAllowed;
    return 'ipv6-param-problem';
  }

  /**
   * Reads the Fragment header at `offset` (RFC 8200 §4.5). Its per-fragment length rules (a non-last
   * fragment's data is a multiple of 8, the reassembled payload fits 65535) belong to reassembly.
   */
  private readFragment(b: Uint8Array, offset: number, end: number): Ipv6ExtDrop | undefined {
    if (offset + IPV6_FRAGMENT_HEADER_LENGTH > end) return 'ipv6-ext-truncated';
    this.hasFragment = true;
    this.fragmentHeaderOffset = offset;
    this.unfragmentableEnd = offset;
    this.fragmentNextHeader = b[offset]!;
    this.fragmentOffset = ((b[offset + 2]! << 8) | b[offset + 3]!) & 0xfff8;
    this.moreFragments = (b[offset + 3]! & 1) !== 0;
    this.fragmentIdentification =
      ((b[offset + 4]! << 24) | (b[offset + 5]! << 16) | (b[offset + 6]! << 8) | b[offset + 7]!) >>> 0;
    return undefined;
  }

  /** Walks Hop-by-Hop or Destination options TLV by TLV over [start, end) (RFC 8200 §4.2). */
  private walkOptions(
    b: Uint8Array,
    start: number,
    end: number,
    dstMulticast: boolean,
  ): Ipv6ExtDrop | undefined {
    let i = start;
    while (i < end) {
      const type = b[i]!;
      if (type === OPTION_PAD1) {
        i++;
        continue;
      }
      if (i + 2 > end) return 'ipv6-ext-truncated';
      const optionEnd = i + 2 + b[i + 1]!;
      if (optionEnd > end) return 'ipv6-ext-truncated';
      // Only Pad1 and PadN are recognized; the two high bits of any other type say what to do.
      if (type !== OPTION_PADN) {
        switch (type >>> 6) {
          case 0: // 00: skip over this option.
            break;
          case 1: // 01: discard the packet silently.
            this.problem(Ipv6ParamProblemCode.UNRECOGNIZED_OPTION, i, false);
            return 'ipv6-unknown-option';
          case 2: // 10: discard and send a Parameter Problem, even to a multicast destination.
            return this.problem(Ipv6ParamProblemCode.UNRECOGNIZED_OPTION, i, true);
          default: // 11: discard and send a Parameter Problem unless the destination is multicast.
            return this.problem(Ipv6ParamProblemCode.UNRECOGNIZED_OPTION, i, !dstMulticast);
        }
      }
      i = optionEnd;
    }
    return undefined;
  }
}

/** The extension headers the walker steps through (RFC 8200 §4.1); anything else ends the chain. */
function isWalkedHeader(nextHeader: number): boolean {
  return (
    nextHeader === IpProtocol.HOPOPTS ||
    nextHeader === IpProtocol.ROUTING ||
    nextHeader === IpProtocol.FRAGMENT ||
    nextHeader === IpProtocol.DSTOPTS
  );
}

/** A zero-copy view of an IPv6 Fragment header (RFC 8200 §4.5); call `check()` first. */
export class Ipv6FragmentHeader {
  /** Wraps `bytes`, which start at the Fragment header. */
  constructor(readonly bytes: Uint8Array) {}

  /** Validates that the 8 header bytes are present. */
  check(): 'ipv6-ext-truncated' | undefined {
    return this.bytes.length < IPV6_FRAGMENT_HEADER_LENGTH ? 'ipv6-ext-truncated' : undefined;
  }

  /** Next Header: the first header of the fragmentable part. */
  get nextHeader(): number {
    return this.bytes[0]!;
  }
  set nextHeader(v: number) {
    this.bytes[0] = v & 0xff;
  }

  /** Fragment Offset in BYTES (the 13-bit field counts 8-byte units); the setter drops the low 3 bits. */
  get fragmentOffset(): number {
    return ((this.bytes[2]! << 8) | this.bytes[3]!) & 0xfff8;
  }
  set fragmentOffset(bytes: number) {
    this.bytes[2] = (bytes >>> 8) & 0xff;
    this.bytes[3] = (bytes & 0xf8) | (this.bytes[3]! & 0x07);
  }

  /** The M flag: more fragments follow. */
  get moreFragments(): boolean {
    return (this.bytes[3]! & 1) !== 0;
  }
  set moreFragments(v: boolean) {
    this.bytes[3] = v ? this.bytes[3]! | 1 : this.bytes[3]! & 0xfe;
  }

  /** Identification, an unsigned 32-bit number. */
  get identification(): number {
    const b = this.bytes;
    return ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
  }
  set identification(v: number) {
    this.bytes[4] = (v >>> 24) & 0xff;
    this.bytes[5] = (v >>> 16) & 0xff;
    this.bytes[6] = (v >>> 8) & 0xff;
    this.bytes[7] = v & 0xff;
  }
}

/**
 * Writes an 8-byte Fragment header at `buf[offset..offset+8)` (RFC 8200 §4.5), reserved fields
 * zero. `fragmentOffsetBytes` must be a multiple of 8 (its low 3 bits are dropped).
 */
export function emitIpv6FragmentHeader(
  buf: Uint8Array,
  offset: number,
  nextHeader: number,
  fragmentOffsetBytes: number,
  more: boolean,
  id: number,
): void {
  if (offset < 0 || offset + IPV6_FRAGMENT_HEADER_LENGTH > buf.length) {
    throw new RangeError('emitIpv6FragmentHeader: the header does not fit in the buffer');
  }
  buf[offset] = nextHeader & 0xff;
  buf[offset + 1] = 0;
  buf[offset + 2] = (fragmentOffsetBytes >>> 8) & 0xff;
  buf[offset + 3] = (fragmentOffsetBytes & 0xf8) | (more ? 1 : 0);
  buf[offset + 4] = (id >>> 24) & 0xff;
  buf[offset + 5] = (id >>> 16) & 0xff;
  buf[offset + 6] = (id >>> 8) & 0xff;
  buf[offset + 7] = id & 0xff;
}
