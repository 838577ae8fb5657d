/**
 * The `tun2socks` command itself, end to end, as a user runs it:
 *
 *   cli ns: the TUN created by `tun2socks --config FILE`, curl, dig, node clients
 *     │ veth 198.18.21.1 ─── 198.18.21.2 (microsocks with username/password on :1080)
 *   px ns: servers on 198.18.22.1 (lo): HTTP :8080, TCP echo :7007, dnsmasq :53 (name.test)
 *
 * The cli namespace routes 198.18.22.0/24 into the TUN. microsocks has no UDP, so DNS goes over
 * TCP through it automatically. Covered: the config file, TCP relay with auth, DNS over TCP,
 * debug logs with bytes and no credentials, SIGUSR1 counters, the routing-loop guard, and
 * SIGTERM with a connection open (reset, exit 0 within 3 s, the TUN gone).
 */
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from '../testbed/exec.js';
import { canRunIntegration, type Netns, Testbed, waitFor } from '../testbed/index.js';

const CLI = resolve(import.meta.dirname, '../../dist/src/cli.js');
const PROXY = '198.18.21.2';
const SERVER = '198.18.22.1';
const SERVER6 = 'fd00:22::1';
const PROXY6 = 'fd00:21::2';
const PASSWORD = 's3cret-pw';

const SERVERS = `
const http = require('node:http');
const net = require('node:net');
let up = 0;
const ready = () => { if (++up === 3) console.log('ready'); };
const web = (req, res) => res.end('hello through the cli\\n');
http.createServer(web).listen(8080, '${SERVER}', ready);
http.createServer(web).listen(8080, '${SERVER6}', ready);
net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(7007, '${SERVER}', ready);
`;

/** Connects to the echo server, says "ready" once echoed, then reports how the connection ended. */
const HOLDING_CLIENT = `
const net = require('node:net');
const s = net.connect(7007, '${SERVER}');
s.on('connect', () => s.write('x'));
s.once('data', () => console.log('held'));
s.on('error', (e) => { console.log('ended ' + e.code); process.exit(0); });
s.on('close', () => { console.log('ended close'); process.exit(0); });
setTimeout(() => { console.log('ended timeout'); process.exit(1); }, 15000);
`;

const toolsPresent = (): boolean => {
  const missing = ['microsocks', 'dnsmasq', 'dig', 'curl'].filter((t) => findExecutable(t) === undefined);
  if (missing.length === 0) return true;
  if (process.env.CI) throw new Error(`cli tests need ${missing.join(', ')}`);
  return false;
};

describe.skipIf(!canRunIntegration() || !toolsPresent())('the tun2socks command', () => {
  let bed: Testbed;
  let cli: Netns;
  let tun: string;
  let proc: ChildProcess;
  let stderr = '';

  beforeAll(async () => {
    bed = await Testbed.create('cli');
    cli = await bed.netns('cli');
    const px = await bed.netns('px');
    await bed.veth(cli, px, {
      a: '198.18.21.1/24',
      b: `${PROXY}/24`,
      a6: 'fd00:21::1/64',
      b6: `${PROXY6}/64`,
    });
    await px.ip(['addr', 'add', `${SERVER}/32`, 'dev', 'lo']);
    await px.ip(['addr', 'add', `${SERVER6}/128`, 'dev', 'lo']);
    const dir = await bed.tmpdir();
    const servers = px.spawn('node', ['-e', SERVERS], { stdio: ['ignore', 'pipe', 'inherit'] });
    const serversReady = new Promise<void>((r) => servers.stdout!.once('data', () => r()));
    px.spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        `--listen-address=${SERVER}`,
        '--bind-interfaces',
        '--user=root',
        '--address=/name.test/198.18.22.9',
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      ],
      { stdio: 'ignore' },
    );
    px.spawn('microsocks', ['-i', PROXY, '-p', '1080', '-u', 'user', '-P', PASSWORD], { stdio: 'ignore' });
    px.spawn('microsocks', ['-i', PROXY6, '-p', '1081'], { stdio: 'ignore' });
    await waitFor(() => serversReady.then(() => true), 10_000, 'the servers');
    await px.waitForTcpPort(1080, 10_000);
    await px.waitForTcpPort(1081, 10_000);
    await px.waitForTcpPort(53, 10_000);

    tun = bed.ifname('t2s');
    const config = join(dir, 'tun2socks.yaml');
    await writeFile(
      config,
      [
        `device: tun://${tun}`,
        `proxy: socks5://user:${PASSWORD}@${PROXY}:1080`,
        'loglevel: debug',
        'udp-timeout: 5s',
        'dial-timeout: 2s',
        '',
      ].join('\n'),
    );
    proc = cli.spawn('node', [CLI, '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await waitFor(() => stderr.includes('tun2socks started'), 10_000, 'tun2socks to start');
    await cli.ip(['addr', 'add', '198.18.23.1/24', 'dev', tun]);
    await cli.ip(['link', 'set', tun, 'up']);
    await cli.ip(['route', 'add', '198.18.22.0/24', 'dev', tun]);
  }, 30_000);

  afterAll(async () => {
    await bed?.destroy();
  });

  it('relays HTTP through SOCKS5 with username/password, logging bytes but never the password', async () => {
    const r = await cli.exec('curl', ['-sS', '-m', '5', `http://${SERVER}:8080/`]);
    expect(r.stdout).toBe('hello through the cli\n');
    await waitFor(() => /tcp close .*up=\d+ down=\d+/.test(stderr), 5000, 'the close line');
    expect(stderr).toMatch(/proxy=socks5:\/\/user(:\*+)?@198\.18\.21\.2:1080/);
    // How the TUN is read and written: io_uring, or plain system calls with the reason.
    expect(stderr).toMatch(/tun2socks started .* io=(uring|"?plain \(.+\))/);
    expect(stderr).not.toContain(PASSWORD);
  });

  it('resolves a name with dig: UDP DNS carried over TCP through a proxy without UDP', async () => {
    const r = await cli.exec('dig', ['+short', '+time=3', '+tries=2', `@${SERVER}`, 'name.test']);
    expect(r.stdout.trim()).toBe('198.18.22.9');
    expect(stderr).toMatch(/DEBUG udp open client=198\.18\.23\.1:\d+/);
  });

  it('prints the counters on SIGUSR1', async () => {
    const before = stderr.length;
    proc.kill('SIGUSR1');
    const line = await waitFor(
      () =>
        stderr
          .slice(before)
          .split('\n')
          .find((l) => l.startsWith('stats ')) ?? '',
      5000,
      'a stats line',
    );
    const stats = JSON.parse(line.slice('stats '.length)) as {
      tcp: { total: number; bytesDown: number };
      udp: { dnsOverTcp: number };
      drops: Record<string, number>;
    };
    expect(stats.tcp.total).toBeGreaterThanOrEqual(1);
    expect(stats.tcp.bytesDown).toBeGreaterThan(0);
    expect(stats.udp.dnsOverTcp).toBeGreaterThanOrEqual(1);
    expect(typeof stats.drops).toBe('object');
  });

  it('SIGTERM resets open connections, removes the TUN and exits 0 within 3 s', async () => {
    const holder = cli.spawn('node', ['-e', HOLDING_CLIENT], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    holder.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor(() => out.includes('held'), 5000, 'the held connection');
    // The routing-loop guard first: send the proxy's own address into the TUN. The command's next
    // upstream dial then comes back through the TUN and must be refused, not relayed in a loop.
    // A port never dialed before, so the client's SYN waits for that dial (--tcp-accept auto) and
    // sees the refusal (curl 7); a destination that dialed fine a moment ago would be accepted
    // and then reset (curl 56).
    await cli.ip(['route', 'add', `${PROXY}/32`, 'dev', tun]);
    const refused = await cli.exec('curl', ['-sS', '-m', '5', `http://${SERVER}:8081/`], { allowFail: true });
    expect(refused.code).toBe(7);
    expect(stderr).toMatch(/routing loop: 198\.18\.21\.2:1080 is the proxy itself/);

    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const t0 = performance.now();
    proc.kill('SIGTERM');
    const code = await exited;
    expect(code).toBe(0);
    expect(performance.now() - t0).toBeLessThan(3000);
    await waitFor(() => out.includes('ended'), 5000, 'the client to see the end');
    expect(out).toContain('ended ECONNRESET');
    const link = await cli.ip(['link', 'show', tun], { allowFail: true });
    expect(link.code).not.toBe(0);
  });

  it('examples/split-proxy.js: the subnet goes through the proxy, the rest is refused', async () => {
    const tun2 = bed.ifname('t2x');
    const example = resolve(import.meta.dirname, '../../dist/examples/split-proxy.js');
    const child = cli.spawn(
      'node',
      [example, tun2, `socks5://user:${PASSWORD}@${PROXY}:1080`, '198.18.22.0/24'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor(() => out.includes('relaying'), 10_000, 'the example to start');
    await cli.ip(['addr', 'add', '198.18.23.1/24', 'dev', tun2]);
    await cli.ip(['link', 'set', tun2, 'up']);
    await cli.ip(['route', 'add', '198.18.22.0/24', 'dev', tun2]);
    await cli.ip(['route', 'add', '198.18.24.0/24', 'dev', tun2]);
    const ok = await cli.exec('curl', ['-sS', '-m', '5', `http://${SERVER}:8080/`]);
    expect(ok.stdout).toBe('hello through the cli\n');
    const refused = await cli.exec('curl', ['-sS', '-m', '5', 'http://198.18.24.1:8080/'], {
      allowFail: true,
    });
    expect(refused.code).toBe(7);
    expect(out).toContain(`${SERVER}:8080 -> socks5`);
    expect(out).toContain('198.18.24.1:8080 -> reject');
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('a proxy at an IPv6 address carries IPv4 and IPv6 destinations', async () => {
    const tun3 = bed.ifname('t2y');
    const child = cli.spawn('node', [CLI, '--device', tun3, '--proxy', `socks5://[${PROXY6}]:1081`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
    });
    await waitFor(() => log.includes('tun2socks started'), 10_000, 'tun2socks to start');
    await cli.ip(['addr', 'add', '198.18.25.1/24', 'dev', tun3]);
    await cli.ip(['-6', 'addr', 'add', 'fd00:25::1/64', 'dev', tun3, 'nodad']);
    await cli.ip(['link', 'set', tun3, 'up']);
    await cli.ip(['route', 'replace', '198.18.22.0/24', 'dev', tun3]);
    await cli.ip(['-6', 'route', 'add', 'fd00:22::/64', 'dev', tun3]);
    expect(log).toContain(`proxy=socks5://[${PROXY6}]:1081`);
    const v4 = await cli.exec('curl', ['-sS', '-m', '5', `http://${SERVER}:8080/`]);
    expect(v4.stdout).toBe('hello through the cli\n');
    const v6 = await cli.exec('curl', ['-sS', '-m', '5', `http://[${SERVER6}]:8080/`]);
    expect(v6.stdout).toBe('hello through the cli\n');
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('--multi-queue 2: two worker queues share the flows, counters summed, clean stop', async () => {
    const tun4 = bed.ifname('t2m');
    const child = cli.spawn(
      'node',
      [CLI, '--device', tun4, '--multi-queue', '2', '--proxy', `socks5://[${PROXY6}]:1081`],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
    });
    await waitFor(() => log.includes('tun2socks started'), 15_000, 'tun2socks to start');
    expect(log).toMatch(/queues=2/);
    await cli.ip(['addr', 'add', '198.18.26.1/24', 'dev', tun4]);
    await cli.ip(['link', 'set', tun4, 'up']);
    await cli.ip(['route', 'replace', '198.18.22.0/24', 'dev', tun4]);
    const parallel = `
      const http = require('node:http');
      let ok = 0;
      const one = (i) => new Promise((resolve) => {
        http.get({ host: '${SERVER}', port: 8080, path: '/' + i, agent: false }, (res) => {
          res.resume();
          res.on('end', () => { ok++; resolve(); });
        }).on('error', resolve);
      });
      Promise.all(Array.from({ length: 32 }, (_, i) => one(i))).then(() => console.log(ok));
    `;
    const r = await cli.exec('node', ['-e', parallel], { timeoutMs: 20_000 });
    expect(r.stdout.trim()).toBe('32');
    const before = log.length;
    child.kill('SIGUSR1');
    const line: string = await waitFor(
      () =>
        log
          .slice(before)
          .split('\n')
          .find((l) => l.startsWith('stats ')) ?? '',
      5000,
      'a stats line',
    );
    const stats = JSON.parse(line.slice('stats '.length)) as {
      queues: number;
      tcp: { total: number };
      perQueue: number[];
    };
    expect(stats.queues).toBe(2);
    expect(stats.tcp.total).toBe(32);
    expect(stats.perQueue).toHaveLength(2);
    // The kernel hashes flows over the queues: 32 flows all on one queue has odds of 2^-31.
    expect(stats.perQueue.every((n) => n > 0)).toBe(true);
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
