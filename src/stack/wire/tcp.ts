/**
 * The TCP header (RFC 9293 §3.1): a zero-copy view over a segment and a repr with `parse`,
 * `headerLength`, `length` and `emit`. Options are parsed into the reusable `TcpOptions`.
 */

import { getU16, getU32, setU16, setU32 } from './bytes.js';
import { checksum } from './checksum.js';
import {
  type TcpOptionDrop,
  type TcpOptionFields,
  type TcpOptions,
  tcpOptionsLength,
  writeTcpOptions,
} from './tcp-options.js';

/** Control bits of byte 13 (RFC 9293 §3.1; ECE and CWR from RFC 3168 §6.1). */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Length of the header without options. */
export const TCP_HEADER_LENGTH = 20;

/** Why a segment was dropped by the wire layer. */
export type TcpDrop = 'tcp-truncated' | 'tcp-bad-header-length' | TcpOptionDrop;

const FLAG_NAMES = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr'] as const;

/** Names the set flags lowest bit first, joined by '|' (e.g. 'syn|ack'); '' when none is set. */
export function formatTcpFlags(flags: number): string {
  let s = '';
  for (let i = 0; i < FLAG_NAMES.length; i++) {
    if ((flags & (1 << i)) !== 0) s = s === '' ? FLAG_NAMES[i]! : `${s}|${FLAG_NAMES[i]!}`;
  }
  return s;
}

/** The inverse of `formatTcpFlags` (any order); undefined for an unknown name. */
export function parseTcpFlags(s: string): number | undefined {
  if (s === '') return 0;
  let flags = 0;
  for (const name of s.split('|')) {
    const bit = FLAG_NAMES.indexOf(name as (typeof FLAG_NAMES)[number]);
    if (bit < 0) return undefined;
    flags |= 1 << bit;
  }
  return flags;
}

/** Zero-copy view of a TCP segment (header, options and payload). */
export class TcpSegment {
  /** Wraps `bytes`, which must span exactly the segment (the IP payload). */
  constructor(readonly bytes: Uint8Array) {}

  /** Validates the lengths; after it returns undefined no getter reads out of bounds. */
  check(): TcpDrop | undefined {
    const b = this.bytes;
    if (b.length < TCP_HEADER_LENGTH) return 'tcp-truncated';
    const dataOffset = b[12]! >>> 4;
    if (dataOffset < 5) return 'tcp-bad-header-length';
    if (dataOffset * 4 > b.length) return 'tcp-truncated';
    return undefined;
  }

  /** Source port. */
  get srcPort(): number {
    return getU16(this.bytes, 0);
  }
  set srcPort(v: number) {
    setU16(this.bytes, 0, v);
  }

  /** Destination port. */
  get dstPort(): number {
    return getU16(this.bytes, 2);
  }
  set dstPort(v: number) {
    setU16(this.bytes, 2, v);
  }

  /** Sequence number of the first octet (or the ISN on a SYN). */
  get seqNumber(): number {
    return getU32(this.bytes, 4);
  }
  set seqNumber(v: number) {
    setU32(this.bytes, 4, v);
  }

  /** Acknowledgment number, meaningful when ACK is set. */
  get ackNumber(): number {
    return getU32(this.bytes, 8);
  }
  set ackNumber(v: number) {
    setU32(this.bytes, 8, v);
  }

  /** Data offset in 32-bit words (high nibble of byte 12); the reserved bits are kept. */
  get dataOffset(): number {
    return this.bytes[12]! >>> 4;
  }
  set dataOffset(v: number) {
    const b = this.bytes;
    b[12] = ((v & 0x0f) << 4) | (b[12]! & 0x0f);
  }

  /** Header length in bytes, options included (dataOffset * 4). */
  get headerLength(): number {
    return (this.bytes[12]! >>> 4) * 4;
  }
  set headerLength(v: number) {
    this.dataOffset = v >>> 2;
  }

  /** Control bits (byte 13), see `TcpFlags`. */
  get flags(): number {
    return this.bytes[13]!;
  }
  set flags(v: number) {
    this.bytes[13] = v;
  }

  /** FIN: no more data from the sender. */
  get fin(): boolean {
    return (this.bytes[13]! & TcpFlags.FIN) !== 0;
  }
  set fin(v: boolean) {
    this.setFlag(TcpFlags.FIN, v);
  }

  /** SYN: synchronize sequence numbers. */
  get syn(): boolean {
    return (this.bytes[13]! & TcpFlags.SYN) !== 0;
  }
  set syn(v: boolean) {
    this.setFlag(TcpFlags.SYN, v);
  }

  /** RST: reset the connection. */
  get rst(): boolean {
    return (this.bytes[13]! & TcpFlags.RST) !== 0;
  }
  set rst(v: boolean) {
    this.setFlag(TcpFlags.RST, v);
  }

  /** PSH: push function. */
  get psh(): boolean {
    return (this.bytes[13]! & TcpFlags.PSH) !== 0;
  }
  set psh(v: boolean) {
    this.setFlag(TcpFlags.PSH, v);
  }

  /** ACK: the acknowledgment number is significant. */
  get ack(): boolean {
    return (this.bytes[13]! & TcpFlags.ACK) !== 0;
  }
  set ack(v: boolean) {
    this.setFlag(TcpFlags.ACK, v);
  }

  /** URG: the urgent pointer is significant. */
  get urg(): boolean {
    return (this.bytes[13]! & TcpFlags.URG) !== 0;
  }
  set urg(v: boolean) {
    this.setFlag(TcpFlags.URG, v);
  }

  /** Raw 16-bit window field (unscaled; RFC 7323 §2.2 scaling is the caller's). */
  get window(): number {
    return getU16(this.bytes, 14);
  }
  set window(v: number) {
    setU16(this.bytes, 14, v);
  }

  /** Checksum field. */
  get checksum(): number {
    return getU16(this.bytes, 16);
  }
  set checksum(v: number) {
    setU16(this.bytes, 16, v);
  }

  /** Urgent pointer field. */
  get urgentPointer(): number {
    return getU16(this.bytes, 18);
  }
  set urgentPointer(v: number) {
    setU16(this.bytes, 18, v);
  }

  /** The options area, bytes 20..headerLength. */
  get options(): Uint8Array {
    return this.bytes.subarray(TCP_HEADER_LENGTH, this.headerLength);
  }

  /** The data after the header. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength);
  }

  /** SEG.LEN (RFC 9293 §3.4): payload octets plus one each for SYN and FIN. */
  get segmentLength(): number {
    const f = this.bytes[13]!;
    return this.bytes.length - this.headerLength + (f & TcpFlags.SYN ? 1 : 0) + (f & TcpFlags.FIN ? 1 : 0);
  }

  /** True when the checksum over the whole segment and `pseudoSum` is valid (RFC 9293 §3.1). */
  verifyChecksum(pseudoSum: number): boolean {
    return checksum(this.bytes, pseudoSum) === 0;
  }

  /** Computes and stores the checksum; `pseudoSum` is `pseudoHeaderSum(src, dst, 6, bytes.length)`. */
  fillChecksum(pseudoSum: number): void {
    fillTcpChecksum(this.bytes, pseudoSum);
  }

  private setFlag(bit: number, on: boolean): void {
    const b = this.bytes;
    b[13] = on ? b[13]! | bit : b[13]! & ~bit;
  }
}

/**
 * Zeroes the checksum field of the segment in `buf` (header and payload, nothing else) and fills it
 * from the data and `pseudoSum`. Separate from emit so a checksum-offload path can skip it.
 */
export function fillTcpChecksum(buf: Uint8Array, pseudoSum: number): void {
  setU16(buf, 16, 0);
  setU16(buf, 16, checksum(buf, pseudoSum));
}

/** A TCP header and its options as plain data; the payload itself is not part of it. */
export interface TcpRepr extends TcpOptionFields {
  /** Source port. */
  readonly srcPort: number;
  /** Destination port. */
  readonly dstPort: number;
  /** Sequence number. */
  readonly seq: number;
  /** Acknowledgment number (0 unless ACK is set). */
  readonly ack: number;
  /** Control bits, see `TcpFlags`. */
  readonly flags: number;
  /** Raw 16-bit window field, already scaled down by the caller. */
  readonly window: number;
  /** Urgent pointer field. */
  readonly urgentPointer: number;
  /** Bytes of data following the header. */
  readonly payloadLength: number;
}

/**
 * Validates `seg`, parses its options into the reusable `options` and returns the repr (its
 * `sackBlocks` are fresh copies), or a drop reason. The checksum is the caller's to verify
 * (it needs the pseudo-header).
 */
function parse(seg: TcpSegment, options: TcpOptions): TcpRepr | TcpDrop {
  const drop = seg.check() ?? options.parse(seg.options);
  if (drop !== undefined) return drop;
  const sackBlocks: (readonly [number, number])[] = [];
  for (let k = 0; k < options.sackCount; k++) sackBlocks.push([options.sackLeft[k]!, options.sackRight[k]!]);
  return {
    srcPort: seg.srcPort,
    dstPort: seg.dstPort,
    seq: seg.seqNumber,
    ack: seg.ackNumber,
    flags: seg.flags,
    window: seg.window,
    urgentPointer: seg.urgentPointer,
    mss: options.mss,
    windowScale: options.windowScale,
    sackPermitted: options.sackPermitted,
    sackBlocks,
    timestamp: options.hasTimestamp ? { tsVal: options.tsVal, tsEcr: options.tsEcr } : undefined,
    payloadLength: seg.bytes.length - seg.headerLength,
  };
}

/** Header bytes `emit` writes: 20 plus the options padded to 4 bytes. */
function headerLength(r: TcpRepr): number {
  return TCP_HEADER_LENGTH + tcpOptionsLength(r);
}

/** Header plus payload bytes. */
function length(r: TcpRepr): number {
  return headerLength(r) + r.payloadLength;
}

/**
 * Writes the header and options of `r` at `buf[0..headerLength(r))`, with the payload expected
 * already at `buf[headerLength(r)..length(r))`, then fills the checksum over those `length(r)`
 * bytes. `pseudoSum` is `pseudoHeaderSum(src, dst, 6, length(r))`. Reserved bits are written 0.
 */
function emit(r: TcpRepr, buf: Uint8Array, pseudoSum: number): void {
  const hl = headerLength(r);
  const seg = new TcpSegment(buf.subarray(0, hl + r.payloadLength));
  seg.srcPort = r.srcPort;
  seg.dstPort = r.dstPort;
  seg.seqNumber = r.seq;
  seg.ackNumber = r.ack;
  buf[12] = (hl >>> 2) << 4;
  seg.flags = r.flags;
  seg.window = r.window;
  seg.urgentPointer = r.urgentPointer;
  writeTcpOptions(buf, TCP_HEADER_LENGTH, r);
  fillTcpChecksum(seg.bytes, pseudoSum);
}

/** Parse, size and emit TCP headers. */
export const TcpRepr = { parse, headerLength, length, emit };
