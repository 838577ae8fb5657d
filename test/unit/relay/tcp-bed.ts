/**
 * The bed of the TCP relay's unit tests: a "client" StackRuntime opens connections with
 * `stack.tcp.connect` to a "relay" StackRuntime joined by a memory device pair; the relay dials
 * through a fake Dialer that connects to a local 127.0.0.1 server or rejects with DialError codes.
 * A test file calls `afterEach(runCleanups)`.
 */
import * as net from 'node:net';
import { Logger } from '../../../src/log.js';
import type { Destination, Dialer } from '../../../src/proxy/dialer.js';
import { createDirectDialer } from '../../../src/proxy/direct.js';
import { DialError, type DialErrorCode } from '../../../src/proxy/errors.js';
import { TcpRelay, type TcpRelayOptions } from '../../../src/relay/tcp-relay.js';
import { StackRuntime } from '../../../src/runtime.js';
import type { StackOptions } from '../../../src/stack/options.js';
import { seededRandom } from '../../../src/stack/random.js';
import { TcpSocket } from '../../../src/tcp-socket.js';
import { memoryPair } from '../../../src/tun/memory-device.js';
import { CLIENT4, CLIENT6, REMOTE4, REMOTE6 } from '../stack/packets.js';

/** Things to close after each test. */
export const cleanups: (() => unknown)[] = [];

/** Runs (and forgets) the cleanups, last first. */
export async function runCleanups(): Promise<void> {
  for (const f of cleanups.splice(0).reverse()) await f();
}

/** Polls `cond` every few ms (bounded). */
export async function waitFor(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`${what} not met in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A 127.0.0.1 server; `sockets` holds every accepted socket (allowHalfOpen). */
export async function localServer(
  onSocket: (s: net.Socket) => void,
): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

/** An echo server (ends its side after the peer's FIN, having echoed everything). */
export function echoServer(): Promise<{ port: number; sockets: net.Socket[] }> {
  return localServer((s) => s.pipe(s));
}

/** A dialer that connects every destination to 127.0.0.1:port, like a proxy would (plain net.connect). */
export function localDialer(
  port: number,
  delayMs = 0,
): Dialer & { dialed: Destination[]; sockets: net.Socket[] } {
  const dialed: Destination[] = [];
  const sockets: net.Socket[] = [];
  return {
    name: 'test',
    dialed,
    sockets,
    async dial(dst) {
      dialed.push(dst);
      if (delayMs > 0) await sleep(delayMs);
      const s = net.connect({ host: '127.0.0.1', port });
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('connect', resolve);
        s.once('error', reject);
      });
      s.setNoDelay(true);
      return s;
    },
  };
}

/**
 * The direct dialer (tcpConnect: its sockets read through a ReadTap, read-tap.ts) sending every
 * destination to 127.0.0.1:port.
 */
export function tappedDialer(port: number): Dialer & { sockets: net.Socket[] } {
  const direct = createDirectDialer();
  const sockets: net.Socket[] = [];
  return {
    name: 'tapped',
    sockets,
    async dial(_dst, opts) {
      const s = await direct.dial({ host: '127.0.0.1', port }, opts);
      sockets.push(s);
      return s;
    },
  };
}

/** A dialer that always fails with `code`. */
export function failingDialer(code: DialErrorCode): Dialer {
  return {
    name: 'fail',
    dial: (dst) => Promise.reject(new DialError(code, `test ${dst.host}`)),
  };
}

export interface Bed {
  client: StackRuntime;
  relayRuntime: StackRuntime;
  relay: TcpRelay;
  logs: string[];
  /** Opens a connection from the client stack; resolves with its socket once ESTABLISHED or CLOSED. */
  connect(port: number, opts?: { ipv6?: boolean; clientPort?: number }): Promise<TcpSocket>;
}

let nextClientPort = 40000;

/** A client runtime and a relay runtime back to back, the relay attached. */
export function bed(
  relayOptions: TcpRelayOptions,
  opts: { client?: StackOptions; relay?: StackOptions } = {},
): Bed {
  const [a, b] = memoryPair();
  const client = new StackRuntime(a, { random: seededRandom(1), options: opts.client });
  const relayRuntime = new StackRuntime(b, { random: seededRandom(2), options: opts.relay });
  const logs: string[] = [];
  const relay = new TcpRelay({ log: new Logger('debug', (l) => logs.push(l)), ...relayOptions });
  relay.attach(relayRuntime);
  client.start();
  relayRuntime.start();
  cleanups.push(async () => {
    relay.close();
    await client.close();
    await relayRuntime.close();
  });
  return {
    client,
    relayRuntime,
    relay,
    logs,
    async connect(port, o = {}) {
      client.enter();
      const c = client.stack.tcp.connect(
        o.ipv6 ? CLIENT6 : CLIENT4,
        o.clientPort ?? nextClientPort++,
        o.ipv6 ? REMOTE6 : REMOTE4,
        port,
        client.now(),
      );
      if (c === undefined) throw new Error('connect failed');
      const socket = new TcpSocket(c, client);
      socket.on('error', () => {});
      client.schedule();
      await waitFor(() => c.state === 'ESTABLISHED' || c.state === 'CLOSED', 8000, 'handshake');
      return socket;
    },
  };
}

/** Everything `socket` emits until 'end' (the socket stays open for writing). */
export function readToEnd(socket: net.Socket | TcpSocket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** Reads from `socket` until `n` bytes arrived. */
export function readBytes(socket: net.Socket | TcpSocket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) {
        socket.off('data', onData);
        socket.pause();
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

export function closed(socket: {
  destroyed: boolean;
  once(e: 'close', f: () => void): unknown;
}): Promise<void> {
  return socket.destroyed ? Promise.resolve() : new Promise((r) => socket.once('close', () => r()));
}
