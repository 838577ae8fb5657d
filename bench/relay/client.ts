/**
 * The benchmark's client, one program for every path so the tool is the same on each: plain
 * sockets on the direct and tun2socks paths, the same exchanges through SOCKS5 (the `socks`
 * package: CONNECT, UDP ASSOCIATE per RFC 1928 §7) on the SOCKS-only path. Run in the client
 * namespace as `node dist/bench/relay/client.js --mode cps|rr|udp|idle --host H --port P
 * [--socks HOST:PORT] [--seconds S] [--count N] [--concurrency C]`; prints one JSON ClientReport.
 * Every loop is bounded in count and in time.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { SocksClient, type SocksRemoteHost } from 'socks';
import { type ClientMode, type ClientReport, REQUEST_BYTES } from './protocol.js';

/** A single exchange (or connect) gives up after this long. */
const EXCHANGE_TIMEOUT_MS = 5000;
/** A UDP reply counts as lost after this long. */
const UDP_TIMEOUT_MS = 1000;
/** A run stops early after this many failures. */
const MAX_ERRORS = 100;
/** Round trips not counted at the start of rr and udp (warm-up: association, JIT). */
const WARMUP = 50;
/** The idle mode holds its connections at most this long after reporting. */
const MAX_HOLD_MS = 10 * 60 * 1000;

interface Options {
  mode: ClientMode;
  host: string;
  port: number;
  socks: { host: string; port: number } | undefined;
  seconds: number;
  count: number;
  concurrency: number;
}

function parseOptions(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i < 0 ? undefined : argv[i + 1];
  };
  const mode = get('mode') as ClientMode | undefined;
  if (mode === undefined || !['cps', 'rr', 'udp', 'idle'].includes(mode))
    throw new Error('--mode cps|rr|udp|idle');
  const socks = get('socks');
  const [socksHost, socksPort] = socks?.split(':') ?? [];
  return {
    mode,
    host: get('host') ?? '127.0.0.1',
    port: Number(get('port') ?? 0),
    socks: socksHost === undefined ? undefined : { host: socksHost, port: Number(socksPort) },
    seconds: Math.min(Math.max(Number(get('seconds') ?? 5), 0.1), 120),
    count: Math.min(Math.max(Number(get('count') ?? 1_000_000), 1), 10_000_000),
    concurrency: Math.min(Math.max(Number(get('concurrency') ?? 100), 1), 1000),
  };
}

/** Rejects after `ms` unless `p` settles first. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A TCP connection to host:port, through SOCKS5 CONNECT when `socks` is set, Nagle off. */
async function open(o: Options): Promise<Socket> {
  let s: Socket;
  if (o.socks === undefined) {
    s = connect({ host: o.host, port: o.port });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
  } else {
    const r = await SocksClient.createConnection({
      proxy: { host: o.socks.host, port: o.socks.port, type: 5 },
      command: 'connect',
      destination: { host: o.host, port: o.port },
      timeout: EXCHANGE_TIMEOUT_MS,
    });
    s = r.socket;
  }
  s.setNoDelay(true);
  return s;
}

/** Collects `n` bytes from `s`, then resolves (bytes past `n` are kept for the next call). */
class Reader {
  private have = 0;
  private want = 0;
  private wake: (() => void) | undefined;
  private failed: Error | undefined;
  ended = false;

  constructor(s: Socket) {
    s.on('data', (d: Buffer) => {
      this.have += d.length;
      this.check();
    });
    s.on('end', () => {
      this.ended = true;
      this.check();
    });
    s.on('error', (err) => {
      this.failed = err;
      this.check();
    });
  }

  private check(): void {
    if (this.wake !== undefined && (this.have >= this.want || this.ended || this.failed !== undefined)) {
      const w = this.wake;
      this.wake = undefined;
      w();
    }
  }

  /** Resolves once `n` more bytes arrived; rejects on error or on an end before them. */
  async take(n: number): Promise<void> {
    this.want = n;
    if (this.have < n && !this.ended && this.failed === undefined)
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    if (this.failed !== undefined) throw this.failed;
    if (this.have < n) throw new Error('connection ended early');
    this.have -= n;
  }

  /** Resolves once the peer's FIN arrived. */
  async end(): Promise<void> {
    this.want = Number.POSITIVE_INFINITY;
    if (!this.ended && this.failed === undefined)
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    if (this.failed !== undefined) throw this.failed;
  }
}

/** Serial connect → one request → response → the server's FIN → close, for `seconds`. */
async function connectionRate(o: Options): Promise<ClientReport> {
  const request = Buffer.alloc(REQUEST_BYTES, 0x61);
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const deadline = t0 + o.seconds * 1000;
  while (performance.now() < deadline && count < o.count && errors < MAX_ERRORS) {
    let s: Socket | undefined;
    try {
      await within(
        (async () => {
          s = await open(o);
          const reader = new Reader(s);
          s.write(request);
          await reader.take(REQUEST_BYTES);
          await reader.end();
          s.end();
        })(),
        EXCHANGE_TIMEOUT_MS,
        'exchange',
      );
      count++;
    } catch (err) {
      errors++;
      firstError ??= (err as Error).message;
      s?.destroy();
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return { mode: 'cps', errors, count, perSecond: count / seconds, ...(firstError ? { firstError } : {}) };
}

/** The value at quantile `q` of sorted `xs`. */
function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  return xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
}

/** `count` serial round trips of REQUEST_BYTES on one connection; p50 and p99 in microseconds. */
async function requestResponse(o: Options): Promise<ClientReport> {
  const s = await within(open(o), EXCHANGE_TIMEOUT_MS, 'connect');
  const reader = new Reader(s);
  const request = Buffer.alloc(REQUEST_BYTES, 0x62);
  const samples: number[] = [];
  const deadline = performance.now() + o.seconds * 1000;
  for (let i = 0; i < o.count + WARMUP && performance.now() < deadline; i++) {
    const t = performance.now();
    s.write(request);
    await within(reader.take(REQUEST_BYTES), EXCHANGE_TIMEOUT_MS, 'round trip');
    if (i >= WARMUP) samples.push((performance.now() - t) * 1000);
  }
  s.destroy();
  samples.sort((a, b) => a - b);
  return {
    mode: 'rr',
    errors: 0,
    count: samples.length,
    p50Us: quantile(samples, 0.5),
    p99Us: quantile(samples, 0.99),
  };
}

/** A UDP sender to host:port: plain, or wrapped in SOCKS5 UDP frames to the relay ASSOCIATE gave. */
async function udpPath(
  o: Options,
  sock: UdpSocket,
): Promise<{ send(b: Buffer): void; unwrap(b: Buffer): Buffer; close(): void }> {
  if (o.socks === undefined)
    return { send: (b) => sock.send(b, o.port, o.host), unwrap: (b) => b, close: () => {} };
  // ASSOCIATE is only offered by the event API; 'established' carries the relay's address.
  const associate = new SocksClient({
    proxy: { host: o.socks.host, port: o.socks.port, type: 5 },
    command: 'associate',
    destination: { host: '0.0.0.0', port: 0 },
    timeout: EXCHANGE_TIMEOUT_MS,
  });
  const r = await new Promise<{ socket: Socket; remoteHost?: SocksRemoteHost }>((resolve, reject) => {
    associate.once('established', resolve);
    associate.once('error', reject);
    associate.connect();
  });
  const control = r.socket;
  control.on('error', () => {});
  const relayHost =
    r.remoteHost?.host === undefined || r.remoteHost.host === '0.0.0.0' ? o.socks.host : r.remoteHost.host;
  const relayPort = r.remoteHost?.port ?? 0;
  return {
    send: (b) =>
      sock.send(
        SocksClient.createUDPFrame({ remoteHost: { host: o.host, port: o.port }, data: b }),
        relayPort,
        relayHost,
      ),
    unwrap: (b) => SocksClient.parseUDPFrame(b).data,
    close: () => control.destroy(),
  };
}

/** Serial UDP request-response exchanges on one flow for `seconds`; replies per second. */
async function udpRate(o: Options): Promise<ClientReport> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, resolve));
  const path = await udpPath(o, sock);
  let waiting: ((b: Buffer) => void) | undefined;
  sock.on('message', (m: Buffer) => {
    const w = waiting;
    waiting = undefined;
    w?.(path.unwrap(m));
  });
  const request = Buffer.alloc(REQUEST_BYTES, 0x63);
  let count = 0;
  let errors = 0;
  const exchange = async (): Promise<boolean> => {
    const reply = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        waiting = undefined;
        resolve(false);
      }, UDP_TIMEOUT_MS);
      waiting = (b) => {
        clearTimeout(timer);
        resolve(b.length === REQUEST_BYTES);
      };
    });
    path.send(request);
    return reply;
  };
  const warmupDeadline = performance.now() + o.seconds * 1000;
  for (let i = 0; i < WARMUP && errors < MAX_ERRORS && performance.now() < warmupDeadline; i++)
    if (!(await exchange())) errors++;
  const t0 = performance.now();
  const deadline = t0 + o.seconds * 1000;
  while (performance.now() < deadline && count < o.count && errors < MAX_ERRORS) {
    if (await exchange()) count++;
    else errors++;
  }
  const seconds = (performance.now() - t0) / 1000;
  path.close();
  sock.close();
  return { mode: 'udp', errors, count, perSecond: count / seconds };
}

/**
 * Opens `count` connections (`concurrency` at a time), each echoing one byte so it is established
 * end to end, reports how many are held, then holds them until stdin closes, SIGTERM, or MAX_HOLD_MS.
 */
async function idle(o: Options): Promise<void> {
  const held: Socket[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const deadline = performance.now() + o.seconds * 1000;
  const worker = async (): Promise<void> => {
    while (next < o.count && errors < MAX_ERRORS && performance.now() < deadline) {
      next++;
      try {
        const s = await within(open(o), EXCHANGE_TIMEOUT_MS, 'connect');
        const reader = new Reader(s);
        s.write('x');
        await within(reader.take(1), EXCHANGE_TIMEOUT_MS, 'echo');
        held.push(s);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const report: ClientReport = {
    mode: 'idle',
    errors,
    held: held.length,
    ...(firstError ? { firstError } : {}),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  const done = (): never => {
    for (const s of held) s.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', done);
  process.stdin.on('end', done);
  process.stdin.on('close', done);
  process.stdin.resume();
  setTimeout(done, MAX_HOLD_MS).unref();
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o.mode === 'idle') return idle(o);
  const report =
    o.mode === 'cps'
      ? await connectionRate(o)
      : o.mode === 'rr'
        ? await requestResponse(o)
        : await udpRate(o);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench client: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
