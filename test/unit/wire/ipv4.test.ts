import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IPV4_HEADER_LENGTH, IpProtocol, Ipv4Packet, Ipv4Repr } from '../../../src/stack/wire/ipv4.js';
import { strictBytes } from './strict-bytes.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/**
 * `ping -c1 -s56 198.18.0.2` from 198.18.0.1: id 0x1234, DF, TTL 64. The header checksum 0x9c4d
 * was worked out by hand (0x4500+0x0054+0x1234+0x4000+0x4001+0xc612+0x0001+0xc612+0x0002 =
 * 0x263b0, folded 0x63b2, complemented 0x9c4d) and agrees with a Python RFC 1071 reference.
 */
const ICMP_DATA = Array.from({ length: 56 }, (_, i) => (0x10 + i).toString(16).padStart(2, '0')).join('');
const PING = hex(`45000054 12344000 40019c4d c6120001 c6120002 08003f29 00010001 ${ICMP_DATA}`);

/** An IGMPv2 report to 224.0.0.22 with the Router Alert option (RFC 2113): IHL 6, checksum 0x3dee. */
const IGMP_WITH_OPTION = hex('46c00020 00004000 01023dee c6120001 e0000016 94040000 16000000 e0000016');

describe('Ipv4Packet', () => {
  it('reads the fields of a real echo request', () => {
    const p = new Ipv4Packet(PING);
    expect(p.check()).toBeUndefined();
    expect(p.version).toBe(4);
    expect(p.ihl).toBe(5);
    expect(p.headerLength).toBe(20);
    expect(p.dscp).toBe(0);
    expect(p.ecn).toBe(0);
    expect(p.totalLength).toBe(84);
    expect(p.identification).toBe(0x1234);
    expect(p.flags).toBe(0b010);
    expect(p.dontFragment).toBe(true);
    expect(p.moreFragments).toBe(false);
    expect(p.fragmentOffset).toBe(0);
    expect(p.isFragment).toBe(false);
    expect(p.ttl).toBe(64);
    expect(p.protocol).toBe(IpProtocol.ICMP);
    expect(p.headerChecksum).toBe(0x9c4d);
    expect([...p.src]).toEqual([198, 18, 0, 1]);
    expect([...p.dst]).toEqual([198, 18, 0, 2]);
    expect(p.options.length).toBe(0);
    expect(p.payload.length).toBe(64);
    expect(p.payload[0]).toBe(0x08);
    expect(p.verifyChecksum()).toBe(true);
  });

  it('returns zero-copy subarrays', () => {
    const bytes = PING.slice();
    const p = new Ipv4Packet(bytes);
    expect(p.src.buffer).toBe(bytes.buffer);
    expect(p.payload.byteOffset).toBe(bytes.byteOffset + 20);
    bytes[15] = 9;
    expect(p.src[3]).toBe(9);
  });

  it('reads options and the payload after them', () => {
    const p = new Ipv4Packet(IGMP_WITH_OPTION);
    expect(p.check()).toBeUndefined();
    expect(p.ihl).toBe(6);
    expect(p.headerLength).toBe(24);
    expect(p.dscp).toBe(0x30);
    expect(p.options).toEqual(hex('94040000'));
    expect(p.payload).toEqual(hex('16000000e0000016'));
    expect(p.verifyChecksum()).toBe(true);
    const r = Ipv4Repr.parse(p);
    expect(r).toMatchObject({ protocol: 2, payloadLength: 8, ttl: 1, dscp: 0x30 });
  });

  it('ignores link padding past Total Length', () => {
    const padded = new Uint8Array(PING.length + 6);
    padded.set(PING);
    padded.fill(0xee, PING.length);
    const p = new Ipv4Packet(padded);
    expect(p.check()).toBeUndefined();
    expect(p.payload.length).toBe(64);
    expect(p.payload[63]).toBe(0x47);
  });

  it('drops every truncation of a valid packet', () => {
    for (let n = 0; n < PING.length; n++) {
      expect(new Ipv4Packet(PING.subarray(0, n)).check(), `length ${n}`).toBe('ipv4-truncated');
    }
    for (let n = 0; n < IGMP_WITH_OPTION.length; n++) {
      expect(new Ipv4Packet(IGMP_WITH_OPTION.subarray(0, n)).check(), `length ${n}`).toBe('ipv4-truncated');
    }
  });

  it('names each malformed header', () => {
    const mutate = (f: (b: Uint8Array) => void) => {
      const b = PING.slice();
      f(b);
      return new Ipv4Packet(b).check();
    };
    expect(mutate((b) => (b[0] = 0x65))).toBe('ipv4-bad-version');
    expect(mutate((b) => (b[0] = 0x44))).toBe('ipv4-bad-header-length');
    expect(mutate((b) => (b[0] = 0x40))).toBe('ipv4-bad-header-length');
    expect(mutate((b) => (b[3] = 19))).toBe('ipv4-bad-total-length');
    expect(mutate((b) => (b[3] = 0))).toBe('ipv4-bad-total-length');
    expect(mutate((b) => (b[3] = 85))).toBe('ipv4-truncated');
    expect(new Ipv4Packet(hex('4f000054 00000000 40010000 c6120001 c6120002')).check()).toBe(
      'ipv4-truncated',
    );
    // A header of 60 bytes (IHL 15) with Total Length 40 is shorter than its own header.
    const long = new Uint8Array(60);
    long[0] = 0x4f;
    long[3] = 40;
    expect(new Ipv4Packet(long).check()).toBe('ipv4-bad-total-length');
  });

  it('detects a corrupted header and refills the checksum', () => {
    const bytes = PING.slice();
    const p = new Ipv4Packet(bytes);
    p.ttl = 63;
    expect(p.verifyChecksum()).toBe(false);
    p.fillChecksum();
    // RFC 1624: decrementing TTL by one adds 0x0100 to the checksum.
    expect(p.headerChecksum).toBe(0x9d4d);
    expect(p.verifyChecksum()).toBe(true);
    // The checksum covers options too.
    const opt = IGMP_WITH_OPTION.slice();
    opt[21] = 0x05;
    expect(new Ipv4Packet(opt).verifyChecksum()).toBe(false);
    // Payload bytes are not covered.
    bytes[30] = bytes[30]! ^ 0xff;
    expect(p.verifyChecksum()).toBe(true);
  });

  it('writes every field through setters into a 0xA5-filled buffer', () => {
    const b = new Uint8Array(PING.length).fill(0xa5);
    const p = new Ipv4Packet(b);
    p.version = 4;
    p.ihl = 5;
    p.dscp = 0;
    p.ecn = 0;
    p.totalLength = 84;
    p.identification = 0x1234;
    p.flags = 0;
    p.fragmentOffset = 0;
    p.dontFragment = true;
    p.moreFragments = false;
    p.ttl = 64;
    p.protocol = IpProtocol.ICMP;
    p.src = Uint8Array.of(198, 18, 0, 1);
    p.dst = Uint8Array.of(198, 18, 0, 2);
    p.fillChecksum();
    expect(b.subarray(0, 20)).toEqual(PING.subarray(0, 20));
    expect(b.subarray(20).every((x) => x === 0xa5)).toBe(true);
  });

  it('keeps neighbouring bits when setting packed fields', () => {
    const b = new Uint8Array(20).fill(0xa5);
    const p = new Ipv4Packet(b);
    p.dscp = 0x2e; // EF
    expect(b[1]).toBe((0x2e << 2) | 0x01);
    p.ecn = 3;
    expect(b[1]).toBe((0x2e << 2) | 0x03);
    expect(p.dscp).toBe(0x2e);
    p.moreFragments = true;
    p.dontFragment = false;
    expect(b[6]! >>> 5).toBe(0b101);
    p.fragmentOffset = 1480;
    expect(p.fragmentOffset).toBe(1480);
    expect(((b[6]! & 0x1f) << 8) | b[7]!).toBe(185);
    expect(p.flags).toBe(0b101);
    expect(p.isFragment).toBe(true);
    p.fragmentOffset = 0xfff8;
    expect(p.fragmentOffset).toBe(0xfff8);
    expect(p.moreFragments).toBe(true);
    p.moreFragments = false;
    expect(p.isFragment).toBe(true);
    p.fragmentOffset = 0;
    expect(p.isFragment).toBe(false);
    p.version = 4;
    expect(p.ihl).toBe(5);
    p.ihl = 15;
    expect(p.version).toBe(4);
    expect(p.headerLength).toBe(60);
  });
});

describe('Ipv4Repr', () => {
  const PING_REPR: Ipv4Repr = {
    src: Uint8Array.of(198, 18, 0, 1),
    dst: Uint8Array.of(198, 18, 0, 2),
    protocol: IpProtocol.ICMP,
    payloadLength: 64,
    ttl: 64,
    identification: 0x1234,
    dontFragment: true,
    dscp: 0,
    ecn: 0,
  };

  it('parses the echo request', () => {
    expect(Ipv4Repr.parse(new Ipv4Packet(PING))).toEqual(PING_REPR);
  });

  it('rejects a bad checksum unless the caller verified it', () => {
    const b = PING.slice();
    b[11] = b[11]! ^ 1;
    expect(Ipv4Repr.parse(new Ipv4Packet(b))).toBe('ipv4-bad-checksum');
    expect(Ipv4Repr.parse(new Ipv4Packet(b), true)).toEqual(PING_REPR);
  });

  it('emits the golden header into a 0xA5-filled buffer', () => {
    expect(Ipv4Repr.length(PING_REPR)).toBe(84);
    const b = new Uint8Array(Ipv4Repr.length(PING_REPR)).fill(0xa5);
    b.set(PING.subarray(20), 20);
    Ipv4Repr.emit(PING_REPR, b);
    expect(b).toEqual(PING);
  });

  it('emits at an offset into a larger buffer and refuses a short one', () => {
    const big = new Uint8Array(200).fill(0xa5);
    Ipv4Repr.emit(PING_REPR, big.subarray(16, 16 + 84));
    expect(big.subarray(16, 36)).toEqual(PING.subarray(0, 20));
    expect(big[15]).toBe(0xa5);
    expect(big[36]).toBe(0xa5);
    expect(() => Ipv4Repr.emit(PING_REPR, new Uint8Array(19))).toThrow(RangeError);
    expect(() => Ipv4Repr.emit({ ...PING_REPR, payloadLength: 65516 }, new Uint8Array(20))).toThrow(
      RangeError,
    );
  });

  it('round-trips parse(emit(r)) for every valid repr', () => {
    const repr = fc.record({
      src: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      dst: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      protocol: fc.nat(255),
      payloadLength: fc.nat(200),
      ttl: fc.nat(255),
      identification: fc.nat(0xffff),
      dontFragment: fc.boolean(),
      dscp: fc.nat(63),
      ecn: fc.nat(3),
    });
    fc.assert(
      fc.property(repr, (r) => {
        const b = new Uint8Array(Ipv4Repr.length(r)).fill(0xa5);
        Ipv4Repr.emit(r, b);
        const p = new Ipv4Packet(b);
        expect(p.check()).toBeUndefined();
        expect(p.verifyChecksum()).toBe(true);
        expect(p.isFragment).toBe(false);
        expect(p.headerLength).toBe(IPV4_HEADER_LENGTH);
        expect(Ipv4Repr.parse(p)).toEqual(r);
      }),
    );
  });
});

describe('Ipv4Packet on arbitrary bytes', () => {
  function readAll(bytes: Uint8Array): void {
    const p = new Ipv4Packet(strictBytes(bytes));
    if (p.check() !== undefined) return;
    expect(p.headerLength).toBeGreaterThanOrEqual(20);
    expect(p.options.length).toBe(p.headerLength - 20);
    expect(p.payload.length).toBe(p.totalLength - p.headerLength);
    expect(p.src.length).toBe(4);
    expect(p.dst.length).toBe(4);
    void [p.dscp, p.ecn, p.identification, p.flags, p.fragmentOffset, p.isFragment, p.ttl, p.protocol];
    const r = Ipv4Repr.parse(p);
    if (typeof r !== 'string') expect(r.payloadLength).toBe(p.payload.length);
  }

  it('is checked by a harness that catches out-of-bounds reads', () => {
    expect(() => new Ipv4Packet(strictBytes(new Uint8Array(3))).totalLength).toThrow(RangeError);
  });

  it('never throws and never reads past the bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), readAll), { numRuns: 5000 });
  });

  it('never throws on bytes that look like a header', () => {
    const looksValid = fc
      .tuple(fc.nat(15), fc.nat(120), fc.uint8Array({ minLength: 0, maxLength: 120 }))
      .map(([ihl, total, rest]) => {
        const b = new Uint8Array(Math.max(4, rest.length));
        b.set(rest.subarray(0, b.length));
        b[0] = 0x40 | ihl;
        b[2] = 0;
        b[3] = total;
        return b;
      });
    fc.assert(
      fc.property(looksValid, (b) => {
        readAll(b);
        const p = new Ipv4Packet(strictBytes(b));
        if (p.check() === undefined) p.fillChecksum();
        readAll(b);
      }),
      { numRuns: 5000 },
    );
  });
});
