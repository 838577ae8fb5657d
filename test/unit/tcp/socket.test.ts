/**
 * The Duplex `TcpSocket` over real runtimes: two `StackRuntime`s joined by an in-memory device
 * pair, one accepting connections, the other opening them with `stack.tcp.connect` and wrapping
 * them in sockets too. Checks the net.Socket behaviour the relay relies on: write callbacks when the
 * core takes the bytes, backpressure through the advertised window, end() = FIN, destroy() = RST,
 * a peer RST as ECONNRESET, addresses, byte counters and the chainable switches.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { StackRuntime } from '../../../src/runtime.js';
import type { StackOptions } from '../../../src/stack/options.js';
import { seededRandom } from '../../../src/stack/random.js';
import { TcpSocket } from '../../../src/tcp-socket.js';
import { memoryPair } from '../../../src/tun/memory-device.js';
import { CLIENT4, CLIENT6, pattern, REMOTE4, REMOTE6 } from '../stack/packets.js';

/** Runtimes to close after each test. */
const open: StackRuntime[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

interface Pair {
  client: StackRuntime;
  server: StackRuntime;
  /** The client side of the connection (an active open wrapped in a socket). */
  clientSocket: TcpSocket;
  /** The accepted side. */
  serverSocket: TcpSocket;
}

/** Two runtimes back to back, one connection from CLIENT:40000 to REMOTE:80, both sides sockets. */
async function connectPair(
  opts: { ipv6?: boolean; client?: StackOptions; server?: StackOptions } = {},
): Promise<Pair> {
  const [a, b] = memoryPair();
  const client = new StackRuntime(a, { random: seededRandom(1), options: opts.client });
  const server = new StackRuntime(b, { random: seededRandom(2), options: opts.server });
  open.push(client, server);
  const accepted = new Promise<TcpSocket>((resolve) => {
    server.onTcpRequest((request) => resolve(request.accept()));
  });
  client.start();
  server.start();
  const local = opts.ipv6 ? CLIENT6 : CLIENT4;
  const remote = opts.ipv6 ? REMOTE6 : REMOTE4;
  client.enter();
  const c = client.stack.tcp.connect(local, 40000, remote, 80, client.now());
  if (c === undefined) throw new Error('connect failed');
  const clientSocket = new TcpSocket(c, client);
  client.schedule();
  const serverSocket = await accepted;
  if (c.state !== 'ESTABLISHED') await waitFor(() => c.state === 'ESTABLISHED');
  return { client, server, clientSocket, serverSocket };
}

/** Polls `cond` every few ms (bounded: 5 s). */
async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Collects everything `socket` emits as data until 'end', leaving the socket open (a for-await
 * loop would destroy it at the end, which is an abort while its writable side is open).
 */
function readToEnd(socket: TcpSocket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

describe('TcpSocket over StackRuntime', () => {
  it('reports addresses and ports like net.Socket (IPv4)', async () => {
    const { clientSocket, serverSocket } = await connectPair();
    expect(serverSocket.remoteAddress).toBe('198.18.0.1');
    expect(serverSocket.remotePort).toBe(40000);
    expect(serverSocket.remoteFamily).toBe('IPv4');
    expect(serverSocket.localAddress).toBe('198.18.5.9');
    expect(serverSocket.localPort).toBe(80);
    expect(clientSocket.remoteAddress).toBe('198.18.5.9');
    expect(clientSocket.remotePort).toBe(80);
    expect(clientSocket.localAddress).toBe('198.18.0.1');
    expect(clientSocket.localPort).toBe(40000);
  });

  it('reports addresses and ports like net.Socket (IPv6)', async () => {
    const { serverSocket } = await connectPair({ ipv6: true });
    expect(serverSocket.remoteAddress).toBe('fd00::1');
    expect(serverSocket.remoteFamily).toBe('IPv6');
    expect(serverSocket.localAddress).toBe('fd00:5::9');
    expect(serverSocket.localPort).toBe(80);
  });

  it('carries data both ways and counts bytesRead/bytesWritten', async () => {
    const { clientSocket, serverSocket } = await connectPair();
    const request = pattern(100_000);
    const done = new Promise<void>((resolve) => clientSocket.write(request, () => resolve()));
    await done;
    expect(clientSocket.bytesWritten).toBe(100_000);
    clientSocket.end();
    const got = await readToEnd(serverSocket);
    expect(got.equals(Buffer.from(request))).toBe(true);
    expect(serverSocket.bytesRead).toBe(100_000);
    serverSocket.end('response');
    const back = await readToEnd(clientSocket);
    expect(back.toString()).toBe('response');
    expect(clientSocket.bytesRead).toBe(8);
    expect(serverSocket.bytesWritten).toBe(8);
  });

  it('calls a write callback as soon as the core took the bytes', async () => {
    const { clientSocket, serverSocket } = await connectPair();
    let called = false;
    clientSocket.write('hello', () => {
      called = true;
    });
    // The send buffer has room: taken in _write, before any ACK could come back.
    await new Promise((r) => setImmediate(r));
    expect(called).toBe(true);
    expect(clientSocket.connection.unacknowledged).toBeGreaterThan(0);
    serverSocket.destroy();
  });

  it('delays a huge write until a slow reader opens the window (backpressure)', async () => {
    const { clientSocket, serverSocket } = await connectPair({
      client: { tcp: { sendBufferBytes: 64 * 1024 } },
      server: { tcp: { recvBufferBytes: 64 * 1024, recvBufferMaxBytes: 64 * 1024 } },
    });
    const total = 2 * 1024 * 1024;
    const data = pattern(total);
    let written = false;
    clientSocket.write(data, () => {
      written = true;
    });
    // Nobody reads on the server: its window closes and the client's send buffer fills.
    const serverConn = serverSocket.connection;
    await waitFor(() => serverConn.readableLength > 60 * 1024);
    await new Promise((r) => setTimeout(r, 100));
    expect(written).toBe(false);
    expect(clientSocket.connection.sndWnd).toBeLessThan(1500);
    expect(clientSocket.connection.writableLength).toBe(0);
    expect(clientSocket.bytesWritten).toBeLessThan(total);
    // The reader starts: the window opens, the rest flows and the callback fires.
    clientSocket.end();
    const got = await readToEnd(serverSocket);
    expect(written).toBe(true);
    expect(got.length).toBe(total);
    expect(got.equals(Buffer.from(data))).toBe(true);
    expect(clientSocket.bytesWritten).toBe(total);
  });

  it('offer() copies into the send buffer while nothing is queued, and keeps the order with write()', async () => {
    const { clientSocket, serverSocket } = await connectPair({
      client: { tcp: { sendBufferBytes: 64 * 1024 } },
    });
    const got = readToEnd(serverSocket);
    const scratch = Buffer.from('first ');
    expect(clientSocket.offer(scratch)).toBe(6);
    scratch.fill(0x21); // reused at once, as a tapped read's memory is: the bytes were copied
    // A write the send buffer cannot take whole stays queued: offer() then takes nothing.
    const big = pattern(100 * 1024);
    clientSocket.write(big);
    expect(clientSocket.writableLength).toBeGreaterThan(0);
    expect(clientSocket.offer(Buffer.from('late'))).toBe(0);
    clientSocket.end('last');
    expect(clientSocket.offer(Buffer.from('x'))).toBe(0);
    const bytes = await got;
    expect(bytes.subarray(0, 6).toString()).toBe('first ');
    expect(bytes.subarray(6, 6 + big.length).equals(Buffer.from(big))).toBe(true);
    expect(bytes.subarray(6 + big.length).toString()).toBe('last');
    expect(clientSocket.bytesWritten).toBe(6 + big.length + 4);
  });

  it('end() sends a FIN: the peer reads to the end and may still write', async () => {
    const { clientSocket, serverSocket } = await connectPair();
    // Both close on their own once each side has read the other's end and ended its own.
    const closed = Promise.all([
      new Promise((r) => clientSocket.once('close', r)),
      new Promise((r) => serverSocket.once('close', r)),
    ]);
    clientSocket.end('last words');
    const got = await readToEnd(serverSocket);
    expect(got.toString()).toBe('last words');
    expect(serverSocket.connection.state).toBe('CLOSE-WAIT');
    await waitFor(() => clientSocket.connection.state === 'FIN-WAIT-2');
    // Half-closed: the other direction still works.
    serverSocket.end('reply');
    expect((await readToEnd(clientSocket)).toString()).toBe('reply');
    await closed;
    expect(clientSocket.connection.state).toBe('TIME-WAIT');
    expect(clientSocket.connection.error).toBeUndefined();
  });

  it('destroy() sends a RST: the peer sees ECONNRESET', async () => {
    const { clientSocket, serverSocket } = await connectPair();
    const error = once(serverSocket, 'error');
    const closed = new Promise((r) => serverSocket.once('close', r));
    clientSocket.destroy();
    const [err] = (await error) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNRESET');
    expect(serverSocket.connection.state).toBe('CLOSED');
    expect(serverSocket.connection.error).toBe('ECONNRESET');
    expect(clientSocket.connection.state).toBe('CLOSED');
    await closed;
    expect(serverSocket.destroyed).toBe(true);
  });

  it('fails pending writes with ECONNRESET when the peer resets', async () => {
    const { clientSocket, serverSocket } = await connectPair({
      server: { tcp: { recvBufferBytes: 16 * 1024, recvBufferMaxBytes: 16 * 1024 } },
    });
    const errors: NodeJS.ErrnoException[] = [];
    clientSocket.on('error', (e) => errors.push(e));
    const closed = new Promise((r) => clientSocket.once('close', r));
    const callback = new Promise<Error | null | undefined>((resolve) => {
      clientSocket.write(pattern(4 * 1024 * 1024), (e) => resolve(e));
    });
    await waitFor(() => serverSocket.connection.readableLength > 12 * 1024);
    serverSocket.destroy();
    const e = await callback;
    expect(e).toBeInstanceOf(Error);
    await closed;
    expect(errors.map((x) => x.code)).toContain('ECONNRESET');
    expect(clientSocket.connection.error).toBe('ECONNRESET');
  });

  it('setNoDelay and setKeepAlive return the socket and reach the connection', async () => {
    const { serverSocket } = await connectPair();
    expect(serverSocket.setNoDelay()).toBe(serverSocket);
    expect(serverSocket.connection.noDelay).toBe(true);
    expect(serverSocket.setNoDelay(false)).toBe(serverSocket);
    expect(serverSocket.connection.noDelay).toBe(false);
    expect(serverSocket.setKeepAlive(true, 30_000)).toBe(serverSocket);
    expect(serverSocket.connection.keepAlive).toBe(true);
    expect(serverSocket.connection.keepaliveIdleMs).toBe(30_000);
    expect(serverSocket.setKeepAlive(false)).toBe(serverSocket);
    expect(serverSocket.connection.keepAlive).toBe(false);
  });
});
