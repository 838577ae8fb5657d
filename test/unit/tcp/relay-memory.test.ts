/**
 * What a relayed idle connection keeps, on an in-memory bed (a client StackRuntime and a relay
 * StackRuntime on one memoryPair, the relay dialing a 127.0.0.1 echo server): the listeners the
 * relay puts on its two sockets are shared functions, not closures made per connection, and once
 * the connection has echoed and gone quiet for IDLE_TRIM_MS its core buffers hold no bytes.
 * No RSS is measured here (see test/memory/idle-footprint.mjs for that).
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Dialer } from '../../../src/proxy/dialer.js';
import { TcpRelay } from '../../../src/relay/tcp-relay.js';
import { StackRuntime } from '../../../src/runtime.js';
import { seededRandom } from '../../../src/stack/random.js';
import { IDLE_TRIM_MS } from '../../../src/stack/tcp/timers.js';
import type { TcpSocket } from '../../../src/tcp-socket.js';
import { memoryPair } from '../../../src/tun/memory-device.js';

const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A relay bed; `relayed()` lists the relay-side sockets and `upstreams` the dialed ones. */
async function bed() {
  const upstreams: net.Socket[] = [];
  const accepted: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted.push(s);
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const dialer: Dialer = {
    name: 'echo',
    dial: () =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
        upstreams.push(s);
      }),
  };
  const [a, b] = memoryPair();
  const client = new StackRuntime(a, { random: seededRandom(1) });
  const relayRuntime = new StackRuntime(b, { random: seededRandom(2) });
  const relay = new TcpRelay({ dialer });
  relay.attach(relayRuntime);
  /** The relay-side sockets (each connection's owner once accepted), in table order. */
  const relayed = (): TcpSocket[] =>
    [...relayRuntime.stack.tcp.connections()].map((c) => c.owner as TcpSocket);
  client.start();
  relayRuntime.start();
  const clients: TcpSocket[] = [];
  cleanups.push(async () => {
    for (const s of clients) s.destroy();
    relay.close();
    await client.close();
    await relayRuntime.close();
    for (const s of accepted) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  /** Opens a connection that echoes one byte, and resolves once the echo came back. */
  const echo = async (clientPort: number): Promise<void> => {
    const s = client.connect({ address: '198.18.0.1', port: clientPort }, { address: '198.18.5.9', port: 7 });
    clients.push(s);
    s.on('error', () => {});
    await new Promise((resolve, reject) => {
      s.once('connect', resolve);
      s.once('close', reject);
    });
    s.write('x');
    await new Promise((resolve) => s.once('data', resolve));
  };
  return { relay, relayed, upstreams, echo };
}

describe('relayed idle connection footprint', () => {
  it('puts only shared listeners on each socket: no closure per connection', async () => {
    const b = await bed();
    await b.echo(41000);
    await b.echo(41001);
    const relayed = b.relayed();
    expect(relayed.length).toBe(2);
    expect(b.upstreams.length).toBe(2);
    for (const [one, two] of [relayed, b.upstreams] as const) {
      for (const event of ['data', 'end', 'close', 'drain', 'error'] as const) {
        const first = one!.listeners(event);
        expect(first.length, `${event} listeners`).toBeGreaterThan(0);
        expect(two!.listeners(event), `${event} listeners are the same functions`).toEqual(first);
      }
    }
  });

  it('holds no core buffer bytes once an echoed connection has been quiet for IDLE_TRIM_MS', async () => {
    const b = await bed();
    await b.echo(41010);
    const c = b.relayed()[0]!.connection;
    expect(c.sendBuffer.storageBytes + c.recvBuffer.storageBytes).toBeGreaterThan(0);
    const deadline = performance.now() + IDLE_TRIM_MS * 6;
    while (c.sendBuffer.storageBytes + c.recvBuffer.storageBytes > 0 && performance.now() < deadline) {
      await sleep(20);
    }
    expect(c.sendBuffer.storageBytes + c.recvBuffer.storageBytes).toBe(0);
    expect(c.state).toBe('ESTABLISHED');
    expect(b.relay.stats.open).toBe(1);
  });
});
