import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  seqAdd,
  seqGe,
  seqGt,
  seqInWindow,
  seqLe,
  seqLt,
  seqMax,
  seqMin,
  seqSub,
} from '../../../src/stack/wire/seq.js';

const MAX = 0xffffffff;

describe('sequence number arithmetic (RFC 9293 §3.4)', () => {
  it('adds modulo 2^32', () => {
    expect(seqAdd(MAX, 1)).toBe(0);
    expect(seqAdd(MAX - 9, 20)).toBe(10);
    expect(seqAdd(5, -10)).toBe(MAX - 4);
    expect(seqAdd(0, 0)).toBe(0);
  });

  it('measures signed distances across the wrap', () => {
    expect(seqSub(5, MAX - 4)).toBe(10);
    expect(seqSub(MAX - 4, 5)).toBe(-10);
    expect(seqSub(0x80000000, 0)).toBe(-0x80000000);
    expect(seqSub(0x7fffffff, 0)).toBe(0x7fffffff);
  });

  it('orders numbers across the wrap', () => {
    const before = MAX - 1;
    const after = 3;
    expect(seqLt(before, after)).toBe(true);
    expect(seqLe(before, after)).toBe(true);
    expect(seqGt(after, before)).toBe(true);
    expect(seqGe(after, before)).toBe(true);
    expect(seqLt(after, before)).toBe(false);
    expect(seqGt(before, after)).toBe(false);
    expect(seqLe(7, 7)).toBe(true);
    expect(seqGe(7, 7)).toBe(true);
    expect(seqLt(7, 7)).toBe(false);
    expect(seqGt(7, 7)).toBe(false);
    expect(seqMax(before, after)).toBe(after);
    expect(seqMin(before, after)).toBe(before);
    expect(seqMax(after, before)).toBe(after);
    expect(seqMin(after, before)).toBe(before);
  });

  it('tests window membership as start <= x < start + len across the wrap', () => {
    const start = MAX - 9;
    expect(seqInWindow(start, start, 20)).toBe(true);
    expect(seqInWindow(MAX, start, 20)).toBe(true);
    expect(seqInWindow(0, start, 20)).toBe(true);
    expect(seqInWindow(9, start, 20)).toBe(true);
    expect(seqInWindow(10, start, 20)).toBe(false);
    expect(seqInWindow(start - 1, start, 20)).toBe(false);
    expect(seqInWindow(start, start, 0)).toBe(false);
  });

  it('agrees with offset arithmetic for any base and distance below 2^31', () => {
    fc.assert(
      fc.property(fc.nat(MAX), fc.integer({ min: 1, max: 0x7fffffff }), (a, d) => {
        const b = seqAdd(a, d);
        expect(seqSub(b, a)).toBe(d);
        expect(seqSub(a, b)).toBe(-d);
        expect(seqLt(a, b) && seqLe(a, b) && seqGt(b, a) && seqGe(b, a)).toBe(true);
        expect(seqLt(b, a) || seqLe(b, a) || seqGt(a, b) || seqGe(a, b)).toBe(false);
        expect(seqMax(a, b)).toBe(b);
        expect(seqMin(b, a)).toBe(a);
        expect(seqInWindow(b, a, d)).toBe(false);
        expect(seqInWindow(seqAdd(b, -1), a, d)).toBe(true);
        expect(seqInWindow(a, a, d)).toBe(true);
      }),
    );
  });
});
