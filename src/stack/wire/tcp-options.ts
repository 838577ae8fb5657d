/**
 * TCP options (RFC 9293 §3.2): MSS (RFC 9293 §3.7.1), window scale and timestamps (RFC 7323),
 * SACK-permitted and SACK (RFC 2018). Parsing fills a reusable object so the per-segment path
 * allocates nothing; writing follows Linux's order and 4-byte aligned layout
 * (`tcp_options_write`), so our segments look like the kernel's on the wire.
 */

import { getU32, setU32 } from './bytes.js';

/** Option kinds (IANA "TCP Option Kind Numbers"). */
export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMP: 8,
} as const;

/** Why an options area was rejected. */
export type TcpOptionDrop = 'tcp-bad-option-length';

/** The largest window shift allowed (RFC 7323 §2.3). */
export const TCP_MAX_WINDOW_SCALE = 14;
/** Room for options: a 15-word header minus the fixed 20 bytes (RFC 9293 §3.1). */
export const TCP_MAX_OPTIONS_LENGTH = 40;
/** At most four SACK blocks fit in the option space (RFC 2018 §3). */
export const TCP_MAX_SACK_BLOCKS = 4;

const MSS_LENGTH = 4;
const WINDOW_SCALE_LENGTH = 3;
const SACK_PERMITTED_LENGTH = 2;
const TIMESTAMP_LENGTH = 10;
const SACK_BASE_LENGTH = 2;
const SACK_BLOCK_LENGTH = 8;

/** The options a segment carries, as the repr-level fields `TcpRepr` extends. */
export interface TcpOptionFields {
  /** Maximum segment size (RFC 9293 §3.7.1), SYN only. */
  readonly mss?: number;
  /** Window shift count 0..14 (RFC 7323 §2), SYN only. */
  readonly windowScale?: number;
  /** SACK-permitted (RFC 2018 §2), SYN only. */
  readonly sackPermitted: boolean;
  /** SACK blocks as [left, right) sequence pairs (RFC 2018 §3); extra blocks that do not fit are not sent. */
  readonly sackBlocks: readonly (readonly [number, number])[];
  /** Timestamps (RFC 7323 §3). */
  readonly timestamp?: { readonly tsVal: number; readonly tsEcr: number } | undefined;
}

/** Parsed options of one segment; one instance is reused for every segment. */
export class TcpOptions {
  /** MSS option value, if present. */
  mss: number | undefined = undefined;
  /** Window scale shift, clamped to 14, if present. */
  windowScale: number | undefined = undefined;
  /** SACK-permitted option present. */
  sackPermitted = false;
  /** Number of valid entries in sackLeft/sackRight (0..4). */
  sackCount = 0;
  /** Left edges of the SACK blocks. */
  readonly sackLeft = new Uint32Array(TCP_MAX_SACK_BLOCKS);
  /** Right edges (one past the last byte) of the SACK blocks. */
  readonly sackRight = new Uint32Array(TCP_MAX_SACK_BLOCKS);
  /** Timestamp option present. */
  hasTimestamp = false;
  /** TSval of the timestamp option. */
  tsVal = 0;
  /** TSecr of the timestamp option. */
  tsEcr = 0;

  /** Forgets every option. */
  reset(): void {
    this.mss = undefined;
    this.windowScale = undefined;
    this.sackPermitted = false;
    this.sackCount = 0;
    this.hasTimestamp = false;
    this.tsVal = 0;
    this.tsEcr = 0;
  }

  /**
   * Parses the options area; returns a drop reason for malformed options (and leaves the object
   * reset). RFC 9293 §3.2: EOL ends the list, NOP is one byte, every other kind has a length byte
   * that counts kind and length; unknown kinds are skipped by that length (MUST-68). An illegal
   * length (MUST-7) drops the segment: Linux merely ignores a known option whose length is wrong,
   * but a segment whose option list cannot be trusted is safer dropped, as RFC 9293 §3.2 suggests.
   * A repeated option overrides the earlier one, as in Linux's `tcp_parse_options`.
   */
  parse(options: Uint8Array): TcpOptionDrop | undefined {
    this.reset();
    const b = options;
    const n = b.length;
    let i = 0;
    while (i < n) {
      const kind = b[i]!;
      if (kind === TcpOptionKind.EOL) break;
      if (kind === TcpOptionKind.NOP) {
        i++;
        continue;
      }
      if (i + 1 >= n) return this.fail();
      const len = b[i + 1]!;
      if (len < 2 || i + len > n) return this.fail();
      switch (kind) {
        case TcpOptionKind.MSS:
          if (len !== MSS_LENGTH) return this.fail();
          this.mss = (b[i + 2]! << 8) | b[i + 3]!;
          break;
        case TcpOptionKind.WINDOW_SCALE:
          if (len !== WINDOW_SCALE_LENGTH) return this.fail();
          // RFC 7323 §2.3: a shift above 14 is treated as 14.
          this.windowScale = Math.min(b[i + 2]!, TCP_MAX_WINDOW_SCALE);
          break;
        case TcpOptionKind.SACK_PERMITTED:
          if (len !== SACK_PERMITTED_LENGTH) return this.fail();
          this.sackPermitted = true;
          break;
        case TcpOptionKind.TIMESTAMP:
          if (len !== TIMESTAMP_LENGTH) return this.fail();
          this.hasTimestamp = true;
          this.tsVal = getU32(b, i + 2);
          this.tsEcr = getU32(b, i + 6);
          break;
        case TcpOptionKind.SACK: {
          const body = len - SACK_BASE_LENGTH;
          const count = body >>> 3;
          if ((body & 7) !== 0 || count < 1 || count > TCP_MAX_SACK_BLOCKS) return this.fail();
          for (let k = 0; k < count; k++) {
            const o = i + SACK_BASE_LENGTH + k * SACK_BLOCK_LENGTH;
            this.sackLeft[k] = getU32(b, o);
            this.sackRight[k] = getU32(b, o + 4);
          }
          this.sackCount = count;
          break;
        }
        default:
          break;
      }
      i += len;
    }
    return undefined;
  }

  private fail(): TcpOptionDrop {
    this.reset();
    return 'tcp-bad-option-length';
  }
}

/** Bytes of the options other than SACK blocks, in Linux's 4-byte aligned layout. */
function fixedLength(r: TcpOptionFields): number {
  let n = 0;
  if (r.mss !== undefined) n += 4;
  if (r.timestamp !== undefined) n += 12;
  else if (r.sackPermitted) n += 4;
  if (r.windowScale !== undefined) n += 4;
  return n;
}

/**
 * How many SACK blocks are sent: as many as fit in the 40-byte option space after the other
 * options (4, or 3 with timestamps), the first ones first, as Linux's `tcp_established_options`.
 */
function sackBlocksSent(r: TcpOptionFields, fixed: number): number {
  const count = r.sackBlocks.length;
  if (count === 0) return 0;
  const room = (TCP_MAX_OPTIONS_LENGTH - fixed - 4) >> 3;
  return Math.min(count, TCP_MAX_SACK_BLOCKS, room);
}

/** Bytes `writeTcpOptions` writes for `r`: a multiple of 4, at most 40. */
export function tcpOptionsLength(r: TcpOptionFields): number {
  const fixed = fixedLength(r);
  const blocks = sackBlocksSent(r, fixed);
  return blocks === 0 ? fixed : fixed + 4 + blocks * SACK_BLOCK_LENGTH;
}

/**
 * Writes the options of `r` at `buf[offset..]` in Linux's order and layout and returns the bytes
 * written (`tcpOptionsLength(r)`): MSS; then SACK-permitted folded into the timestamp word
 * (`04 02 08 0a`) or `01 01 08 0a`, or `01 01 04 02` alone; then `01 03 03 ws`; then `01 01 05 len`
 * and the SACK blocks.
 */
export function writeTcpOptions(buf: Uint8Array, offset: number, r: TcpOptionFields): number {
  let o = offset;
  if (r.mss !== undefined) {
    setU32(buf, o, (TcpOptionKind.MSS << 24) | (MSS_LENGTH << 16) | (r.mss & 0xffff));
    o += 4;
  }
  if (r.timestamp !== undefined) {
    const lead = r.sackPermitted
      ? (TcpOptionKind.SACK_PERMITTED << 8) | SACK_PERMITTED_LENGTH
      : (TcpOptionKind.NOP << 8) | TcpOptionKind.NOP;
    setU32(buf, o, (lead << 16) | (TcpOptionKind.TIMESTAMP << 8) | TIMESTAMP_LENGTH);
    setU32(buf, o + 4, r.timestamp.tsVal);
    setU32(buf, o + 8, r.timestamp.tsEcr);
    o += 12;
  } else if (r.sackPermitted) {
    setU32(
      buf,
      o,
      (TcpOptionKind.NOP << 24) |
        (TcpOptionKind.NOP << 16) |
        (TcpOptionKind.SACK_PERMITTED << 8) |
        SACK_PERMITTED_LENGTH,
    );
    o += 4;
  }
  if (r.windowScale !== undefined) {
    setU32(
      buf,
      o,
      (TcpOptionKind.NOP << 24) |
        (TcpOptionKind.WINDOW_SCALE << 16) |
        (WINDOW_SCALE_LENGTH << 8) |
        Math.min(r.windowScale, TCP_MAX_WINDOW_SCALE),
    );
    o += 4;
  }
  const blocks = sackBlocksSent(r, o - offset);
  if (blocks > 0) {
    setU32(
      buf,
      o,
      (TcpOptionKind.NOP << 24) |
        (TcpOptionKind.NOP << 16) |
        (TcpOptionKind.SACK << 8) |
        (SACK_BASE_LENGTH + blocks * SACK_BLOCK_LENGTH),
    );
    o += 4;
    for (let k = 0; k < blocks; k++) {
      const block = r.sackBlocks[k]!;
      setU32(buf, o, block[0]);
      setU32(buf, o + 4, block[1]);
      o += 8;
    }
  }
  return o - offset;
}
