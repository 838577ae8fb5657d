/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766): the length-prefix framing cut at every byte, and
 * queries through a Dialer to a scripted TCP DNS server on loopback — pipelined on one
 * connection, answers matched by ID in any order, the idle close, the in-flight bound, timeouts,
 * dial failures and a server that hangs up.
 */
import type * as net from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createDirectDialer } from '../../../src/proxy/direct.js';
import { DialError } from '../../../src/proxy/errors.js';
import {
  DnsOverTcp,
  DnsOverTcpError,
  DnsTcpFramer,
  frameDnsMessage,
} from '../../../src/relay/dns-over-tcp.js';
import { closedPort, type FakeServer, startServer } from '../proxy/fake-server.js';

/** A 12-byte DNS header with `id` and a one-byte marker after it. */
function dnsMessage(id: number, marker: number): Buffer {
  const b = Buffer.alloc(13);
  b.writeUInt16BE(id, 0);
  b[12] = marker;
  return b;
}

/**
 * A TCP DNS server that collects queries and answers each with its own bytes plus 0x80 on the
 * marker; `hold` queries are answered together, in reverse order (pipelining, RFC 7766 §7).
 */
async function dnsServer(hold = 1, answer = true): Promise<FakeServer & { connections: number }> {
  let connections = 0;
  const server = await startServer((socket: net.Socket) => {
    connections++;
    const framer = new DnsTcpFramer();
    let held: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      for (const q of framer.push(chunk)) {
        const a = Buffer.from(q);
        a[12] = a[12]! | 0x80;
        held.push(a);
        if (held.length >= hold && answer) {
          for (const x of held.reverse()) socket.write(frameDnsMessage(x)!);
          held = [];
        }
      }
    });
  });
  servers.push(server);
  return Object.defineProperty(server, 'connections', { get: () => connections }) as FakeServer & {
    connections: number;
  };
}

let servers: FakeServer[] = [];
let clients: DnsOverTcp[] = [];
afterEach(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  clients = [];
});

function client(opts: Partial<ConstructorParameters<typeof DnsOverTcp>[0]> = {}): DnsOverTcp {
  const c = new DnsOverTcp({ dialer: createDirectDialer(), dialTimeoutMs: 1000, ...opts });
  clients.push(c);
  return c;
}

describe('RFC 1035 §4.2.2 length prefix', () => {
  it('frames a message (golden bytes) and refuses one over 65535 bytes', () => {
    expect([...frameDnsMessage(Uint8Array.of(0xab, 0xcd, 1))!]).toEqual([0, 3, 0xab, 0xcd, 1]);
    expect(frameDnsMessage(new Uint8Array(65535))!.subarray(0, 2)).toEqual(Buffer.of(0xff, 0xff));
    expect(frameDnsMessage(new Uint8Array(65536))).toBeUndefined();
  });

  it('splits a stream cut at every byte, and fed one byte at a time', () => {
    const messages = [dnsMessage(1, 1), Buffer.alloc(0), dnsMessage(0xffff, 2), Buffer.alloc(300, 7)];
    const stream = Buffer.concat(messages.map((m) => frameDnsMessage(m)!));
    for (let cut = 0; cut <= stream.length; cut++) {
      const f = new DnsTcpFramer();
      const got = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))];
      expect(got.map((m) => m.toString('hex'))).toEqual(messages.map((m) => m.toString('hex')));
      expect(f.pendingBytes).toBe(0);
    }
    const f = new DnsTcpFramer();
    const got: Buffer[] = [];
    for (const byte of stream) got.push(...f.push(Uint8Array.of(byte)));
    expect(got.map((m) => m.toString('hex'))).toEqual(messages.map((m) => m.toString('hex')));
  });

  it('never throws on random chunks and never holds more than one message', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (chunks) => {
        const f = new DnsTcpFramer();
        for (const c of chunks) {
          for (const m of f.push(c)) expect(m.length).toBeLessThanOrEqual(65535);
          expect(f.pendingBytes).toBeLessThanOrEqual(2 + 65535 + c.length);
        }
      }),
    );
  });
});

describe('DnsOverTcp through a Dialer', () => {
  it('pipelines queries on one connection and matches answers by ID in any order', async () => {
    const server = await dnsServer(3);
    const c = client();
    const dst = { host: '127.0.0.1', port: server.port };
    const answers = await Promise.all([1, 2, 3].map((id) => c.query(dst, dnsMessage(id, id))));
    expect(answers.map((a) => [a.readUInt16BE(0), a[12]])).toEqual([
      [1, 0x81],
      [2, 0x82],
      [3, 0x83],
    ]);
    expect(server.connections).toBe(1);
    expect([c.inFlight, c.connectionCount]).toEqual([0, 1]);
    // The connection is reused while it is fresh.
    await Promise.all([4, 5, 6].map((id) => c.query(dst, dnsMessage(id, id))));
    expect(server.connections).toBe(1);
  });

  it('closes an idle connection and opens a new one for the next query', async () => {
    const server = await dnsServer();
    const c = client({ idleMs: 50 });
    const dst = { host: '127.0.0.1', port: server.port };
    await c.query(dst, dnsMessage(1, 1));
    for (let i = 0; i < 100 && c.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(c.connectionCount).toBe(0);
    await c.query(dst, dnsMessage(2, 2));
    expect(server.connections).toBe(2);
  });

  it('bounds queries in flight, times them out, and rejects a non-DNS payload', async () => {
    const server = await dnsServer(1, false);
    const c = client({ maxInFlight: 2, queryTimeoutMs: 150 });
    const dst = { host: '127.0.0.1', port: server.port };
    const first = c.query(dst, dnsMessage(1, 1)).catch((e: unknown) => e);
    const second = c.query(dst, dnsMessage(2, 2)).catch((e: unknown) => e);
    await expect(c.query(dst, dnsMessage(3, 3))).rejects.toMatchObject({ code: 'EDNS_BUSY' });
    expect(await first).toMatchObject({ code: 'EDNS_TIMEOUT' });
    expect(await second).toBeInstanceOf(DnsOverTcpError);
    expect(c.inFlight).toBe(0);
    await expect(c.query(dst, Buffer.alloc(11))).rejects.toMatchObject({ code: 'EDNS_MALFORMED' });
  });

  it('rejects with the DialError when the server cannot be reached', async () => {
    const c = client();
    const err = await c
      .query({ host: '127.0.0.1', port: await closedPort() }, dnsMessage(1, 1))
      .catch((e) => e);
    expect(err).toBeInstanceOf(DialError);
    expect(err).toMatchObject({ code: 'ECONNREFUSED' });
    expect([c.inFlight, c.connectionCount]).toEqual([0, 0]);
  });

  it('rejects waiting queries when the server hangs up, or on close()', async () => {
    const hangUp = await startServer((s) => s.once('data', () => s.end()));
    servers.push(hangUp);
    const c = client();
    await expect(c.query({ host: '127.0.0.1', port: hangUp.port }, dnsMessage(1, 1))).rejects.toMatchObject({
      code: 'EDNS_CLOSED',
    });
    const silent = await dnsServer(1, false);
    const pending = c.query({ host: '127.0.0.1', port: silent.port }, dnsMessage(2, 2));
    c.close();
    await expect(pending).rejects.toMatchObject({ code: 'EDNS_CLOSED' });
    await expect(c.query({ host: '127.0.0.1', port: silent.port }, dnsMessage(3, 3))).rejects.toMatchObject({
      code: 'EDNS_CLOSED',
    });
  });

  it('counts answers that match no query', async () => {
    const liar = await startServer((s) =>
      s.on('data', () => {
        s.write(frameDnsMessage(dnsMessage(0x7777, 0))!);
        s.write(frameDnsMessage(Buffer.alloc(3))!);
        s.write(frameDnsMessage(dnsMessage(1, 0x81))!);
      }),
    );
    servers.push(liar);
    const c = client();
    const a = await c.query({ host: '127.0.0.1', port: liar.port }, dnsMessage(1, 1));
    expect(a[12]).toBe(0x81);
    expect(c.unmatchedAnswers).toBe(2);
  });
});
