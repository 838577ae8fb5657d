/**
 * `npm run bench`: the micro-benchmarks, then the relay benchmark that compares itself (issue 5).
 *
 * In three test namespaces (see bench/relay/site.ts) it measures, each figure the median of
 * --runs runs with the paths taking turns, on three paths: direct (the kernel routing through the
 * proxy namespace, no TUN, no proxy), socks-only (the client speaks SOCKS5 to danted itself:
 * proxychains4 for iperf3, the `socks` package in client.js) and tun2socks (the same clients,
 * plain, routed into a TUN run by the real command):
 *   - iperf3 TCP upload and download, 1 and 8 streams, per tun2socks configuration (MTU 1500,
 *     with offload when the command has --offload, --mtu 65000, and --multi-queue 2);
 *   - serial new connections per second (connect, 64-byte request, response, server's FIN, close);
 *   - 64-byte request-response latency p50/p99 on one connection, plus the SOCKS-only path through
 *     one extra socat hop (C, plain sockets) as the floor of what any relay process adds here;
 *   - serial UDP request-response rate (through UDP ASSOCIATE on the SOCKS paths), plus the direct
 *     path through one socat UDP hop, and from it what one minimal relay process leaves here;
 *   - peak RSS (VmHWM) of each tun2socks, and its RSS per idle connection over --idle connections.
 * Prints a table (metric | direct | socks-only | tun2socks | ratios | target | met?) and writes it
 * as JSON (bench-results.json, or --out). Timings are printed, never asserted.
 *
 * Usage (root, after `npm run build`): node dist/bench/run.js [--quick] [--only micro,tcp,cps,rr,udp,idle]
 *   [--out FILE] [--runs N] [--seconds S] [--idle N]
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { resolve } from 'node:path';
import { canRunIntegration, Testbed } from '../test/testbed/index.js';
import { type BenchPath, client, DANTED_URL, failures, idleConnections, iperf } from './relay/measure.js';
import { evaluate, median, type Row, renderTable, type Target } from './relay/report.js';
import { BenchSite, CLI, missingTools } from './relay/site.js';
import { type TunConfig, TunProcess } from './relay/tun-process.js';

/** What can be selected with --only. */
const PARTS = ['micro', 'tcp', 'cps', 'rr', 'udp', 'idle'] as const;

/** The busy-poll setting of the lane that shows what the default busy polling buys (`--busy-poll`). */
const BUSY_POLL = 'off';
type Part = (typeof PARTS)[number];

interface Args {
  quick: boolean;
  only: Set<Part>;
  out: string;
  runs: number;
  /** Seconds of each iperf3, connection-rate and UDP run. */
  seconds: number;
  /** Round trips of each latency run. */
  rrCount: number;
  /** Connections of the idle test. */
  idle: number;
}

const USAGE =
  'usage: run [--quick] [--only micro,tcp,cps,rr,udp,idle] [--out FILE] [--runs N] [--seconds S] [--idle N]';

function parseArgs(argv: readonly string[]): Args {
  const quick = argv.includes('--quick');
  const args: Args = {
    quick,
    only: new Set(PARTS),
    out: resolve('bench-results.json'),
    runs: quick ? 1 : 3,
    seconds: quick ? 1 : 3,
    rrCount: quick ? 500 : 5000,
    idle: quick ? 200 : 10_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--quick') continue;
    const value = argv[++i];
    if (value === undefined) throw new Error(USAGE);
    const n = Number(value);
    if (flag === '--only') {
      const parts = value.split(',').map((p) => p.trim());
      for (const p of parts) if (!PARTS.includes(p as Part)) throw new Error(`unknown part ${p}; ${USAGE}`);
      args.only = new Set(parts as Part[]);
    } else if (flag === '--out') args.out = resolve(value);
    else if (flag === '--runs' && Number.isInteger(n)) args.runs = Math.min(Math.max(n, 1), 15);
    else if (flag === '--seconds' && n > 0) args.seconds = Math.min(n, 60);
    else if (flag === '--idle' && Number.isInteger(n)) args.idle = Math.min(Math.max(n, 1), 15_000);
    else throw new Error(USAGE);
  }
  return args;
}

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

/** Runs the existing micro-benchmarks (bench/micro.ts) and returns their figures. */
function micro(quick: boolean): Record<string, number> {
  const script = resolve(import.meta.dirname, 'micro.js');
  const out = execFileSync(process.execPath, [script, ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  process.stdout.write(
    out
      .split('\n')
      .filter((l) => !l.startsWith('{'))
      .join('\n'),
  );
  const last = out.trim().split('\n').pop() ?? '{}';
  return (JSON.parse(last) as { micro: Record<string, number> }).micro;
}

/** Whether this build of the command has `flag` (e.g. --offload: TUN offload landed). */
function hasFlag(flag: string): boolean {
  try {
    return execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', timeout: 10_000 }).includes(
      flag,
    );
  } catch {
    return false;
  }
}

/** The tun2socks configurations measured by iperf3; the first is the default for everything else. */
function tunConfigs(offload: boolean, tunIo: boolean): TunConfig[] {
  if (!offload)
    return [
      { label: 'mtu 1500', mtu: 1500 },
      { label: 'mtu 65000', mtu: 65000 },
    ];
  return [
    { label: 'mtu 1500 offload', mtu: 1500, offload: 'auto' },
    { label: 'mtu 1500 no offload', mtu: 1500, offload: 'off' },
    { label: 'mtu 65000 no offload', mtu: 65000, offload: 'off' },
    // Every core: the kernel spreads flows over the queues, one worker thread and stack each.
    { label: 'mtu 1500 offload, 2 queues', mtu: 1500, offload: 'auto', multiQueue: 2 },
    // What the io_uring batching buys where every packet is a system call.
    ...(tunIo
      ? [{ label: 'mtu 1500 no offload, --tun-io plain', mtu: 1500, offload: 'off', tunIo: 'plain' } as const]
      : []),
  ];
}

/** The single-stream TCP target for a configuration (none for the large MTU). */
function tcpTarget(c: TunConfig): Target | undefined {
  if (c.mtu !== 1500 || c.multiQueue !== undefined || c.tunIo !== undefined) return undefined;
  return c.offload === 'auto' ? { kind: 'vs-socks', min: 0.5 } : { kind: 'vs-direct', min: 0.1 };
}

const TCP_TESTS = [
  { name: 'TCP upload 1 stream', reverse: false, streams: 1 },
  { name: 'TCP download 1 stream', reverse: true, streams: 1 },
  { name: 'TCP upload 8 streams', reverse: false, streams: 8 },
  { name: 'TCP download 8 streams', reverse: true, streams: 8 },
] as const;

/** Samples per path key, in run order. */
class Samples {
  private readonly map = new Map<string, number[]>();
  add(key: string, x: number): void {
    const list = this.map.get(key) ?? [];
    list.push(x);
    this.map.set(key, list);
  }
  /** Every sample by key, in run order (for the JSON). */
  all(): Record<string, number[]> {
    return Object.fromEntries(this.map);
  }
  median(key: string): number | undefined {
    const list = this.map.get(key);
    return list === undefined ? undefined : median(list);
  }
}

async function relay(args: Args, rows: Row[], configs: TunConfig[]): Promise<Record<string, unknown>> {
  const extra: Record<string, unknown> = {};
  const bed = await Testbed.create('bench');
  const tuns: TunProcess[] = [];
  try {
    progress('building the namespaces');
    const site = await BenchSite.create(bed);
    for (const [lane, c] of configs.entries()) tuns.push(await TunProcess.start(site, lane, c, DANTED_URL));
    const baselines: BenchPath[] = [{ kind: 'direct' }, { kind: 'socks' }];
    const key = (p: BenchPath) => (p.kind === 'tun' ? `tun:${p.tun.config.label}` : p.kind);
    const s = new Samples();

    if (args.only.has('tcp')) {
      const paths: BenchPath[] = [...baselines, ...tuns.map((tun) => ({ kind: 'tun' as const, tun }))];
      for (let run = 0; run < args.runs; run++)
        for (const t of TCP_TESTS)
          for (const p of paths) {
            const gbps = await iperf(site, p, {
              seconds: args.seconds,
              reverse: t.reverse,
              streams: t.streams,
            });
            progress(`run ${run + 1}/${args.runs} ${t.name} ${key(p)}: ${gbps.toFixed(3)} Gbit/s`);
            s.add(`${t.name}|${key(p)}`, gbps);
          }
      for (const t of TCP_TESTS)
        for (const tun of tuns) {
          const target = t.streams === 1 ? tcpTarget(tun.config) : undefined;
          rows.push({
            metric: `${t.name}, ${tun.config.label}`,
            unit: 'Gbit/s',
            direct: s.median(`${t.name}|direct`),
            socks: s.median(`${t.name}|socks`),
            tun: s.median(`${t.name}|tun:${tun.config.label}`),
            ...(target ? { target } : {}),
          });
        }
    }

    const main = tuns[0]!;
    const paths: BenchPath[] = [...baselines, { kind: 'tun', tun: main }];
    const label = main.config.label;
    /**
     * One unrecorded second of `mode` through each tun2socks path first: a long-running relay has
     * its connection-setup and round-trip code compiled and its young heap grown; the first
     * seconds of a fresh process measure V8 warming up (a first connection-rate second here runs
     * 20-30% below the next ones).
     */
    async function warmUp(list: BenchPath[], mode: 'cps' | 'rr' | 'udp'): Promise<void> {
      for (const p of list) {
        if (p.kind !== 'tun') continue;
        progress(`warm-up ${mode} ${key(p)}`);
        await client(site, p, mode, { seconds: 1, ...(mode === 'rr' ? { count: 2000 } : {}) });
      }
    }
    if (args.only.has('cps')) {
      // The default (--tcp-accept auto) answers a SYN for a destination that just dialed fine at
      // once, dialing while the client sends; a second lane shows the strict after-dial order.
      const strictConfig: TunConfig = {
        ...main.config,
        label: `${label}, --tcp-accept after-dial`,
        tcpAccept: 'after-dial',
      };
      const strict = await TunProcess.start(site, configs.length + 1, strictConfig, DANTED_URL);
      tuns.push(strict);
      const cpsPaths: BenchPath[] = [...paths, { kind: 'tun', tun: strict }];
      await warmUp(cpsPaths, 'cps');
      for (let run = 0; run < args.runs; run++)
        for (const p of cpsPaths) {
          const r = await client(site, p, 'cps', { seconds: args.seconds });
          progress(`run ${run + 1}/${args.runs} connections/s ${key(p)}: ${r?.perSecond?.toFixed(0)}`);
          s.add(`cps|${key(p)}`, r?.perSecond ?? Number.NaN);
        }
      for (const [tun, target] of [
        [main, true],
        [strict, false],
      ] as const)
        rows.push({
          metric: `new connections, serial, ${tun.config.label}`,
          unit: 'conn/s',
          direct: s.median('cps|direct'),
          socks: s.median('cps|socks'),
          tun: s.median(`cps|tun:${tun.config.label}`),
          ...(target ? { target: { kind: 'vs-socks', min: 0.8 } as const } : {}),
        });
    }
    // Busy polling ('auto' by default): the same relay with `--busy-poll off`, sleeping through
    // the gaps of a round trip; the round-trip and UDP rows of both come with the CPU they burn.
    let busy: TunProcess | undefined;
    if (args.only.has('rr') || args.only.has('udp')) {
      const busyConfig: TunConfig = {
        ...main.config,
        label: `${label}, --busy-poll ${BUSY_POLL}`,
        busyPoll: BUSY_POLL,
      };
      busy = await TunProcess.start(site, configs.length + 2, busyConfig, DANTED_URL);
      tuns.push(busy);
    }
    const lanes = busy === undefined ? [main] : [main, busy];
    const busyPaths: BenchPath[] = busy === undefined ? [] : [{ kind: 'tun', tun: busy }];
    /** Runs `f`, and for a tun2socks path also the CPU% (of one core) its process used meanwhile. */
    const withCpu = async <T>(p: BenchPath, f: () => Promise<T>): Promise<[T, number | undefined]> => {
      if (p.kind !== 'tun') return [await f(), undefined];
      const c0 = await p.tun.cpuSeconds();
      const t0 = performance.now();
      const result = await f();
      const seconds = (performance.now() - t0) / 1000;
      return [result, (100 * ((await p.tun.cpuSeconds()) - c0)) / seconds];
    };
    if (args.only.has('rr')) {
      // The reference hop (socat) for the round trip: what one extra relay process costs here.
      const hop = await site.startHop();
      const rrPaths: BenchPath[] = [...paths, ...busyPaths, ...(hop ? [{ kind: 'hop' } as const] : [])];
      await warmUp(rrPaths, 'rr');
      for (let run = 0; run < args.runs; run++)
        for (const p of rrPaths) {
          const [r, cpu] = await withCpu(p, () =>
            client(site, p, 'rr', { seconds: 30, count: args.rrCount }),
          );
          progress(`run ${run + 1}/${args.runs} 64 B round trip ${key(p)}: p50 ${r?.p50Us?.toFixed(1)} us`);
          s.add(`p50|${key(p)}`, r?.p50Us ?? Number.NaN);
          s.add(`p99|${key(p)}`, r?.p99Us ?? Number.NaN);
          if (cpu !== undefined) s.add(`rr-cpu|${key(p)}`, cpu);
        }
      for (const tun of lanes)
        for (const q of ['p50', 'p99'] as const)
          rows.push({
            metric: `64 B request-response ${q}, ${tun.config.label}`,
            unit: 'us',
            direct: s.median(`${q}|direct`),
            socks: s.median(`${q}|socks`),
            tun: s.median(`${q}|tun:${tun.config.label}`),
            ...(q === 'p50' && tun === main
              ? { target: { kind: 'added-over-socks', max: 60 } as const }
              : {}),
          });
      if (hop)
        rows.push({
          metric: '64 B request-response p50, SOCKS-only + one socat hop (reference floor)',
          unit: 'us',
          socks: s.median('p50|hop'),
        });
      for (const tun of lanes)
        rows.push({
          metric: `CPU of tun2socks during the round trips, ${tun.config.label}`,
          unit: '% of a core',
          tun: s.median(`rr-cpu|tun:${tun.config.label}`),
        });
    }
    if (args.only.has('udp')) {
      // The UDP reference hop (socat on the direct path): what one extra relay process adds here.
      const udpHop = await site.startUdpHop();
      const udpPaths: BenchPath[] = [
        ...paths,
        ...busyPaths,
        ...(udpHop ? [{ kind: 'udp-hop' } as const] : []),
      ];
      await warmUp(udpPaths, 'udp');
      for (let run = 0; run < args.runs; run++)
        for (const p of udpPaths) {
          const [r, cpu] = await withCpu(p, () => client(site, p, 'udp', { seconds: args.seconds }));
          progress(`run ${run + 1}/${args.runs} UDP exchanges/s ${key(p)}: ${r?.perSecond?.toFixed(0)}`);
          s.add(`udp|${key(p)}`, r?.perSecond ?? Number.NaN);
          if (cpu !== undefined) s.add(`udp-cpu|${key(p)}`, cpu);
        }
      for (const tun of lanes)
        rows.push({
          metric: `UDP request-response, serial, ${tun.config.label}`,
          unit: 'exch/s',
          direct: s.median('udp|direct'),
          socks: s.median('udp|socks'),
          tun: s.median(`udp|tun:${tun.config.label}`),
          ...(tun === main ? { target: { kind: 'vs-socks', min: 0.85 } as const } : {}),
        });
      if (udpHop) {
        const direct = s.median('udp|direct');
        const socks = s.median('udp|socks');
        const hop = s.median('udp|udp-hop');
        rows.push({
          metric: 'UDP request-response, serial, direct + one socat hop (reference)',
          unit: 'exch/s',
          direct: hop,
        });
        // SOCKS-only with each exchange longer by what the hop added to the direct one: about what
        // a minimal relay process (C, plain sockets) in the client's path leaves on this machine.
        rows.push({
          metric: 'UDP request-response, SOCKS-only slowed by what one socat hop adds (reference)',
          unit: 'exch/s',
          socks,
          tun:
            direct === undefined || socks === undefined || hop === undefined
              ? Number.NaN
              : 1 / (1 / socks + 1 / hop - 1 / direct),
        });
      }
      for (const tun of lanes)
        rows.push({
          metric: `CPU of tun2socks during the UDP exchanges, ${tun.config.label}`,
          unit: '% of a core',
          tun: s.median(`udp-cpu|tun:${tun.config.label}`),
        });
    }
    extra.samples = s.all();
    for (const tun of tuns)
      rows.push({
        metric: `peak RSS (VmHWM) of tun2socks, ${tun.config.label}`,
        unit: 'MB',
        tun: (await tun.statusKb('VmHWM')) / 1024,
      });

    if (args.only.has('idle')) {
      const c = configs[0]!;
      progress(`opening ${args.idle} idle connections through tun2socks (${c.label})`);
      const tun = await TunProcess.start(
        site,
        configs.length,
        { ...c, label: `${c.label} (idle)` },
        DANTED_URL,
      );
      tuns.push(tun);
      const r = await idleConnections(site, tun, args.idle, args.quick ? 500 : 2000);
      if (r !== undefined) {
        extra.idle = r;
        progress(`idle: ${r.held} held, VmRSS ${r.rssBeforeKb} -> ${r.rssAfterKb} kB`);
        rows.push({
          metric: `RSS per idle connection (${r.held} held), ${c.label}`,
          unit: 'KB',
          tun: r.kbPerConnection,
          target: { kind: 'at-most', max: 16 },
        });
        rows.push({
          metric: `RSS growth per 10,000 idle connections, ${c.label}`,
          unit: 'MB',
          tun: (r.kbPerConnection * 10_000) / 1024,
        });
      } else rows.push({ metric: 'RSS per idle connection', unit: 'KB', tun: Number.NaN });
    }
  } finally {
    for (const t of tuns) await t.stop().catch(() => {});
    await bed.destroy();
  }
  return extra;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const loadAtStart = loadavg();
  const rows: Row[] = [];
  const json: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version },
    quick: args.quick,
    runs: args.runs,
    seconds: args.seconds,
  };
  if (args.only.has('micro')) {
    progress('micro-benchmarks');
    json.micro = micro(args.quick);
  }
  const relayParts = [...args.only].filter((p) => p !== 'micro');
  if (relayParts.length > 0) {
    const missing = missingTools();
    if (!canRunIntegration() || missing.length > 0) {
      const why = missing.length > 0 ? `missing ${missing.join(', ')}` : 'needs root and /dev/net/tun';
      progress(`relay benchmark skipped: ${why}`);
      json.relaySkipped = why;
    } else {
      const offload = hasFlag('--offload');
      const configs = tunConfigs(offload, hasFlag('--tun-io'));
      json.offloadFlag = offload;
      json.configs = configs;
      Object.assign(json, await relay(args, rows, configs));
    }
  }
  const results = evaluate(rows);
  json.rows = results;
  json.failures = failures;
  json.durationS = (performance.now() - t0) / 1000;
  // Other work on the machine skews every figure; the load averages say how busy it was.
  json.loadavg = { start: loadAtStart, end: loadavg() };
  if (Math.max(...loadAtStart, ...loadavg()) > cpus().length)
    process.stdout.write(
      `\nnote: load average above ${cpus().length} CPUs during the run; figures are noisy\n`,
    );
  if (results.length > 0) process.stdout.write(`\n${renderTable(results)}\n`);
  if (failures.length > 0)
    process.stdout.write(`\nfailed runs (NaN, left out of medians):\n  ${failures.join('\n  ')}\n`);
  await writeFile(args.out, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`\nwrote ${args.out} (${(json.durationS as number).toFixed(0)} s)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
