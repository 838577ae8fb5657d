import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockPool } from '../../../src/stack/tcp/block-pool.js';
import { MAX_BLOCK } from '../../../src/stack/tcp/blocks.js';
import { RecvBuffer } from '../../../src/stack/tcp/recv-buffer.js';
import { SendBuffer } from '../../../src/stack/tcp/send-buffer.js';

/** `n` bytes of `fill`. */
const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

describe('BlockPool', () => {
  it('hands out full-size blocks, fresh while the free list is empty', () => {
    const pool = new BlockPool(4);
    const a = pool.take();
    const b = pool.take();
    expect(a.length).toBe(MAX_BLOCK);
    expect(a.buffer).not.toBe(b.buffer);
    expect(pool.stats).toEqual({ tcpBlocksTaken: 2, tcpBlocksReused: 0 });
  });

  it('a block never lent comes back when retired', () => {
    const pool = new BlockPool(4);
    const a = pool.take();
    pool.retire(a);
    expect(pool.freeBlocks).toBe(1);
    expect(pool.take()).toBe(a);
    expect(pool.stats.tcpBlocksReused).toBe(1);
  });

  it('a lent block comes back only once retired and every view is released, in either order', () => {
    const pool = new BlockPool(4);
    const a = pool.take();
    const v1 = a.subarray(0, 100);
    const v2 = a.subarray(100, 200);
    pool.lend(a);
    pool.lend(a);
    pool.release(v1);
    pool.retire(a);
    expect(pool.freeBlocks).toBe(0); // v2 is still out
    pool.release(v2);
    expect(pool.freeBlocks).toBe(1);

    const b = pool.take();
    expect(b).toBe(a);
    pool.lend(b);
    pool.release(b.subarray(0, 10));
    expect(pool.freeBlocks).toBe(0); // not retired: its owner still writes into it
    pool.retire(b);
    expect(pool.freeBlocks).toBe(1);
  });

  it('ignores memory it never lent, and a view released twice', () => {
    const pool = new BlockPool(4);
    pool.release(new Uint8Array(MAX_BLOCK));
    pool.release(Buffer.alloc(10));
    const a = pool.take();
    pool.lend(a);
    pool.lend(a);
    const v = a.subarray(0, 1);
    expect(pool.isLent(v)).toBe(true);
    expect(pool.isLent(new Uint8Array(4))).toBe(false);
    pool.retire(a);
    pool.release(v);
    pool.release(v);
    // Two loans, two releases: back. (A reader releasing a view twice is a bug of the reader's;
    // the count only guards against going below zero.)
    expect(pool.freeBlocks).toBe(1);
    pool.release(v);
    expect(pool.freeBlocks).toBe(1);
  });

  it('keeps at most maxFree blocks; 0 never reuses', () => {
    const pool = new BlockPool(2);
    const blocks = [pool.take(), pool.take(), pool.take()];
    for (const b of blocks) pool.retire(b);
    expect(pool.freeBlocks).toBe(2);
    const none = new BlockPool(0);
    const a = none.take();
    none.retire(a);
    expect(none.freeBlocks).toBe(0);
    expect(none.take()).not.toBe(a);
    expect(() => new BlockPool(-1)).toThrow(RangeError);
  });
});

describe('RecvBuffer with a BlockPool', () => {
  it('a busy connection whose reader releases what it read reuses its blocks', () => {
    const pool = new BlockPool(8);
    const rb = new RecvBuffer(1 << 20, pool);
    // Grow the blocks to full size first (4, 8, 16, 32 KiB, then 64 KiB ones).
    for (let round = 0; round < 40; round++) {
      expect(rb.write(bytes(60_000, round))).toBe(60_000);
      for (let v = rb.read(1 << 20); v !== undefined; v = rb.read(1 << 20)) {
        expect(v.every((x) => x === round)).toBe(true);
        pool.release(v);
      }
    }
    expect(pool.stats.tcpBlocksTaken).toBeGreaterThan(30);
    // Every full-size block but the first two came back from the pool.
    expect(pool.stats.tcpBlocksReused).toBeGreaterThanOrEqual(pool.stats.tcpBlocksTaken - 2);
  });

  it('trim() gives a pooled tail block back', () => {
    const pool = new BlockPool(8);
    const rb = new RecvBuffer(1 << 20, pool);
    // Blocks of 4, 8, 16 and 32 KiB, each filled by one write; the fifth is a full-size one.
    for (const n of [4096, 8192, 16384, 32768, 10]) rb.write(bytes(n, 1));
    for (let v = rb.read(1 << 20); v !== undefined; v = rb.read(1 << 20)) pool.release(v);
    expect(pool.freeBlocks).toBe(0);
    rb.trim();
    expect(pool.freeBlocks).toBe(1);
  });

  it('never reuses a block while a view of it is out (random writes, reads and releases)', () => {
    let reused = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            {
              weight: 5,
              arbitrary: fc.record({
                op: fc.constant('write' as const),
                n: fc.integer({ min: 1, max: 70_000 }),
              }),
            },
            {
              weight: 5,
              arbitrary: fc.record({
                op: fc.constant('read' as const),
                n: fc.integer({ min: 1, max: 100_000 }),
              }),
            },
            { weight: 5, arbitrary: fc.record({ op: fc.constant('release' as const), pick: fc.nat() }) },
            { weight: 1, arbitrary: fc.record({ op: fc.constant('trim' as const) }) },
          ),
          { minLength: 50, maxLength: 200 },
        ),
        (ops) => {
          const pool = new BlockPool(4);
          const rb = new RecvBuffer(400_000, pool);
          let next = 0;
          /** Views out, with a copy of what each held when read. */
          const out: { view: Uint8Array; copy: Buffer }[] = [];
          for (const o of ops) {
            if (o.op === 'write') {
              const fill = next++ % 256;
              const n = rb.write(bytes(o.n, fill));
              if (n === 0) continue;
            } else if (o.op === 'read') {
              // Up to n bytes, in as many views as that takes (a view covers one block at most).
              for (
                let left = o.n, v = rb.read(left);
                v !== undefined;
                v = left > 0 ? rb.read(left) : undefined
              ) {
                out.push({ view: v, copy: Buffer.from(v) });
                left -= v.length;
              }
            } else if (o.op === 'release') {
              // Release views at random until at most pick % 4 are left out.
              for (let r = o.pick; out.length > o.pick % 4; r = (r * 31 + 7) >>> 0) {
                const [gone] = out.splice(r % out.length, 1);
                pool.release(gone!.view);
              }
            } else rb.trim();
            // A view still out keeps the bytes it was read with.
            for (const { view, copy } of out) expect(copy.equals(view)).toBe(true);
          }
          reused += pool.stats.tcpBlocksReused;
        },
      ),
      { numRuns: 300 },
    );
    // The runs did reuse blocks (the property is not vacuous).
    expect(reused).toBeGreaterThan(50);
  });
});

describe('SendBuffer with a BlockPool', () => {
  it('copied bytes fill pooled blocks that come back once acknowledged', () => {
    const pool = new BlockPool(8);
    const sb = new SendBuffer(1 << 20, pool);
    const out = new Uint8Array(60_000);
    // Each round's bytes are acknowledged a round later, so blocks are dropped while others live.
    for (let round = 0; round < 40; round++) {
      expect(sb.append(bytes(60_000, round), false)).toBe(60_000);
      sb.copyTo(sb.length - 60_000, 60_000, out, 0);
      expect(out.every((x) => x === round)).toBe(true);
      if (round > 0) sb.consume(60_000);
    }
    expect(pool.stats.tcpBlocksTaken).toBeGreaterThan(30);
    // At most three are live at once (two rounds' bytes); every other one was reused.
    expect(pool.stats.tcpBlocksReused).toBeGreaterThanOrEqual(pool.stats.tcpBlocksTaken - 3);
  });

  it("never pools a writer's own chunk, even a full-size one", () => {
    const pool = new BlockPool(8);
    const sb = new SendBuffer(1 << 20, pool);
    const mine = new Uint8Array(MAX_BLOCK).fill(9);
    expect(sb.append(mine, true)).toBe(MAX_BLOCK);
    sb.consume(MAX_BLOCK);
    sb.clear();
    expect(pool.freeBlocks).toBe(0);
    expect(pool.take()).not.toBe(mine);
  });

  it('clear() and trim() give pooled blocks back', () => {
    // Blocks of 4, 8, 16 and 32 KiB, each filled by one append; then two full-size ones.
    const pool = new BlockPool(8);
    const sb = new SendBuffer(1 << 20, pool);
    for (const n of [4096, 8192, 16384, 32768, MAX_BLOCK, 10]) sb.append(bytes(n, 1), false);
    sb.clear();
    expect(pool.freeBlocks).toBe(2);

    const pool2 = new BlockPool(8);
    const sb2 = new SendBuffer(1 << 20, pool2);
    for (const n of [4096, 8192, 16384, 32768, 10]) sb2.append(bytes(n, 1), false);
    sb2.consume(sb2.length); // the full-size tail stays as the spare
    expect(pool2.freeBlocks).toBe(0);
    sb2.trim();
    expect(pool2.freeBlocks).toBe(1);
  });
});
