/**
 * Our TCP judged by the Linux kernel's: kernel clients in a test namespace connect through a real
 * TUN to addresses the stack impersonates; the stack's connections play the server roles of
 * clients/tcp-server.mjs (echo, sink, source). Every transfer is checked byte-exact by sha256 on
 * both sides. The same transfers under injected faults are in tcp-kernel-faults.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunIntegration, Testbed, waitFor } from '../testbed/index.js';
import { CLIENT, HOST4, HOST6, KernelSite, Port } from './clients/kernel-site.js';
import { patternHash } from './clients/tcp-server.mjs';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The large transfers of the issue: 64 MiB each way. */
const BIG = 64 * MiB;

describe.skipIf(!canRunIntegration())('TCP against the Linux kernel through a TUN', () => {
  let bed: Testbed;
  let site: KernelSite;

  beforeAll(async () => {
    bed = await Testbed.create('tcpk');
    site = await KernelSite.create(bed, 'client');
  });

  afterAll(async () => {
    await site?.close();
    await bed?.destroy();
  });

  it('echoes 1 MiB byte-exact over IPv4', async () => {
    const [r] = await site.client('echo', HOST4, Port.ECHO, MiB);
    expect(r!.receivedBytes).toBe(MiB);
    expect(r!.received).toBe(r!.sent);
  });

  it('echoes 1 MiB byte-exact over IPv6', async () => {
    const [r] = await site.client('echo', HOST6, Port.ECHO, MiB);
    expect(r!.receivedBytes).toBe(MiB);
    expect(r!.received).toBe(r!.sent);
  });

  it('refuses a connection the application rejects (ECONNREFUSED)', async () => {
    const r = await site.ns.exec('node', [CLIENT, 'echo', HOST4, String(Port.REFUSE), '10'], {
      allowFail: true,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ECONNREFUSED');
  });

  it('receives 64 MiB from the kernel byte-exact (kernel → stack)', async () => {
    const [r] = await site.client('upload', HOST4, Port.SINK, BIG, { seed: 11 });
    const s = await site.served(r!.port);
    expect(s.error).toBeUndefined();
    expect(r!.sentBytes).toBe(BIG);
    expect(s.receivedBytes).toBe(BIG);
    expect(s.received).toBe(r!.sent);
    expect(r!.sent).toBe(patternHash(11, BIG));
  }, 180_000);

  it('sends 64 MiB to the kernel byte-exact (stack → kernel)', async () => {
    const [r] = await site.client('download', HOST4, Port.SOURCE, BIG, { seed: 12 });
    expect(r!.receivedBytes).toBe(BIG);
    expect(r!.received).toBe(patternHash(12, BIG));
    const s = await site.served(r!.port);
    expect(s.error).toBeUndefined();
    expect(s.sent).toBe(r!.received);
  }, 180_000);

  it('echoes 64 MiB both ways at once byte-exact', async () => {
    const [r] = await site.client('echo', HOST4, Port.ECHO, BIG, { seed: 13 });
    expect(r!.sentBytes).toBe(BIG);
    expect(r!.receivedBytes).toBe(BIG);
    expect(r!.received).toBe(r!.sent);
  }, 180_000);

  it('echoes 256 KiB on each of 200 concurrent connections byte-exact', async () => {
    const results = await site.client('echo', HOST4, Port.ECHO, 256 * KiB, { conns: 200, seed: 1000 });
    expect(results).toHaveLength(200);
    expect(new Set(results.map((r) => r.port)).size).toBe(200);
    for (const [i, r] of results.entries()) {
      expect(r.receivedBytes, `connection ${i}`).toBe(256 * KiB);
      expect(r.received, `connection ${i}`).toBe(r.sent);
      expect(r.sent, `connection ${i}`).toBe(patternHash(1000 + i, 256 * KiB));
    }
    // The stack closes its side after the echo: every connection leaves the table.
    await waitFor(() => site.runtime.stack.tcp.size === 0, 20_000, 'the stack to forget all connections');
  }, 180_000);

  for (const [family, host] of [
    ['IPv4', HOST4],
    ['IPv6', HOST6],
  ] as const) {
    it(`half-close over ${family}: the kernel ends first and keeps reading while the stack keeps sending`, async () => {
      const [r] = await site.client('client-first', host, Port.SOURCE_AFTER_FIN, 4 * MiB, {
        extra: MiB,
        seed: 21,
      });
      // Everything the stack sent arrived, half of it after the kernel's FIN reached the stack.
      expect(r!.receivedBytes).toBe(4 * MiB);
      expect(r!.received).toBe(patternHash(21, 4 * MiB));
      const s = await site.served(r!.port);
      expect(s.error).toBeUndefined();
      expect(s.sentAfterPeerEnd).toBeGreaterThanOrEqual(2 * MiB);
      expect(s.receivedBytes).toBe(MiB);
      expect(s.received).toBe(r!.sent);
    }, 60_000);

    it(`half-close over ${family}: the stack ends first and the kernel keeps sending`, async () => {
      const [r] = await site.client('server-first', host, Port.SOURCE, 4 * MiB, { extra: 2 * MiB, seed: 22 });
      expect(r!.receivedBytes).toBe(4 * MiB);
      expect(r!.received).toBe(patternHash(22, 4 * MiB));
      expect(r!.sentBytes).toBe(2 * MiB);
      // The stack got all of it after its own FIN (the kernel sent only after reading our FIN).
      const s = await site.served(r!.port);
      expect(s.error).toBeUndefined();
      expect(s.receivedBytes).toBe(2 * MiB);
      expect(s.receivedAfterOurEnd).toBe(2 * MiB);
      expect(s.received).toBe(r!.sent);
    }, 60_000);
  }
});
