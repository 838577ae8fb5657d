import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import {
  Icmpv6DestUnreachableCode,
  Icmpv6Packet,
  Icmpv6ParameterProblemCode,
  Icmpv6Repr,
  Icmpv6TimeExceededCode,
  Icmpv6Type,
} from '../../../src/stack/wire/icmpv6.js';
import { hex, pseudoV6, referenceChecksum } from './reference-checksum.js';

const HOST = hex('fd00 0000 0000 0000 0000 0000 0000 0001');
const PEER = hex('fd00 0000 0000 0000 0000 0000 0000 0002');

/** `ping -6` data: a 16-byte struct timeval, then bytes 0x10..0x37. */
const PING_DATA = Uint8Array.from([
  ...hex('c0f8eb6500000000 2f3a0b0000000000'),
  ...Array.from({ length: 40 }, (_, i) => 0x10 + i),
]);

/** Echo request fd00::1 -> fd00::2, id 0x2a3b, seq 7; checksum 0xb5d2 computed independently. */
const ECHO_REQUEST = Uint8Array.from([...hex('8000 b5d2 2a3b 0007'), ...PING_DATA]);
/** The reply fd00::2 -> fd00::1; checksum 0xb4d2. */
const ECHO_REPLY = Uint8Array.from([...hex('8100 b4d2 2a3b 0007'), ...PING_DATA]);

/** The IPv6 header and first 8 TCP bytes of a 1500-byte fd00::1 -> fd00::2 packet. */
const INVOKING = hex(`6000 0000 05b4 0640
  fd00 0000 0000 0000 0000 0000 0000 0001 fd00 0000 0000 0000 0000 0000 0000 0002
  9c40 0050 6f1a 2b3d`);
/** Packet Too Big, MTU 1280, fd00::2 -> fd00::1; checksum 0x61a7 computed independently. */
const PACKET_TOO_BIG = Uint8Array.from([...hex('0200 61a7 0000 0500'), ...INVOKING]);

function sum(src: Uint8Array, dst: Uint8Array, length: number): number {
  return pseudoHeaderSum(src, dst, 58, length);
}

function withZeroChecksum(b: Uint8Array): Uint8Array {
  const c = b.slice();
  c[2] = 0;
  c[3] = 0;
  return c;
}

/**
 * Emits `r` from `src` to `dst` into a 0xA5-filled buffer with a margin that must stay untouched,
 * and checks the checksum against the naive reference.
 */
function emitted(r: Icmpv6Repr, src = PEER, dst = HOST): Uint8Array {
  const n = Icmpv6Repr.length(r);
  const buf = new Uint8Array(n + 2).fill(0xa5);
  Icmpv6Repr.emit(r, buf.subarray(0, n), sum(src, dst, n));
  expect(buf.subarray(n)).toEqual(hex('a5a5'));
  const out = buf.subarray(0, n);
  expect(referenceChecksum(pseudoV6(src, dst, 58, n), withZeroChecksum(out))).toBe(
    new Icmpv6Packet(out).checksum,
  );
  return out;
}

function headerWithoutChecksum(b: Uint8Array): Uint8Array {
  return Uint8Array.of(...b.subarray(0, 2), ...b.subarray(4, 8));
}

describe('Icmpv6Packet', () => {
  it('reads an echo request with fd00:: addresses', () => {
    const p = new Icmpv6Packet(ECHO_REQUEST);
    expect(p.check()).toBeUndefined();
    expect(p.type).toBe(Icmpv6Type.ECHO_REQUEST);
    expect(p.code).toBe(0);
    expect(p.checksum).toBe(0xb5d2);
    expect(p.identifier).toBe(0x2a3b);
    expect(p.sequence).toBe(7);
    expect(p.data).toEqual(PING_DATA);
    expect(p.verifyChecksum(sum(HOST, PEER, ECHO_REQUEST.length))).toBe(true);
    expect(p.verifyChecksum(sum(PEER, HOST, ECHO_REQUEST.length + 1))).toBe(false);
    expect(referenceChecksum(pseudoV6(HOST, PEER, 58, 64), withZeroChecksum(ECHO_REQUEST))).toBe(0xb5d2);
    expect(referenceChecksum(pseudoV6(PEER, HOST, 58, 64), withZeroChecksum(ECHO_REPLY))).toBe(0xb4d2);
    expect(referenceChecksum(pseudoV6(PEER, HOST, 58, 56), withZeroChecksum(PACKET_TOO_BIG))).toBe(0x61a7);
  });

  it('reads the 32-bit MTU and pointer', () => {
    expect(new Icmpv6Packet(PACKET_TOO_BIG).mtu).toBe(1280);
    expect(new Icmpv6Packet(hex('0400 0000 8000 0028')).pointer).toBe(0x80000028);
  });

  it('writes each field into its own bytes only (0xA5 background)', () => {
    const buf = new Uint8Array(10).fill(0xa5);
    const p = new Icmpv6Packet(buf);
    p.type = 128;
    p.code = 0;
    p.checksum = 0x1234;
    p.identifier = 0xabcd;
    p.sequence = 0x0102;
    expect(buf).toEqual(hex('8000 1234 abcd 0102 a5a5'));
    p.mtu = 0xfffffffe;
    expect(buf.subarray(4, 8)).toEqual(hex('fffffffe'));
    expect(p.pointer).toBe(0xfffffffe);
    p.pointer = 40;
    expect(buf).toEqual(hex('8000 1234 0000 0028 a5a5'));
    const s = sum(HOST, PEER, buf.length);
    p.fillChecksum(s);
    expect(p.verifyChecksum(s)).toBe(true);
    expect(p.checksum).toBe(referenceChecksum(pseudoV6(HOST, PEER, 58, 10), withZeroChecksum(buf)));
  });

  it('returns a drop reason at every truncated length, never throwing', () => {
    for (let n = 0; n < 8; n++) {
      const p = new Icmpv6Packet(ECHO_REQUEST.subarray(0, n));
      expect(p.check()).toBe('icmpv6-truncated');
      expect(Icmpv6Repr.parse(p, sum(HOST, PEER, n))).toBe('icmpv6-truncated');
    }
    for (let n = 8; n < ECHO_REQUEST.length; n++) {
      const p = new Icmpv6Packet(ECHO_REQUEST.subarray(0, n));
      expect(Icmpv6Repr.parse(p, sum(HOST, PEER, n))).toBe('icmpv6-bad-checksum');
    }
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(0xffff), (bytes, s) => {
        const p = new Icmpv6Packet(bytes);
        const drop = p.check();
        const r = Icmpv6Repr.parse(p, s);
        if (drop !== undefined) expect(r).toBe(drop);
        void [p.type, p.code, p.checksum, p.identifier, p.sequence, p.mtu, p.pointer, p.data];
        p.verifyChecksum(s);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('Icmpv6Repr', () => {
  it('parses the echo request and emits the reply byte for byte', () => {
    const r = Icmpv6Repr.parse(new Icmpv6Packet(ECHO_REQUEST), sum(HOST, PEER, 64));
    expect(r).toEqual({ kind: 'echo-request', identifier: 0x2a3b, sequence: 7, data: PING_DATA });
    if (typeof r === 'string' || r.kind !== 'echo-request') throw new Error('not an echo request');
    expect(emitted({ ...r, kind: 'echo-reply' })).toEqual(ECHO_REPLY);
    expect(emitted(r, HOST, PEER)).toEqual(ECHO_REQUEST);
  });

  it('emits and parses Packet Too Big', () => {
    const r: Icmpv6Repr = { kind: 'packet-too-big', mtu: 1280, invoking: INVOKING };
    expect(Icmpv6Repr.length(r)).toBe(56);
    expect(emitted(r)).toEqual(PACKET_TOO_BIG);
    expect(Icmpv6Repr.parse(new Icmpv6Packet(PACKET_TOO_BIG), sum(PEER, HOST, 56))).toEqual(r);
  });

  it('emits the error messages with their codes and pointer (RFC 4443 §3)', () => {
    const unreachable: Icmpv6Repr = {
      kind: 'dest-unreachable',
      code: Icmpv6DestUnreachableCode.PORT,
      invoking: INVOKING,
    };
    expect(headerWithoutChecksum(emitted(unreachable))).toEqual(hex('0104 00000000'));
    const exceeded: Icmpv6Repr = {
      kind: 'time-exceeded',
      code: Icmpv6TimeExceededCode.REASSEMBLY,
      invoking: INVOKING,
    };
    expect(headerWithoutChecksum(emitted(exceeded))).toEqual(hex('0301 00000000'));
    const problem: Icmpv6Repr = {
      kind: 'parameter-problem',
      code: Icmpv6ParameterProblemCode.NEXT_HEADER,
      pointer: 6,
      invoking: INVOKING,
    };
    expect(headerWithoutChecksum(emitted(problem))).toEqual(hex('0401 00000006'));
    for (const r of [unreachable, exceeded, problem]) {
      expect(Icmpv6Repr.parse(new Icmpv6Packet(emitted(r)), sum(PEER, HOST, Icmpv6Repr.length(r)))).toEqual(
        r,
      );
    }
  });

  it('rejects a bad checksum, and NDP, MLD and unknown types as unsupported', () => {
    const bad = ECHO_REQUEST.slice();
    bad[30] = bad[30]! ^ 0x80;
    expect(Icmpv6Repr.parse(new Icmpv6Packet(bad), sum(HOST, PEER, 64))).toBe('icmpv6-bad-checksum');
    const unsupported = [
      Icmpv6Type.MLD_QUERY,
      Icmpv6Type.MLD_REPORT,
      Icmpv6Type.MLD_DONE,
      Icmpv6Type.ROUTER_SOLICITATION,
      Icmpv6Type.ROUTER_ADVERTISEMENT,
      Icmpv6Type.NEIGHBOR_SOLICITATION,
      Icmpv6Type.NEIGHBOR_ADVERTISEMENT,
      Icmpv6Type.REDIRECT,
      Icmpv6Type.MLDV2_REPORT,
      0,
      5,
      127,
      255,
    ];
    for (const type of unsupported) {
      const p = new Icmpv6Packet(new Uint8Array(24));
      p.type = type;
      p.fillChecksum(sum(HOST, PEER, 24));
      expect(Icmpv6Repr.parse(p, sum(HOST, PEER, 24))).toBe('icmpv6-unsupported-type');
    }
  });

  it('round-trips every kind through emit and parse', () => {
    const u16 = fc.nat(0xffff);
    const u32 = fc.nat(0xffffffff);
    const bytes = fc.uint8Array({ maxLength: 100 });
    const repr: fc.Arbitrary<Icmpv6Repr> = fc.oneof(
      fc.record({
        kind: fc.constantFrom('echo-request' as const, 'echo-reply' as const),
        identifier: u16,
        sequence: u16,
        data: bytes,
      }),
      fc.record({ kind: fc.constant('dest-unreachable' as const), code: fc.nat(0xff), invoking: bytes }),
      fc.record({ kind: fc.constant('packet-too-big' as const), mtu: u32, invoking: bytes }),
      fc.record({ kind: fc.constant('time-exceeded' as const), code: fc.nat(0xff), invoking: bytes }),
      fc.record({
        kind: fc.constant('parameter-problem' as const),
        code: fc.nat(0xff),
        pointer: u32,
        invoking: bytes,
      }),
    );
    fc.assert(
      fc.property(repr, (r) => {
        const s = sum(PEER, HOST, Icmpv6Repr.length(r));
        const p = new Icmpv6Packet(emitted(r));
        expect(p.verifyChecksum(s)).toBe(true);
        expect(Icmpv6Repr.parse(p, s)).toEqual(r);
      }),
      { numRuns: 1000 },
    );
  });
});
