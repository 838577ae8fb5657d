import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Icmpv4DestUnreachableCode,
  Icmpv4Packet,
  Icmpv4Repr,
  Icmpv4TimeExceededCode,
  Icmpv4Type,
} from '../../../src/stack/wire/icmpv4.js';
import { hex, referenceChecksum } from './reference-checksum.js';

/** iputils `ping` data: a 16-byte struct timeval, then bytes 0x10..0x37. */
const PING_DATA = Uint8Array.from([
  ...hex('c0f8eb6500000000 2f3a0b0000000000'),
  ...Array.from({ length: 40 }, (_, i) => 0x10 + i),
]);

/** `ping -c1 198.18.0.2` as sent: id 0x1c46, seq 1, 56 data bytes; checksum 0x364d computed independently. */
const ECHO_REQUEST = Uint8Array.from([...hex('0800 364d 1c46 0001'), ...PING_DATA]);
/** The kernel's reply: type 0, same id, seq and data; checksum 0x3e4d. */
const ECHO_REPLY = Uint8Array.from([...hex('0000 3e4d 1c46 0001'), ...PING_DATA]);

/** The IPv4 header and first 8 TCP bytes of a 1500-byte 198.18.0.1 -> 198.18.0.2 DF segment. */
const INVOKING = hex('450005dc 12344000 400696c0 c6120001 c6120002 9c400050 6f1a2b3d');
/** Fragmentation needed, next-hop MTU 1400 (RFC 1191 §4); checksum 0xc09b computed independently. */
const FRAG_NEEDED = Uint8Array.from([...hex('0304 c09b 0000 0578'), ...INVOKING]);

function withZeroChecksum(b: Uint8Array): Uint8Array {
  const c = b.slice();
  c[2] = 0;
  c[3] = 0;
  return c;
}

/**
 * Emits `r` into a 0xA5-filled buffer with a margin that must stay untouched, and checks the
 * checksum against the naive reference.
 */
function emitted(r: Icmpv4Repr): Uint8Array {
  const n = Icmpv4Repr.length(r);
  const buf = new Uint8Array(n + 2).fill(0xa5);
  Icmpv4Repr.emit(r, buf.subarray(0, n));
  expect(buf.subarray(n)).toEqual(hex('a5a5'));
  const out = buf.subarray(0, n);
  expect(referenceChecksum(withZeroChecksum(out))).toBe(new Icmpv4Packet(out).checksum);
  return out;
}

function headerWithoutChecksum(b: Uint8Array): Uint8Array {
  return Uint8Array.of(...b.subarray(0, 2), ...b.subarray(4, 8));
}

describe('Icmpv4Packet', () => {
  it('reads the echo request ping sends', () => {
    const p = new Icmpv4Packet(ECHO_REQUEST);
    expect(p.check()).toBeUndefined();
    expect(p.type).toBe(Icmpv4Type.ECHO_REQUEST);
    expect(p.code).toBe(0);
    expect(p.checksum).toBe(0x364d);
    expect(p.identifier).toBe(0x1c46);
    expect(p.sequence).toBe(1);
    expect(p.data).toEqual(PING_DATA);
    expect(p.verifyChecksum()).toBe(true);
    expect(referenceChecksum(withZeroChecksum(ECHO_REQUEST))).toBe(0x364d);
    expect(referenceChecksum(withZeroChecksum(ECHO_REPLY))).toBe(0x3e4d);
    expect(referenceChecksum(withZeroChecksum(FRAG_NEEDED))).toBe(0xc09b);
  });

  it('reads the next-hop MTU and the pointer', () => {
    const p = new Icmpv4Packet(FRAG_NEEDED);
    expect(p.nextHopMtu).toBe(1400);
    expect(p.data).toEqual(INVOKING);
    const pp = new Icmpv4Packet(hex('0c00 0000 14000000'));
    expect(pp.pointer).toBe(20);
  });

  it('writes each field into its own bytes only (0xA5 background)', () => {
    const buf = new Uint8Array(10).fill(0xa5);
    const p = new Icmpv4Packet(buf);
    p.type = 8;
    p.code = 0;
    p.checksum = 0x1234;
    p.identifier = 0xabcd;
    p.sequence = 0x0102;
    expect(buf).toEqual(hex('0800 1234 abcd 0102 a5a5'));
    p.nextHopMtu = 1400;
    expect(buf.subarray(4, 8)).toEqual(hex('abcd 0578'));
    p.pointer = 9;
    expect(buf.subarray(4, 8)).toEqual(hex('09cd 0578'));
    p.fillChecksum();
    expect(p.verifyChecksum()).toBe(true);
    expect(p.checksum).toBe(referenceChecksum(withZeroChecksum(buf)));
  });

  it('returns a drop reason at every truncated length, never throwing', () => {
    for (let n = 0; n < 8; n++) {
      const p = new Icmpv4Packet(ECHO_REQUEST.subarray(0, n));
      expect(p.check()).toBe('icmpv4-truncated');
      expect(Icmpv4Repr.parse(p)).toBe('icmpv4-truncated');
    }
    for (let n = 8; n < ECHO_REQUEST.length; n++) {
      // Cut data: the checksum no longer matches.
      expect(Icmpv4Repr.parse(new Icmpv4Packet(ECHO_REQUEST.subarray(0, n)))).toBe('icmpv4-bad-checksum');
    }
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const p = new Icmpv4Packet(bytes);
        const drop = p.check();
        const r = Icmpv4Repr.parse(p);
        if (drop !== undefined) expect(r).toBe(drop);
        void [p.type, p.code, p.checksum, p.identifier, p.sequence, p.nextHopMtu, p.pointer, p.data];
        p.verifyChecksum();
      }),
      { numRuns: 5000 },
    );
  });
});

describe('Icmpv4Repr', () => {
  it('parses the echo request and emits the kernel’s reply byte for byte', () => {
    const r = Icmpv4Repr.parse(new Icmpv4Packet(ECHO_REQUEST));
    expect(r).toEqual({ kind: 'echo-request', identifier: 0x1c46, sequence: 1, data: PING_DATA });
    if (typeof r === 'string' || r.kind !== 'echo-request') throw new Error('not an echo request');
    expect(emitted({ ...r, kind: 'echo-reply' })).toEqual(ECHO_REPLY);
    expect(emitted(r)).toEqual(ECHO_REQUEST);
  });

  it('emits and parses fragmentation needed (RFC 1191 §4)', () => {
    const r: Icmpv4Repr = {
      kind: 'dest-unreachable',
      code: Icmpv4DestUnreachableCode.FRAG_NEEDED,
      nextHopMtu: 1400,
      invoking: INVOKING,
    };
    expect(Icmpv4Repr.length(r)).toBe(36);
    expect(emitted(r)).toEqual(FRAG_NEEDED);
    expect(Icmpv4Repr.parse(new Icmpv4Packet(FRAG_NEEDED))).toEqual(r);
  });

  it('writes the unused word as zero for other unreachable codes and ignores it on parse', () => {
    const r: Icmpv4Repr = {
      kind: 'dest-unreachable',
      code: Icmpv4DestUnreachableCode.PORT,
      nextHopMtu: 0,
      invoking: INVOKING,
    };
    const bytes = emitted({ ...r, nextHopMtu: 1400 });
    expect(bytes.subarray(0, 2)).toEqual(hex('0303'));
    expect(bytes.subarray(4, 8)).toEqual(hex('00000000'));
    bytes[7] = 0x99;
    new Icmpv4Packet(bytes).fillChecksum();
    expect(Icmpv4Repr.parse(new Icmpv4Packet(bytes))).toEqual(r);
  });

  it('emits time exceeded and parameter problem', () => {
    const te: Icmpv4Repr = { kind: 'time-exceeded', code: Icmpv4TimeExceededCode.TTL, invoking: INVOKING };
    const teBytes = emitted(te);
    expect(headerWithoutChecksum(teBytes)).toEqual(hex('0b00 00000000'));
    expect(Icmpv4Repr.parse(new Icmpv4Packet(teBytes))).toEqual(te);
    const pp: Icmpv4Repr = { kind: 'parameter-problem', pointer: 1, invoking: INVOKING };
    const ppBytes = emitted(pp);
    expect(headerWithoutChecksum(ppBytes)).toEqual(hex('0c00 01000000'));
    expect(Icmpv4Repr.parse(new Icmpv4Packet(ppBytes))).toEqual(pp);
  });

  it('rejects a bad checksum and unsupported types', () => {
    const bad = ECHO_REQUEST.slice();
    bad[20] = bad[20]! ^ 1;
    expect(Icmpv4Repr.parse(new Icmpv4Packet(bad))).toBe('icmpv4-bad-checksum');
    for (const type of [4, 5, 9, 10, 13, 14, 17, 18, 255]) {
      const p = new Icmpv4Packet(hex('0000 0000 0000 0000'));
      p.type = type;
      p.fillChecksum();
      expect(Icmpv4Repr.parse(p)).toBe('icmpv4-unsupported-type');
    }
  });

  it('round-trips every kind through emit and parse', () => {
    const u16 = fc.nat(0xffff);
    const bytes = fc.uint8Array({ maxLength: 100 });
    const repr: fc.Arbitrary<Icmpv4Repr> = fc.oneof(
      fc.record({
        kind: fc.constantFrom('echo-request' as const, 'echo-reply' as const),
        identifier: u16,
        sequence: u16,
        data: bytes,
      }),
      fc
        .record({ code: fc.nat(0xff), nextHopMtu: u16, invoking: bytes })
        .map(({ code, nextHopMtu, invoking }) => ({
          kind: 'dest-unreachable' as const,
          code,
          nextHopMtu: code === Icmpv4DestUnreachableCode.FRAG_NEEDED ? nextHopMtu : 0,
          invoking,
        })),
      fc.record({ kind: fc.constant('time-exceeded' as const), code: fc.nat(0xff), invoking: bytes }),
      fc.record({ kind: fc.constant('parameter-problem' as const), pointer: fc.nat(0xff), invoking: bytes }),
    );
    fc.assert(
      fc.property(repr, (r) => {
        const p = new Icmpv4Packet(emitted(r));
        expect(p.verifyChecksum()).toBe(true);
        expect(Icmpv4Repr.parse(p)).toEqual(r);
      }),
      { numRuns: 1000 },
    );
  });
});
