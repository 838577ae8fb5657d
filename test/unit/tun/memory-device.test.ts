import { describe, expect, it } from 'vitest';
import type { PacketSink } from '../../../src/tun/device.js';
import { MemoryDevice, memoryPair } from '../../../src/tun/memory-device.js';

/** A sink that copies packets and records the batch structure as a trace. */
function recorder() {
  const trace: string[] = [];
  const packets: Uint8Array[] = [];
  const sink: PacketSink = {
    receive(p, flags) {
      packets.push(p.slice());
      trace.push(`rx ${p.length} flags=${flags}`);
    },
    flush() {
      trace.push('flush');
    },
  };
  return { sink, trace, packets };
}

const pkt = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('MemoryDevice', () => {
  it('delivers an injected copy synchronously, then flushes', () => {
    const dev = new MemoryDevice();
    const { sink, trace, packets } = recorder();
    dev.start(sink);
    const p = pkt(40, 1);
    dev.inject(p);
    expect(trace).toEqual(['rx 40 flags=0', 'flush']);
    expect(packets[0]).toEqual(p);
    expect(dev.stats).toMatchObject({ rxPackets: 1, rxBytes: 40, rxWakeups: 1 });
  });

  it('delivers a batch with one flush', () => {
    const dev = new MemoryDevice();
    const { sink, trace } = recorder();
    dev.start(sink);
    dev.injectBatch([pkt(20, 1), pkt(30, 2), pkt(40, 3)]);
    expect(trace).toEqual(['rx 20 flags=0', 'rx 30 flags=0', 'rx 40 flags=0', 'flush']);
  });

  it('reuses and poisons its receive buffer, like a TUN reusing its read buffer', () => {
    const dev = new MemoryDevice();
    const kept: Uint8Array[] = [];
    dev.start({ receive: (p) => kept.push(p), flush: () => {} });
    dev.inject(pkt(10, 7));
    dev.inject(pkt(10, 8));
    expect(kept[0]!.buffer).toBe(kept[1]!.buffer);
    expect([...kept[0]!]).toEqual(new Array(10).fill(0xee));
    const clean = new MemoryDevice({ poison: false });
    const seen: Uint8Array[] = [];
    clean.start({ receive: (p) => seen.push(p), flush: () => {} });
    clean.inject(pkt(4, 9));
    expect([...seen[0]!]).toEqual([9, 9, 9, 9]);
  });

  it('holds packets injected before start and delivers them on start', () => {
    const dev = new MemoryDevice({ queueLimit: 2 });
    dev.inject(pkt(20, 1));
    dev.inject(pkt(21, 1));
    dev.inject(pkt(22, 1)); // over the limit
    const { sink, trace } = recorder();
    dev.start(sink);
    expect(trace).toEqual(['rx 20 flags=0', 'rx 21 flags=0', 'flush']);
    expect(dev.stats.rxErrors).toBe(1);
    expect(() => dev.start(sink)).toThrow(/already started/);
  });

  it('queues written copies for take() and drain()', () => {
    const dev = new MemoryDevice();
    const p = pkt(20, 5);
    expect(dev.write(p)).toBe(true);
    p.fill(0); // the caller may reuse its buffer
    expect(dev.write(pkt(30, 6))).toBe(true);
    expect(dev.take()).toEqual(pkt(20, 5));
    expect(dev.drain()).toEqual([pkt(30, 6)]);
    expect(dev.take()).toBeUndefined();
    expect(dev.stats).toMatchObject({ txPackets: 2, txBytes: 50 });
  });

  it('passes written copies to onTransmit when set', () => {
    const out: Uint8Array[] = [];
    const dev = new MemoryDevice({ onTransmit: (p) => out.push(p) });
    const p = pkt(20, 5);
    dev.write(p);
    p.fill(0);
    expect(out).toEqual([pkt(20, 5)]);
    expect(dev.take()).toBeUndefined();
  });

  it('refuses packets over the MTU, empty packets, a full queue, and writes after close', async () => {
    const dev = new MemoryDevice({ mtu: 100, queueLimit: 1 });
    expect(dev.write(pkt(101, 1))).toBe(false);
    expect(dev.write(pkt(0, 1))).toBe(false);
    expect(dev.write(pkt(100, 1))).toBe(true);
    expect(dev.write(pkt(100, 1))).toBe(false);
    expect(dev.stats).toMatchObject({ txErrors: 2, txDropped: 1, txPackets: 1 });
    await dev.close();
    await dev.close();
    expect(dev.write(pkt(10, 1))).toBe(false);
    expect(dev.started).toBe(false);
  });
});

describe('memoryPair', () => {
  it('delivers writes to the peer asynchronously, one batch per event-loop turn', async () => {
    const [a, b] = memoryPair({}, { name: 'right' });
    expect([a.name, b.name]).toEqual(['mem0', 'right']);
    const ra = recorder();
    const rb = recorder();
    a.start(ra.sink);
    b.start(rb.sink);
    a.write(pkt(20, 1));
    a.write(pkt(21, 2));
    expect(rb.trace).toEqual([]);
    await nextTurn();
    expect(rb.trace).toEqual(['rx 20 flags=0', 'rx 21 flags=0', 'flush']);
    b.write(pkt(22, 3));
    await nextTurn();
    expect(ra.packets).toEqual([pkt(22, 3)]);
    expect(b.stats).toMatchObject({ rxPackets: 2, rxWakeups: 1, txPackets: 1 });
  });

  it('bounds what is in flight and loses packets to a closed peer', async () => {
    const [a, b] = memoryPair({}, { queueLimit: 2 });
    const rb = recorder();
    b.start(rb.sink);
    expect([a.write(pkt(20, 1)), a.write(pkt(20, 2)), a.write(pkt(20, 3))]).toEqual([true, true, false]);
    expect(a.stats.txDropped).toBe(1);
    await nextTurn();
    expect(rb.packets.length).toBe(2);
    await b.close();
    expect(a.write(pkt(20, 4))).toBe(true);
    await nextTurn();
    expect(rb.packets.length).toBe(2);
  });

  it('holds packets for a peer that has not started yet', async () => {
    const [a, b] = memoryPair();
    a.write(pkt(20, 1));
    await nextTurn();
    const rb = recorder();
    b.start(rb.sink);
    expect(rb.trace).toEqual(['rx 20 flags=0', 'flush']);
  });
});
