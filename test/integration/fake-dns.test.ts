/**
 * DNS without leaks, end to end: the engine (fake-dns-runner.mjs) on a TUN in a client namespace
 * whose only way out is a SOCKS proxy in a proxy namespace; names are known only to a dnsmasq in
 * a server namespace, which the proxy namespace uses as its resolver.
 *
 *   client ns                        proxy ns                          server ns
 *   TUN 198.18.0.1/30, fd00::1/64    danted     198.18.6.2:1080        dnsmasq :53 (web.test, txt.test)
 *   routes into the TUN: the DNS     microsocks 198.18.6.2:1081        HTTP    :80 (v4 + v6)
 *   addresses and the fake ranges    resolv.conf → 198.18.5.2
 *   resolv.conf → 198.18.0.2
 *   veth 198.18.6.1 ──────────────── 198.18.6.2 | 198.18.5.1, fd00:5::1 ── 198.18.5.2, fd00:5::2
 *
 * The client namespace cannot reach the server namespace except through the proxy, so a name that
 * resolves and a page that loads prove the name was resolved at the proxy. The resolv.conf files
 * live in /etc/netns/<namespace>/ (what `ip netns exec` bind-mounts) and are removed afterwards.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Tun2SocksStats } from '../../src/tun2socks.js';
import { findExecutable } from '../testbed/exec.js';
import { canRunIntegration, type Netns, Testbed, waitFor } from '../testbed/index.js';

const RUNNER = resolve(import.meta.dirname, 'clients/fake-dns-runner.mjs');
const DIST_ENGINE = resolve(import.meta.dirname, '../../dist/src/tun2socks.js');
const TOOLS = ['danted', 'microsocks', 'dnsmasq', 'dig', 'curl'] as const;
const PROXY_V4 = '198.18.6.2';
const DANTED_URL = `socks5://${PROXY_V4}:1080`;
const MICROSOCKS_URL = `socks5://${PROXY_V4}:1081`;
const SERVER_V4 = '198.18.5.2';
const SERVER_V6 = 'fd00:5::2';
const DNS_V4 = '198.18.0.2';
const DNS_V6 = 'fdfe:dcba:9876::2';
const UPSTREAM = `--upstream=${SERVER_V4}:53`;
const PAGE = 'hello from web.test';

/** An HTTP server on both families answering PAGE, printing "ready" once bound. */
const HTTP_SERVER = `
const http = require('node:http');
const s = http.createServer((req, res) => res.end(${JSON.stringify(PAGE)} + ' via ' + req.socket.localAddress));
s.listen(80, '::', () => console.log('ready'));
`;

/** A UDP echo on both families, port 7. */
const ECHO_SERVER = `
const dgram = require('node:dgram');
for (const [type, host] of [['udp4', '0.0.0.0'], ['udp6', '::']]) {
  const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(7, host);
}
`;

/**
 * A UDP client: resolves argv[1] (family argv[2]) with the system resolver, sends 'ping' to port
 * 7 from a connected socket (only replies from that address get through), prints JSON.
 */
const ECHO_CLIENT = `
const dgram = require('node:dgram');
const dns = require('node:dns');
const [name, family] = process.argv.slice(1);
dns.lookup(name, { family: Number(family) }, (err, address) => {
  if (err) { console.log(JSON.stringify({ error: err.code })); return; }
  const s = dgram.createSocket(family === '6' ? 'udp6' : 'udp4');
  const timer = setTimeout(() => { console.log(JSON.stringify({ address, timeout: true })); s.close(); }, 3000);
  s.connect(7, address, () => s.send('ping'));
  s.on('message', (m, r) => { clearTimeout(timer); console.log(JSON.stringify({ address, reply: m.toString(), from: r.address })); s.close(); });
});
`;

/** A running fake-dns-runner.mjs. */
class Runner {
  private readonly lines: string[] = [];
  private readonly exited: Promise<void>;
  stderr = '';

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => this.lines.push(l));
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((r) => child.once('exit', () => r()));
  }

  static async start(ns: Netns, tun: string, args: string[]): Promise<Runner> {
    const child = ns.spawn('node', [RUNNER, `--tun=${tun}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const runner = new Runner(child);
    await runner.line((l) => l === 'ready', 10_000, 'ready');
    return runner;
  }

  async stats(): Promise<Tun2SocksStats> {
    const seen = this.lines.length;
    process.kill(this.child.pid!, 'SIGUSR1');
    const line = await this.line((l, i) => i >= seen && l.startsWith('{"stats"'), 5000, 'stats');
    return (JSON.parse(line) as { stats: Tun2SocksStats }).stats;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null)
      process.kill(this.child.pid!, 'SIGTERM');
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 3000))]);
  }

  private async line(match: (l: string, i: number) => boolean, ms: number, what: string): Promise<string> {
    return (await waitFor<string | undefined>(
      () => {
        if (this.child.exitCode !== null)
          throw new Error(`runner exited; stderr: ${this.stderr.slice(-2000)}`);
        const i = this.lines.findIndex(match);
        return i >= 0 ? this.lines[i] : undefined;
      },
      ms,
      `the runner's ${what} (stderr: ${this.stderr.slice(-500)})`,
    )) as string;
  }
}

describe.skipIf(!canRunIntegration())('DNS without leaks: fake-IP, remote, hijack', () => {
  let bed: Testbed;
  let client: Netns;
  let tun: string;
  let dantedLog: string;
  let runner: Runner | undefined;
  /** /etc/netns/<ns> directories this file created (removed in afterAll, even on failure). */
  const netnsEtc: string[] = [];

  /** Writes /etc/netns/<ns>/resolv.conf for a namespace of ours. */
  async function resolvConf(ns: Netns, nameserver: string): Promise<void> {
    const dir = join('/etc/netns', ns.name);
    if (!ns.name.startsWith('t2s-')) throw new Error(`refusing to write resolv.conf for ${ns.name}`);
    netnsEtc.push(dir);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'resolv.conf'), `nameserver ${nameserver}\noptions timeout:2 attempts:2\n`);
  }

  async function dig(args: string[]): Promise<string> {
    const r = await client.exec('dig', [...args, '+short', '+time=2', '+tries=2'], {
      timeoutMs: 15_000,
      allowFail: true,
    });
    return r.stdout.trim();
  }

  async function curl(args: string[]): Promise<string> {
    const r = await client.exec('curl', ['-sS', '--max-time', '10', ...args], {
      timeoutMs: 20_000,
      allowFail: true,
    });
    return r.stdout.trim() || r.stderr.trim();
  }

  beforeAll(async () => {
    const missing: string[] = TOOLS.filter((t) => findExecutable(t) === undefined);
    if (!existsSync(DIST_ENGINE)) missing.push(`${DIST_ENGINE} (npm run build)`);
    if (missing.length > 0) throw new Error(`the fake-DNS test needs ${missing.join(', ')}`);
    bed = await Testbed.create('fakedns');
    client = await bed.netns('client');
    const proxy = await bed.netns('proxy');
    const server = await bed.netns('server');
    await bed.veth(client, proxy, { a: '198.18.6.1/24', b: `${PROXY_V4}/24` });
    const { aIf: external } = await bed.veth(proxy, server, {
      a: '198.18.5.1/24',
      b: `${SERVER_V4}/24`,
      a6: 'fd00:5::1/64',
      b6: `${SERVER_V6}/64`,
    });
    tun = await bed.tun(client, {
      mtu: 1500,
      address: '198.18.0.1/30',
      address6: 'fd00::1/64',
      // The fake range, and a network only hijack answers for.
      routes: ['198.19.0.0/16', '198.18.99.0/24'],
      routes6: ['fdfe:dcba:9876::/64', 'fdfe:dcba:9877::/64'],
    });
    await resolvConf(client, DNS_V4);
    await resolvConf(proxy, SERVER_V4);

    const dir = await bed.tmpdir();
    dantedLog = join(dir, 'danted.log');
    const dantedConf = join(dir, 'danted.conf');
    await writeFile(
      dantedConf,
      [
        `logoutput: ${dantedLog}`,
        'debug: 1',
        `internal: ${PROXY_V4} port = 1080`,
        `external: ${external}`,
        'socksmethod: none',
        'clientmethod: none',
        'user.privileged: root',
        'user.unprivileged: nobody',
        'client pass { from: 0/0 to: 0/0 }',
        'socks pass {',
        '  from: 0/0 to: 0/0',
        '  command: connect udpassociate udpreply',
        '  log: connect',
        '}',
        '',
      ].join('\n'),
    );
    server.spawn('node', ['-e', ECHO_SERVER], { stdio: 'ignore' });
    const http = server.spawn('node', ['-e', HTTP_SERVER], { stdio: ['ignore', 'pipe', 'ignore'] });
    const httpReady = new Promise<boolean>((r) => http.stdout!.once('data', () => r(true)));
    server.spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        `--listen-address=${SERVER_V4}`,
        '--bind-interfaces',
        '--user=root',
        `--address=/web.test/${SERVER_V4}`,
        `--address=/web.test/${SERVER_V6}`,
        '--txt-record=txt.test,hello-txt',
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      ],
      { stdio: 'ignore' },
    );
    proxy.spawn('danted', ['-f', dantedConf, '-N', '1', '-p', join(dir, 'danted.pid')], { stdio: 'ignore' });
    proxy.spawn('microsocks', ['-i', PROXY_V4, '-p', '1081'], { stdio: 'ignore' });
    await waitFor(() => httpReady, 10_000, 'the HTTP server');
    await server.waitForTcpPort(53, 10_000);
    await proxy.waitForTcpPort(1080, 10_000);
    await proxy.waitForTcpPort(1081, 10_000);
  });

  afterEach(async () => {
    await runner?.stop();
    runner = undefined;
  });

  afterAll(async () => {
    try {
      await bed?.destroy();
    } finally {
      for (const dir of netnsEtc) await rm(dir, { recursive: true, force: true });
    }
  });

  it('fake-ip through danted: fake answers, curl by name resolved at the proxy, TXT forwarded, IPv6 too', async () => {
    runner = await Runner.start(client, tun, [`--proxy=${DANTED_URL}`, '--dns=fake-ip', UPSTREAM]);
    const a = await dig([`@${DNS_V4}`, 'web.test', 'A']);
    expect(a).toMatch(/^198\.19\.\d+\.\d+$/);
    const aaaa = await dig([`@${DNS_V6}`, 'web.test', 'AAAA']);
    expect(aaaa).toMatch(/^fdfe:dcba:9877::/);
    expect(await dig(['+tcp', `@${DNS_V4}`, 'web.test', 'A'])).toBe(a);
    // The client namespace's resolver is the stack: curl gets fake addresses, the proxy the name.
    expect(await curl(['-4', 'http://web.test/'])).toContain(PAGE);
    expect(await curl(['-6', 'http://web.test/'])).toContain(PAGE);
    expect(await dig([`@${DNS_V4}`, 'txt.test', 'TXT'])).toBe('"hello-txt"');
    const log = await readFile(dantedLog, 'utf8');
    expect(log).toContain('web.test');
    const stats = await runner.stats();
    expect(stats.dns).toMatchObject({ failed: 0, unmapped: 0 });
    expect(stats.dns!.answered).toBeGreaterThanOrEqual(5);
    expect(stats.dns!.forwarded).toBe(1);
    expect(stats.dns!.fakeLive).toBeGreaterThanOrEqual(2);
    expect(stats.tcp.total).toBeGreaterThanOrEqual(2);
  });

  it('fake-ip through danted: a UDP flow to a fake address goes by name, replies come from it', async () => {
    runner = await Runner.start(client, tun, [`--proxy=${DANTED_URL}`, '--dns=fake-ip', UPSTREAM]);
    for (const family of ['4', '6']) {
      const r = await client.exec('node', ['-e', ECHO_CLIENT, 'web.test', family], { timeoutMs: 15_000 });
      const out = JSON.parse(r.stdout.trim()) as { address: string; reply?: string; from?: string };
      expect(out.address).toMatch(family === '4' ? /^198\.19\./ : /^fdfe:dcba:9877:/);
      expect(out).toMatchObject({ reply: 'ping', from: out.address });
    }
    const stats = await runner.stats();
    expect(stats.udp.associations).toBeGreaterThanOrEqual(2);
    expect(stats.udp.dropped).toEqual({});
  });

  it('fake-ip through microsocks (no UDP): curl by name, TXT forwarded over DNS over TCP', async () => {
    runner = await Runner.start(client, tun, [`--proxy=${MICROSOCKS_URL}`, '--dns=fake-ip', UPSTREAM]);
    expect(await curl(['-4', 'http://web.test/'])).toContain(PAGE);
    expect(await dig([`@${DNS_V4}`, 'txt.test', 'TXT'])).toBe('"hello-txt"');
    const stats = await runner.stats();
    expect(stats.dns).toMatchObject({ forwarded: 1, failed: 0 });
  });

  it('an unmapped fake address is refused, not relayed', async () => {
    runner = await Runner.start(client, tun, [`--proxy=${DANTED_URL}`, '--dns=fake-ip', UPSTREAM]);
    const out = await curl(['http://198.19.200.200/']);
    expect(out).toMatch(/refused|Failed to connect/i);
    const stats = await runner.stats();
    expect(stats.tcp.failed['fake-unmapped']).toBe(1);
    expect(stats.dns!.unmapped).toBe(1);
  });

  it('remote: every query is forwarded through the proxy; hijack answers port 53 of any address', async () => {
    runner = await Runner.start(client, tun, [`--proxy=${DANTED_URL}`, '--dns=remote', '--hijack', UPSTREAM]);
    expect(await dig([`@${DNS_V4}`, 'web.test', 'A'])).toBe(SERVER_V4);
    expect(await dig([`@${DNS_V6}`, 'web.test', 'AAAA'])).toBe(SERVER_V6);
    expect(await dig([`@198.18.99.53`, 'web.test', 'A'])).toBe(SERVER_V4);
    expect(await dig(['+tcp', `@198.18.99.53`, 'txt.test', 'TXT'])).toBe('"hello-txt"');
    const stats = await runner.stats();
    expect(stats.dns).toMatchObject({ answered: 0, forwarded: 4, failed: 0 });
  });

  it('fake-ip with hijack answers a query to any address with a fake address', async () => {
    runner = await Runner.start(client, tun, [
      `--proxy=${DANTED_URL}`,
      '--dns=fake-ip',
      '--hijack',
      UPSTREAM,
    ]);
    expect(await dig([`@198.18.99.53`, 'web.test', 'A'])).toMatch(/^198\.19\.\d+\.\d+$/);
  });
});
