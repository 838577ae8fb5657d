import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import {
  fillTcpChecksum,
  formatTcpFlags,
  parseTcpFlags,
  TcpFlags,
  TcpRepr,
  TcpSegment,
} from '../../../src/stack/wire/tcp.js';
import { TcpOptions } from '../../../src/stack/wire/tcp-options.js';
import { hex, pseudoV4, pseudoV6, referenceChecksum } from './reference-checksum.js';

const CLIENT = Uint8Array.of(198, 18, 0, 1);
const SERVER = Uint8Array.of(198, 18, 0, 2);

/**
 * A Linux SYN from 198.18.0.1:40000 to 198.18.0.2:80: window 64240, MSS 1460, SACK_PERM + TS,
 * NOP, WS 7. Checksum 0x53a8 over the IPv4 pseudo-header, computed independently.
 */
const SYN = hex(`
  9c40 0050 6f1a2b3c 00000000 a002 faf0 53a8 0000
  020405b4 0402080a 0a1b2c3d 00000000 01030307`);

const SYN_REPR: TcpRepr = {
  srcPort: 40000,
  dstPort: 80,
  seq: 0x6f1a2b3c,
  ack: 0,
  flags: TcpFlags.SYN,
  window: 64240,
  urgentPointer: 0,
  mss: 1460,
  windowScale: 7,
  sackPermitted: true,
  sackBlocks: [],
  timestamp: { tsVal: 0x0a1b2c3d, tsEcr: 0 },
  payloadLength: 0,
};

/**
 * The server's reply data, 'hello\n' with psh|ack, window 502, NOP NOP TS and NOP NOP SACK with
 * one block, from 198.18.0.2:80 to 198.18.0.1:40000. Checksum 0xd98b computed independently.
 */
const DATA = hex(`
  0050 9c40 11223344 6f1a2ba1 b018 01f6 d98b 0000
  0101080a 0000abcd 0a1b2c3d 0101050a 6f1a2c05 6f1a2d00
  68656c6c6f0a`);

const DATA_REPR: TcpRepr = {
  srcPort: 80,
  dstPort: 40000,
  seq: 0x11223344,
  ack: 0x6f1a2ba1,
  flags: TcpFlags.PSH | TcpFlags.ACK,
  window: 502,
  urgentPointer: 0,
  mss: undefined,
  windowScale: undefined,
  sackPermitted: false,
  sackBlocks: [[0x6f1a2c05, 0x6f1a2d00]],
  timestamp: { tsVal: 0xabcd, tsEcr: 0x0a1b2c3d },
  payloadLength: 6,
};

function pseudo(src: Uint8Array, dst: Uint8Array, length: number): number {
  return pseudoHeaderSum(src, dst, 6, length);
}

describe('TcpSegment', () => {
  it('reads every field of a Linux SYN', () => {
    const seg = new TcpSegment(SYN);
    expect(seg.check()).toBeUndefined();
    expect(seg.srcPort).toBe(40000);
    expect(seg.dstPort).toBe(80);
    expect(seg.seqNumber).toBe(0x6f1a2b3c);
    expect(seg.ackNumber).toBe(0);
    expect(seg.dataOffset).toBe(10);
    expect(seg.headerLength).toBe(40);
    expect(formatTcpFlags(seg.flags)).toBe('syn');
    expect([seg.fin, seg.syn, seg.rst, seg.psh, seg.ack, seg.urg]).toEqual([
      false,
      true,
      false,
      false,
      false,
      false,
    ]);
    expect(seg.window).toBe(64240);
    expect(seg.checksum).toBe(0x53a8);
    expect(seg.urgentPointer).toBe(0);
    expect(seg.options).toEqual(SYN.subarray(20, 40));
    expect(seg.payload.length).toBe(0);
    expect(seg.segmentLength).toBe(1);
    expect(seg.verifyChecksum(pseudo(CLIENT, SERVER, SYN.length))).toBe(true);
    expect(seg.verifyChecksum(pseudo(SERVER, CLIENT, SYN.length) + 1)).toBe(false);
  });

  it('agrees with the naive reference checksum', () => {
    const copy = SYN.slice();
    copy[16] = 0;
    copy[17] = 0;
    expect(referenceChecksum(pseudoV4(CLIENT, SERVER, 6, SYN.length), copy)).toBe(0x53a8);
    const data = DATA.slice();
    data[16] = 0;
    data[17] = 0;
    expect(referenceChecksum(pseudoV4(SERVER, CLIENT, 6, DATA.length), data)).toBe(0xd98b);
  });

  it('reads a data segment with its payload and SEG.LEN', () => {
    const seg = new TcpSegment(DATA);
    expect(seg.check()).toBeUndefined();
    expect(seg.headerLength).toBe(44);
    expect(formatTcpFlags(seg.flags)).toBe('psh|ack');
    expect(new TextDecoder().decode(seg.payload)).toBe('hello\n');
    expect(seg.segmentLength).toBe(6);
    expect(seg.verifyChecksum(pseudo(SERVER, CLIENT, DATA.length))).toBe(true);
  });

  it('counts SYN and FIN in SEG.LEN (RFC 9293 §3.4)', () => {
    const seg = new TcpSegment(new Uint8Array(25));
    seg.dataOffset = 5;
    expect(seg.segmentLength).toBe(5);
    seg.fin = true;
    expect(seg.segmentLength).toBe(6);
    seg.syn = true;
    expect(seg.segmentLength).toBe(7);
  });

  it('writes each field into its own bytes only (0xA5 background)', () => {
    const buf = new Uint8Array(24).fill(0xa5);
    const seg = new TcpSegment(buf);
    seg.srcPort = 0x1234;
    seg.dstPort = 0x5678;
    seg.seqNumber = 0xdeadbeef;
    seg.ackNumber = 0x01020304;
    seg.window = 0xfedc;
    seg.checksum = 0xbeef;
    seg.urgentPointer = 0x0007;
    expect(buf).toEqual(hex('1234 5678 deadbeef 01020304 a5a5 fedc beef 0007 a5a5a5a5'));
    seg.dataOffset = 6;
    expect(buf[12]).toBe(0x65); // the reserved low nibble is kept
    seg.headerLength = 24;
    expect(buf[12]).toBe(0x65);
    expect(seg.headerLength).toBe(24);
    seg.flags = 0;
    seg.syn = true;
    seg.ack = true;
    expect(buf[13]).toBe(0x12);
    seg.fin = true;
    seg.rst = true;
    seg.psh = true;
    seg.urg = true;
    expect(formatTcpFlags(seg.flags)).toBe('fin|syn|rst|psh|ack|urg');
    seg.syn = false;
    seg.urg = false;
    expect(buf[13]).toBe(0x1d);
    expect(buf.subarray(20)).toEqual(hex('a5a5a5a5'));
    expect(seg.options).toEqual(hex('a5a5a5a5'));
  });

  it('fills a checksum that verifies and catches a flipped bit', () => {
    const buf = DATA.slice();
    buf[16] = 0xa5;
    buf[17] = 0xa5;
    const seg = new TcpSegment(buf);
    const sum = pseudo(SERVER, CLIENT, buf.length);
    seg.fillChecksum(sum);
    expect(buf).toEqual(DATA);
    buf[45] = buf[45]! ^ 0x10;
    expect(seg.verifyChecksum(sum)).toBe(false);
    fillTcpChecksum(buf, sum);
    expect(seg.verifyChecksum(sum)).toBe(true);
  });

  it('returns a drop reason at every truncated length, never throwing', () => {
    const options = new TcpOptions();
    for (const whole of [SYN, DATA]) {
      const header = new TcpSegment(whole).headerLength;
      for (let n = 0; n < header; n++) {
        const seg = new TcpSegment(whole.subarray(0, n));
        expect(seg.check()).toBe('tcp-truncated');
        expect(TcpRepr.parse(seg, options)).toBe('tcp-truncated');
      }
      for (let n = header; n <= whole.length; n++) {
        expect(new TcpSegment(whole.subarray(0, n)).check()).toBeUndefined();
      }
    }
  });

  it('rejects a data offset below 5', () => {
    for (let off = 0; off < 5; off++) {
      const buf = SYN.slice();
      buf[12] = off << 4;
      expect(new TcpSegment(buf).check()).toBe('tcp-bad-header-length');
    }
  });

  it('never throws on random bytes, and check() keeps every getter in bounds', () => {
    const options = new TcpOptions();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const seg = new TcpSegment(bytes);
        const drop = seg.check();
        const r = TcpRepr.parse(seg, options);
        if (drop !== undefined) {
          expect(r).toBe(drop);
          return;
        }
        const fields = [seg.srcPort, seg.dstPort, seg.seqNumber, seg.ackNumber, seg.flags, seg.window];
        for (const v of [...fields, seg.checksum, seg.urgentPointer, seg.segmentLength]) {
          expect(Number.isInteger(v)).toBe(true);
        }
        expect(seg.options.length).toBe(seg.headerLength - 20);
        expect(seg.payload.length).toBe(bytes.length - seg.headerLength);
        seg.verifyChecksum(0);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('TcpRepr', () => {
  it('parses the Linux SYN', () => {
    expect(TcpRepr.parse(new TcpSegment(SYN), new TcpOptions())).toEqual(SYN_REPR);
    expect(TcpRepr.headerLength(SYN_REPR)).toBe(40);
    expect(TcpRepr.length(SYN_REPR)).toBe(40);
  });

  it('emits the Linux SYN byte for byte into a 0xA5 buffer', () => {
    const buf = new Uint8Array(40).fill(0xa5);
    TcpRepr.emit(SYN_REPR, buf, pseudo(CLIENT, SERVER, 40));
    expect(buf).toEqual(SYN);
  });

  it('emits the data segment around a payload already in place, at an offset in a larger buffer', () => {
    const packet = new Uint8Array(20 + DATA.length + 3).fill(0xa5);
    const tcp = packet.subarray(20, 20 + TcpRepr.length(DATA_REPR));
    tcp.set(new TextEncoder().encode('hello\n'), TcpRepr.headerLength(DATA_REPR));
    TcpRepr.emit(DATA_REPR, tcp, pseudo(SERVER, CLIENT, TcpRepr.length(DATA_REPR)));
    expect(tcp).toEqual(DATA);
    expect(packet.subarray(0, 20)).toEqual(new Uint8Array(20).fill(0xa5));
    expect(packet.subarray(20 + DATA.length)).toEqual(hex('a5a5a5'));
    expect(TcpRepr.parse(new TcpSegment(DATA), new TcpOptions())).toEqual(DATA_REPR);
  });

  it('emits a bare RST over IPv6 with a checksum matching the reference', () => {
    const src = hex('fd00 0000 0000 0000 0000 0000 0000 0001');
    const dst = hex('fd00 0000 0000 0000 0000 0000 0000 0002');
    const rst: TcpRepr = {
      srcPort: 443,
      dstPort: 51000,
      seq: 0,
      ack: 0xfffffffe,
      flags: TcpFlags.RST | TcpFlags.ACK,
      window: 0,
      urgentPointer: 0,
      sackPermitted: false,
      sackBlocks: [],
      payloadLength: 0,
    };
    const buf = new Uint8Array(TcpRepr.length(rst)).fill(0xa5);
    TcpRepr.emit(rst, buf, pseudoHeaderSum(src, dst, 6, buf.length));
    const zeroed = buf.slice();
    zeroed[16] = 0;
    zeroed[17] = 0;
    const expected = referenceChecksum(pseudoV6(src, dst, 6, buf.length), zeroed);
    expect(buf).toEqual(
      hex(`01bb c738 00000000 fffffffe 5014 0000 ${expected.toString(16).padStart(4, '0')} 0000`),
    );
  });

  it('reports a malformed option as the drop reason', () => {
    const buf = SYN.slice();
    buf[21] = 0; // MSS length 0
    expect(TcpRepr.parse(new TcpSegment(buf), new TcpOptions())).toBe('tcp-bad-option-length');
  });

  it('round-trips any valid repr and payload through emit and parse', () => {
    const u16 = fc.nat(0xffff);
    const u32 = fc.nat(0xffffffff);
    const repr = fc.record({
      srcPort: u16,
      dstPort: u16,
      seq: u32,
      ack: u32,
      flags: fc.nat(0xff),
      window: u16,
      urgentPointer: u16,
      mss: fc.option(u16, { nil: undefined }),
      windowScale: fc.option(fc.nat(14), { nil: undefined }),
      sackPermitted: fc.boolean(),
      sackBlocks: fc.array(fc.tuple(u32, u32), { maxLength: 2 }),
      timestamp: fc.option(fc.record({ tsVal: u32, tsEcr: u32 }), { nil: undefined }),
    });
    const options = new TcpOptions();
    fc.assert(
      fc.property(repr, fc.uint8Array({ maxLength: 100 }), fc.boolean(), (fields, payload, v6) => {
        const r: TcpRepr = { ...fields, payloadLength: payload.length };
        const buf = new Uint8Array(TcpRepr.length(r)).fill(0xa5);
        buf.set(payload, TcpRepr.headerLength(r));
        const [src, dst] = v6
          ? [new Uint8Array(16).fill(0xfd), new Uint8Array(16).fill(7)]
          : [CLIENT, SERVER];
        const sum = pseudoHeaderSum(src, dst, 6, buf.length);
        TcpRepr.emit(r, buf, sum);
        const seg = new TcpSegment(buf);
        expect(seg.verifyChecksum(sum)).toBe(true);
        expect(TcpRepr.parse(seg, options)).toEqual(r);
        expect(seg.payload).toEqual(payload);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('TCP flags', () => {
  it('formats and parses flag sets', () => {
    expect(formatTcpFlags(TcpFlags.SYN | TcpFlags.ACK)).toBe('syn|ack');
    expect(formatTcpFlags(TcpFlags.FIN | TcpFlags.ACK)).toBe('fin|ack');
    expect(formatTcpFlags(TcpFlags.RST)).toBe('rst');
    expect(formatTcpFlags(0)).toBe('');
    expect(formatTcpFlags(0xff)).toBe('fin|syn|rst|psh|ack|urg|ece|cwr');
    expect(parseTcpFlags('ack|syn')).toBe(0x12);
    expect(parseTcpFlags('')).toBe(0);
    expect(parseTcpFlags('syn|bogus')).toBeUndefined();
    for (let f = 0; f < 256; f++) expect(parseTcpFlags(formatTcpFlags(f))).toBe(f);
  });
});
