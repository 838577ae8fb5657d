import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OutOfOrderQueue } from '../../../src/stack/tcp/ooo-queue.js';
import { seqAdd, seqGt, seqLt, seqSub } from '../../../src/stack/wire/seq.js';

/** A recognisable byte stream: the byte at stream offset i. */
function streamBytes(len: number, salt = 0): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + (i >>> 8) + salt) & 0xff;
  return b;
}

/** Drains at `rcvNxt` and returns the new RCV.NXT and the bytes delivered, joined. */
function drain(q: OutOfOrderQueue, rcvNxt: number): { nxt: number; data: Uint8Array } {
  const parts: Uint8Array[] = [];
  const nxt = q.drainInOrder(rcvNxt, (c) => parts.push(c));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const data = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { nxt, data };
}

/** The SACK blocks as [left, right] pairs. */
function sack(q: OutOfOrderQueue, rcvNxt: number, max = 4): [number, number][] {
  const left = new Uint32Array(4);
  const right = new Uint32Array(4);
  const n = q.sackBlocks(rcvNxt, max, left, right);
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) out.push([left[i]!, right[i]!]);
  return out;
}

describe('OutOfOrderQueue: RFC 2018 §3 examples (8 segments of 500 bytes from 5000)', () => {
  it('case 2: the first segment is lost; one block grows, ACK stays 5000', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    const data = streamBytes(4000);
    for (let seg = 1; seg < 8; seg++) {
      expect(q.insert(5000 + seg * 500, data.subarray(seg * 500, seg * 500 + 500))).toBe(true);
      expect(sack(q, 5000)).toEqual([[5500, 5500 + seg * 500]]);
    }
    expect(q.ranges).toBe(1);
    expect(q.bytes).toBe(3500);
    expect(q.segments).toBe(7);
    // The first segment arrives; the connection takes it in order, then drains the rest.
    const { nxt, data: got } = drain(q, 5500);
    expect(nxt).toBe(9000);
    expect(got).toEqual(data.subarray(500));
    expect(q.bytes).toBe(0);
    expect(q.ranges).toBe(0);
    expect(sack(q, 9000)).toEqual([]);
  });

  it('case 3: the 2nd, 4th, 6th and 8th segments are lost; most recent block first', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    const data = streamBytes(4000);
    const seg = (k: number) => data.subarray(k * 500, k * 500 + 500);
    // Segment 5000 arrives in order (ACK 5500, no SACK).
    let rcvNxt = 5500;
    q.insert(6000, seg(2));
    expect(sack(q, rcvNxt)).toEqual([[6000, 6500]]);
    q.insert(7000, seg(4));
    expect(sack(q, rcvNxt)).toEqual([
      [7000, 7500],
      [6000, 6500],
    ]);
    q.insert(8000, seg(6));
    expect(sack(q, rcvNxt)).toEqual([
      [8000, 8500],
      [7000, 7500],
      [6000, 6500],
    ]);
    // "Suppose at this point, the 4th packet is received out of order."
    q.insert(6500, seg(3));
    expect(sack(q, rcvNxt)).toEqual([
      [6000, 7500],
      [8000, 8500],
    ]);
    // "Suppose at this point, the 2nd segment is received": ACK 7500, first block 8000-8500.
    const d = drain(q, 6000);
    rcvNxt = d.nxt;
    expect(rcvNxt).toBe(7500);
    expect(d.data).toEqual(data.subarray(1000, 2500));
    expect(sack(q, rcvNxt)).toEqual([[8000, 8500]]);
  });

  it('limits the blocks to max (3 with timestamps) and keeps recency order', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    for (const s of [2000, 4000, 6000, 8000, 10000]) q.insert(s, new Uint8Array(100));
    expect(sack(q, 1000, 3)).toEqual([
      [10000, 10100],
      [8000, 8100],
      [6000, 6100],
    ]);
    // A segment landing in an old range makes that range the first block (RFC 2018 §4).
    q.insert(4100, new Uint8Array(50));
    expect(sack(q, 1000, 4)).toEqual([
      [4000, 4150],
      [10000, 10100],
      [8000, 8100],
      [6000, 6100],
    ]);
    expect(sack(q, 1000, 0)).toEqual([]);
  });
});

describe('OutOfOrderQueue: reassembly', () => {
  it('appends behind the last range in place (the common case)', () => {
    const q = new OutOfOrderQueue(1 << 24, 100_000);
    const data = streamBytes(1460 * 4000);
    for (let k = 1; k < 4000; k++) {
      expect(q.insert(1000 + k * 1460, data.subarray(k * 1460, (k + 1) * 1460))).toBe(true);
    }
    expect(q.ranges).toBe(1);
    expect(q.bytes).toBe(1460 * 3999);
    const d = drain(q, 2460);
    expect(d.nxt).toBe(1000 + 1460 * 4000);
    // Buffer.compare: a deep equality over 14 MB of elements is far too slow.
    expect(Buffer.compare(d.data, data.subarray(1460))).toBe(0);
  });

  it('fills holes in every order', () => {
    const data = streamBytes(400);
    const orders = [
      [0, 1, 2, 3],
      [3, 2, 1, 0],
      [1, 3, 0, 2],
      [2, 0, 3, 1],
      [3, 1, 2, 0],
    ];
    for (const order of orders) {
      const q = new OutOfOrderQueue(1 << 20, 1024);
      for (const k of order) q.insert(100 + k * 100, data.subarray(k * 100, k * 100 + 100));
      expect(q.ranges).toBe(1);
      const d = drain(q, 100);
      expect(d.nxt).toBe(500);
      expect(d.data).toEqual(data);
    }
  });

  it('keeps the old bytes on overlaps at every side', () => {
    const rcvNxt = 900;
    const old = new Uint8Array(100).fill(0x11);
    const cases: { seq: number; len: number; left: number; right: number; bytes: number }[] = [
      { seq: 1050, len: 100, left: 1050, right: 1200, bytes: 150 }, // overlaps the left edge
      { seq: 1150, len: 100, left: 1100, right: 1250, bytes: 150 }, // overlaps the right edge
      { seq: 1050, len: 200, left: 1050, right: 1250, bytes: 200 }, // covers the range
      { seq: 1000, len: 100, left: 1000, right: 1200, bytes: 200 }, // abuts on the left
      { seq: 1200, len: 100, left: 1100, right: 1300, bytes: 200 }, // abuts on the right
      { seq: 1120, len: 50, left: 1100, right: 1200, bytes: 100 }, // inside (duplicate)
      { seq: 1100, len: 100, left: 1100, right: 1200, bytes: 100 }, // exact duplicate
    ];
    for (const c of cases) {
      const q = new OutOfOrderQueue(1 << 20, 1024);
      q.insert(1100, old);
      expect(q.insert(c.seq, new Uint8Array(c.len).fill(0xee))).toBe(true);
      expect(q.ranges).toBe(1);
      expect(q.bytes).toBe(c.bytes);
      const blocks = sack(q, rcvNxt);
      expect(blocks[blocks.length - 1]).toEqual([c.left, c.right]);
      const d = drain(q, c.left);
      expect(d.nxt).toBe(c.right);
      for (let s = c.left; s < c.right; s++) {
        expect(d.data[s - c.left]).toBe(s >= 1100 && s < 1200 ? 0x11 : 0xee);
      }
    }
  });

  it('bridges several ranges with one segment, copying only the gaps', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    q.insert(1100, new Uint8Array(100).fill(1));
    q.insert(1300, new Uint8Array(100).fill(2));
    q.insert(1500, new Uint8Array(100).fill(3));
    expect(q.ranges).toBe(3);
    expect(q.insert(1050, new Uint8Array(500).fill(9))).toBe(true);
    expect(q.ranges).toBe(1);
    expect(q.bytes).toBe(550);
    expect(q.segments).toBe(3 + 3); // gaps [1050,1100), [1200,1300), [1400,1500)
    const d = drain(q, 1050);
    expect(d.nxt).toBe(1600);
    const want = new Uint8Array(550);
    want.fill(9, 0, 50);
    want.fill(1, 50, 150);
    want.fill(9, 150, 250);
    want.fill(2, 250, 350);
    want.fill(9, 350, 450);
    want.fill(3, 450, 550);
    expect(d.data).toEqual(want);
  });

  it('accepts an empty segment as a no-op', () => {
    const q = new OutOfOrderQueue(0, 0);
    expect(q.insert(5, new Uint8Array(0))).toBe(true);
    expect(q.bytes).toBe(0);
  });

  it('copies the bytes: reusing the packet buffer does not change held data', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    const pkt = new Uint8Array(100).fill(7);
    q.insert(200, pkt);
    pkt.fill(0);
    expect(drain(q, 200).data).toEqual(new Uint8Array(100).fill(7));
  });
});

describe('OutOfOrderQueue: draining and trimming', () => {
  it('trims a range that rcvNxt reached into and discards ranges below it', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    const data = streamBytes(1000);
    q.insert(100, data.subarray(0, 50)); // [100,150)
    q.insert(200, data.subarray(100, 300)); // [200,400), two chunks below
    q.insert(400, data.subarray(300, 400)); // merges: [200,500)
    q.insert(700, data.subarray(600, 700)); // [700,800)
    expect(q.ranges).toBe(3);
    // In-order data carried RCV.NXT to 350 (the connection took [100,350) itself).
    expect(sack(q, 350)).toEqual([[700, 800]]);
    const d = drain(q, 350);
    expect(d.nxt).toBe(500);
    expect(d.data).toEqual(data.subarray(250, 400));
    expect(q.ranges).toBe(1);
    expect(q.bytes).toBe(100);
    expect(q.segments).toBe(1);
    expect(sack(q, 500)).toEqual([[700, 800]]);
  });

  it('drains nothing while a hole remains, and everything below rcvNxt is discarded', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    q.insert(300, new Uint8Array(100));
    expect(drain(q, 299)).toEqual({ nxt: 299, data: new Uint8Array(0) });
    expect(q.bytes).toBe(100);
    expect(drain(q, 450)).toEqual({ nxt: 450, data: new Uint8Array(0) });
    expect(q.bytes).toBe(0);
    expect(q.segments).toBe(0);
  });

  it('updates its state before calling the sink', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    q.insert(100, new Uint8Array(10));
    q.insert(120, new Uint8Array(10));
    const seen: number[] = [];
    q.drainInOrder(100, () => seen.push(q.bytes, q.ranges));
    expect(seen).toEqual([10, 1]);
  });

  it('clear() forgets data and a pending D-SACK', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    q.insert(100, new Uint8Array(10));
    q.insert(100, new Uint8Array(10));
    q.clear();
    expect(q.bytes).toBe(0);
    expect(q.ranges).toBe(0);
    expect(sack(q, 0)).toEqual([]);
  });
});

describe('OutOfOrderQueue: bounds', () => {
  it('refuses a segment past maxBytes and leaves the queue unchanged', () => {
    const q = new OutOfOrderQueue(250, 1024);
    expect(q.insert(1000, new Uint8Array(100))).toBe(true);
    expect(q.insert(1200, new Uint8Array(100))).toBe(true);
    expect(q.insert(1400, new Uint8Array(100))).toBe(false);
    // Overlapping segments are charged only their new bytes: 50 fit.
    expect(q.insert(1050, new Uint8Array(100))).toBe(true);
    expect(q.bytes).toBe(250);
    expect(q.insert(1150, new Uint8Array(50))).toBe(false);
    expect(q.bytes).toBe(250);
    expect(sack(q, 0)).toEqual([
      [1050, 1100], // D-SACK: the overlap of the accepted segment
      [1000, 1150],
      [1200, 1300],
    ]);
    // A pure duplicate needs nothing and is accepted even when full.
    expect(q.insert(1000, new Uint8Array(150))).toBe(true);
  });

  it('refuses a segment past maxSegments', () => {
    const q = new OutOfOrderQueue(1 << 20, 3);
    expect(q.insert(100, new Uint8Array(10))).toBe(true);
    expect(q.insert(110, new Uint8Array(10))).toBe(true);
    expect(q.insert(130, new Uint8Array(10))).toBe(true);
    expect(q.insert(150, new Uint8Array(10))).toBe(false);
    // Bridging [120,130) adds one chunk: also refused at the bound.
    expect(q.insert(115, new Uint8Array(20))).toBe(false);
    expect(q.segments).toBe(3);
    expect(q.ranges).toBe(2);
    drain(q, 100);
    expect(q.segments).toBe(1);
    expect(q.insert(150, new Uint8Array(10))).toBe(true);
  });
});

describe('OutOfOrderQueue: D-SACK (RFC 2883 §4)', () => {
  it('reports a duplicate of held data first, then the block containing it, once', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    q.insert(2000, new Uint8Array(500));
    q.insert(3000, new Uint8Array(500));
    q.insert(2000, new Uint8Array(500)); // duplicate
    expect(sack(q, 1000)).toEqual([
      [2000, 2500],
      [2000, 2500],
      [3000, 3500],
    ]);
    expect(sack(q, 1000)).toEqual([
      [2000, 2500],
      [3000, 3500],
    ]);
  });

  it('reports only the duplicated part of a partial overlap', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    q.insert(2000, new Uint8Array(500));
    q.insert(2300, new Uint8Array(500));
    expect(sack(q, 1000)).toEqual([
      [2300, 2500],
      [2000, 2800],
    ]);
  });

  it('reports a duplicate below rcvNxt noted by the connection', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    q.insert(5000, new Uint8Array(100));
    expect(q.dsackPending).toBe(false);
    q.noteDuplicate(3000, 3500);
    expect(q.dsackPending).toBe(true);
    expect(sack(q, 4000, 3)).toEqual([
      [3000, 3500],
      [5000, 5100],
    ]);
    expect(q.dsackPending).toBe(false);
    q.noteDuplicate(3500, 3500); // empty: ignored
    expect(sack(q, 4000)).toEqual([[5000, 5100]]);
  });

  it('reports nothing extra when D-SACK is off', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024, false);
    q.insert(2000, new Uint8Array(500));
    q.insert(2000, new Uint8Array(500));
    q.noteDuplicate(100, 200);
    expect(sack(q, 1000)).toEqual([[2000, 2500]]);
  });
});

describe('OutOfOrderQueue: wrap-around at 2^32', () => {
  it('reassembles and reports blocks across zero', () => {
    const q = new OutOfOrderQueue(1 << 20, 1024);
    const isn = 0xffffff00;
    const data = streamBytes(1024);
    const at = (off: number) => seqAdd(isn, off);
    q.insert(at(512), data.subarray(512, 768)); // [0x100, 0x200)
    q.insert(at(128), data.subarray(128, 384)); // [0xffffff80, 0x80): spans zero
    expect(sack(q, isn)).toEqual([
      [0xffffff80, 0x80],
      [0x100, 0x200],
    ]);
    q.insert(at(300), data.subarray(300, 600)); // bridges both
    expect(q.ranges).toBe(1);
    expect(sack(q, isn)).toEqual([
      [0x2c, 0x80], // D-SACK: [at(300), at(384)), the first duplicated part
      [0xffffff80, 0x200],
    ]);
    q.insert(at(900), data.subarray(900, 1024));
    const d = drain(q, at(128));
    expect(d.nxt).toBe(0x200);
    expect(d.data).toEqual(data.subarray(128, 768));
    expect(sack(q, d.nxt)).toEqual([[at(900), at(1024)]]);
  });
});

describe('OutOfOrderQueue: property', () => {
  it('reassembles any segmentation delivered in any order with duplicates', () => {
    const arb = fc
      .record({
        len: fc.integer({ min: 1, max: 3000 }),
        base: fc.oneof(fc.nat(0xffffffff), fc.integer({ min: 0xfffff000, max: 0xffffffff })),
        cuts: fc.array(fc.nat(3000), { maxLength: 40 }),
        extra: fc.array(fc.tuple(fc.nat(3000), fc.integer({ min: 1, max: 600 })), { maxLength: 20 }),
        seed: fc.array(fc.nat(), { minLength: 80, maxLength: 80 }),
      })
      .map((r) => {
        const points = [...new Set([0, r.len, ...r.cuts.filter((c) => c < r.len)])].sort((a, b) => a - b);
        const segs: [number, number][] = [];
        for (let k = 0; k + 1 < points.length; k++) segs.push([points[k]!, points[k + 1]!]);
        // Duplicates and overlapping retransmissions of arbitrary ranges.
        for (const [s, l] of r.extra) if (s < r.len) segs.push([s, Math.min(r.len, s + l)]);
        // A deterministic shuffle driven by the seed.
        for (let k = segs.length - 1; k > 0; k--) {
          const j = r.seed[k % r.seed.length]! % (k + 1);
          [segs[k], segs[j]] = [segs[j]!, segs[k]!];
        }
        return { len: r.len, base: r.base, segs };
      });
    fc.assert(
      fc.property(arb, ({ len, base, segs }) => {
        const data = streamBytes(len, base & 0xff);
        const q = new OutOfOrderQueue(1 << 20, 1 << 16, false);
        const out = new Uint8Array(len);
        let rcvNxt = base;
        let delivered = 0;
        const take = (c: Uint8Array) => {
          out.set(c, delivered);
          delivered += c.length;
        };
        const left = new Uint32Array(64);
        const right = new Uint32Array(64);
        for (const [s, e] of segs) {
          const seq = seqAdd(base, s);
          const end = seqAdd(base, e);
          // What a connection does: drop old data, take in-order data, queue the rest.
          if (!seqGt(end, rcvNxt)) continue;
          if (seqLt(rcvNxt, seq)) {
            expect(q.insert(seq, data.subarray(s, e))).toBe(true);
          } else {
            take(data.subarray(seqSub(rcvNxt, base), e));
            rcvNxt = q.drainInOrder(end, take);
          }
          // Blocks lie above rcvNxt, never overlap, and cover exactly the bytes held. (Plain
          // checks in the loop: expect() per step would dominate the run time.)
          const n = q.sackBlocks(rcvNxt, 64, left, right);
          let ok = n === q.ranges;
          let covered = 0;
          for (let k = 0; k < n; k++) {
            ok &&= seqGt(left[k]!, rcvNxt) && seqLt(left[k]!, right[k]!);
            for (let m = 0; m < k; m++) ok &&= seqLt(right[k]!, left[m]!) || seqLt(right[m]!, left[k]!);
            covered += seqSub(right[k]!, left[k]!);
          }
          expect(ok && covered === q.bytes && delivered === seqSub(rcvNxt, base)).toBe(true);
        }
        expect(rcvNxt).toBe(seqAdd(base, len));
        expect(Buffer.compare(out, data)).toBe(0);
        expect(q.bytes).toBe(0);
        expect(q.ranges).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});
