/**
 * The TCP relay end to end: curl and node clients in a client namespace connect to servers in a
 * server namespace; their kernel routes the servers' addresses into TUNs driven by relay runners
 * (our stack + TcpRelay), which dial out through real SOCKS proxies (danted, microsocks) in a
 * proxy namespace. See relay-site.ts for the layout.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunIntegration, Testbed, waitFor } from '../testbed/index.js';
import {
  BIG_BYTES,
  bigSha256,
  type Lane,
  PROXY_V4,
  ProxyPort,
  RelaySite,
  relayToolsPresent,
  ServerPort,
} from './relay-site.js';

/** Size of the upload test's body (enough full-size receive blocks for the pool to matter). */
const UPLOAD_BYTES = 24 * 1024 * 1024;

/** What curl (or a node client) did. */
interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** curl's exit code for "failed to connect to host" (refused, unreachable). */
const CURL_COULDNT_CONNECT = 7;
/** curl's exit codes for a connection reset after it was accepted: while sending, while receiving. */
const CURL_RESET = [55, 56];

/** A half-closing client: sends a message, shuts its write side at once, prints what comes back. */
const HALF_CLOSE_CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), allowHalfOpen: true });
const chunks = [];
const timer = setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, 5000);
s.on('connect', () => s.end('sent before our FIN'));
s.on('data', (d) => chunks.push(d));
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(1); });
s.on('end', () => {
  clearTimeout(timer);
  console.log(JSON.stringify({ got: Buffer.concat(chunks).toString(), writableEnded: s.writableEnded }));
});
`;

describe.skipIf(!canRunIntegration() || !relayToolsPresent())('TCP relay through real SOCKS proxies', () => {
  let bed: Testbed;
  let site: RelaySite;
  /** SOCKS5 through danted (IPv4 and IPv6 destinations). */
  let dante: Lane;
  /** SOCKS5 through microsocks with the right credentials. */
  let authOk: Lane;
  /** SOCKS5 through microsocks with a wrong password. */
  let authBad: Lane;
  /** SOCKS4 through danted. */
  let socks4: Lane;
  /** SOCKS5 through a microsocks that is not started yet. */
  let late: Lane;

  async function curl(args: string[], timeoutS = 10): Promise<Outcome> {
    const t0 = performance.now();
    const r = await site.client.exec('curl', ['-sS', '--max-time', String(timeoutS), ...args], {
      allowFail: true,
      timeoutMs: (timeoutS + 5) * 1000,
    });
    return { ...r, ms: performance.now() - t0 };
  }

  function url(host: string, port: number, path = '/hello'): string {
    return host.includes(':') ? `http://[${host}]:${port}${path}` : `http://${host}:${port}${path}`;
  }

  beforeAll(async () => {
    bed = await Testbed.create('relay');
    site = await RelaySite.create(bed);
    [dante, authOk, authBad, socks4, late] = await Promise.all([
      site.lane(`socks5://${PROXY_V4}:${ProxyPort.DANTED}`),
      site.lane(`socks5://user:pass@${PROXY_V4}:${ProxyPort.MICROSOCKS_AUTH}`),
      site.lane(`socks5://user:wrong-secret@${PROXY_V4}:${ProxyPort.MICROSOCKS_AUTH}`),
      site.lane(`socks4://${PROXY_V4}:${ProxyPort.DANTED}`),
      site.lane(`socks5://${PROXY_V4}:${ProxyPort.MICROSOCKS_LATE}`),
    ]);
  }, 60_000);

  afterAll(async () => {
    await bed?.destroy();
  });

  it('HTTP GET through danted (SOCKS5) over IPv4 and IPv6', async () => {
    const v4 = await curl([url(dante.v4, ServerPort.HTTP)]);
    expect(v4.stderr).toBe('');
    expect(v4.stdout).toMatch(
      new RegExp(`^hello from server (::ffff:)?${dante.v4.replaceAll('.', '\\.')}\\n$`),
    );
    const v6 = await curl(['-g', url(dante.v6, ServerPort.HTTP)]);
    expect(v6.stderr).toBe('');
    expect(v6.stdout).toBe(`hello from server ${dante.v6}\n`);
  });

  it('microsocks with the right credentials relays; with a wrong password the client is refused at once', async () => {
    const ok = await curl([url(authOk.v4, ServerPort.HTTP)]);
    expect(ok.stdout).toContain('hello from server');
    const bad = await curl([url(authBad.v4, ServerPort.HTTP)]);
    expect(bad.code).toBe(CURL_COULDNT_CONNECT);
    expect(bad.stderr).toMatch(/refused|Couldn't connect/i);
    expect(bad.ms).toBeLessThan(2000);
    expect(authBad.stderr()).toContain('code=EPROXYAUTH');
    // The warning names the client and destination, never the credentials.
    expect(authBad.stderr()).not.toContain('wrong-secret');
  });

  it('SOCKS4 through danted', async () => {
    const r = await curl([url(socks4.v4, ServerPort.HTTP)]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('hello from server');
  });

  it('a proxy that is down refuses clients; once it starts, the same relay succeeds; gone again, a known-good destination is reset once, then refused', async () => {
    const down = await curl([url(late.v4, ServerPort.HTTP)]);
    expect(down.code).toBe(CURL_COULDNT_CONNECT);
    expect(down.ms).toBeLessThan(2000);
    expect(late.stderr()).toContain('code=EPROXY');
    const microsocks = await site.startMicrosocks(ProxyPort.MICROSOCKS_LATE);
    const up = await curl([url(late.v4, ServerPort.HTTP)]);
    expect(up.stderr).toBe('');
    expect(up.stdout).toContain('hello from server');
    expect(late.runner.exitCode).toBeNull();

    // The destination dialed fine: the next SYN to it is answered at once (--tcp-accept auto).
    // With the proxy gone again, that connection is reset once the dial fails, and the
    // destination is forgotten: the one after is refused (an RST answering its SYN). curl reports
    // the reset as 55 or 56 (while sending or receiving), or as 7 when it arrives before curl has
    // looked at its finished connect(); the relay's log tells the two answers apart.
    const gone = new Promise((r) => microsocks.once('exit', r));
    microsocks.kill('SIGTERM');
    await gone;
    const answers = (): string[] =>
      [...late.stderr().matchAll(/tcp dial failed .*code=EPROXY .*answer=(\S+)/g)].map((m) => m[1]!);
    const before = answers().length;
    const reset = await curl([url(late.v4, ServerPort.HTTP)]);
    expect([...CURL_RESET, CURL_COULDNT_CONNECT]).toContain(reset.code);
    await waitFor(() => answers().length === before + 1, 5000, 'the warn line');
    expect(answers().at(-1)).toBe('reset');
    const refused = await curl([url(late.v4, ServerPort.HTTP)]);
    expect(refused.code).toBe(CURL_COULDNT_CONNECT);
    await waitFor(() => answers().length === before + 2, 5000, 'the warn line');
    expect(answers().at(-1)).toBe('rst');
  });

  it('a closed destination port is seen as refused within the dial timeout', async () => {
    const r = await curl([url(dante.v4, ServerPort.CLOSED)]);
    expect(r.code).toBe(CURL_COULDNT_CONNECT);
    expect(r.stderr).toMatch(/refused|Couldn't connect/i);
    expect(r.ms).toBeLessThan(3000);
    expect(dante.stderr()).toContain('code=ECONNREFUSED');
  });

  it('a destination the proxy has no route to fails connect() with ENETUNREACH (ICMP, not RST)', async () => {
    const script = `require('node:net').connect({ host: process.argv[1], port: 80 })
      .on('connect', () => { console.log('connected'); process.exit(1); })
      .on('error', (e) => console.log(e.code));`;
    for (const host of [dante.unroutable4, dante.unroutable6]) {
      const t0 = performance.now();
      const r = await site.client.exec('node', ['-e', script, host], { allowFail: true, timeoutMs: 10_000 });
      expect(r.stdout.trim(), host).toBe('ENETUNREACH');
      expect(performance.now() - t0).toBeLessThan(3000);
    }
    expect(dante.stderr()).toMatch(/code=ENETUNREACH .*answer=net-unreachable/);
  });

  for (const family of ['IPv4', 'IPv6'] as const) {
    it(`half-close over ${family}: the client shuts its write side and still receives the reply`, async () => {
      const host = family === 'IPv4' ? dante.v4 : dante.v6;
      const r = await site.client.exec(
        'node',
        ['-e', HALF_CLOSE_CLIENT, host, String(ServerPort.REPLY_AFTER_END)],
        {
          allowFail: true,
          timeoutMs: 10_000,
        },
      );
      // The server answers only after it saw our FIN (300 ms later): the reply crossed the
      // relay after the client's end() went through it.
      expect(JSON.parse(r.stdout.trim())).toEqual({ got: 'sent before our FIN', writableEnded: true });
    });
  }

  it(`downloads ${BIG_BYTES / 1024 / 1024} MiB through danted byte-exact (sha256)`, async () => {
    const t0 = performance.now();
    const r = await site.client.sh(
      `curl -sS --max-time 30 ${url(dante.v4, ServerPort.HTTP, '/big')} | sha256sum`,
      {
        timeoutMs: 35_000,
      },
    );
    const ms = performance.now() - t0;
    expect(r.stdout.split(' ')[0]).toBe(bigSha256());
    expect(ms).toBeLessThan(30_000);
  }, 40_000);

  it(`uploads ${UPLOAD_BYTES / 1024 / 1024} MiB through danted byte-exact (sha256), recycling its receive blocks`, async () => {
    // Random bytes: a block reused while the proxy's socket still had it to send would show up
    // as a wrong hash at the server.
    const dir = await mkdtemp(join(tmpdir(), 't2s-upload-'));
    try {
      const file = join(dir, 'body');
      const body = randomBytes(UPLOAD_BYTES);
      await writeFile(file, body);
      const r = await curl(['--data-binary', `@${file}`, url(dante.v4, ServerPort.HTTP, '/sha256')], 30);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe(`${createHash('sha256').update(body).digest('hex')} ${UPLOAD_BYTES}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 40_000);

  it('the runner exits cleanly on SIGTERM with its counters', async () => {
    const exited = new Promise<number | null>((resolve) =>
      dante.runner.once('exit', (code) => resolve(code)),
    );
    dante.runner.kill('SIGTERM');
    expect(await exited).toBe(0);
    const last = dante.stderr().trim().split('\n').pop()!;
    const { relay } = JSON.parse(last) as {
      relay: { total: number; open: number; failed: Record<string, number> };
    };
    expect(relay.open).toBe(0);
    expect(relay.total).toBeGreaterThanOrEqual(5);
    expect(relay.failed.ECONNREFUSED).toBeGreaterThanOrEqual(1);
    // The upload took full-size receive blocks and most came back from the pool.
    const { blocks } = JSON.parse(last) as { blocks: { tcpBlocksTaken: number; tcpBlocksReused: number } };
    expect(blocks.tcpBlocksTaken).toBeGreaterThan(100);
    expect(blocks.tcpBlocksReused).toBeGreaterThan(blocks.tcpBlocksTaken / 2);
  });
});
