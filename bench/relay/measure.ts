/**
 * One measurement on one path: an iperf3 run, a client.js run, or the idle-connection memory test.
 * The same tool runs on every path; only the target address and SOCKS differ. Every run is bounded
 * in time (the command is killed past its bound) and a failure yields NaN rather than an exception,
 * so one bad run never loses the rest of the table.
 */
import { createInterface } from 'node:readline';
import type { ExecResult } from '../../test/testbed/index.js';
import {
  type ClientMode,
  type ClientReport,
  ECHO_PORT,
  IPERF_PORT,
  ONE_SHOT_PORT,
  UDP_ECHO_PORT,
} from './protocol.js';
import {
  type BenchSite,
  CLIENT_JS,
  DANTED_PORT,
  HOP_PORT,
  HOP_UDP_PORT,
  HOP_V4,
  PROXY_V4,
  SERVER_DIRECT,
  SERVER_SOCKS,
  WITH_FDS,
} from './site.js';
import type { TunProcess } from './tun-process.js';

/**
 * The path a measurement takes: the kernel's, the client's own SOCKS, the client's own SOCKS
 * through the reference hop (socat), the direct path through the UDP reference hop (socat, UDP
 * only), or a tun2socks lane.
 */
export type BenchPath =
  | { kind: 'direct' }
  | { kind: 'socks' }
  | { kind: 'hop' }
  | { kind: 'udp-hop' }
  | { kind: 'tun'; tun: TunProcess };

/** The server address a client uses on `path`. */
export function targetOf(path: BenchPath): string {
  if (path.kind === 'direct') return SERVER_DIRECT;
  if (path.kind === 'socks' || path.kind === 'hop') return SERVER_SOCKS;
  if (path.kind === 'udp-hop') return HOP_V4;
  return path.tun.target;
}

/** An iperf3 TCP test: seconds, direction and parallel streams. */
export interface IperfTest {
  seconds: number;
  reverse: boolean;
  streams: number;
}

/** Something that went wrong, kept for the report (the run's figure is then NaN). */
export const failures: string[] = [];

function fail(what: string, detail: string): number {
  const lines = detail.trim().split('\n');
  failures.push(`${what}: ${[lines[0], ...lines.slice(1).slice(-2)].join(' | ').slice(0, 400)}`);
  return Number.NaN;
}

/** Attempts of one iperf3 run while the server still reports the previous test ("busy"). */
const IPERF_ATTEMPTS = 4;

/** Runs iperf3 on `path` and returns the receiver's rate in Gbit/s (NaN on failure). */
export async function iperf(site: BenchSite, path: BenchPath, test: IperfTest): Promise<number> {
  const args = ['-c', targetOf(path), '-p', String(IPERF_PORT), '-t', String(test.seconds), '-J'];
  args.push('--connect-timeout', '5000');
  if (test.reverse) args.push('-R');
  if (test.streams > 1) args.push('-P', String(test.streams));
  const cmd =
    path.kind === 'socks' ? ['proxychains4', '-q', '-f', site.proxychainsConf, 'iperf3'] : ['iperf3'];
  const what = `iperf3 ${path.kind === 'tun' ? `tun (${path.tun.config.label})` : path.kind} ${test.reverse ? 'download' : 'upload'} x${test.streams}`;
  let problem = '';
  for (let attempt = 0; attempt < IPERF_ATTEMPTS; attempt++) {
    let r: ExecResult;
    try {
      r = await site.client.exec(cmd[0]!, [...cmd.slice(1), ...args], {
        timeoutMs: (test.seconds + 20) * 1000,
        allowFail: true,
      });
    } catch (err) {
      problem = (err as Error).message;
      break;
    }
    let out: { end?: { sum_received?: { bits_per_second?: number } }; error?: string } = {};
    try {
      out = JSON.parse(r.stdout) as typeof out;
    } catch {
      problem = `exit ${r.code}: ${r.stderr || r.stdout}`;
      break;
    }
    const bps = out.end?.sum_received?.bits_per_second;
    if (r.code === 0 && typeof bps === 'number') return bps / 1e9;
    problem = out.error ?? `exit ${r.code}`;
    // The server still finishing the previous test: it frees itself within a moment.
    if (!problem.includes('busy')) break;
    await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
  }
  await site.restartIperfServer();
  return fail(what, problem);
}

/** Options of a client.js run. */
export interface ClientRun {
  seconds: number;
  count?: number;
}

const PORT_OF: Record<Exclude<ClientMode, 'idle'>, number> = {
  cps: ONE_SHOT_PORT,
  rr: ECHO_PORT,
  udp: UDP_ECHO_PORT,
};

/** Runs client.js in `mode` on `path`; its report, or undefined on failure (recorded). */
export async function client(
  site: BenchSite,
  path: BenchPath,
  mode: Exclude<ClientMode, 'idle'>,
  run: ClientRun,
): Promise<ClientReport | undefined> {
  const port = path.kind === 'udp-hop' ? HOP_UDP_PORT : PORT_OF[mode];
  const args = [CLIENT_JS, '--mode', mode, '--host', targetOf(path), '--port', String(port)];
  args.push('--seconds', String(run.seconds));
  if (run.count !== undefined) args.push('--count', String(run.count));
  if (path.kind === 'socks') args.push('--socks', `${PROXY_V4}:${DANTED_PORT}`);
  if (path.kind === 'hop') args.push('--socks', `${HOP_V4}:${HOP_PORT}`);
  const what = `client ${mode} ${path.kind}`;
  const r = await site.client
    .exec('sh', ['-c', WITH_FDS, 'sh', 'node', ...args], {
      timeoutMs: (run.seconds + 30) * 1000,
      allowFail: true,
    })
    .catch((err: unknown) => ({ code: -1, stdout: '', stderr: (err as Error).message }));
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !last.startsWith('{')) {
    fail(what, `exit ${r.code}: ${r.stderr}`);
    return undefined;
  }
  const report = JSON.parse(last) as ClientReport;
  if (report.errors > 0)
    failures.push(`${what}: ${report.errors} errors (first: ${report.firstError ?? '?'})`);
  return report;
}

/** The result of the idle-connection test. */
export interface IdleResult {
  held: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  /** (after − before) / held, in KB. */
  kbPerConnection: number;
}

/**
 * Opens `count` connections through `tun`'s TUN to the echo server (which holds them), waits for
 * `settleMs`, and reads tun2socks's VmRSS before and after. A warm-up round first opens and closes
 * a few hundred so code and pools are warm before "before" is read.
 */
export async function idleConnections(
  site: BenchSite,
  tun: TunProcess,
  count: number,
  settleMs: number,
): Promise<IdleResult | undefined> {
  const open = async (n: number) => {
    const args = [CLIENT_JS, '--mode', 'idle', '--host', tun.target, '--port', String(ECHO_PORT)];
    args.push('--count', String(n), '--seconds', '120', '--concurrency', '64');
    const child = site.client.spawn('sh', ['-c', WITH_FDS, 'sh', 'node', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const line = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 150_000);
      createInterface({ input: child.stdout! }).once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
    const report = line?.startsWith('{') ? (JSON.parse(line) as ClientReport) : undefined;
    const close = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      const t = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    };
    if (report === undefined) {
      await close();
      fail(`idle ${n}`, stderr || 'no report');
    } else if (report.errors > 0)
      failures.push(`idle ${n}: ${report.errors} errors (first: ${report.firstError ?? '?'})`);
    return { report, close };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const warm = await open(Math.min(500, count));
  await warm.close();
  // The closed connections' TIME-WAIT (2 s by default) ends before "before" is read.
  await sleep(Math.max(settleMs, 2500));
  const rssBeforeKb = await tun.statusKb('VmRSS');
  const held = await open(count);
  await sleep(settleMs);
  const rssAfterKb = await tun.statusKb('VmRSS');
  await held.close();
  const n = held.report?.held ?? 0;
  if (n === 0) return undefined;
  return { held: n, rssBeforeKb, rssAfterKb, kbPerConnection: (rssAfterKb - rssBeforeKb) / n };
}

/** danted's URL (every tun2socks lane relays through it). */
export const DANTED_URL = `socks5://${PROXY_V4}:${DANTED_PORT}`;
