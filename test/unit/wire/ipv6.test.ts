import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { IPV6_HEADER_LENGTH, IPV6_MIN_MTU, Ipv6Packet, Ipv6Repr } from '../../../src/stack/wire/ipv6.js';
import { strictBytes } from './strict-bytes.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

const FD00_1 = hex('fd000000 00000000 00000000 00000001');
const FD00_2 = hex('fd000000 00000000 00000000 00000002');

/**
 * A DNS-port UDP datagram "hello" from [fd00::1]:12345 to [fd00::2]:53, traffic class 0xb8 (EF),
 * flow label 0xabcde, hop limit 64. The UDP checksum 0x918f was summed by hand (pseudo-header
 * 0x1fa21 + header 0x307b + data 0x143d1 = 0x36e6d, folded 0x6e70, complemented 0x918f) and agrees
 * with a Python RFC 1071 reference.
 */
const UDP6 = hex(
  `6b8abcde 000d1140 ${'fd00'.padEnd(30, '0')}01 ${'fd00'.padEnd(30, '0')}02 30390035 000d918f 68656c6c 6f`,
);

describe('Ipv6Packet', () => {
  it('reads the fields of a real UDP packet', () => {
    const p = new Ipv6Packet(UDP6);
    expect(p.check()).toBeUndefined();
    expect(p.version).toBe(6);
    expect(p.trafficClass).toBe(0xb8);
    expect(p.flowLabel).toBe(0xabcde);
    expect(p.payloadLength).toBe(13);
    expect(p.nextHeader).toBe(IpProtocol.UDP);
    expect(p.hopLimit).toBe(64);
    expect(p.src).toEqual(FD00_1);
    expect(p.dst).toEqual(FD00_2);
    expect(p.payload).toEqual(hex('30390035 000d918f 68656c6c 6f'));
    expect(p.payload.buffer).toBe(UDP6.buffer);
    expect(IPV6_HEADER_LENGTH).toBe(40);
    expect(IPV6_MIN_MTU).toBe(1280);
  });

  it('ignores bytes past the payload', () => {
    const padded = new Uint8Array(UDP6.length + 5).fill(0xee);
    padded.set(UDP6);
    const p = new Ipv6Packet(padded);
    expect(p.check()).toBeUndefined();
    expect(p.payload.length).toBe(13);
  });

  it('drops every truncation of a valid packet', () => {
    for (let n = 0; n < UDP6.length; n++) {
      expect(new Ipv6Packet(UDP6.subarray(0, n)).check(), `length ${n}`).toBe('ipv6-truncated');
    }
  });

  it('names a bad version and an unsupported jumbogram', () => {
    const v4 = UDP6.slice();
    v4[0] = 0x4b;
    expect(new Ipv6Packet(v4).check()).toBe('ipv6-bad-version');
    const jumbo = UDP6.slice();
    jumbo[4] = 0;
    jumbo[5] = 0;
    jumbo[6] = IpProtocol.HOPOPTS;
    expect(new Ipv6Packet(jumbo).check()).toBe('ipv6-jumbogram');
    // An empty payload without Hop-by-Hop is just an empty packet.
    const empty = jumbo.slice(0, 40);
    empty[6] = IpProtocol.NONE;
    expect(new Ipv6Packet(empty).check()).toBeUndefined();
    expect(new Ipv6Packet(empty).payload.length).toBe(0);
  });

  it('writes every field through setters into a 0xA5-filled buffer', () => {
    const b = new Uint8Array(UDP6.length).fill(0xa5);
    b.set(UDP6.subarray(40), 40);
    const p = new Ipv6Packet(b);
    p.version = 6;
    p.trafficClass = 0xb8;
    p.flowLabel = 0xabcde;
    p.payloadLength = 13;
    p.nextHeader = IpProtocol.UDP;
    p.hopLimit = 64;
    p.src = FD00_1;
    p.dst = FD00_2;
    expect(b).toEqual(UDP6);
  });

  it('keeps neighbouring bits when setting packed fields', () => {
    const b = new Uint8Array(40).fill(0xa5);
    const p = new Ipv6Packet(b);
    p.trafficClass = 0x12;
    expect([b[0], b[1]]).toEqual([0xa1, 0x25]);
    expect(p.version).toBe(0xa);
    expect(p.flowLabel).toBe(0x5a5a5);
    p.flowLabel = 0xfffff;
    expect(p.trafficClass).toBe(0x12);
    expect(p.flowLabel).toBe(0xfffff);
    p.flowLabel = 0x123456; // only 20 bits fit
    expect(p.flowLabel).toBe(0x23456);
    p.version = 6;
    expect(p.trafficClass).toBe(0x12);
  });
});

describe('Ipv6Repr', () => {
  const REPR: Ipv6Repr = {
    src: FD00_1,
    dst: FD00_2,
    nextHeader: IpProtocol.UDP,
    payloadLength: 13,
    hopLimit: 64,
    trafficClass: 0xb8,
    flowLabel: 0xabcde,
  };

  it('parses the UDP packet', () => {
    expect(Ipv6Repr.parse(new Ipv6Packet(UDP6))).toEqual(REPR);
  });

  it('emits the golden header into a 0xA5-filled buffer', () => {
    expect(Ipv6Repr.length(REPR)).toBe(53);
    const b = new Uint8Array(Ipv6Repr.length(REPR)).fill(0xa5);
    b.set(UDP6.subarray(40), 40);
    Ipv6Repr.emit(REPR, b);
    expect(b).toEqual(UDP6);
    expect(() => Ipv6Repr.emit(REPR, new Uint8Array(39))).toThrow(RangeError);
    expect(() => Ipv6Repr.emit({ ...REPR, payloadLength: 65536 }, new Uint8Array(40))).toThrow(RangeError);
  });

  it('round-trips parse(emit(r)) for every valid repr', () => {
    const repr = fc.record({
      src: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      dst: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      nextHeader: fc.nat(255),
      payloadLength: fc.integer({ min: 1, max: 300 }),
      hopLimit: fc.nat(255),
      trafficClass: fc.nat(255),
      flowLabel: fc.nat(0xfffff),
    });
    fc.assert(
      fc.property(repr, (r) => {
        const b = new Uint8Array(Ipv6Repr.length(r)).fill(0xa5);
        Ipv6Repr.emit(r, b);
        const p = new Ipv6Packet(b);
        expect(p.check()).toBeUndefined();
        expect(Ipv6Repr.parse(p)).toEqual(r);
      }),
    );
  });
});

describe('Ipv6Packet on arbitrary bytes', () => {
  function readAll(bytes: Uint8Array): void {
    const p = new Ipv6Packet(strictBytes(bytes));
    if (p.check() !== undefined) return;
    expect(p.payload.length).toBe(p.payloadLength);
    const r = Ipv6Repr.parse(p);
    expect(r.src.length + r.dst.length).toBe(32);
    void [r.trafficClass, r.flowLabel, r.hopLimit, r.nextHeader];
  }

  it('never throws and never reads past the bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), readAll), { numRuns: 3000 });
    const looksValid = fc
      .tuple(fc.nat(80), fc.uint8Array({ minLength: 40, maxLength: 120 }))
      .map(([len, b]) => {
        b[0] = 0x60 | (b[0]! & 0x0f);
        b[4] = 0;
        b[5] = len;
        return b;
      });
    fc.assert(fc.property(looksValid, readAll), { numRuns: 3000 });
  });
});
