/**
 * The benchmark site: three namespaces in a row, built with the test bed (198.18.0.0/15 only).
 *
 *   client ns                          proxy ns                           server ns
 *   TUNs run by `tun2socks` (one per   danted 198.18.30.2:1080            iperf3 -s :5201
 *   configuration; each routes one     ip_forward=1 (the direct path)     servers.js: TCP echo,
 *   198.18.32.x/32 into its TUN)                                          one-shot, UDP echo
 *   veth 198.18.30.1 ───────────────── 198.18.30.2 | 198.18.31.1 ──────── 198.18.31.2
 *                                                                         lo: 198.18.32.x/32
 *
 * Direct path: the client reaches 198.18.31.2 through the proxy namespace acting as a plain IP
 * router. SOCKS-only path: the client speaks SOCKS5 to danted itself (proxychains4 for iperf3, the
 * `socks` package in client.js). tun2socks path: the same clients, plain, to a 198.18.32.x address
 * routed into a TUN whose tun2socks relays through danted.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { findExecutable } from '../../test/testbed/exec.js';
import { checkCidr4, type Netns, type Testbed, waitFor } from '../../test/testbed/index.js';
import { IPERF_PORT, UDP_ECHO_PORT } from './protocol.js';

/** The compiled command under test. */
export const CLI = resolve(import.meta.dirname, '../../src/cli.js');
/** The compiled client program (client.ts). */
export const CLIENT_JS = resolve(import.meta.dirname, 'client.js');
/** The compiled server program (servers.ts). */
export const SERVERS_JS = resolve(import.meta.dirname, 'servers.js');

/** The proxy namespace's address on the client side, where the proxies listen. */
export const PROXY_V4 = '198.18.30.2';
/**
 * danted: SOCKS5 CONNECT and UDP ASSOCIATE. Its io children hold a few dozen sessions each, so
 * 10,000 idle connections fit under a per-process fd limit (a single-process proxy such as
 * microsocks would need two fds per connection in one process).
 */
export const DANTED_PORT = 1080;
/** The server's veth address: the direct path's target. */
export const SERVER_DIRECT = '198.18.31.2';
/** The server's address for the SOCKS-only path (reached by danted through its veth). */
export const SERVER_SOCKS = '198.18.32.2';
/** The server's address for TUN lane `n` (routed into that lane's TUN in the client namespace). */
export const serverForLane = (n: number): string => `198.18.32.${10 + n}`;
/** Lanes available (one TUN each). */
export const MAX_LANES = 16;

/**
 * The reference hop: socat (C) in the client namespace relaying TCP to danted, so a SOCKS client
 * pointed at it pays one extra user-space hop over plain sockets, no TUN and no stack: the floor
 * of what any relay process adds to a round trip on this machine.
 */
export const HOP_V4 = '198.18.30.1';
export const HOP_PORT = 1081;
/**
 * The UDP reference hop: socat relaying datagrams from HOP_V4:HOP_UDP_PORT to the server's UDP echo
 * on the direct path, so (hop − direct) is what one user-space hop adds to a UDP exchange here.
 */
export const HOP_UDP_PORT = 1082;

/** Programs the benchmark runs besides `ip` and node. */
export const TOOLS = ['danted', 'iperf3', 'proxychains4'] as const;

/** Tools missing on this machine (empty when the site can be built). */
export function missingTools(): string[] {
  return TOOLS.filter((t) => findExecutable(t) === undefined);
}

/** `sh -c` text that raises the fd limit (to the hard limit when 65536 is refused), then execs the arguments that follow it. */
export const WITH_FDS = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"';

/** The namespaces with the servers and proxies running. */
export class BenchSite {
  private iperfServer: ChildProcess | undefined;

  private constructor(
    private readonly bed: Testbed,
    /** The namespace of the clients and the TUNs. */
    readonly client: Netns,
    /** The namespace of danted (and the direct path's router). */
    readonly proxy: Netns,
    /** The namespace of the servers. */
    readonly server: Netns,
    /** proxychains4's config file (strict chain through danted). */
    readonly proxychainsConf: string,
  ) {}

  /** Builds the namespaces and starts danted, iperf3 -s and servers.js. */
  static async create(bed: Testbed): Promise<BenchSite> {
    const client = await bed.netns('bclient');
    const proxy = await bed.netns('bproxy');
    const server = await bed.netns('bserver');
    await bed.veth(client, proxy, { a: '198.18.30.1/24', b: `${PROXY_V4}/24` });
    const { aIf: external } = await bed.veth(proxy, server, {
      a: '198.18.31.1/24',
      b: `${SERVER_DIRECT}/24`,
    });
    await server.ip(['addr', 'add', checkCidr4(`${SERVER_SOCKS}/32`), 'dev', 'lo']);
    for (let n = 0; n < MAX_LANES; n++)
      await server.ip(['addr', 'add', checkCidr4(`${serverForLane(n)}/32`), 'dev', 'lo']);
    await client.ip(['route', 'add', checkCidr4('198.18.31.0/24', 'route'), 'via', PROXY_V4]);
    await server.ip(['route', 'add', checkCidr4('198.18.30.0/24', 'route'), 'via', '198.18.31.1']);
    await proxy.ip(['route', 'add', checkCidr4('198.18.32.0/24', 'route'), 'via', SERVER_DIRECT]);
    // Only inside the proxy namespace: it routes the direct path.
    await proxy.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // Many short connections in a few seconds: room for ephemeral ports in every namespace.
    for (const ns of [client, proxy, server])
      await ns.exec('sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65000']);

    const dir = await bed.tmpdir();
    const dantedConf = join(dir, 'danted.conf');
    await writeFile(
      dantedConf,
      [
        'logoutput: stderr',
        `internal: ${PROXY_V4} port = ${DANTED_PORT}`,
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
    const proxychainsConf = join(dir, 'proxychains.conf');
    await writeFile(
      proxychainsConf,
      [
        'strict_chain',
        'quiet_mode',
        'tcp_read_time_out 15000',
        'tcp_connect_time_out 8000',
        '[ProxyList]',
        `socks5 ${PROXY_V4} ${DANTED_PORT}`,
        '',
      ].join('\n'),
    );

    const udpHosts = [
      SERVER_DIRECT,
      SERVER_SOCKS,
      ...Array.from({ length: MAX_LANES }, (_, n) => serverForLane(n)),
    ];
    const servers = server.spawn('sh', ['-c', WITH_FDS, 'sh', 'node', SERVERS_JS, ...udpHosts], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const serversReady = new Promise<void>((r) => servers.stdout!.once('data', () => r()));
    proxy.spawn(
      'sh',
      ['-c', WITH_FDS, 'sh', 'danted', '-f', dantedConf, '-N', '1', '-p', join(dir, 'danted.pid')],
      {
        stdio: 'ignore',
      },
    );
    const site = new BenchSite(bed, client, proxy, server, proxychainsConf);
    site.startIperfServer();
    await waitFor(() => serversReady.then(() => true), 10_000, 'servers.js');
    await proxy.waitForTcpPort(DANTED_PORT, 10_000);
    await server.waitForTcpPort(IPERF_PORT, 10_000);
    return site;
  }

  private startIperfServer(): void {
    this.iperfServer = this.server.spawn('iperf3', ['-s', '-p', String(IPERF_PORT)], { stdio: 'ignore' });
  }

  /** Kills and restarts iperf3 -s (after a failed test left it busy). */
  async restartIperfServer(): Promise<void> {
    const old = this.iperfServer;
    if (old?.pid !== undefined && old.exitCode === null && old.signalCode === null) {
      const gone = new Promise((r) => old.once('exit', r));
      process.kill(-old.pid, 'SIGKILL');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
    }
    this.startIperfServer();
    await this.server.waitForTcpPort(IPERF_PORT, 10_000);
  }

  /** Starts the reference hop (socat) unless socat is missing; true when it listens. */
  async startHop(): Promise<boolean> {
    if (findExecutable('socat') === undefined) return false;
    this.client.spawn(
      'socat',
      [
        `TCP-LISTEN:${HOP_PORT},bind=${HOP_V4},fork,reuseaddr,nodelay`,
        `TCP:${PROXY_V4}:${DANTED_PORT},nodelay`,
      ],
      { stdio: 'ignore' },
    );
    await this.client.waitForTcpPort(HOP_PORT, 10_000);
    return true;
  }

  /** Starts the UDP reference hop (socat) unless socat is missing; true when it listens. */
  async startUdpHop(): Promise<boolean> {
    if (findExecutable('socat') === undefined) return false;
    this.client.spawn(
      'socat',
      [`UDP-LISTEN:${HOP_UDP_PORT},bind=${HOP_V4},fork,reuseaddr`, `UDP:${SERVER_DIRECT}:${UDP_ECHO_PORT}`],
      { stdio: 'ignore' },
    );
    await this.client.waitForUdpPort(HOP_UDP_PORT, 10_000);
    return true;
  }

  /** A unique interface name for a TUN (the test bed's naming). */
  ifname(label: string): string {
    return this.bed.ifname(label);
  }
}
