import { describe, expect, it } from 'vitest';
import type { PacketSink } from '../../../src/tun/device.js';
import { FaultDevice, type FaultOptions, FaultPlan, mulberry32 } from '../../../src/tun/fault-device.js';
import { MemoryDevice } from '../../../src/tun/memory-device.js';

/** A packet whose first two bytes carry its sequence number. */
function numbered(i: number): Uint8Array {
  const p = new Uint8Array(20).fill(0x45);
  p[0] = i >> 8;
  p[1] = i & 0xff;
  return p;
}
const idOf = (p: Uint8Array): number => (p[0]! << 8) | p[1]!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Injects `count` numbered packets into a fault-wrapped memory device; returns the ids the sink saw. */
function runRx(opts: FaultOptions, count: number): { ids: number[]; dev: FaultDevice } {
  const mem = new MemoryDevice();
  const dev = new FaultDevice(mem, opts);
  const ids: number[] = [];
  const sink: PacketSink = { receive: (p) => ids.push(idOf(p)), flush: () => {} };
  dev.start(sink);
  for (let i = 0; i < count; i++) mem.inject(numbered(i));
  return { ids, dev };
}

describe('mulberry32 and FaultPlan', () => {
  it('is a deterministic stream in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(mulberry32(43)()).not.toBe(xs[0]);
  });

  it('gives the same fates for the same seed, and roughly the configured rates', () => {
    const spec = { loss: 0.1, duplicate: 0.05, reorder: 0.2, delayMs: 3, jitterMs: 2 };
    const p1 = new FaultPlan(spec, 7);
    const p2 = new FaultPlan(spec, 7);
    const fates = Array.from({ length: 10000 }, () => p1.next());
    expect(Array.from({ length: 10000 }, () => p2.next())).toEqual(fates);
    const rate = (f: (d: (typeof fates)[number]) => boolean): number => fates.filter(f).length / fates.length;
    expect(rate((d) => d.lose)).toBeCloseTo(0.1, 1);
    expect(rate((d) => d.duplicate)).toBeCloseTo(0.05, 1);
    expect(rate((d) => d.reorder)).toBeCloseTo(0.2, 1);
    expect(fates.every((d) => d.delayMs >= 3 && d.delayMs < 5)).toBe(true);
  });

  it('decides packet k the same way whatever happened to earlier packets', () => {
    const a = new FaultPlan({ loss: 0.5 }, 1);
    const b = new FaultPlan({ loss: 0.5, duplicate: 0.5, reorder: 0.5 }, 1);
    for (let i = 0; i < 100; i++) expect(b.next().lose).toBe(a.next().lose);
  });
});

describe('FaultDevice', () => {
  it('passes everything through untouched with no faults', async () => {
    const mem = new MemoryDevice();
    const dev = new FaultDevice(mem, { seed: 1 });
    const seen: Uint8Array[] = [];
    let flushes = 0;
    dev.start({ receive: (p) => seen.push(p.slice()), flush: () => flushes++ });
    mem.injectBatch([numbered(1), numbered(2)]);
    expect(seen).toEqual([numbered(1), numbered(2)]);
    expect(flushes).toBe(1);
    expect(dev.write(numbered(3))).toBe(true);
    expect(mem.drain()).toEqual([numbered(3)]);
    expect([dev.name, dev.mtu, dev.stats.txPackets]).toEqual([mem.name, mem.mtu, 1]);
    await dev.close();
  });

  it('is deterministic: the same seed gives the same loss, duplication and reordering', async () => {
    const opts: FaultOptions = { seed: 1234, rx: { loss: 0.2, duplicate: 0.1, reorder: 0.1 } };
    const one = runRx(opts, 500);
    const two = runRx(opts, 500);
    const other = runRx({ ...opts, seed: 4321 }, 500);
    await Promise.all([one.dev.close(), two.dev.close(), other.dev.close()]);
    expect(two.ids).toEqual(one.ids);
    expect(other.ids).not.toEqual(one.ids);
    const f = one.dev.rxFaults;
    expect(f.packets).toBe(500);
    expect(f.lost).toBeGreaterThan(60);
    expect(f.lost).toBeLessThan(140);
    expect(f.duplicated).toBeGreaterThan(0);
    expect(f.reordered).toBeGreaterThan(0);
    // Every packet not lost arrives, duplicates twice, except a held one discarded by close().
    expect(one.ids.length).toBeGreaterThanOrEqual(500 - f.lost + f.duplicated - 1);
  });

  it('reorders by delivering a held packet right after its successor', () => {
    // Find a seed whose first fate is "reorder" and second is "pass", so the trace is exact.
    let seed = 0;
    for (; seed < 10000; seed++) {
      const plan = new FaultPlan({ reorder: 0.5 }, seed);
      if (plan.next().reorder && !plan.next().reorder) break;
    }
    const { ids, dev } = runRx({ seed, rx: { reorder: 0.5 } }, 2);
    expect(ids).toEqual([1, 0]);
    expect(dev.rxFaults.reordered).toBe(1);
  });

  it('releases a held packet after reorderHoldMs when no successor comes', async () => {
    const { ids, dev } = runRx({ seed: 3, rx: { reorder: 1 }, reorderHoldMs: 5 }, 1);
    expect(ids).toEqual([]);
    await sleep(40);
    expect(ids).toEqual([0]);
    await dev.close();
  });

  it('delays packets and keeps their order without jitter', async () => {
    const { ids, dev } = runRx({ seed: 3, rx: { delayMs: 20 } }, 5);
    expect(ids).toEqual([]);
    const deadline = Date.now() + 2000;
    while (ids.length < 5 && Date.now() < deadline) await sleep(5);
    expect(ids).toEqual([0, 1, 2, 3, 4]);
    expect(dev.rxFaults.delayed).toBe(5);
    await dev.close();
  });

  it('applies tx faults to writes, separately from rx', async () => {
    const mem = new MemoryDevice();
    const dev = new FaultDevice(mem, { seed: 9, tx: { loss: 1 } });
    const seen: number[] = [];
    dev.start({ receive: (p) => seen.push(idOf(p)), flush: () => {} });
    expect(dev.write(numbered(1))).toBe(true); // lost on the "wire": not a device drop
    expect(mem.drain()).toEqual([]);
    mem.inject(numbered(2));
    expect(seen).toEqual([2]);
    expect(dev.txFaults.lost).toBe(1);
    expect(dev.rxFaults.lost).toBe(0);
    await dev.close();
  });

  it('bounds the hold queue and reports a full queue on write', async () => {
    const mem = new MemoryDevice();
    const dev = new FaultDevice(mem, { seed: 1, tx: { delayMs: 1000 }, queueLimit: 3 });
    const results = [1, 2, 3, 4, 5].map((i) => dev.write(numbered(i)));
    expect(results).toEqual([true, true, true, false, false]);
    expect(dev.txFaults.queueDropped).toBe(2);
    await dev.close(); // discards the held packets and their timers
    await sleep(5);
    expect(mem.drain()).toEqual([]);
  });

  it('rejects impossible probabilities', () => {
    expect(() => new FaultDevice(new MemoryDevice(), { seed: 1, rx: { loss: 1.5 } })).toThrow(RangeError);
    expect(() => new FaultDevice(new MemoryDevice(), { seed: 1, tx: { delayMs: -1 } })).toThrow(RangeError);
  });
});
