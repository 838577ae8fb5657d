/**
 * The transfers of tcp-kernel.test.ts through a FaultDevice between the TUN and the stack: 2%
 * loss, 10 ms delay, 25% reordering and 1% duplication in both directions, seeded. The kernel's
 * TCP and ours must recover every loss (SACK, fast retransmit, RTO) and deliver byte-exact.
 * Each transfer logs its time and rate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultCounters, FaultSpec } from '../../src/tun/fault-device.js';
import { canRunIntegration, Testbed } from '../testbed/index.js';
import { HOST4, HOST6, KernelSite, Port } from './clients/kernel-site.js';
import { patternHash } from './clients/tcp-server.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The large transfers of the issue: 64 MiB each way. */
const BIG = 64 * MiB;
/** The faults of the issue, applied to each direction. */
const FAULTS: FaultSpec = { loss: 0.02, delayMs: 10, reorder: 0.25, duplicate: 0.01 };

/** Fault counters of both directions. */
type Snapshot = { rx: FaultCounters; tx: FaultCounters };

describe.skipIf(!canRunIntegration())('TCP against the Linux kernel through a TUN with faults', () => {
  let bed: Testbed;
  let site: KernelSite;

  beforeAll(async () => {
    bed = await Testbed.create('tcpf');
    site = await KernelSite.create(bed, 'client', { faults: { seed: 0x5eed, rx: FAULTS, tx: FAULTS } });
  });

  afterAll(async () => {
    await site?.close();
    await bed?.destroy();
  });

  function snapshot(): Snapshot {
    return { rx: { ...site.faults!.rxFaults }, tx: { ...site.faults!.txFaults } };
  }

  /** Logs the rate and checks that every fault happened in both directions during the transfer. */
  function report(what: string, bytes: number, ms: number, before: Snapshot): void {
    const after = snapshot();
    const delta = (dir: 'rx' | 'tx') => {
      const a = after[dir];
      const b = before[dir];
      return {
        packets: a.packets - b.packets,
        lost: a.lost - b.lost,
        duplicated: a.duplicated - b.duplicated,
        reordered: a.reordered - b.reordered,
        delayed: a.delayed - b.delayed,
      };
    };
    const rx = delta('rx');
    const tx = delta('tx');
    console.log(
      `${what}: ${(bytes / MiB).toFixed(0)} MiB in ${(ms / 1000).toFixed(1)} s, ` +
        `${((bytes * 8) / (ms * 1000)).toFixed(2)} Mbit/s; faults to stack ${JSON.stringify(rx)}, ` +
        `from stack ${JSON.stringify(tx)}`,
    );
    for (const d of [rx, tx]) {
      expect(d.lost).toBeGreaterThan(0);
      expect(d.duplicated).toBeGreaterThan(0);
      expect(d.reordered).toBeGreaterThan(0);
      expect(d.delayed).toBeGreaterThan(0);
    }
  }

  it('receives 64 MiB from the kernel byte-exact (kernel → stack)', async () => {
    const before = snapshot();
    const [r] = await site.client('upload', HOST4, Port.SINK, BIG, { seed: 31 }, 600_000);
    const s = await site.served(r!.port);
    report('kernel → stack', BIG, r!.ms, before);
    expect(s.error).toBeUndefined();
    expect(s.receivedBytes).toBe(BIG);
    expect(s.received).toBe(r!.sent);
    expect(r!.sent).toBe(patternHash(31, BIG));
  }, 600_000);

  it('sends 64 MiB to the kernel byte-exact (stack → kernel)', async () => {
    const before = snapshot();
    const [r] = await site.client('download', HOST4, Port.SOURCE, BIG, { seed: 32 }, 600_000);
    report('stack → kernel', BIG, r!.ms, before);
    expect(r!.receivedBytes).toBe(BIG);
    expect(r!.received).toBe(patternHash(32, BIG));
    const s = await site.served(r!.port);
    expect(s.error).toBeUndefined();
  }, 600_000);

  it('echoes 1 MiB byte-exact over IPv6', async () => {
    const [r] = await site.client('echo', HOST6, Port.ECHO, MiB, { seed: 33 });
    expect(r!.receivedBytes).toBe(MiB);
    expect(r!.received).toBe(r!.sent);
  }, 120_000);

  it('half-close: the kernel ends first and keeps reading while the stack keeps sending', async () => {
    const before = snapshot();
    const [r] = await site.client('client-first', HOST4, Port.SOURCE_AFTER_FIN, 4 * MiB, {
      extra: MiB,
      seed: 34,
    });
    report('half-close, kernel ends first', 5 * MiB, r!.ms, before);
    expect(r!.receivedBytes).toBe(4 * MiB);
    expect(r!.received).toBe(patternHash(34, 4 * MiB));
    const s = await site.served(r!.port);
    expect(s.error).toBeUndefined();
    expect(s.sentAfterPeerEnd).toBeGreaterThanOrEqual(2 * MiB);
    expect(s.receivedBytes).toBe(MiB);
    expect(s.received).toBe(r!.sent);
  }, 180_000);

  it('half-close: the stack ends first and the kernel keeps sending', async () => {
    const before = snapshot();
    const [r] = await site.client('server-first', HOST4, Port.SOURCE, 4 * MiB, { extra: 2 * MiB, seed: 35 });
    report('half-close, stack ends first', 6 * MiB, r!.ms, before);
    expect(r!.receivedBytes).toBe(4 * MiB);
    expect(r!.received).toBe(patternHash(35, 4 * MiB));
    const s = await site.served(r!.port);
    expect(s.error).toBeUndefined();
    expect(s.receivedBytes).toBe(2 * MiB);
    expect(s.receivedAfterOurEnd).toBe(2 * MiB);
    expect(s.received).toBe(r!.sent);
  }, 180_000);
});
