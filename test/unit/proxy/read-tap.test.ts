import { once } from 'node:events';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ReadTap, readTapOf } from '../../../src/proxy/read-tap.js';

/** A loopback server whose connections send `payload` then end; resolves with its port. */
async function sender(payload: Buffer): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.end(payload);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** A tapped connection to `server`. */
function tapped(server: net.Server): { socket: net.Socket; tap: ReadTap } {
  const tap = new ReadTap();
  const port = (server.address() as net.AddressInfo).port;
  const socket = tap.bind(net.connect({ host: '127.0.0.1', port, onread: tap.onread }));
  return { socket, tap };
}

/** Bytes 0..n-1 mod 251. */
const pattern = (n: number): Buffer => Buffer.from(Uint8Array.from({ length: n }, (_, i) => i % 251));

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

describe('ReadTap', () => {
  it('without a sink the socket reads like any other ("data", then "end")', async () => {
    const payload = pattern(300_000);
    const server = await sender(payload);
    servers.push(server);
    const { socket, tap } = tapped(server);
    expect(readTapOf(socket)).toBe(tap);
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    await once(socket, 'end');
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    // Each chunk is a copy: none shares memory with another.
    expect(new Set(chunks.map((c) => c.buffer)).size).toBeGreaterThan(1);
  });

  it('two tapped sockets read through the shared scratch without mixing their bytes', async () => {
    const a = pattern(200_000);
    const b = Buffer.alloc(200_000, 0xee);
    const [sa, sb] = await Promise.all([sender(a), sender(b)]);
    servers.push(sa, sb);
    const results = await Promise.all(
      [sa, sb].map(async (server) => {
        const { socket } = tapped(server);
        const chunks: Buffer[] = [];
        socket.on('data', (d: Buffer) => chunks.push(d));
        await once(socket, 'end');
        return Buffer.concat(chunks);
      }),
    );
    expect(results[0]!.equals(a)).toBe(true);
    expect(results[1]!.equals(b)).toBe(true);
  });

  it('with a sink every later read goes to it, and false stops reading until resume()', async () => {
    const payload = pattern(2_000_000);
    const server = await sender(payload);
    servers.push(server);
    const { socket, tap } = tapped(server);
    await once(socket, 'connect');
    const got: Buffer[] = [];
    let stops = 0;
    const owner = { calls: 0 };
    tap.attach(function (this: typeof owner, bytes: Uint8Array): boolean {
      this.calls++;
      got.push(Buffer.from(bytes)); // the sink copies: the memory is reused after it returns
      if (this.calls % 5 !== 0) return true;
      stops++;
      setTimeout(() => socket.resume(), 2);
      return false;
    }, owner);
    socket.on('data', () => expect.unreachable('no data events in sink mode'));
    await once(socket, 'end');
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    expect(owner.calls).toBe(got.length);
    expect(stops).toBeGreaterThan(0);
  });
});
