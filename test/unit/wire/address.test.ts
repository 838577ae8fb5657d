import { isIP } from 'node:net';
import fc from 'fast-check';
import { Address6 } from 'ip-address';
import { describe, expect, it } from 'vitest';
import {
  addressEquals,
  formatAddress,
  IPV4_ADDRESS_LENGTH,
  IPV6_ADDRESS_LENGTH,
  isBroadcastV4,
  isLoopback,
  isMulticast,
  isUnspecified,
  parseAddress,
} from '../../../src/stack/wire/address.js';

const bytes = (...b: number[]) => Uint8Array.from(b);
const v6 = (hex: string) => Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));

describe('formatAddress', () => {
  it('formats IPv4 as a dotted quad', () => {
    expect(formatAddress(bytes(198, 18, 0, 1))).toBe('198.18.0.1');
    expect(formatAddress(bytes(0, 0, 0, 0))).toBe('0.0.0.0');
    expect(formatAddress(bytes(255, 255, 255, 255))).toBe('255.255.255.255');
  });

  it('formats IPv6 in RFC 5952 canonical form', () => {
    const cases: [string, string][] = [
      ['20010db8 00000000 00000000 00000001', '2001:db8::1'],
      // §4.2.3: the first of two equally long runs is compressed.
      ['20010db8 00000000 00010000 00000001', '2001:db8::1:0:0:1'],
      // §4.2.3: the longer run wins even when it comes second.
      ['20010000 00010000 00000000 00000001', '2001:0:1::1'],
      // §4.2.2: a single zero group is not compressed.
      ['20010db8 00000001 00010001 00010001', '2001:db8:0:1:1:1:1:1'],
      ['00000000 00000000 00000000 00000000', '::'],
      ['00000000 00000000 00000000 00000001', '::1'],
      ['fd000000 00000000 00000000 00000000', 'fd00::'],
      ['00010000 00000000 00000000 00000000', '1::'],
      ['fd00abcd 00ef0000 00000000 0000ff02', 'fd00:abcd:ef::ff02'],
      ['ffffffff ffffffff ffffffff ffffffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
      // §5: IPv4-mapped addresses keep the dotted tail.
      ['00000000 00000000 0000ffff c6120001', '::ffff:198.18.0.1'],
    ];
    for (const [hex, text] of cases) expect(formatAddress(v6(hex))).toBe(text);
  });

  it('agrees with ip-address correctForm() on random addresses', () => {
    const groups = fc.array(fc.oneof(fc.constant(0), fc.constant(1), fc.nat(0xffff)), {
      minLength: 8,
      maxLength: 8,
    });
    fc.assert(
      fc.property(groups, (g) => {
        const a = new Uint8Array(16);
        g.forEach((v, i) => {
          a[2 * i] = v >>> 8;
          a[2 * i + 1] = v & 0xff;
        });
        fc.pre(!(g.slice(0, 5).every((v) => v === 0) && g[5] === 0xffff));
        expect(formatAddress(a)).toBe(Address6.fromUnsignedByteArray([...a]).correctForm());
      }),
      { numRuns: 2000 },
    );
  });

  it('names other lengths without throwing', () => {
    expect(formatAddress(new Uint8Array(3))).toBe('invalid(3)');
    expect(formatAddress(new Uint8Array(0))).toBe('invalid(0)');
  });
});

describe('parseAddress', () => {
  it('parses dotted quads', () => {
    expect(parseAddress('198.18.0.1')).toEqual(bytes(198, 18, 0, 1));
    expect(parseAddress('0.0.0.0')).toEqual(bytes(0, 0, 0, 0));
    expect(parseAddress('255.255.255.255')).toEqual(bytes(255, 255, 255, 255));
    expect(parseAddress('10.0.100.250')).toEqual(bytes(10, 0, 100, 250));
  });

  it('parses IPv6 with ::, uppercase and an embedded IPv4 tail', () => {
    const cases: [string, string][] = [
      ['::', '00000000 00000000 00000000 00000000'],
      ['::1', '00000000 00000000 00000000 00000001'],
      ['1::', '00010000 00000000 00000000 00000000'],
      ['fd00::2', 'fd000000 00000000 00000000 00000002'],
      ['FD00:0:0:0:0:0:0:2', 'fd000000 00000000 00000000 00000002'],
      ['2001:DB8:0000:0:1::1', '20010db8 00000000 00010000 00000001'],
      ['1:2:3:4:5:6:7::', '00010002 00030004 00050006 00070000'],
      ['::2:3:4:5:6:7:8', '00000002 00030004 00050006 00070008'],
      ['::ffff:1.2.3.4', '00000000 00000000 0000ffff 01020304'],
      ['::1.2.3.4', '00000000 00000000 00000000 01020304'],
      ['1:2:3:4:5:6:198.18.0.1', '00010002 00030004 00050006 c6120001'],
      ['64:ff9b::198.18.0.1', '0064ff9b 00000000 00000000 c6120001'],
    ];
    for (const [text, hex] of cases) expect(parseAddress(text), text).toEqual(v6(hex));
  });

  it('rejects malformed text', () => {
    const bad = [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.0.0.1',
      '01.2.3.4',
      '1.2.00.4',
      '1.2.3.',
      '.1.2.3',
      '1.2.3.4.',
      '1.2.3.1000',
      '1.2.3.2560',
      '1.2.3.-4',
      '1.2.3.4 ',
      ' 1.2.3.4',
      '1..3.4',
      '0x1.2.3.4',
      ':',
      ':::',
      '1:::2',
      '1::2::3',
      ':1::2',
      '1::2:',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7:8::',
      '::1:2:3:4:5:6:7:8',
      '12345::',
      'g::',
      'fe80::1%eth0',
      '[::1]',
      '::1/128',
      '::ffff:1.2.3',
      '::ffff:1.2.3.256',
      '1:2:3:4:5:6:7:1.2.3.4',
      '1.2.3.4::',
      '::1.2.3.4:5',
    ];
    for (const s of bad) expect(parseAddress(s), s).toBeUndefined();
  });

  it('round-trips every address through formatAddress', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 4, maxLength: 4 }),
          fc.uint8Array({ minLength: 16, maxLength: 16 }),
        ),
        (a) => {
          expect(parseAddress(formatAddress(a))).toEqual(a);
        },
      ),
      { numRuns: 2000 },
    );
    const mapped = v6('00000000 00000000 0000ffff 0a000001');
    expect(parseAddress(formatAddress(mapped))).toEqual(mapped);
  });

  it('accepts exactly what node:net accepts, on text built from address-like pieces', () => {
    const piece = fc.constantFrom(
      '1',
      '0',
      'ff',
      'FFFF',
      '12345',
      '',
      ':',
      '::',
      '.',
      '1.2.3.4',
      '256',
      '01',
      'g',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const s = parts.join('');
        expect(parseAddress(s) !== undefined, s).toBe(isIP(s) !== 0);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('address predicates', () => {
  it('compares addresses by length and bytes', () => {
    expect(addressEquals(bytes(1, 2, 3, 4), bytes(1, 2, 3, 4))).toBe(true);
    expect(addressEquals(bytes(1, 2, 3, 4), bytes(1, 2, 3, 5))).toBe(false);
    expect(addressEquals(bytes(0, 0, 0, 0), new Uint8Array(16))).toBe(false);
    const packet = bytes(9, 198, 18, 0, 1, 9);
    expect(addressEquals(packet.subarray(1, 5), bytes(198, 18, 0, 1))).toBe(true);
  });

  it('classifies multicast, unspecified, loopback and broadcast', () => {
    const table: [string, boolean, boolean, boolean, boolean][] = [
      // address, multicast, unspecified, loopback, broadcast
      ['224.0.0.1', true, false, false, false],
      ['239.255.255.255', true, false, false, false],
      ['223.255.255.255', false, false, false, false],
      ['240.0.0.0', false, false, false, false],
      ['0.0.0.0', false, true, false, false],
      ['127.0.0.1', false, false, true, false],
      ['127.255.0.9', false, false, true, false],
      ['255.255.255.255', false, false, false, true],
      ['198.18.0.1', false, false, false, false],
      ['ff02::1', true, false, false, false],
      ['ff0e::1:2', true, false, false, false],
      ['fe80::1', false, false, false, false],
      ['::', false, true, false, false],
      ['::1', false, false, true, false],
      ['::ffff:127.0.0.1', false, false, false, false],
      ['fd00::1', false, false, false, false],
    ];
    for (const [text, multicast, unspecified, loopback, broadcast] of table) {
      const a = parseAddress(text)!;
      expect([isMulticast(a), isUnspecified(a), isLoopback(a), isBroadcastV4(a)], text).toEqual([
        multicast,
        unspecified,
        loopback,
        broadcast,
      ]);
    }
  });

  it('answers false for lengths that are not addresses', () => {
    for (const n of [0, 3, 5, 15, 17]) {
      const a = new Uint8Array(n);
      expect([isMulticast(a), isUnspecified(a), isLoopback(a), isBroadcastV4(a)]).toEqual([
        false,
        false,
        false,
        false,
      ]);
    }
    expect(IPV4_ADDRESS_LENGTH).toBe(4);
    expect(IPV6_ADDRESS_LENGTH).toBe(16);
  });
});
