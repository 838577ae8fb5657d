/**
 * The DNS server of the stack: which destinations it serves (DNS addresses, hijack), answers in
 * fake-ip and remote mode with counters, fake destinations mapped back to names, and DNS over
 * TCP served locally with the stream cut at every byte and queries pipelined.
 */
import * as net from 'node:net';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeIpPool } from '../../../src/dns/fake-pool.js';
import { DnsServer, type DnsServerOptions, type DnsUpstream } from '../../../src/dns/server.js';
import { DnsTcpFramer, frameDnsMessage } from '../../../src/relay/dns-over-tcp.js';
import { type FakeServer, startServer } from '../proxy/fake-server.js';
import { firstData, query, txtAnswer, until } from './fakes.js';

/** An upstream that answers TXT 'up' (or fails when `fail` is set), recording the queries. */
class FakeUpstream implements DnsUpstream {
  readonly queries: Buffer[] = [];
  fail = false;
  closed = false;

  forward(q: Uint8Array): Promise<Buffer> {
    this.queries.push(Buffer.from(q));
    return this.fail ? Promise.reject(new Error('down')) : Promise.resolve(txtAnswer(q, 'up'));
  }

  close(): void {
    this.closed = true;
  }
}

let servers: FakeServer[] = [];
let dnsServers: DnsServer[] = [];
afterEach(async () => {
  for (const d of dnsServers) d.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  dnsServers = [];
});

function server(options: Partial<DnsServerOptions> = {}): {
  dns: DnsServer;
  upstream: FakeUpstream;
  clock: { now: number };
} {
  const upstream = new FakeUpstream();
  const clock = { now: 0 };
  const dns = new DnsServer({
    mode: 'fake-ip',
    pool: new FakeIpPool(),
    upstream,
    now: () => clock.now,
    ...options,
  });
  dnsServers.push(dns);
  return { dns, upstream, clock };
}

describe('DnsServer: what it serves', () => {
  it('serves port 53 of its addresses, or of any address with hijack', () => {
    const { dns } = server();
    expect(dns.serves({ host: '198.18.0.2', port: 53 })).toBe(true);
    expect(dns.serves({ host: 'fdfe:dcba:9876:0:0::2', port: 53 })).toBe(true);
    expect(dns.serves({ host: '198.18.0.2', port: 5353 })).toBe(false);
    expect(dns.serves({ host: '8.8.8.8', port: 53 })).toBe(false);
    const hijack = server({ hijack: true, addresses: ['198.18.1.1'] }).dns;
    expect(hijack.serves({ host: '8.8.8.8', port: 53 })).toBe(true);
    expect(hijack.serves({ host: '8.8.8.8', port: 443 })).toBe(false);
    hijack.close();
    expect(hijack.serves({ host: '8.8.8.8', port: 53 })).toBe(false);
  });

  it('needs a pool in fake-ip mode', () => {
    expect(() => new DnsServer({ mode: 'fake-ip', upstream: new FakeUpstream() })).toThrow(TypeError);
  });
});

describe('DnsServer: answers and counters', () => {
  it('answers A locally, forwards TXT, answers SERVFAIL when the forward fails, counts all', async () => {
    const { dns, upstream } = server();
    const a = dnsPacket.decode(Buffer.from((await dns.handle(query(1, 'name.test')))!));
    expect(a.answers?.[0]).toMatchObject({ type: 'A', data: '198.19.0.1' });
    const txt = dnsPacket.decode(Buffer.from((await dns.handle(query(2, 'name.test', 'TXT')))!));
    expect(firstData(txt!)).toBe('up');
    upstream.fail = true;
    const failed = dnsPacket.decode(Buffer.from((await dns.handle(query(3, 'name.test', 'MX')))!));
    expect(failed).toMatchObject({ id: 3, rcode: 'SERVFAIL' });
    expect(await dns.handle(Buffer.alloc(4))).toBeUndefined();
    expect((await dns.handle(Buffer.from('123401000001000000000000ff', 'hex')))!.length).toBe(12);
    expect(dns.stats).toEqual({
      answered: 1,
      forwarded: 1,
      failed: 1,
      errors: { 'dns-formerr': 1 },
      dropped: { 'dns-short': 1 },
      unmapped: 0,
      fakeLive: 1,
      fakeEvicted: 0,
    });
  });

  it('forwards everything in remote mode, and drops responses', async () => {
    const { dns, upstream } = server({ mode: 'remote' });
    const out = dnsPacket.decode(Buffer.from((await dns.handle(query(1, 'name.test')))!));
    expect(firstData(out!)).toBe('up');
    const response = query(2, 'x.test');
    response[2]! |= 0x80;
    expect(await dns.handle(response)).toBeUndefined();
    expect(upstream.queries).toHaveLength(1);
    expect(dns.stats).toMatchObject({ answered: 0, forwarded: 1, dropped: { 'dns-not-query': 1 } });
  });

  it('maps fake destinations to names; unmapped fake addresses are refused and counted', async () => {
    const { dns, clock } = server();
    await dns.handle(query(1, 'Name.Test'));
    clock.now = 1000;
    expect(dns.resolveDestination({ host: '198.19.0.1', port: 80 })).toEqual({ host: 'name.test', port: 80 });
    expect(dns.resolveDestination({ host: '198.19.0.2', port: 80 })).toBeUndefined();
    expect(dns.resolveDestination({ host: '203.0.113.1', port: 80 })).toEqual({
      host: '203.0.113.1',
      port: 80,
    });
    expect(dns.stats.unmapped).toBe(1);
    // remote mode has no pool: nothing is fake.
    expect(server({ mode: 'remote' }).dns.resolveDestination({ host: '198.19.0.1', port: 80 })).toEqual({
      host: '198.19.0.1',
      port: 80,
    });
  });

  it('closes its upstream', () => {
    const { dns, upstream } = server();
    dns.close();
    expect(upstream.closed).toBe(true);
  });
});

describe('DnsServer: DNS over TCP served locally', () => {
  async function served(dns: DnsServer): Promise<net.Socket> {
    const s = await startServer((socket) => dns.serveStream(socket));
    servers.push(s);
    return await new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect(s.port, '127.0.0.1', () => resolve(c));
      c.once('error', reject);
    });
  }

  it('answers pipelined queries with the stream cut at every byte', async () => {
    const { dns } = server();
    const client = await served(dns);
    const framer = new DnsTcpFramer();
    const answers: Buffer[] = [];
    client.on('data', (c: Buffer) => answers.push(...framer.push(c).map((m) => Buffer.from(m))));
    const bytes = Buffer.concat([
      frameDnsMessage(query(0x11, 'a.test'))!,
      frameDnsMessage(query(0x22, 'b.test', 'AAAA'))!,
      frameDnsMessage(query(0x33, 'c.test', 'TXT'))!,
    ]);
    for (let i = 0; i < bytes.length; i++) {
      client.write(bytes.subarray(i, i + 1));
      if (i % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => answers.length === 3);
    const byId = new Map(answers.map((a) => [a.readUInt16BE(0), dnsPacket.decode(a)]));
    expect(byId.get(0x11)?.answers?.[0]).toMatchObject({ data: '198.19.0.1' });
    expect(byId.get(0x22)?.answers?.[0]).toMatchObject({ data: 'fdfe:dcba:9877::1' });
    expect(firstData(byId.get(0x33)!)).toBe('up');
    // The client's FIN ends the exchange once every answer is out.
    const ended = new Promise((r) => client.once('end', r));
    client.end();
    await ended;
  });

  it('closes an idle connection', async () => {
    const { dns } = server({ tcpIdleMs: 30 });
    const client = await served(dns);
    await new Promise((r) => client.once('end', r));
    client.destroy();
  });
});
