import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type TcpOptionFields,
  TcpOptions,
  tcpOptionsLength,
  writeTcpOptions,
} from '../../../src/stack/wire/tcp-options.js';
import { hex } from './reference-checksum.js';

/** The options of a Linux 6.x SYN: MSS 1460, SACK_PERM + TS, NOP, WS 7. */
const LINUX_SYN_OPTIONS = hex('020405b4 0402080a 0a1b2c3d 00000000 01030307');

function parsed(bytes: Uint8Array): TcpOptions {
  const o = new TcpOptions();
  expect(o.parse(bytes)).toBeUndefined();
  return o;
}

function sacks(o: TcpOptions): [number, number][] {
  const out: [number, number][] = [];
  for (let k = 0; k < o.sackCount; k++) out.push([o.sackLeft[k]!, o.sackRight[k]!]);
  return out;
}

/** Writes `r` into a 0xA5-filled buffer with a 3-byte margin on each side and returns the written part. */
function written(r: TcpOptionFields): Uint8Array {
  const len = tcpOptionsLength(r);
  const buf = new Uint8Array(len + 6).fill(0xa5);
  expect(writeTcpOptions(buf, 3, r)).toBe(len);
  expect([...buf.subarray(0, 3), ...buf.subarray(3 + len)]).toEqual(new Array(6).fill(0xa5));
  return buf.subarray(3, 3 + len);
}

const NO_OPTIONS: TcpOptionFields = { sackPermitted: false, sackBlocks: [] };

describe('TcpOptions.parse', () => {
  it('reads the options of a Linux SYN', () => {
    const o = parsed(LINUX_SYN_OPTIONS);
    expect(o.mss).toBe(1460);
    expect(o.sackPermitted).toBe(true);
    expect(o.hasTimestamp).toBe(true);
    expect(o.tsVal).toBe(0x0a1b2c3d);
    expect(o.tsEcr).toBe(0);
    expect(o.windowScale).toBe(7);
    expect(o.sackCount).toBe(0);
  });

  it('reads NOP NOP TS NOP NOP SACK with one to four blocks', () => {
    const o = parsed(hex('0101080a 0000abcd 0a1b2c3d 0101050a 6f1a2c05 6f1a2d00'));
    expect(o.hasTimestamp).toBe(true);
    expect(o.tsVal).toBe(0xabcd);
    expect(o.tsEcr).toBe(0x0a1b2c3d);
    expect(sacks(o)).toEqual([[0x6f1a2c05, 0x6f1a2d00]]);
    expect(o.mss).toBeUndefined();
    expect(o.windowScale).toBeUndefined();
    expect(o.sackPermitted).toBe(false);

    const four = parsed(
      hex('01010522 ffffff00 00000010 00000020 00000030 80000000 80000001 fffffff0 fffffff8'),
    );
    expect(sacks(four)).toEqual([
      [0xffffff00, 0x10],
      [0x20, 0x30],
      [0x80000000, 0x80000001],
      [0xfffffff0, 0xfffffff8],
    ]);
  });

  it('stops at EOL and ignores whatever follows it', () => {
    const o = parsed(hex('020405b4 00 0303 07ff'));
    expect(o.mss).toBe(1460);
    expect(o.windowScale).toBeUndefined();
    expect(parsed(hex('00 00 00 00')).mss).toBeUndefined();
    expect(parsed(new Uint8Array(0)).mss).toBeUndefined();
  });

  it('skips unknown kinds by their length', () => {
    // TCP Fast Open cookie (34), MPTCP (30), an experimental option (254), then MSS.
    const o = parsed(hex('220a 0102030405060708 1e04 2100 fe02 020405b4'));
    expect(o.mss).toBe(1460);
  });

  it('clamps a window scale above 14 to 14 (RFC 7323 §2.3)', () => {
    expect(parsed(hex('030314')).windowScale).toBe(14);
    expect(parsed(hex('03030f')).windowScale).toBe(14);
    expect(parsed(hex('0303ff')).windowScale).toBe(14);
    expect(parsed(hex('03030e')).windowScale).toBe(14);
    expect(parsed(hex('030300')).windowScale).toBe(0);
  });

  it('lets the last of duplicate options win, as Linux', () => {
    const o = parsed(
      hex('020405b4 02040218 0303 02 0303 09 0101050a 00000001 00000002 0101050a 00000003 00000004'),
    );
    expect(o.mss).toBe(536);
    expect(o.windowScale).toBe(9);
    expect(sacks(o)).toEqual([[3, 4]]);
  });

  it('forgets the previous segment on every parse', () => {
    const o = parsed(LINUX_SYN_OPTIONS);
    expect(o.parse(hex('01010101'))).toBeUndefined();
    expect(o.mss).toBeUndefined();
    expect(o.windowScale).toBeUndefined();
    expect(o.sackPermitted).toBe(false);
    expect(o.hasTimestamp).toBe(false);
    expect(o.sackCount).toBe(0);
  });

  const malformed: [string, string][] = [
    ['length 0', '0200'],
    ['length 1', '0201'],
    ['length 0 of an unknown kind', 'fe00 01010101'],
    ['length 1 of an unknown kind', 'fe01 0101'],
    ['a kind with no length byte', '010101 02'],
    ['an unknown kind with no length byte', 'fe'],
    ['an overlong MSS', '020505b4'],
    ['an unknown option running past the end', 'fe08 010203'],
    ['MSS of length 3', '0203 05 01'],
    ['MSS of length 5', '0205 05b4 00 01010101'],
    ['window scale of length 2', '0302'],
    ['window scale of length 4', '0304 0700'],
    ['SACK-permitted of length 3', '040300 01'],
    ['timestamps of length 9', '0809 0000000000000000'],
    ['timestamps of length 11', '080b 000000000000000000 01'],
    ['SACK with no block', '0502'],
    ['SACK with a partial block', '050a 00000001 000000'],
    ['SACK with 3 bytes', '0503 00'],
    ['SACK with 11 bytes', '050b 00000001 00000002 00'],
    ['SACK with five blocks', `052a ${'00000001 00000002 '.repeat(5)}`],
    ['a bad option after good ones', '020405b4 0402 0101 0300'],
  ];
  for (const [what, bytes] of malformed) {
    it(`rejects ${what} and leaves the object reset`, () => {
      const o = parsed(LINUX_SYN_OPTIONS);
      expect(o.parse(hex(bytes))).toBe('tcp-bad-option-length');
      expect(o.mss).toBeUndefined();
      expect(o.hasTimestamp).toBe(false);
      expect(o.sackPermitted).toBe(false);
      expect(o.sackCount).toBe(0);
    });
  }

  it('never throws on random bytes and keeps its invariants', () => {
    const o = new TcpOptions();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), (bytes) => {
        const drop = o.parse(bytes);
        expect([undefined, 'tcp-bad-option-length']).toContain(drop);
        expect(o.sackCount).toBeGreaterThanOrEqual(0);
        expect(o.sackCount).toBeLessThanOrEqual(4);
        if (o.windowScale !== undefined) expect(o.windowScale).toBeLessThanOrEqual(14);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('writeTcpOptions', () => {
  it("writes a SYN's options exactly as Linux does", () => {
    const r: TcpOptionFields = {
      mss: 1460,
      windowScale: 7,
      sackPermitted: true,
      sackBlocks: [],
      timestamp: { tsVal: 0x0a1b2c3d, tsEcr: 0 },
    };
    expect(tcpOptionsLength(r)).toBe(20);
    expect(written(r)).toEqual(LINUX_SYN_OPTIONS);
  });

  it('writes SACK-permitted as NOP NOP SACK_PERM without timestamps', () => {
    const r: TcpOptionFields = { mss: 1460, windowScale: 7, sackPermitted: true, sackBlocks: [] };
    expect(written(r)).toEqual(hex('020405b4 01010402 01030307'));
  });

  it('writes NOP NOP TS without SACK-permitted', () => {
    const r: TcpOptionFields = {
      mss: 1400,
      sackPermitted: false,
      sackBlocks: [],
      timestamp: { tsVal: 1, tsEcr: 0xffffffff },
    };
    expect(written(r)).toEqual(hex('02040578 0101080a 00000001 ffffffff'));
  });

  it('writes NOP NOP TS then NOP NOP SACK on a data segment', () => {
    const r: TcpOptionFields = {
      sackPermitted: false,
      sackBlocks: [
        [0x6f1a2c05, 0x6f1a2d00],
        [1, 2],
      ],
      timestamp: { tsVal: 0xabcd, tsEcr: 0x0a1b2c3d },
    };
    expect(written(r)).toEqual(
      hex('0101080a 0000abcd 0a1b2c3d 01010512 6f1a2c05 6f1a2d00 00000001 00000002'),
    );
  });

  it('writes nothing for no options', () => {
    expect(tcpOptionsLength(NO_OPTIONS)).toBe(0);
    expect(written(NO_OPTIONS)).toEqual(new Uint8Array(0));
  });

  it('sends only the SACK blocks that fit in 40 bytes, first ones first', () => {
    const blocks: [number, number][] = [
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 10],
    ];
    const withTs = { sackPermitted: false, sackBlocks: blocks, timestamp: { tsVal: 5, tsEcr: 6 } };
    expect(tcpOptionsLength(withTs)).toBe(40);
    expect(sacks(parsed(written(withTs)))).toEqual(blocks.slice(0, 3));
    const noTs = { sackPermitted: false, sackBlocks: blocks };
    expect(tcpOptionsLength(noTs)).toBe(36);
    expect(sacks(parsed(written(noTs)))).toEqual(blocks.slice(0, 4));
    const syn = {
      mss: 1,
      windowScale: 2,
      sackPermitted: true,
      sackBlocks: blocks,
      timestamp: { tsVal: 5, tsEcr: 6 },
    };
    expect(tcpOptionsLength(syn)).toBe(40);
    expect(sacks(parsed(written(syn)))).toEqual(blocks.slice(0, 2));
  });

  it('round-trips any valid set of options through parse', () => {
    const u32 = fc.nat(0xffffffff);
    const fields = fc.record({
      mss: fc.option(fc.nat(0xffff), { nil: undefined }),
      windowScale: fc.option(fc.nat(14), { nil: undefined }),
      sackPermitted: fc.boolean(),
      sackBlocks: fc.array(fc.tuple(u32, u32), { maxLength: 4 }),
      timestamp: fc.option(fc.record({ tsVal: u32, tsEcr: u32 }), { nil: undefined }),
    });
    const o = new TcpOptions();
    fc.assert(
      fc.property(fields, (r) => {
        const bytes = written(r);
        expect(bytes.length % 4).toBe(0);
        expect(bytes.length).toBeLessThanOrEqual(40);
        expect(o.parse(bytes)).toBeUndefined();
        expect(o.mss).toBe(r.mss);
        expect(o.windowScale).toBe(r.windowScale);
        expect(o.sackPermitted).toBe(r.sackPermitted);
        expect(o.hasTimestamp).toBe(r.timestamp !== undefined);
        if (r.timestamp) expect([o.tsVal, o.tsEcr]).toEqual([r.timestamp.tsVal, r.timestamp.tsEcr]);
        const others =
          (r.mss === undefined ? 0 : 4) +
          (r.timestamp ? 12 : r.sackPermitted ? 4 : 0) +
          (r.windowScale === undefined ? 0 : 4);
        expect(sacks(o)).toEqual(r.sackBlocks.slice(0, Math.floor((40 - others - 4) / 8)));
      }),
      { numRuns: 2000 },
    );
  });
});
