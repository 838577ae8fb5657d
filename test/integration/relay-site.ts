/**
 * The shared bed for relay tests: three namespaces in a row.
 *
 *   client ns ── TUNs (one per lane, each driven by a relay-runner.mjs) ─┐
 *       │ veth 198.18.11.0/24, fd00:11::/64                          (the stack impersonates
 *   proxy ns: microsocks and danted on 198.18.11.2                      the server addresses)
 *       │ veth 198.18.12.0/24, fd00:12::/64
 *   server ns: HTTP on 8080, TCP echo on 7007, "reply after end" on 7009; 8081 is closed
 *
 * A lane is one TUN + one runner with its own proxy URL; the kernel of the client namespace routes
 * one server address per lane (198.18.12.10+n/32, fd00:12::10+n/128) into that lane's TUN, so the
 * same servers are reached through different proxies (and 198.18.13.10+n, fd00:13::10+n, which the
 * proxy namespace has no route to). Only 198.18.0.0/15 and fd00::/8 are used,
 * all inside the namespaces.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { findExecutable } from '../testbed/exec.js';
import type { Netns, Testbed } from '../testbed/index.js';

/** The compiled library the runner loads. */
export const DIST_RELAY = resolve(import.meta.dirname, '../../dist/src/relay/tcp-relay.js');
/** The runner program. */
export const RUNNER = resolve(import.meta.dirname, 'clients/relay-runner.mjs');
/** The proxy namespace's address, where every proxy listens. */
export const PROXY_V4 = '198.18.11.2';
/** Ports of the proxies. */
export const ProxyPort = Object.freeze({ MICROSOCKS_AUTH: 1081, DANTED: 1082, MICROSOCKS_LATE: 1083 });
/** Ports of the servers. */
export const ServerPort = Object.freeze({ HTTP: 8080, CLOSED: 8081, ECHO: 7007, REPLY_AFTER_END: 7009 });
/** Size of GET /big. */
export const BIG_BYTES = 20 * 1024 * 1024;

/** Byte i of GET /big (its source text goes into the server script, so both build the same bytes). */
const bigByte = (i: number): number => (i * 7 + (i >>> 11)) & 255;

/** The sha256 (hex) of GET /big. */
export function bigSha256(): string {
  const buf = Buffer.alloc(BIG_BYTES);
  for (let i = 0; i < BIG_BYTES; i++) buf[i] = bigByte(i);
  return createHash('sha256').update(buf).digest('hex');
}

const SERVERS = `
const http = require('node:http');
const net = require('node:net');
const byte = ${bigByte.toString()};
const big = Buffer.alloc(${BIG_BYTES});
for (let i = 0; i < big.length; i++) big[i] = byte(i);
let up = 0;
const ready = () => { if (++up === 3) console.log('ready'); };
http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/sha256') {
    // Answers with the sha256 (hex) and length of the body.
    const hash = require('node:crypto').createHash('sha256');
    let length = 0;
    req.on('data', (d) => { hash.update(d); length += d.length; });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(hash.digest('hex') + ' ' + length + '\\n');
    });
  } else if (req.url === '/big') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
    res.end(big);
  } else {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello from server ' + req.socket.localAddress + '\\n');
  }
}).listen({ port: ${ServerPort.HTTP}, host: '::' }, ready);
net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s); })
  .listen({ port: ${ServerPort.ECHO}, host: '::' }, ready);
// Answers only after the client's FIN: what the client sent, 300 ms later, then FIN.
net.createServer({ allowHalfOpen: true }, (s) => {
  const chunks = [];
  s.on('error', () => {});
  s.on('data', (d) => chunks.push(d));
  s.on('end', () => setTimeout(() => s.end(Buffer.concat(chunks)), 300));
}).listen({ port: ${ServerPort.REPLY_AFTER_END}, host: '::' }, ready);
`;

/** Whether the tools the bed runs exist; under CI a missing one is an error, never a skip. */
export function relayToolsPresent(): boolean {
  const missing = [
    existsSync(DIST_RELAY) ? undefined : `${DIST_RELAY} (npm run build)`,
    findExecutable('microsocks') === undefined ? 'microsocks' : undefined,
    findExecutable('danted') === undefined ? 'danted' : undefined,
    findExecutable('curl') === undefined ? 'curl' : undefined,
  ].filter((x) => x !== undefined);
  if (missing.length === 0) return true;
  const ci = process.env.CI;
  if (ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false')
    throw new Error(`relay integration tests need ${missing.join(', ')}; CI is set, so they must run`);
  return false;
}

/** One TUN driven by one relay runner, and the server addresses routed into it. */
export interface Lane {
  /** The server's IPv4 address as reached through this lane. */
  readonly v4: string;
  /** The server's IPv6 address as reached through this lane. */
  readonly v6: string;
  /** An IPv4 address routed into this lane's TUN that the proxy namespace has no route to. */
  readonly unroutable4: string;
  /** An IPv6 address routed into this lane's TUN that the proxy namespace has no route to. */
  readonly unroutable6: string;
  /** The runner process. */
  readonly runner: ChildProcess;
  /** What the runner wrote on stderr so far (warnings, the final stats). */
  stderr(): string;
}

/** The three namespaces with the servers and proxies running. */
export class RelaySite {
  private lanes = 0;

  private constructor(
    private readonly bed: Testbed,
    /** Where the TUNs, runners and clients (curl, node) are. */
    readonly client: Netns,
    /** Where the proxies run. */
    readonly proxy: Netns,
    /** Where the servers run. */
    readonly server: Netns,
    private readonly serverIf: string,
    private readonly dir: string,
  ) {}

  /** Builds the namespaces and links, starts the servers, microsocks (with auth) and danted. */
  static async create(bed: Testbed): Promise<RelaySite> {
    const client = await bed.netns('client');
    const proxy = await bed.netns('proxy');
    const server = await bed.netns('server');
    await bed.veth(client, proxy, {
      a: '198.18.11.1/24',
      b: `${PROXY_V4}/24`,
      a6: 'fd00:11::1/64',
      b6: 'fd00:11::2/64',
    });
    const { aIf: proxyOut, bIf: serverIf } = await bed.veth(proxy, server, {
      a: '198.18.12.1/24',
      b: '198.18.12.2/24',
      a6: 'fd00:12::1/64',
      b6: 'fd00:12::2/64',
    });
    const dir = await bed.tmpdir();
    const site = new RelaySite(bed, client, proxy, server, serverIf, dir);

    const servers = join(dir, 'servers.cjs');
    await writeFile(servers, SERVERS);
    const danted = join(dir, 'danted.conf');
    await writeFile(
      danted,
      [
        'logoutput: stderr',
        `internal: ${PROXY_V4} port = ${ProxyPort.DANTED}`,
        `external: ${proxyOut}`,
        'socksmethod: none',
        'clientmethod: none',
        'user.privileged: root',
        'user.unprivileged: nobody',
        'client pass { from: 0/0 to: 0/0 }',
        'socks pass { from: 0/0 to: 0/0 }',
        '',
      ].join('\n'),
    );
    const serversUp = waitForLine(
      server.spawn('node', [servers], { stdio: ['ignore', 'pipe', 'inherit'] }),
      'ready',
      15_000,
    );
    site.startMicrosocks(ProxyPort.MICROSOCKS_AUTH, { user: 'user', pass: 'pass' });
    proxy.spawn('danted', ['-f', danted, '-N', '1', '-p', join(dir, 'danted.pid')], { stdio: 'ignore' });
    await serversUp;
    await proxy.waitForTcpPort(ProxyPort.MICROSOCKS_AUTH, 10_000);
    await proxy.waitForTcpPort(ProxyPort.DANTED, 10_000);
    return site;
  }

  /** Starts a microsocks on PROXY_V4:port (with RFC 1929 credentials when given); resolves with it once it listens. */
  async startMicrosocks(port: number, auth?: { user: string; pass: string }): Promise<ChildProcess> {
    const creds = auth === undefined ? [] : ['-u', auth.user, '-P', auth.pass];
    const child = this.proxy.spawn('microsocks', ['-i', PROXY_V4, '-p', String(port), ...creds], {
      stdio: 'ignore',
    });
    await this.proxy.waitForTcpPort(port, 10_000);
    return child;
  }

  /**
   * A new lane: a server alias (v4 and v6), a TUN in the client namespace routing it, and a runner
   * relaying through `proxyUrl`; resolves once the runner printed "ready".
   */
  async lane(proxyUrl: string, opts: { dialTimeoutMs?: number; loglevel?: string } = {}): Promise<Lane> {
    const n = this.lanes++;
    const v4 = `198.18.12.${10 + n}`;
    const v6 = `fd00:12::${(0x10 + n).toString(16)}`;
    const unroutable4 = `198.18.13.${10 + n}`;
    const unroutable6 = `fd00:13::${(0x10 + n).toString(16)}`;
    await this.server.ip(['addr', 'add', `${v4}/32`, 'dev', this.serverIf]);
    await this.server.ip(['-6', 'addr', 'add', `${v6}/128`, 'dev', this.serverIf, 'nodad']);
    const tun = await this.bed.tun(this.client, {
      mtu: 1500,
      address: `198.18.10.${4 * n + 1}/30`,
      address6: `fd00:10:${n}::1/64`,
      routes: [`${v4}/32`, `${unroutable4}/32`],
      routes6: [`${v6}/128`, `${unroutable6}/128`],
    });
    const runner = this.client.spawn(
      'node',
      [
        RUNNER,
        `--tun=${tun}`,
        `--proxy=${proxyUrl}`,
        `--dial-timeout=${opts.dialTimeoutMs ?? 3000}`,
        `--loglevel=${opts.loglevel ?? 'warn'}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    runner.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    await waitForLine(runner, 'ready', 15_000).catch((e: Error) => {
      throw new Error(`${e.message}; runner stderr: ${err}`);
    });
    return { v4, v6, unroutable4, unroutable6, runner, stderr: () => err };
  }

  /** A file path in the bed's temp directory. */
  file(name: string): string {
    return join(this.dir, name);
  }
}

/** Resolves once `child` printed `line` on stdout; rejects if it exits first or after `timeoutMs`. */
function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => finish(new Error(`no "${line}" after ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.split('\n').includes(line)) finish();
    };
    const onExit = (code: number | null): void => finish(new Error(`exited (${code}) before "${line}"`));
    function finish(err?: Error): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (err === undefined) resolve();
      else reject(err);
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}
