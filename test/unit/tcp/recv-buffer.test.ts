import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecvBuffer } from '../../../src/stack/tcp/recv-buffer.js';

/** Bytes 0, 1, 2, ... (mod 251, so block boundaries never line up with the pattern) from `start`. */
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

/** Reads until empty with `max` per call; returns the chunks. */
function drain(rb: RecvBuffer, max = Number.MAX_SAFE_INTEGER): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let chunk = rb.read(max); chunk !== undefined; chunk = rb.read(max)) chunks.push(chunk);
  return chunks;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(chunks));
}

describe('RecvBuffer', () => {
  it('starts empty and allocates nothing', () => {
    const rb = new RecvBuffer(128 * 1024);
    expect(rb.capacity).toBe(128 * 1024);
    expect(rb.length).toBe(0);
    expect(rb.free).toBe(128 * 1024);
    expect(rb.totalRead).toBe(0);
    expect(rb.storageBytes).toBe(0);
    expect(rb.read(100)).toBeUndefined();
  });

  it('reads back what was written, in order', () => {
    const rb = new RecvBuffer(10_000);
    expect(rb.write(pattern(1448))).toBe(1448);
    expect(rb.write(pattern(1000, 1448))).toBe(1000);
    expect(rb.length).toBe(2448);
    expect(rb.free).toBe(10_000 - 2448);
    expectBytes(concat(drain(rb)), pattern(2448));
    expect(rb.length).toBe(0);
    expect(rb.totalRead).toBe(2448);
  });

  it('copies: the packet buffer may be reused as soon as write returns', () => {
    const rb = new RecvBuffer(10_000);
    const packet = pattern(1448);
    rb.write(packet);
    packet.fill(0xee);
    expectBytes(concat(drain(rb)), pattern(1448));
  });

  it('takes only what fits', () => {
    const rb = new RecvBuffer(1000);
    expect(rb.write(pattern(600))).toBe(600);
    expect(rb.write(pattern(600, 600))).toBe(400);
    expect(rb.write(pattern(1))).toBe(0);
    expect(rb.write(new Uint8Array(0))).toBe(0);
    expect(rb.free).toBe(0);
    expectBytes(concat(drain(rb)), pattern(1000));
  });

  it('reads at most max bytes per call', () => {
    const rb = new RecvBuffer(10_000);
    rb.write(pattern(1000));
    expect(rb.read(0)).toBeUndefined();
    expect(rb.read(-5)).toBeUndefined();
    expect(rb.read(Number.NaN)).toBeUndefined();
    expect(rb.read(0.5)).toBeUndefined();
    expect(rb.read(1)).toEqual(pattern(1));
    expect(rb.read(2.9)).toEqual(pattern(2, 1));
    const sizes = drain(rb, 300).map((c) => c.length);
    expect(sizes).toEqual([300, 300, 300, 97]);
    expect(rb.totalRead).toBe(1000);
  });

  it('hands out views that later writes never touch', () => {
    const rb = new RecvBuffer(1 << 20);
    const handed: Uint8Array[] = [];
    let written = 0;
    // Read after every segment: the reader keeps up, so the tail block keeps taking data right
    // after the ranges already handed out.
    for (let i = 0; i < 200; i++) {
      rb.write(pattern(1448, written));
      written += 1448;
      handed.push(...drain(rb));
    }
    expectBytes(concat(handed), pattern(written));
    expect(rb.totalRead).toBe(written);
  });

  it('keeps the views of a buffer emptied and refilled intact', () => {
    const rb = new RecvBuffer(1 << 20);
    rb.write(pattern(10));
    const first = rb.read(100)!;
    expect(rb.length).toBe(0);
    rb.write(pattern(10, 10));
    expect(first).toEqual(pattern(10));
    expect(rb.read(100)).toEqual(pattern(10, 10));
  });

  it('grows its blocks by doubling from 4 KiB to 64 KiB as data arrives', () => {
    const rb = new RecvBuffer(4 << 20);
    let written = 0;
    while (written < 400_000) written += rb.write(pattern(1448, written));
    const chunks = drain(rb);
    expect(chunks.slice(0, 7).map((c) => c.length)).toEqual([4096, 8192, 16384, 32768, 65536, 65536, 65536]);
    expectBytes(concat(chunks), pattern(written));
  });

  it('splits a write across the end of a block', () => {
    const rb = new RecvBuffer(1 << 20);
    rb.write(pattern(4000));
    rb.write(pattern(1448, 4000));
    expect(rb.storageBytes).toBe(4096 + 8192);
    const chunks = drain(rb);
    expect(chunks.map((c) => c.length)).toEqual([4096, 1352]);
    expectBytes(concat(chunks), pattern(5448));
  });

  it('never allocates beyond the free space, so capacity bounds memory', () => {
    const rb = new RecvBuffer(3000);
    rb.write(pattern(10));
    expect(rb.storageBytes).toBe(3000);
    rb.write(pattern(2990, 10));
    expect(rb.storageBytes).toBe(3000);
    expectBytes(concat(drain(rb)), pattern(3000));
  });

  it('drops read blocks and keeps only a partly filled tail block once empty, until trim()', () => {
    const rb = new RecvBuffer(1 << 20);
    let written = 0;
    while (written < 100_000) written += rb.write(pattern(1448, written));
    expect(rb.storageBytes).toBe(4096 + 8192 + 16384 + 32768 + 65536);
    drain(rb);
    expect(rb.storageBytes).toBe(65536);
    rb.trim();
    expect(rb.storageBytes).toBe(0);
    rb.write(pattern(5));
    rb.trim();
    expect(rb.length).toBe(5);
    expect(rb.read(10)).toEqual(pattern(5));
  });

  it('releases a block that was filled exactly and read', () => {
    const rb = new RecvBuffer(1 << 20);
    rb.write(pattern(4096));
    expect(rb.read(5000)!.length).toBe(4096);
    expect(rb.storageBytes).toBe(0);
    rb.write(pattern(3, 9));
    expect(rb.read(5000)).toEqual(pattern(3, 9));
  });

  it('grows and shrinks its capacity, never below length', () => {
    const rb = new RecvBuffer(1000);
    rb.write(pattern(800));
    rb.capacity = 4000;
    expect(rb.free).toBe(3200);
    expect(rb.write(pattern(4000, 800))).toBe(3200);
    rb.capacity = 100;
    expect(rb.capacity).toBe(4000);
    expect(rb.free).toBe(0);
    expectBytes(concat(drain(rb, 1500)), pattern(4000));
    rb.capacity = 100;
    expect(rb.capacity).toBe(100);
    expect(rb.free).toBe(100);
    expect(() => {
      rb.capacity = -1;
    }).toThrow(RangeError);
    expect(() => new RecvBuffer(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it('stays O(1) per operation over a long stream (the block queue compacts)', () => {
    const capacity = 256 * 1024;
    const rb = new RecvBuffer(capacity);
    // pattern(1448, n) is source.subarray(n % 251, n % 251 + 1448).
    const source = pattern(251 * 7);
    let written = 0;
    let read = 0;
    for (let round = 0; round < 1000; round++) {
      while (rb.free >= 1448) written += rb.write(source.subarray(written % 251, (written % 251) + 1448));
      // A slow reader: half the buffer per round, in chunks a Node stream would take.
      const target = rb.length >>> 1;
      let taken = 0;
      while (taken < target) {
        const chunk = rb.read(Math.min(16384, target - taken))!;
        if (chunk[0] !== read % 251) expect(chunk[0]).toBe(read % 251);
        read += chunk.length;
        taken += chunk.length;
      }
      if (rb.storageBytes > capacity + 65536) expect(rb.storageBytes).toBeLessThanOrEqual(capacity + 65536);
    }
    expect(rb.totalRead).toBe(read);
    expect(read + rb.length).toBe(written);
    expectBytes(concat(drain(rb)), pattern(written - read, read));
  });

  it('matches a plain byte array under any sequence of operations', () => {
    type Op =
      | { kind: 'write'; size: number }
      | { kind: 'read'; max: number }
      | { kind: 'capacity'; value: number }
      | { kind: 'trim' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('write' as const),
          size: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 20_000 })),
        }),
      },
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('read' as const),
          max: fc.oneof(fc.integer({ min: -1, max: 50 }), fc.integer({ min: 0, max: 100_000 })),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('capacity' as const),
          value: fc.integer({ min: 0, max: 100_000 }),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'trim' as const }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.array(op, { maxLength: 80 }), (capacity, ops) => {
        const rb = new RecvBuffer(capacity);
        let model: number[] = [];
        const handed: { view: Uint8Array; bytes: number[] }[] = [];
        let cap = capacity;
        let next = 0;
        let totalRead = 0;
        for (const o of ops) {
          switch (o.kind) {
            case 'write': {
              const data = pattern(o.size, next);
              next += o.size;
              const took = rb.write(data);
              expect(took).toBe(Math.min(o.size, cap - model.length));
              for (let i = 0; i < took; i++) model.push(data[i]!);
              data.fill(0xee);
              break;
            }
            case 'read': {
              const chunk = rb.read(o.max);
              if (o.max < 1 || model.length === 0) {
                expect(chunk).toBeUndefined();
                break;
              }
              // Up to max, and something whenever there is something.
              expect(chunk).toBeDefined();
              expect(chunk!.length).toBeGreaterThanOrEqual(1);
              expect(chunk!.length).toBeLessThanOrEqual(Math.min(o.max, model.length));
              const bytes = model.slice(0, chunk!.length);
              expect(Array.from(chunk!)).toEqual(bytes);
              handed.push({ view: chunk!, bytes });
              model = model.slice(chunk!.length);
              totalRead += chunk!.length;
              break;
            }
            case 'capacity':
              rb.capacity = o.value;
              cap = Math.max(o.value, model.length);
              break;
            case 'trim':
              rb.trim();
              break;
          }
          expect(rb.length).toBe(model.length);
          expect(rb.capacity).toBe(cap);
          expect(rb.free).toBe(cap - model.length);
          expect(rb.totalRead).toBe(totalRead);
        }
        // Nothing handed out was ever written again.
        for (const h of handed) expect(Array.from(h.view)).toEqual(h.bytes);
        expect(Array.from(concat(drain(rb)))).toEqual(model);
      }),
      { numRuns: 300 },
    );
  });
});
