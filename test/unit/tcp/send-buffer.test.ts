import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SendBuffer } from '../../../src/stack/tcp/send-buffer.js';

/** Bytes 0, 1, 2, ... (mod 251, so chunk boundaries never line up with the pattern) from `start`. */
function pattern(length: number, start = 0): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (start + i) % 251;
  return b;
}

/** Asserts byte equality; a cheap compare first, as toEqual on large typed arrays is slow. */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (!Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(expected)) {
    expect(actual).toEqual(expected);
  }
}

/** Every buffered byte, read through copyTo. */
function contents(sb: SendBuffer): Uint8Array {
  const out = new Uint8Array(sb.length);
  sb.copyTo(0, sb.length, out, 0);
  return out;
}

describe('SendBuffer', () => {
  it('starts empty and allocates nothing', () => {
    const sb = new SendBuffer(1000);
    expect(sb.capacity).toBe(1000);
    expect(sb.length).toBe(0);
    expect(sb.free).toBe(1000);
    expect(sb.chunkCount).toBe(0);
    expect(sb.storageBytes).toBe(0);
  });

  it('takes at most free bytes and returns how many', () => {
    const sb = new SendBuffer(10);
    expect(sb.append(pattern(4), false)).toBe(4);
    expect(sb.append(pattern(8, 4), false)).toBe(6);
    expect(sb.append(pattern(1), false)).toBe(0);
    expect(sb.append(pattern(3000), true)).toBe(0);
    expect(sb.append(new Uint8Array(0), true)).toBe(0);
    expect(sb.length).toBe(10);
    expect(sb.free).toBe(0);
    expectBytes(contents(sb), pattern(10));
  });

  it('takes a prefix of an owned chunk larger than free', () => {
    const sb = new SendBuffer(5000);
    const data = pattern(8000);
    expect(sb.append(data, true)).toBe(5000);
    expectBytes(contents(sb), pattern(5000));
    expect(sb.storageBytes).toBe(5000);
  });

  it('copies borrowed data: mutating the source afterwards changes nothing', () => {
    const sb = new SendBuffer(100_000);
    const small = pattern(10);
    const large = pattern(20_000, 10);
    sb.append(small, false);
    sb.append(large, false);
    small.fill(0xee);
    large.fill(0xee);
    expectBytes(contents(sb), pattern(20_010));
  });

  it('keeps large owned chunks by reference (zero copy) and copies small owned ones', () => {
    const sb = new SendBuffer(100_000);
    const small = pattern(100);
    const large = pattern(4096, 100);
    sb.append(small, true);
    sb.append(large, true);
    expect(sb.chunkCount).toBe(2);
    // The caller broke its promise here only to show which bytes were referenced.
    small[0] = 0xee;
    large[0] = 0xee;
    const out = contents(sb);
    expect(out[0]).toBe(0);
    expect(out[100]).toBe(0xee);
  });

  it('coalesces 1-byte writes into blocks', () => {
    const sb = new SendBuffer(1 << 20);
    let took = 0;
    for (let i = 0; i < 100_000; i++) took += sb.append(Uint8Array.of(i % 251), i % 2 === 0);
    expect(took).toBe(100_000);
    expect(sb.length).toBe(100_000);
    // Blocks of 4, 8, 16, 32 KiB, then 64 KiB: five chunks, not 100000.
    expect(sb.chunkCount).toBe(5);
    expect(sb.storageBytes).toBeLessThan(2 * 100_000);
    expectBytes(contents(sb), pattern(100_000));
  });

  it('never allocates a block larger than the free space', () => {
    const sb = new SendBuffer(100);
    sb.append(pattern(1), false);
    expect(sb.storageBytes).toBe(100);
  });

  it('copies segments across chunk boundaries at a destination offset', () => {
    const sb = new SendBuffer(1 << 20);
    // Copied, referenced, coalesced and a referenced prefix: every kind of chunk boundary.
    let at = 0;
    for (const [size, owned] of [
      [700, false],
      [3000, true],
      [10, true],
      [5, false],
      [9000, true],
      [1448, false],
    ] as const) {
      sb.append(pattern(size, at), owned);
      at += size;
    }
    const all = pattern(at);
    for (const [offset, len] of [
      [0, at],
      [0, 1],
      [699, 2],
      [690, 3020],
      [3700, 15],
      [3705, 9000],
      [at - 1, 1],
      [at, 0],
      [1448 * 3, 1448],
    ] as const) {
      const dst = new Uint8Array(len + 60).fill(0xa5);
      sb.copyTo(offset, len, dst, 52);
      expectBytes(dst.subarray(52, 52 + len), all.subarray(offset, offset + len));
      expect(dst.subarray(0, 52).every((b) => b === 0xa5)).toBe(true);
      expect(dst.subarray(52 + len).every((b) => b === 0xa5)).toBe(true);
    }
  });

  it('builds segments at increasing offsets, as a sender does, and randomly, as retransmission does', () => {
    const sb = new SendBuffer(1 << 20);
    for (let i = 0; i < 200; i++) sb.append(pattern(3000 + (i % 7), sb.length), true);
    const all = pattern(sb.length);
    const dst = new Uint8Array(1448);
    for (let off = 0; off + 1448 <= sb.length; off += 1448) {
      sb.copyTo(off, 1448, dst, 0);
      expectBytes(dst, all.subarray(off, off + 1448));
    }
    for (const off of [500_000, 3, 400_000, 1448, 599_000, 0]) {
      sb.copyTo(off, 1448, dst, 0);
      expectBytes(dst, all.subarray(off, off + 1448));
    }
  });

  it('consumes acknowledged bytes from the front, across chunk boundaries', () => {
    const sb = new SendBuffer(1 << 20);
    sb.append(pattern(3000), true);
    sb.append(pattern(100, 3000), false);
    sb.append(pattern(5000, 3100), true);
    sb.consume(0);
    sb.consume(2999);
    expect(sb.length).toBe(5101);
    expect(sb.free).toBe((1 << 20) - 5101);
    expectBytes(contents(sb), pattern(5101, 2999));
    sb.consume(102);
    expect(sb.chunkCount).toBe(1);
    expectBytes(contents(sb), pattern(4999, 3101));
    sb.append(pattern(7, 8100), false);
    expectBytes(contents(sb), pattern(5006, 3101));
  });

  it('stays O(1) per operation over a long stream (the chunk queue compacts)', () => {
    const sb = new SendBuffer(256 * 1024);
    const dst = new Uint8Array(1448);
    let written = 0;
    let acked = 0;
    for (let round = 0; round < 20_000; round++) {
      written += sb.append(pattern(2048 + (round % 3), written), true);
      sb.copyTo(sb.length - 1448, 1448, dst, 0);
      if (dst[0] !== (written - 1448) % 251) expect(dst[0]).toBe((written - 1448) % 251);
      sb.copyTo(0, 1448, dst, 0);
      if (dst[1447] !== (acked + 1447) % 251) expect(dst[1447]).toBe((acked + 1447) % 251);
      if (sb.length > 100_000) {
        const n = sb.length - 50_000 + (round % 5);
        sb.consume(n);
        acked += n;
      }
      if (sb.chunkCount >= 100) expect(sb.chunkCount).toBeLessThan(100);
    }
    expect(acked + sb.length).toBe(written);
  });

  it('keeps one block for reuse once everything is acknowledged, until trim()', () => {
    const sb = new SendBuffer(1 << 20);
    sb.append(pattern(100), false);
    expect(sb.storageBytes).toBe(4096);
    sb.consume(100);
    expect(sb.length).toBe(0);
    expect(sb.storageBytes).toBe(4096);
    // The spare block is reused from its start; its old bytes never show through.
    sb.append(pattern(50, 7), false);
    expect(sb.storageBytes).toBe(4096);
    expectBytes(contents(sb), pattern(50, 7));
    sb.trim();
    expect(sb.storageBytes).toBe(4096);
    sb.consume(50);
    sb.trim();
    expect(sb.storageBytes).toBe(0);
    sb.append(pattern(3), false);
    expectBytes(contents(sb), pattern(3));
  });

  it('grows and shrinks its capacity, never below length', () => {
    const sb = new SendBuffer(100);
    sb.append(pattern(80), false);
    sb.capacity = 200;
    expect(sb.free).toBe(120);
    expect(sb.append(pattern(150, 80), false)).toBe(120);
    sb.capacity = 50;
    expect(sb.capacity).toBe(200);
    expect(sb.free).toBe(0);
    sb.consume(150);
    sb.capacity = 10;
    expect(sb.capacity).toBe(50);
    expect(sb.free).toBe(0);
    sb.consume(50);
    sb.capacity = 10;
    expect(sb.capacity).toBe(10);
    expect(sb.free).toBe(10);
  });

  it('clears everything on abort', () => {
    const sb = new SendBuffer(100_000);
    sb.append(pattern(5000), true);
    sb.append(pattern(10), false);
    sb.clear();
    expect(sb.length).toBe(0);
    expect(sb.free).toBe(100_000);
    expect(sb.chunkCount).toBe(0);
    expect(sb.storageBytes).toBe(0);
    sb.append(pattern(20, 1), false);
    expectBytes(contents(sb), pattern(20, 1));
  });

  it('rejects out-of-range calls and invalid capacities: caller bugs, not packet data', () => {
    const sb = new SendBuffer(100);
    sb.append(pattern(10), false);
    const dst = new Uint8Array(100);
    expect(() => sb.copyTo(5, 6, dst, 0)).toThrow(RangeError);
    expect(() => sb.copyTo(-1, 1, dst, 0)).toThrow(RangeError);
    expect(() => sb.copyTo(11, 0, dst, 0)).toThrow(RangeError);
    expect(() => sb.consume(11)).toThrow(RangeError);
    expect(() => sb.consume(-1)).toThrow(RangeError);
    expect(() => new SendBuffer(-1)).toThrow(RangeError);
    expect(() => new SendBuffer(1.5)).toThrow(RangeError);
    expect(() => {
      sb.capacity = Number.NaN;
    }).toThrow(RangeError);
    expectBytes(contents(sb), pattern(10));
  });

  it('matches a plain byte array under any sequence of operations', () => {
    type Op =
      | { kind: 'append'; size: number; owned: boolean }
      | { kind: 'copy'; from: number; to: number }
      | { kind: 'consume'; fraction: number }
      | { kind: 'capacity'; value: number }
      | { kind: 'clear' }
      | { kind: 'trim' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('append' as const),
          size: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 9000 })),
          owned: fc.boolean(),
        }),
      },
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('copy' as const),
          from: fc.double({ min: 0, max: 1, noNaN: true }),
          to: fc.double({ min: 0, max: 1, noNaN: true }),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('consume' as const),
          fraction: fc.double({ min: 0, max: 1, noNaN: true }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('capacity' as const),
          value: fc.integer({ min: 0, max: 40_000 }),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'trim' as const }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40_000 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
        const sb = new SendBuffer(capacity);
        let model: number[] = [];
        let cap = capacity;
        let next = 0;
        for (const o of ops) {
          switch (o.kind) {
            case 'append': {
              const data = pattern(o.size, next);
              next += o.size;
              const took = sb.append(data, o.owned);
              expect(took).toBe(Math.min(o.size, cap - model.length));
              for (let i = 0; i < took; i++) model.push(data[i]!);
              // A borrowed buffer is the caller's again once append returns.
              if (!o.owned) data.fill(0xee);
              break;
            }
            case 'copy': {
              const a = Math.floor(o.from * model.length);
              const b = Math.floor(o.to * model.length);
              const [lo, hi] = a <= b ? [a, b] : [b, a];
              const dst = new Uint8Array(hi - lo + 3).fill(0xa5);
              sb.copyTo(lo, hi - lo, dst, 2);
              expect(Array.from(dst.subarray(2, 2 + hi - lo))).toEqual(model.slice(lo, hi));
              expect(dst[0]).toBe(0xa5);
              expect(dst[hi - lo + 2]).toBe(0xa5);
              break;
            }
            case 'consume': {
              const n = Math.floor(o.fraction * model.length);
              sb.consume(n);
              model = model.slice(n);
              break;
            }
            case 'capacity':
              sb.capacity = o.value;
              cap = Math.max(o.value, model.length);
              break;
            case 'clear':
              sb.clear();
              model = [];
              break;
            case 'trim':
              sb.trim();
              break;
          }
          expect(sb.length).toBe(model.length);
          expect(sb.capacity).toBe(cap);
          expect(sb.free).toBe(cap - model.length);
        }
        expect(Array.from(contents(sb))).toEqual(model);
      }),
      { numRuns: 300 },
    );
  });
});
