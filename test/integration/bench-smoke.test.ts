/**
 * A smoke run of `npm run bench` (dist/bench/run.js --quick): proves that the harness builds its
 * namespaces, drives every path (direct, socks-only, tun2socks) with iperf3, the connection-rate,
 * latency and UDP clients and the idle-connection test, prints the table and writes the JSON, and
 * leaves no namespace behind. Figures are never asserted, only that each path produced one.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools } from '../../bench/relay/site.js';
import { listNetns } from '../testbed/cleanup.js';
import { canRunIntegration } from '../testbed/index.js';

const RUN = resolve(import.meta.dirname, '../../dist/bench/run.js');

const toolsPresent = (): boolean => {
  const missing = missingTools();
  if (!existsSync(RUN)) missing.push(`${RUN} (npm run build)`);
  if (missing.length === 0) return true;
  if (process.env.CI) throw new Error(`the bench smoke test needs ${missing.join(', ')}`);
  return false;
};

interface ResultRow {
  metric: string;
  direct?: number | null;
  socks?: number | null;
  tun?: number | null;
}

describe.skipIf(!canRunIntegration() || !toolsPresent())('npm run bench --quick', () => {
  let dir: string;
  let stdout = '';
  let stderr = '';
  let code: number | null = null;
  let pid = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
    await new Promise<void>((done) => {
      const child = execFile(
        process.execPath,
        [RUN, '--quick', '--out', join(dir, 'results.json')],
        { timeout: 240_000, killSignal: 'SIGINT', maxBuffer: 16 * 1024 * 1024 },
        (err, out, errOut) => {
          stdout = out;
          stderr = errOut;
          code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
          done();
        },
      );
      pid = child.pid ?? 0;
    });
  }, 250_000);

  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('exits 0 and prints the table', () => {
    expect(code, stderr.slice(-3000)).toBe(0);
    expect(stdout).toMatch(/\| metric +\| direct \| socks-only \| tun2socks \|/);
    expect(stdout).toContain('checksum 1500 B GB/s');
  });

  it('writes JSON with a figure from every path for every relay measurement', async () => {
    const json = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as {
      rows: ResultRow[];
      micro: Record<string, number>;
    };
    const metrics = json.rows.map((r) => r.metric);
    for (const m of [
      'TCP upload 1 stream',
      'TCP download 8 streams',
      'new connections',
      'request-response p50',
      'UDP request-response',
      'peak RSS',
      'RSS per idle connection',
    ])
      expect(
        metrics.some((x) => x.includes(m)),
        m,
      ).toBe(true);
    // JSON writes NaN (a failed run) as null. One iperf3 run may fail on a busy machine without
    // the harness being broken, so TCP needs one complete row; every other row must be complete.
    // The reference rows (socat hops) have the figures of their paths: the round trip's in the
    // socks-only column, the UDP hop's in the direct one, the UDP reference derived from it
    // next to socks-only. The memory and CPU rows of tun2socks have only theirs.
    const tunOnly = (metric: string): boolean => metric.includes('RSS') || metric.startsWith('CPU');
    const complete = (row: ResultRow): boolean => {
      if (row.metric.includes('(reference floor)')) return typeof row.socks === 'number';
      if (row.metric.includes('direct + one socat hop')) return typeof row.direct === 'number';
      if (row.metric.includes('slowed by what one socat hop adds'))
        return typeof row.socks === 'number' && typeof row.tun === 'number';
      return (
        typeof row.tun === 'number' &&
        (tunOnly(row.metric) || (typeof row.direct === 'number' && typeof row.socks === 'number'))
      );
    };
    const tcp = json.rows.filter((r) => r.metric.startsWith('TCP '));
    expect(tcp.some(complete), stderr.slice(-2000)).toBe(true);
    for (const row of json.rows.filter((r) => !r.metric.startsWith('TCP ')))
      expect(complete(row), `${row.metric}: ${stderr.slice(-2000)}`).toBe(true);
    expect(Object.keys(json.micro).length).toBeGreaterThan(0);
  });

  it('leaves no namespace of its run behind', async () => {
    const left = (await listNetns()).filter((n) => n.startsWith(`t2s-${pid}-`));
    expect(left).toEqual([]);
  });
});
