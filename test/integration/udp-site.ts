/**
 * The UDP relay test site: three namespaces in a line.
 *
 *   client ns                       proxy ns                         server ns
 *   TUN (our stack, run by          danted   198.18.6.2:1080         UDP echo   :7 (v4 + v6)
 *   udp-relay-runner.mjs)           microsocks 198.18.6.2:1081       dnsmasq    :53 (UDP + TCP)
 *   routes 198.18.5.0/24, fd00:5::/64 into the TUN
 *   veth 198.18.6.1 ─────────────── 198.18.6.2 | 198.18.5.1 ──────── 198.18.5.2, fd00:5::2
 *
 * Clients in the client namespace (dig, a node dgram client) send to the server's addresses; the
 * kernel routes them into the TUN, the runner relays them through a proxy over the veth, and the
 * proxy reaches the server over its own veth.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { UdpRelayStats } from '../../src/relay/udp-relay.js';
import { findExecutable } from '../testbed/exec.js';
import { type Netns, type Testbed, waitFor } from '../testbed/index.js';

/** The runner program. */
export const RUNNER = resolve(import.meta.dirname, 'clients/udp-relay-runner.mjs');
/** The compiled relay the runner loads. */
export const DIST_RELAY = resolve(import.meta.dirname, '../../dist/src/relay/udp-relay.js');
/** The proxy namespace's address on the client side. */
export const PROXY_V4 = '198.18.6.2';
/** danted (SOCKS5 with UDP ASSOCIATE). */
export const DANTED_URL = `socks5://${PROXY_V4}:1080`;
/** microsocks (SOCKS5, CONNECT only). */
export const MICROSOCKS_URL = `socks5://${PROXY_V4}:1081`;
/** The server's addresses (routed into the TUN in the client namespace). */
export const SERVER_V4 = '198.18.5.2';
export const SERVER_V6 = 'fd00:5::2';
/** The UDP echo port on the server. */
export const ECHO_PORT = 7;
/** The name dnsmasq answers, and its address. */
export const DNS_NAME = 'name.test';
export const DNS_ANSWER = '198.18.9.9';

/** Programs the site needs besides `ip`. */
export const TOOLS = ['danted', 'microsocks', 'dnsmasq', 'dig'] as const;

/** Tools or build outputs missing on this machine (empty when the site can be built). */
export function missingPrerequisites(): string[] {
  const missing: string[] = TOOLS.filter((t) => findExecutable(t) === undefined);
  if (!existsSync(DIST_RELAY)) missing.push(`${DIST_RELAY} (npm run build)`);
  return missing;
}

/** A UDP echo on both families, printing "ready" once bound. */
const ECHO_SERVER = `
const dgram = require('node:dgram');
let bound = 0;
for (const [type, host] of [['udp4', '0.0.0.0'], ['udp6', '::']]) {
  const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(${ECHO_PORT}, host, () => { if (++bound === 2) console.log('ready'); });
}
`;

/**
 * The client: argv host port count gapMs timeoutMs; sends "msg-<i>" from one socket, waits for
 * each reply, and prints [{ reply, from } | { timeout: true }] as JSON.
 */
const ECHO_CLIENT = `
import dgram from 'node:dgram';
const [host, port, count, gapMs, timeoutMs] = process.argv.slice(2);
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
await new Promise((r) => s.bind(0, r));
const out = [];
for (let i = 0; i < Number(count); i++) {
  if (i > 0) await new Promise((r) => setTimeout(r, Number(gapMs)));
  const reply = new Promise((resolve) => {
    const timer = setTimeout(() => { s.off('message', on); resolve({ timeout: true }); }, Number(timeoutMs));
    function on(m, r) { clearTimeout(timer); s.off('message', on); resolve({ reply: m.toString(), from: r.address + ':' + r.port }); }
    s.on('message', on);
  });
  s.send('msg-' + i, Number(port), host);
  out.push(await reply);
}
s.close();
console.log(JSON.stringify(out));
`;

/** One echo exchange as the client reports it. */
export type EchoResult = { reply: string; from: string } | { timeout: true };

/** A running udp-relay-runner.mjs in the client namespace. */
export class UdpRunner {
  private readonly lines: string[] = [];
  private readonly waiters: (() => void)[] = [];
  private readonly exited: Promise<void>;
  /** Everything it wrote on stderr (for failure messages). */
  stderr = '';

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const w of this.waiters.splice(0)) w();
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((r) => child.once('exit', () => r()));
  }

  /** Spawns the runner (tracked by the testbed) and waits for "ready". */
  static async start(ns: Netns, tun: string, proxyUrl: string, extra: string[] = []): Promise<UdpRunner> {
    const child = ns.spawn('node', [RUNNER, `--tun=${tun}`, `--proxy=${proxyUrl}`, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const runner = new UdpRunner(child);
    await runner.line((l) => l === 'ready', 10_000, 'the runner to print ready');
    return runner;
  }

  /** The relay's counters now (SIGUSR1, then the next stats line). */
  async stats(): Promise<UdpRelayStats> {
    const seen = this.lines.length;
    process.kill(this.child.pid!, 'SIGUSR1');
    const line = await this.line((l, i) => i >= seen && l.startsWith('{"stats"'), 5000, 'stats');
    return (JSON.parse(line) as { stats: UdpRelayStats }).stats;
  }

  /** SIGTERM, and waits (bounded) for the exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null)
      process.kill(this.child.pid!, 'SIGTERM');
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 3000))]);
  }

  private async line(
    match: (l: string, index: number) => boolean,
    ms: number,
    what: string,
  ): Promise<string> {
    const deadline = performance.now() + ms;
    for (;;) {
      const i = this.lines.findIndex(match);
      if (i >= 0) return this.lines[i]!;
      const left = deadline - performance.now();
      if (left <= 0 || this.child.exitCode !== null) {
        throw new Error(`timed out waiting for ${what}; runner stderr: ${this.stderr.slice(-2000)}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

/** The three namespaces with their servers and proxies running. */
export class UdpSite {
  private constructor(
    /** The namespace with the TUN, the runner and the clients. */
    readonly client: Netns,
    /** The TUN's name. */
    readonly tun: string,
    private readonly echoClient: string,
  ) {}

  /** Builds the namespaces and starts danted, microsocks, the echo server and dnsmasq. */
  static async create(bed: Testbed): Promise<UdpSite> {
    const client = await bed.netns('client');
    const proxy = await bed.netns('proxy');
    const server = await bed.netns('server');
    await bed.veth(client, proxy, { a: '198.18.6.1/24', b: `${PROXY_V4}/24` });
    const { aIf: external } = await bed.veth(proxy, server, {
      a: '198.18.5.1/24',
      b: `${SERVER_V4}/24`,
      a6: 'fd00:5::1/64',
      b6: `${SERVER_V6}/64`,
    });
    const tun = await bed.tun(client, {
      mtu: 1500,
      address: '198.18.0.1/30',
      address6: 'fd00::1/64',
      routes: ['198.18.5.0/24'],
      routes6: ['fd00:5::/64'],
    });

    const dir = await bed.tmpdir();
    const echoClient = join(dir, 'echo-client.mjs');
    await writeFile(echoClient, ECHO_CLIENT);
    const dantedConf = join(dir, 'danted.conf');
    await writeFile(
      dantedConf,
      [
        'logoutput: stderr',
        `internal: ${PROXY_V4} port = 1080`,
        `external: ${external}`,
        'socksmethod: none',
        'clientmethod: none',
        'user.privileged: root',
        'user.unprivileged: nobody',
        'client pass { from: 0/0 to: 0/0 }',
        'socks pass { from: 0/0 to: 0/0 command: connect udpassociate udpreply }',
        '',
      ].join('\n'),
    );

    const echo = server.spawn('node', ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'ignore'] });
    const echoReady = new Promise<void>((r) => echo.stdout!.once('data', () => r()));
    server.spawn(
      'dnsmasq',
      [
        // Not --no-daemon: in that debug mode dnsmasq serves one TCP connection at a time, inline.
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        `--listen-address=${SERVER_V4}`,
        `--listen-address=${SERVER_V6}`,
        '--bind-interfaces',
        '--user=root',
        `--address=/${DNS_NAME}/${DNS_ANSWER}`,
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      ],
      { stdio: 'ignore' },
    );
    proxy.spawn('danted', ['-f', dantedConf, '-N', '1', '-p', join(dir, 'danted.pid')], { stdio: 'ignore' });
    proxy.spawn('microsocks', ['-i', PROXY_V4, '-p', '1081'], { stdio: 'ignore' });
    await waitFor(() => echoReady.then(() => true), 10_000, 'the UDP echo server');
    await server.waitForTcpPort(53, 10_000);
    await proxy.waitForTcpPort(1080, 10_000);
    await proxy.waitForTcpPort(1081, 10_000);
    return new UdpSite(client, tun, echoClient);
  }

  /** Starts a runner relaying through `proxyUrl`. */
  runner(proxyUrl: string, extra: string[] = []): Promise<UdpRunner> {
    return UdpRunner.start(this.client, this.tun, proxyUrl, extra);
  }

  /** `dig @server name` over UDP from the client namespace; the answer lines (+short). */
  async dig(server: string, name = DNS_NAME): Promise<string> {
    const r = await this.client.exec(
      'dig',
      [`@${server}`, name, 'A', '+short', '+notcp', '+time=2', '+tries=2'],
      {
        timeoutMs: 15_000,
        allowFail: true,
      },
    );
    return r.stdout.trim();
  }

  /** Sends `count` datagrams from one socket in the client namespace to host:port, `gapMs` apart. */
  async echo(host: string, port: number, count: number, gapMs = 0, timeoutMs = 2000): Promise<EchoResult[]> {
    const args = [this.echoClient, host, String(port), String(count), String(gapMs), String(timeoutMs)];
    const r = await this.client.exec('node', args, { timeoutMs: 30_000 });
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as EchoResult[];
  }
}
