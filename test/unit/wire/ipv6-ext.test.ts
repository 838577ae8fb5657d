import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { Ipv6Packet } from '../../../src/stack/wire/ipv6.js';
import {
  emitIpv6FragmentHeader,
  IPV6_FRAGMENT_HEADER_LENGTH,
  IPV6_MAX_EXTENSION_HEADERS,
  Ipv6ExtensionChain,
  Ipv6FragmentHeader,
  Ipv6ParamProblemCode,
} from '../../../src/stack/wire/ipv6-ext.js';
import { strictBytes } from './strict-bytes.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

const FD00_1 = 'fd000000 00000000 00000000 00000001';
const FD00_2 = 'fd000000 00000000 00000000 00000002';
const FF02_1 = 'ff020000 00000000 00000000 00000001';

/** An IPv6 packet from fd00::1 to `dst` whose fixed header names `nextHeader`, hop limit 64. */
function ipv6(nextHeader: number, payloadHex: string, dst = FD00_2): Uint8Array {
  const payload = hex(payloadHex);
  const b = new Uint8Array(40 + payload.length);
  b.set(hex(`60000000 0000${nextHeader.toString(16).padStart(2, '0')}40 ${FD00_1} ${dst}`));
  b[4] = payload.length >>> 8;
  b[5] = payload.length & 0xff;
  b.set(payload, 40);
  return b;
}

/** Walks `packet`, returning the walker and its verdict. */
function walk(packet: Uint8Array): [Ipv6ExtensionChain, string | undefined] {
  const p = new Ipv6Packet(packet);
  expect(p.check()).toBeUndefined();
  const chain = new Ipv6ExtensionChain();
  return [chain, chain.parse(p)];
}

// Building blocks, each a whole header as it sits on the wire.
const UDP = '30390035 0008 0000'; // ports 12345 -> 53, length 8
const HBH_PADN_TO_DST = '3c00 0104 00000000'; // next 60, PadN of 4
const DST_PAD1_TO_FRAG = '2c00 000000000000'; // next 44, six Pad1
const FRAG_ATOMIC_TO_UDP = '1100 0000 deadbeef'; // next 17, offset 0, M 0, id 0xdeadbeef
const FRAG_FIRST_TO_UDP = '1100 0001 deadbeef'; // M 1
const FRAG_LATER_TO_UDP = '1100 05a8 deadbeef'; // offset 181 * 8 = 1448, M 0

describe('Ipv6ExtensionChain', () => {
  it('finds the upper layer directly after the fixed header', () => {
    const [c, drop] = walk(ipv6(IpProtocol.UDP, UDP));
    expect(drop).toBeUndefined();
    expect(c).toMatchObject({
      upperProtocol: 17,
      upperOffset: 40,
      nextHeaderFieldOffset: 6,
      hasFragment: false,
    });
  });

  it('walks Hop-by-Hop, Destination Options and an atomic fragment to UDP', () => {
    const [c, drop] = walk(ipv6(0, HBH_PADN_TO_DST + DST_PAD1_TO_FRAG + FRAG_ATOMIC_TO_UDP + UDP));
    expect(drop).toBeUndefined();
    expect(c).toMatchObject({
      upperProtocol: IpProtocol.UDP,
      upperOffset: 64,
      nextHeaderFieldOffset: 56,
      hasFragment: true,
      fragmentHeaderOffset: 56,
      unfragmentableEnd: 56,
      fragmentOffset: 0,
      moreFragments: false,
      fragmentIdentification: 0xdeadbeef,
      fragmentNextHeader: IpProtocol.UDP,
    });
  });

  it('stops at the Fragment header of a first fragment', () => {
    const [c, drop] = walk(ipv6(0, HBH_PADN_TO_DST + DST_PAD1_TO_FRAG + FRAG_FIRST_TO_UDP + UDP));
    expect(drop).toBeUndefined();
    expect(c).toMatchObject({
      upperProtocol: IpProtocol.FRAGMENT,
      upperOffset: 56,
      nextHeaderFieldOffset: 48, // the Destination Options header's Next Header byte
      hasFragment: true,
      fragmentHeaderOffset: 56,
      unfragmentableEnd: 56,
      fragmentOffset: 0,
      moreFragments: true,
      fragmentNextHeader: IpProtocol.UDP,
    });
  });

  it('never walks into the data of a later fragment', () => {
    // The data would be a Hop-by-Hop header out of place if it were walked.
    const [c, drop] = walk(ipv6(IpProtocol.FRAGMENT, `0000 05a8 00000001 ${HBH_PADN_TO_DST}`));
    expect(drop).toBeUndefined();
    expect(c).toMatchObject({
      upperProtocol: IpProtocol.FRAGMENT,
      upperOffset: 40,
      nextHeaderFieldOffset: 6,
      fragmentOffset: 1448,
      moreFragments: false,
      fragmentIdentification: 1,
      fragmentNextHeader: IpProtocol.HOPOPTS,
    });
    const [c2] = walk(ipv6(IpProtocol.FRAGMENT, FRAG_LATER_TO_UDP + UDP));
    expect(c2.fragmentOffset).toBe(1448);
  });

  it('resets its fields between packets', () => {
    const chain = new Ipv6ExtensionChain();
    expect(chain.parse(new Ipv6Packet(ipv6(IpProtocol.FRAGMENT, FRAG_FIRST_TO_UDP + UDP)))).toBeUndefined();
    expect(chain.hasFragment).toBe(true);
    expect(chain.parse(new Ipv6Packet(ipv6(IpProtocol.UDP, UDP)))).toBeUndefined();
    expect(chain).toMatchObject({
      hasFragment: false,
      moreFragments: false,
      upperProtocol: 17,
      upperOffset: 40,
    });
  });

  it('skips a Routing header with Segments Left 0, whatever its type', () => {
    const rh0 = `1102 0000 00000000 ${FD00_1}`; // type 0 (deprecated), 24 bytes
    const [c, drop] = walk(ipv6(IpProtocol.ROUTING, rh0 + UDP));
    expect(drop).toBeUndefined();
    expect(c).toMatchObject({ upperProtocol: 17, upperOffset: 64, nextHeaderFieldOffset: 40 });
    const srh = `1102 0400 00000000 ${FD00_1}`; // type 4 (SRH) with Segments Left 0
    expect(walk(ipv6(IpProtocol.ROUTING, srh + UDP))[1]).toBeUndefined();
  });

  it('answers a Routing header with Segments Left != 0 with code 0 at the type field', () => {
    const rh0 = `1102 0001 00000000 ${FD00_1}`;
    const [c, drop] = walk(ipv6(IpProtocol.DSTOPTS, `2b00 01040000 0000 ${rh0}${UDP}`));
    expect(drop).toBe('ipv6-param-problem');
    expect(c).toMatchObject({
      problemCode: Ipv6ParamProblemCode.ERRONEOUS_HEADER_FIELD,
      problemPointer: 50,
      problemIcmpAllowed: true,
    });
    // RFC 4443 §2.4 (e.3): no error to a multicast destination.
    const [m, mdrop] = walk(ipv6(IpProtocol.ROUTING, rh0 + UDP, FF02_1));
    expect(mdrop).toBe('ipv6-param-problem');
    expect(m).toMatchObject({ problemCode: 0, problemPointer: 42, problemIcmpAllowed: false });
  });

  it('walks Pad1 and PadN across a multi-block header', () => {
    const hbh = '3a01 00 0108 0000000000000000 00 0100'; // Pad1, PadN(8), Pad1, PadN(0): 16 bytes
    const [c, drop] = walk(ipv6(IpProtocol.HOPOPTS, `${hbh} 80000000`));
    expect(drop).toBeUndefined();
    expect(c).toMatchObject({ upperProtocol: IpProtocol.ICMPV6, upperOffset: 56, nextHeaderFieldOffset: 40 });
  });

  describe('unrecognized options (RFC 8200 §4.2)', () => {
    // Next 17, Pad1, option <type> with 2 data bytes, Pad1: the option starts at offset 43.
    const dst = (type: number) => `1100 00 ${type.toString(16).padStart(2, '0')}02abcd 00`;

    it('skips action 00', () => {
      const [c, drop] = walk(ipv6(IpProtocol.DSTOPTS, dst(0x1e) + UDP));
      expect(drop).toBeUndefined();
      expect(c.upperOffset).toBe(48);
      // Router Alert (type 5) is not interpreted either: its action bits say skip.
      expect(walk(ipv6(IpProtocol.HOPOPTS, `1100 05020000 0100${UDP}`))[1]).toBeUndefined();
    });

    it('discards silently on action 01', () => {
      const [c, drop] = walk(ipv6(IpProtocol.DSTOPTS, dst(0x5e) + UDP));
      expect(drop).toBe('ipv6-unknown-option');
      expect(c.problemIcmpAllowed).toBe(false);
    });

    it('answers code 2 on action 10, even to multicast', () => {
      for (const to of [FD00_2, FF02_1]) {
        const [c, drop] = walk(ipv6(IpProtocol.DSTOPTS, dst(0x9e) + UDP, to));
        expect(drop).toBe('ipv6-param-problem');
        expect(c).toMatchObject({
          problemCode: Ipv6ParamProblemCode.UNRECOGNIZED_OPTION,
          problemPointer: 43,
          problemIcmpAllowed: true,
        });
      }
    });

    it('answers code 2 on action 11 only to unicast', () => {
      const [c, drop] = walk(ipv6(IpProtocol.HOPOPTS, dst(0xde) + UDP));
      expect(drop).toBe('ipv6-param-problem');
      expect(c).toMatchObject({ problemCode: 2, problemPointer: 43, problemIcmpAllowed: true });
      const [m, mdrop] = walk(ipv6(IpProtocol.HOPOPTS, dst(0xde) + UDP, FF02_1));
      expect(mdrop).toBe('ipv6-param-problem');
      expect(m).toMatchObject({ problemCode: 2, problemPointer: 43, problemIcmpAllowed: false });
    });

    it('points into a later header of the chain', () => {
      const [c, drop] = walk(ipv6(IpProtocol.HOPOPTS, HBH_PADN_TO_DST + dst(0xc2) + UDP));
      expect(drop).toBe('ipv6-param-problem');
      expect(c.problemPointer).toBe(51);
    });
  });

  it('answers a Hop-by-Hop header after the first with code 1 at the byte that named it', () => {
    const [c, drop] = walk(ipv6(IpProtocol.DSTOPTS, `0000 01040000 0000 ${HBH_PADN_TO_DST}`));
    expect(drop).toBe('ipv6-param-problem');
    expect(c).toMatchObject({
      problemCode: Ipv6ParamProblemCode.UNRECOGNIZED_NEXT_HEADER,
      problemPointer: 40,
      problemIcmpAllowed: true,
    });
  });

  it('stops at an unknown next header without judging it', () => {
    const [c, drop] = walk(ipv6(IpProtocol.DSTOPTS, `fd00 01040000 0000 deadbeef`));
    expect(drop).toBeUndefined();
    expect(c).toMatchObject({ upperProtocol: 253, upperOffset: 48, nextHeaderFieldOffset: 40 });
  });

  it('stops at No Next Header', () => {
    const [c, drop] = walk(ipv6(IpProtocol.HOPOPTS, '3b00 01040000 0000 ffffffff'));
    expect(drop).toBeUndefined();
    expect(c).toMatchObject({ upperProtocol: IpProtocol.NONE, upperOffset: 48 });
  });

  it(`allows ${IPV6_MAX_EXTENSION_HEADERS} extension headers and drops a ninth`, () => {
    const chainOf = (n: number) =>
      Array.from({ length: n }, (_, i) => (i === n - 1 ? '1100 01040000 0000' : '3c00 01040000 0000')).join(
        '',
      );
    const [c, drop] = walk(ipv6(IpProtocol.DSTOPTS, chainOf(8) + UDP));
    expect(drop).toBeUndefined();
    expect(c.upperOffset).toBe(40 + 64);
    expect(walk(ipv6(IpProtocol.DSTOPTS, chainOf(9) + UDP))[1]).toBe('ipv6-ext-too-many');
  });

  it('drops options and headers that overrun', () => {
    // PadN claims 7 bytes where 4 remain.
    expect(walk(ipv6(IpProtocol.DSTOPTS, `1100 0107 00000000 ${UDP}`))[1]).toBe('ipv6-ext-truncated');
    // The last byte is an option type with no room for its length.
    expect(walk(ipv6(IpProtocol.DSTOPTS, `1100 0103 000000 05 ${UDP}`))[1]).toBe('ipv6-ext-truncated');
    // The overrun is found before the option's action bits are read.
    expect(walk(ipv6(IpProtocol.DSTOPTS, `1100 9e07 00000000 ${UDP}`))[1]).toBe('ipv6-ext-truncated');
    // A 16-byte header in an 8-byte payload.
    expect(walk(ipv6(IpProtocol.DSTOPTS, '1101 01040000 0000'))[1]).toBe('ipv6-ext-truncated');
    // A Fragment header cut short.
    expect(walk(ipv6(IpProtocol.FRAGMENT, '1100 0000 dead'))[1]).toBe('ipv6-ext-truncated');
    // An extension header named but absent.
    expect(walk(ipv6(IpProtocol.ROUTING, ''))[1]).toBe('ipv6-ext-truncated');
  });

  it('drops a chain cut anywhere inside its extension headers', () => {
    const full = hex(HBH_PADN_TO_DST + DST_PAD1_TO_FRAG + FRAG_ATOMIC_TO_UDP + UDP);
    for (let n = 0; n <= full.length; n++) {
      const packet = ipv6(0, Buffer.from(full.subarray(0, n)).toString('hex'));
      if (n === 0) {
        expect(new Ipv6Packet(packet).check()).toBe('ipv6-jumbogram');
        continue;
      }
      expect(walk(packet)[1], `payload ${n}`).toBe(n < 24 ? 'ipv6-ext-truncated' : undefined);
    }
  });
});

describe('Ipv6FragmentHeader', () => {
  it('emits the golden header at an offset into a 0xA5-filled buffer', () => {
    const b = new Uint8Array(20).fill(0xa5);
    emitIpv6FragmentHeader(b, 6, IpProtocol.UDP, 1448, false, 0xdeadbeef);
    expect(b.subarray(6, 14)).toEqual(hex(FRAG_LATER_TO_UDP));
    expect([b[5], b[14]]).toEqual([0xa5, 0xa5]);
    emitIpv6FragmentHeader(b, 12, IpProtocol.TCP, 0, true, 1);
    expect(b.subarray(12, 20)).toEqual(hex('0600 0001 00000001'));
    expect(() => emitIpv6FragmentHeader(b, 13, 6, 0, true, 1)).toThrow(RangeError);
    expect(IPV6_FRAGMENT_HEADER_LENGTH).toBe(8);
  });

  it('reads and writes fields through the view', () => {
    const v = new Ipv6FragmentHeader(hex(FRAG_FIRST_TO_UDP));
    expect(v.check()).toBeUndefined();
    expect([v.nextHeader, v.fragmentOffset, v.moreFragments, v.identification]).toEqual([
      17,
      0,
      true,
      0xdeadbeef,
    ]);
    const b = new Uint8Array(8).fill(0xa5);
    const w = new Ipv6FragmentHeader(b);
    w.nextHeader = 17;
    w.fragmentOffset = 1448;
    w.moreFragments = false;
    w.identification = 0xdeadbeef;
    // Reserved bits keep their 0xA5 pattern: only the named fields are written.
    expect(b).toEqual(hex('11a5 05ac deadbeef'));
    expect(w.fragmentOffset).toBe(1448);
    expect(new Ipv6FragmentHeader(new Uint8Array(7)).check()).toBe('ipv6-ext-truncated');
  });
});

describe('Ipv6ExtensionChain on arbitrary bytes', () => {
  const chain = new Ipv6ExtensionChain();

  function walkRandom(nextHeader: number, payload: Uint8Array, multicast: boolean): void {
    const b = new Uint8Array(40 + payload.length);
    b[0] = 0x60;
    b[4] = payload.length >>> 8;
    b[5] = payload.length & 0xff;
    b[6] = nextHeader;
    b[24] = multicast ? 0xff : 0xfd;
    b.set(payload, 40);
    const p = new Ipv6Packet(strictBytes(b));
    if (p.check() !== undefined) return;
    const drop = chain.parse(p);
    const end = 40 + payload.length;
    if (drop === undefined) {
      expect(chain.upperOffset).toBeLessThanOrEqual(end);
      expect(chain.nextHeaderFieldOffset).toBeLessThan(chain.upperOffset);
      expect(b[chain.nextHeaderFieldOffset]).toBe(chain.upperProtocol);
      if (chain.hasFragment) expect(chain.fragmentHeaderOffset + 8).toBeLessThanOrEqual(end);
    } else if (drop === 'ipv6-param-problem') {
      expect(chain.problemPointer).toBeLessThan(end);
      expect([0, 1, 2]).toContain(chain.problemCode);
    }
  }

  it('never throws and never reads past the payload', () => {
    const nextHeader = fc.oneof(fc.constantFrom(0, 43, 44, 60, 17, 59), fc.nat(255));
    fc.assert(fc.property(nextHeader, fc.uint8Array({ maxLength: 200 }), fc.boolean(), walkRandom), {
      numRuns: 5000,
    });
  });

  it('never throws on chains built from plausible headers', () => {
    const header = fc.record({
      kind: fc.constantFrom(0, 43, 44, 60),
      blocks: fc.nat(2),
      body: fc.uint8Array({ minLength: 22, maxLength: 22 }),
      options: fc.array(fc.constantFrom(0, 1, 5, 0x1e, 0x5e, 0x9e, 0xde), { maxLength: 6 }),
    });
    const chainArb = fc.tuple(fc.array(header, { maxLength: 10 }), fc.nat(255), fc.boolean(), fc.nat(40));
    fc.assert(
      fc.property(chainArb, ([headers, last, multicast, cut]) => {
        const parts: number[] = [];
        headers.forEach((h, i) => {
          const next = headers[i + 1]?.kind ?? last;
          const length = h.kind === 44 ? 8 : (h.blocks + 1) * 8;
          const bytes = [...h.body.subarray(0, length - 2)];
          // Lay options TLV-style with small lengths so some fit and some overrun.
          let at = 0;
          for (const type of h.options) {
            if (at >= bytes.length) break;
            bytes[at] = type;
            if (type === 0) at += 1;
            else {
              if (at + 1 < bytes.length) bytes[at + 1] = h.body[at]! & 7;
              at += 2 + (h.body[at]! & 7);
            }
          }
          parts.push(next, h.kind === 44 ? h.body[0]! : h.blocks, ...bytes);
        });
        const payload = Uint8Array.from(parts);
        walkRandom(
          headers[0]?.kind ?? last,
          payload.subarray(0, Math.max(0, payload.length - cut)),
          multicast,
        );
      }),
      { numRuns: 5000 },
    );
  });
});
