/**
 * TUN offload against the Linux kernel: a kernel TCP client in a namespace uploads to and
 * downloads from the stack (tcp-server.mjs roles) 50 MiB each way over IPv4 and IPv6, sha256
 * checked on both sides, through a TUN opened with IFF_VNET_HDR + TSO (reads carry super-segments,
 * writes go out as GSO), with offload off at MTU 1500, and with offload off at MTU 65000 (large
 * segments without GSO). Throughput of each is printed as a ratio to the plain MTU-1500 path, not
 * asserted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StackRuntime } from '../../src/runtime.js';
import { openTun, type TunDevice } from '../../src/tun/linux-tun.js';
import { openTunFd } from '../../src/tun/tun-open.js';
import { canRunIntegration, type Netns, Testbed } from '../testbed/index.js';
import { CLIENT, type ClientResult, HOST4, HOST6, loadServer, Port } from './clients/kernel-site.js';
import type { ServeRecord } from './clients/tcp-server.mjs';
import { patternHash } from './clients/tcp-server.mjs';

const MiB = 1024 * 1024;
const BIG = 50 * MiB;

/** One namespace with a TUN driven by a runtime serving the sink/source roles. */
interface Site {
  ns: Netns;
  device: TunDevice;
  runtime: StackRuntime;
  records: Map<number, ServeRecord>;
}

/** How a site gets its TUN: by name, or as an fd handed over with IFF_VNET_HDR (and packet info). */
type Open = 'name' | 'fd' | 'fd-pi';

async function createSite(
  bed: Testbed,
  label: string,
  offload: 'auto' | 'off',
  mtu: number,
  open: Open = 'name',
): Promise<Site> {
  const ns = await bed.netns(label);
  let tun: string;
  let fd: number | undefined;
  if (open === 'name') {
    tun = await bed.tun(ns, {
      mtu,
      address: '198.18.0.1/30',
      address6: 'fd00::1/64',
      routes: ['198.18.5.0/24'],
      routes6: ['fd00:5::/64'],
    });
  } else {
    // As a parent process would hand it over: attached with IFF_VNET_HDR, offloads not yet set.
    tun = bed.ifname('vfd');
    fd = openTunFd(tun, { netns: ns.path, vnetHdr: true, packetInfo: open === 'fd-pi' }).fd;
    await ns.ip(['link', 'set', 'dev', tun, 'mtu', String(mtu)]);
    await ns.ip(['addr', 'add', '198.18.0.1/30', 'dev', tun]);
    await ns.ip(['addr', 'add', 'fd00::1/64', 'dev', tun, 'nodad']);
    await ns.ip(['link', 'set', 'dev', tun, 'up']);
    await ns.ip(['route', 'add', '198.18.5.0/24', 'dev', tun]);
    await ns.ip(['-6', 'route', 'add', 'fd00:5::/64', 'dev', tun]);
  }
  await ns.ip(['link', 'set', 'dev', tun, 'txqueuelen', '4096']);
  const device =
    fd === undefined
      ? openTun({ name: tun, netns: ns.path, offload })
      : openTun({ fd, netns: ns.path, offload });
  const runtime = new StackRuntime(device);
  const records = new Map<number, ServeRecord>();
  const { serve } = await loadServer();
  runtime.onTcpRequest((req) => {
    if (req.localPort !== Port.SINK && req.localPort !== Port.SOURCE) return req.reject();
    const remotePort = req.remotePort;
    serve(req.accept(), req.localPort, (r) => records.set(remotePort, r), { hash: true });
  });
  runtime.start();
  return { ns, device, runtime, records };
}

async function run(
  site: Site,
  mode: 'upload' | 'download',
  host: string,
  seed: number,
  bytes = BIG,
): Promise<ClientResult> {
  const port = mode === 'upload' ? Port.SINK : Port.SOURCE;
  const r = await site.ns.exec('node', [CLIENT, mode, host, String(port), String(bytes), `--seed=${seed}`], {
    timeoutMs: 120_000,
  });
  const [result] = JSON.parse(r.stdout) as ClientResult[];
  return result!;
}

async function served(site: Site, remotePort: number): Promise<ServeRecord> {
  for (let i = 0; i < 200; i++) {
    const r = site.records.get(remotePort);
    if (r !== undefined) return r;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no server record for port ${remotePort}`);
}

/** MiB/s per configuration and transfer, printed at the end. */
const figures = new Map<string, number>();

const CONFIGS = [
  { name: 'offload', offload: 'auto', mtu: 1500 },
  { name: 'plain', offload: 'off', mtu: 1500 },
  { name: 'mtu65000', offload: 'off', mtu: 65000 },
] as const;

describe.skipIf(!canRunIntegration())('TUN offload against the Linux kernel', () => {
  let bed: Testbed;

  beforeAll(async () => {
    bed = await Testbed.create('offl');
  });

  afterAll(async () => {
    await bed?.destroy();
    if (figures.size > 0) {
      const lines = [...figures].map(([k, v]) => {
        const base = figures.get(`plain ${k.split(' ').slice(1).join(' ')}`);
        return `${k}: ${v.toFixed(0)} MiB/s${base === undefined ? '' : ` (${(v / base).toFixed(2)}x plain)`}`;
      });
      process.stdout.write(`offload throughput (one run, sha256 on both ends):\n  ${lines.join('\n  ')}\n`);
    }
  });

  for (const cfg of CONFIGS) {
    describe(`${cfg.name}: offload ${cfg.offload}, MTU ${cfg.mtu}`, () => {
      let site: Site;

      beforeAll(async () => {
        site = await createSite(bed, cfg.name.slice(0, 6), cfg.offload, cfg.mtu);
      });

      afterAll(async () => {
        await site?.runtime.close();
      });

      it('opens with the offload asked for', () => {
        const o = site.device.offload;
        if (cfg.offload === 'auto') {
          expect(o, site.device.offloadNote).toEqual({ vnetHdr: true, tso: true, csum: true });
          expect(site.device.txHeadroom).toBe(10);
        } else {
          expect(o).toEqual({ vnetHdr: false, tso: false, csum: false });
          expect(site.device.txHeadroom).toBe(0);
        }
        expect(site.device.mtu).toBe(cfg.mtu);
      });

      for (const [family, host] of [
        ['IPv4', HOST4],
        ['IPv6', HOST6],
      ] as const) {
        it(`kernel uploads 50 MiB over ${family} byte-exact`, async () => {
          const stats = site.device.stats;
          const gsoBefore = stats.rxGsoPackets;
          const seed = family === 'IPv4' ? 31 : 32;
          const r = await run(site, 'upload', host, seed);
          const s = await served(site, r.port);
          expect(s.error).toBeUndefined();
          expect(r.sentBytes).toBe(BIG);
          expect(s.receivedBytes).toBe(BIG);
          expect(s.received).toBe(patternHash(seed, BIG));
          figures.set(`${cfg.name} upload ${family}`, BIG / MiB / (r.ms / 1000));
          if (cfg.offload === 'auto') expect(stats.rxGsoPackets - gsoBefore).toBeGreaterThan(0);
          else expect(stats.rxGsoPackets).toBe(0);
        }, 150_000);

        it(`kernel downloads 50 MiB over ${family} byte-exact`, async () => {
          const stats = site.device.stats;
          const gsoBefore = stats.txGsoPackets;
          const seed = family === 'IPv4' ? 33 : 34;
          const r = await run(site, 'download', host, seed);
          expect(r.receivedBytes).toBe(BIG);
          expect(r.received).toBe(patternHash(seed, BIG));
          const s = await served(site, r.port);
          expect(s.error).toBeUndefined();
          expect(s.sent).toBe(r.received);
          figures.set(`${cfg.name} download ${family}`, BIG / MiB / (r.ms / 1000));
          if (cfg.offload === 'auto') expect(stats.txGsoPackets - gsoBefore).toBeGreaterThan(0);
          else expect(stats.txGsoPackets).toBe(0);
        }, 150_000);
      }
    });
  }

  for (const open of ['fd', 'fd-pi'] as const) {
    it(`adopts an fd handed over with IFF_VNET_HDR${open === 'fd-pi' ? ' and packet info' : ''} and offloads through it`, async () => {
      const site = await createSite(bed, open, 'auto', 1500, open);
      try {
        expect(site.device.offload).toEqual({ vnetHdr: true, tso: true, csum: true });
        expect(site.device.txHeadroom).toBe(open === 'fd-pi' ? 14 : 10);
        const MiB8 = 8 * MiB;
        for (const [host, seed] of [
          [HOST4, 41],
          [HOST6, 42],
        ] as const) {
          const up = await run(site, 'upload', host, seed, MiB8);
          const rec = await served(site, up.port);
          expect(rec.received).toBe(patternHash(seed, MiB8));
          const down = await run(site, 'download', host, seed + 10, MiB8);
          expect(down.received).toBe(patternHash(seed + 10, MiB8));
        }
        expect(site.device.stats.rxGsoPackets).toBeGreaterThan(0);
        expect(site.device.stats.txGsoPackets).toBeGreaterThan(0);
      } finally {
        await site.runtime.close();
      }
    }, 120_000);
  }
});
