import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pseudoHeaderSum, sum16 } from '../../../src/stack/wire/checksum.js';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { UDP_HEADER_LENGTH, UdpDatagram, UdpRepr } from '../../../src/stack/wire/udp.js';
import { strictBytes } from './strict-bytes.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

const V4_SRC = Uint8Array.of(198, 18, 0, 1);
const V4_DST = Uint8Array.of(198, 18, 0, 2);
const V6_SRC = hex('fd000000 00000000 00000000 00000001');
const V6_DST = hex('fd000000 00000000 00000000 00000002');

/**
 * "hello" from 198.18.0.1:5353 to 198.18.0.2:53. Checksum by hand: pseudo-header 0x18c45 + header
 * 0x152b + data 0x143d1 = 0x2e541, folded 0xe543, complemented 0x1abc (a Python reference agrees).
 */
const UDP4 = hex('14e90035 000d1abc 68656c6c 6f');
/** "hello" from [fd00::1]:12345 to [fd00::2]:53, checksum 0x918f (worked out in ipv6.test.ts). */
const UDP6 = hex('30390035 000d918f 68656c6c 6f');

const sum4 = (length: number) => pseudoHeaderSum(V4_SRC, V4_DST, IpProtocol.UDP, length);
const sum6 = (length: number) => pseudoHeaderSum(V6_SRC, V6_DST, IpProtocol.UDP, length);

describe('UdpDatagram', () => {
  it('reads the fields of real datagrams and verifies their checksums', () => {
    const d = new UdpDatagram(UDP4);
    expect(d.check()).toBeUndefined();
    expect([d.srcPort, d.dstPort, d.length, d.checksum]).toEqual([5353, 53, 13, 0x1abc]);
    expect(Buffer.from(d.payload).toString()).toBe('hello');
    expect(d.payload.buffer).toBe(UDP4.buffer);
    expect(d.verifyChecksum(sum4(13), false)).toBe(true);
    const d6 = new UdpDatagram(UDP6);
    expect(d6.check()).toBeUndefined();
    expect(d6.verifyChecksum(sum6(13), true)).toBe(true);
    // The wrong pseudo-header fails.
    expect(d6.verifyChecksum(sum4(13), true)).toBe(false);
  });

  it('treats a zero checksum as none over IPv4 and as invalid over IPv6', () => {
    const b = UDP4.slice();
    b[6] = 0;
    b[7] = 0;
    expect(new UdpDatagram(b).verifyChecksum(sum4(13), false)).toBe(true);
    const b6 = UDP6.slice();
    b6[6] = 0;
    b6[7] = 0;
    expect(new UdpDatagram(b6).verifyChecksum(sum6(13), true)).toBe(false);
  });

  it('detects a corrupted payload byte', () => {
    const b = UDP6.slice();
    b[12] = b[12]! ^ 0x20;
    expect(new UdpDatagram(b).verifyChecksum(sum6(13), true)).toBe(false);
  });

  it('ignores bytes past Length in the payload and the checksum', () => {
    const b = new Uint8Array(UDP4.length + 3).fill(0xee);
    b.set(UDP4);
    const d = new UdpDatagram(b);
    expect(d.check()).toBeUndefined();
    expect(d.payload.length).toBe(5);
    expect(d.verifyChecksum(sum4(13), false)).toBe(true);
  });

  it('drops every truncation and every bad Length', () => {
    for (let n = 0; n < UDP4.length; n++) {
      const reason = new UdpDatagram(UDP4.subarray(0, n)).check();
      expect(reason, `length ${n}`).toBe(n < 8 ? 'udp-truncated' : 'udp-bad-length');
    }
    for (const length of [0, 7, 14, 0xffff]) {
      const b = UDP4.slice();
      b[4] = length >>> 8;
      b[5] = length & 0xff;
      expect(new UdpDatagram(b).check(), `length field ${length}`).toBe('udp-bad-length');
    }
    const empty = hex('14e90035 0008 0000');
    expect(new UdpDatagram(empty).check()).toBeUndefined();
    expect(new UdpDatagram(empty).payload.length).toBe(0);
  });

  it('writes every field through setters into a 0xA5-filled buffer', () => {
    const b = new Uint8Array(UDP6.length).fill(0xa5);
    b.set(UDP6.subarray(8), 8);
    const d = new UdpDatagram(b);
    d.srcPort = 12345;
    d.dstPort = 53;
    d.length = 13;
    d.fillChecksum(sum6(13));
    expect(b).toEqual(UDP6);
    d.checksum = 0xbeef;
    expect([b[6], b[7]]).toEqual([0xbe, 0xef]);
  });

  it('sends a computed zero checksum as 0xffff (RFC 768)', () => {
    // Choose the payload word that makes the one's-complement sum 0xffff, so ~sum is zero.
    const b = hex('04d2 0035 000a 0000 0000');
    const partial = sum16(b, sum6(10));
    const word = 0xffff - partial;
    b[8] = word >>> 8;
    b[9] = word & 0xff;
    const d = new UdpDatagram(b);
    d.fillChecksum(sum6(10));
    expect(d.checksum).toBe(0xffff);
    expect(d.verifyChecksum(sum6(10), true)).toBe(true);
    UdpRepr.emit(UdpRepr.parse(d), b, sum6(10));
    expect(d.checksum).toBe(0xffff);
  });
});

describe('UdpRepr', () => {
  it('parses a datagram', () => {
    expect(UdpRepr.parse(new UdpDatagram(UDP4))).toEqual({ srcPort: 5353, dstPort: 53, payloadLength: 5 });
    expect(UDP_HEADER_LENGTH).toBe(8);
  });

  it('emits the golden header over a payload already in place', () => {
    const r: UdpRepr = { srcPort: 5353, dstPort: 53, payloadLength: 5 };
    expect(UdpRepr.length(r)).toBe(13);
    const b = new Uint8Array(UdpRepr.length(r)).fill(0xa5);
    b.set(Buffer.from('hello'), 8);
    UdpRepr.emit(r, b, sum4(13));
    expect(b).toEqual(UDP4);
    expect(() => UdpRepr.emit(r, new Uint8Array(12), sum4(13))).toThrow(RangeError);
    expect(() => UdpRepr.emit({ ...r, payloadLength: 65528 }, new Uint8Array(8), 0)).toThrow(RangeError);
  });

  it('round-trips parse(emit(r)) with a valid checksum in both families', () => {
    fc.assert(
      fc.property(
        fc.nat(0xffff),
        fc.nat(0xffff),
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
        (srcPort, dstPort, payload, ipv6) => {
          const r: UdpRepr = { srcPort, dstPort, payloadLength: payload.length };
          const b = new Uint8Array(UdpRepr.length(r)).fill(0xa5);
          b.set(payload, 8);
          const sum = ipv6 ? sum6(b.length) : sum4(b.length);
          UdpRepr.emit(r, b, sum);
          const d = new UdpDatagram(b);
          expect(d.check()).toBeUndefined();
          expect(d.checksum).not.toBe(0);
          expect(d.verifyChecksum(sum, ipv6)).toBe(true);
          expect(UdpRepr.parse(d)).toEqual(r);
          expect(d.payload).toEqual(payload);
        },
      ),
    );
  });
});

describe('UdpDatagram on arbitrary bytes', () => {
  it('never throws and never reads past the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), fc.nat(0xffff), fc.boolean(), (bytes, sum, ipv6) => {
        const d = new UdpDatagram(strictBytes(bytes));
        if (d.check() !== undefined) return;
        expect(d.payload.length).toBe(d.length - 8);
        void [d.srcPort, d.dstPort, d.checksum];
        d.verifyChecksum(sum, ipv6);
        UdpRepr.parse(d);
        d.fillChecksum(sum);
        expect(d.verifyChecksum(sum, ipv6)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });
});
