/**
 * The dialers against real SOCKS servers: microsocks (SOCKS5, with and without RFC 1929 auth) and
 * danted (SOCKS5, SOCKS4a, IPv6) run in a "proxy" namespace; a TCP echo server runs in a
 * "server" namespace joined to it by a veth. The dialers run as a compiled client script inside
 * the proxy namespace and talk to the proxies over its loopback.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from '../testbed/exec.js';
import { canRunIntegration, type Netns, Testbed } from '../testbed/index.js';

const DIST_PROXY = resolve(import.meta.dirname, '../../dist/src/proxy/index.js');
const PROXY_V4 = '198.18.7.1';
const SERVER_V4 = '198.18.7.2';
const SERVER_V6 = 'fd00:7::2';
/** Routed into the server namespace, which does not forward: SYNs vanish without an answer. */
const BLACKHOLE_V4 = '198.18.8.1';
const ECHO_PORT = 7007;
const CLOSED_PORT = 7008;

/** One dial the client script performs: through `url` to host:port, then an echo round trip. */
interface Case {
  url: string;
  host: string;
  port: number;
  timeoutMs?: number;
}

/** What the client script reports per case. */
interface Outcome {
  ok: boolean;
  code?: string;
  message?: string;
  echo?: string;
  elapsedMs: number;
}

const CLIENT = `
import { createDialer, parseProxyUrl } from ${JSON.stringify(DIST_PROXY)};
const cases = JSON.parse(process.argv[2]);
const out = [];
for (const c of cases) {
  const t0 = performance.now();
  try {
    const socket = await createDialer(parseProxyUrl(c.url)).dial({ host: c.host, port: c.port }, { timeoutMs: c.timeoutMs ?? 3000 });
    const echo = await new Promise((resolve, reject) => {
      let got = '';
      const timer = setTimeout(() => reject(new Error('echo timed out')), 3000);
      socket.on('data', (d) => { got += d; if (got.length >= 5) { clearTimeout(timer); resolve(got); } });
      socket.on('error', reject);
      socket.write('hello');
    });
    socket.destroy();
    out.push({ ok: true, echo, elapsedMs: performance.now() - t0 });
  } catch (e) {
    out.push({ ok: false, code: e.code, message: e.message, elapsedMs: performance.now() - t0 });
  }
}
console.log(JSON.stringify(out));
`;

const ECHO = `
const net = require('node:net');
net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen({ port: ${ECHO_PORT}, host: '::' }, () => console.log('ready'));
`;

const haveTools =
  existsSync(DIST_PROXY) &&
  findExecutable('microsocks') !== undefined &&
  findExecutable('danted') !== undefined;

describe.skipIf(!canRunIntegration() || !haveTools)('dialers through real SOCKS servers', () => {
  let bed: Testbed;
  let proxyNs: Netns;
  let clientScript: string;

  async function dial(cases: Case[]): Promise<Outcome[]> {
    const r = await proxyNs.exec('node', [clientScript, JSON.stringify(cases)], { timeoutMs: 30_000 });
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Outcome[];
  }

  beforeAll(async () => {
    bed = await Testbed.create('proxy');
    proxyNs = await bed.netns('proxy');
    const serverNs = await bed.netns('server');
    const { aIf } = await bed.veth(proxyNs, serverNs, {
      a: `${PROXY_V4}/24`,
      b: `${SERVER_V4}/24`,
      a6: 'fd00:7::1/64',
      b6: `${SERVER_V6}/64`,
    });
    await proxyNs.ip(['route', 'add', '198.18.8.0/24', 'via', SERVER_V4]);
    await serverNs.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=0']);

    const dir = await bed.tmpdir();
    clientScript = join(dir, 'client.mjs');
    await writeFile(clientScript, CLIENT);
    const danted = join(dir, 'danted.conf');
    await writeFile(
      danted,
      [
        'logoutput: stderr',
        'internal: 127.0.0.1 port = 1082',
        `external: ${aIf}`,
        'socksmethod: none',
        'clientmethod: none',
        'user.privileged: root',
        'user.unprivileged: nobody',
        'client pass { from: 0/0 to: 0/0 }',
        'socks pass { from: 0/0 to: 0/0 }',
        '',
      ].join('\n'),
    );

    serverNs.spawn('node', ['-e', ECHO], { stdio: 'ignore' });
    proxyNs.spawn('microsocks', ['-i', '127.0.0.1', '-p', '1080'], { stdio: 'ignore' });
    proxyNs.spawn('microsocks', ['-i', '127.0.0.1', '-p', '1081', '-u', 'user', '-P', 'pass'], {
      stdio: 'ignore',
    });
    proxyNs.spawn('danted', ['-f', danted, '-N', '1', '-p', join(dir, 'danted.pid')], { stdio: 'ignore' });
    await serverNs.waitForTcpPort(ECHO_PORT, 10_000);
    for (const port of [1080, 1081, 1082]) await proxyNs.waitForTcpPort(port, 10_000);
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  it('SOCKS5 without auth: CONNECT and echo (microsocks and danted)', async () => {
    const r = await dial([
      { url: 'socks5://127.0.0.1:1080', host: SERVER_V4, port: ECHO_PORT },
      { url: 'socks5://127.0.0.1:1082', host: SERVER_V4, port: ECHO_PORT },
    ]);
    expect(r.map((x) => x.echo ?? x.message)).toEqual(['hello', 'hello']);
  });

  it('SOCKS5 auth: right credentials pass, wrong or missing ones are EPROXYAUTH', async () => {
    const r = await dial([
      { url: 'socks5://user:pass@127.0.0.1:1081', host: SERVER_V4, port: ECHO_PORT },
      { url: 'socks5://user:wrong-pass@127.0.0.1:1081', host: SERVER_V4, port: ECHO_PORT },
      { url: 'socks5://127.0.0.1:1081', host: SERVER_V4, port: ECHO_PORT },
    ]);
    expect(r[0]).toMatchObject({ ok: true, echo: 'hello' });
    expect(r[1]).toMatchObject({ ok: false, code: 'EPROXYAUTH' });
    expect(r[1]!.message).not.toContain('wrong-pass');
    expect(r[2]).toMatchObject({ ok: false, code: 'EPROXYAUTH' });
  });

  it('SOCKS4a through danted', async () => {
    const r = await dial([
      { url: 'socks4a://127.0.0.1:1082', host: SERVER_V4, port: ECHO_PORT },
      { url: 'socks4://127.0.0.1:1082', host: SERVER_V4, port: ECHO_PORT },
    ]);
    expect(r.map((x) => x.echo ?? x.message)).toEqual(['hello', 'hello']);
  });

  it('a destination port without a listener is ECONNREFUSED', async () => {
    const r = await dial([
      { url: 'socks5://127.0.0.1:1080', host: SERVER_V4, port: CLOSED_PORT },
      { url: 'socks5://127.0.0.1:1082', host: SERVER_V4, port: CLOSED_PORT },
      { url: 'socks4a://127.0.0.1:1082', host: SERVER_V4, port: CLOSED_PORT },
      { url: 'direct://', host: SERVER_V4, port: CLOSED_PORT },
    ]);
    expect(r.map((x) => x.code)).toEqual(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);
  });

  it('a proxy that is down is EPROXY', async () => {
    const r = await dial([
      { url: 'socks5://127.0.0.1:1999', host: SERVER_V4, port: ECHO_PORT },
      { url: 'http://127.0.0.1:1999', host: SERVER_V4, port: ECHO_PORT },
    ]);
    expect(r.map((x) => x.code)).toEqual(['EPROXY', 'EPROXY']);
  });

  it('a destination that drops SYNs is ETIMEDOUT within timeoutMs', async () => {
    const r = await dial([
      { url: 'socks5://127.0.0.1:1080', host: BLACKHOLE_V4, port: 80, timeoutMs: 800 },
      { url: 'direct://', host: BLACKHOLE_V4, port: 80, timeoutMs: 800 },
    ]);
    for (const x of r) {
      expect(x.code).toBe('ETIMEDOUT');
      expect(x.elapsedMs).toBeGreaterThanOrEqual(700);
      expect(x.elapsedMs).toBeLessThan(2000);
    }
  });

  it('an IPv6 destination through danted and microsocks', async () => {
    const r = await dial([
      { url: 'socks5://127.0.0.1:1082', host: SERVER_V6, port: ECHO_PORT },
      { url: 'socks5://127.0.0.1:1080', host: SERVER_V6, port: ECHO_PORT },
      { url: 'direct://', host: SERVER_V6, port: ECHO_PORT },
    ]);
    expect(r.map((x) => x.echo ?? x.message)).toEqual(['hello', 'hello', 'hello']);
  });
});
