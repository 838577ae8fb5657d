/**
 * The UDP relay with scripted parts: fake client flows, a fake UdpDialer whose associations
 * record what they send, and a TCP DNS server on loopback behind a Dialer for DNS over TCP.
 * Covers the association per flow (queue while opening, bounded; re-created after it dies;
 * closed with the flow), full-cone replies, refusals (ICMP unreachable), "no UDP" switching DNS
 * to TCP for the whole relay, the dnsOverTcp modes, the loop guard and the drop counters.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Logger } from '../../../src/log.js';
import type { Destination, Dialer, DialOptions } from '../../../src/proxy/dialer.js';
import { DialError } from '../../../src/proxy/errors.js';
import { UdpUnsupportedError } from '../../../src/proxy/socks5-udp.js';
import type { UdpAssociation, UdpDialer, UdpEndpoint } from '../../../src/proxy/udp.js';
import { DnsTcpFramer, frameDnsMessage } from '../../../src/relay/dns-over-tcp.js';
import { type RelayUdpFlow, UdpRelay, type UdpRelayOptions } from '../../../src/relay/udp-relay.js';
import { closedPort, type FakeServer, startServer } from '../proxy/fake-server.js';

/** A client flow as the runtime would present it, recording what the relay does to it. */
class FakeFlow extends EventEmitter implements RelayUdpFlow {
  readonly sent: { payload: string; from: UdpEndpoint }[] = [];
  readonly unreachables: UdpEndpoint[] = [];
  closed = false;
  accept = true;

  constructor(
    readonly clientAddress = '198.18.0.1',
    readonly clientPort = 40000,
    readonly family: 'IPv4' | 'IPv6' = 'IPv4',
  ) {
    super();
  }

  send(payload: Uint8Array, from: UdpEndpoint): boolean {
    if (this.closed || !this.accept) return false;
    this.sent.push({ payload: Buffer.from(payload).toString('latin1'), from });
    return true;
  }

  unreachable(destination: UdpEndpoint): void {
    this.unreachables.push(destination);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }

  /** The client sends one datagram. */
  datagram(payload: string | Buffer, address: string, port: number): void {
    this.emit('datagram', Buffer.from(payload), { address, port });
  }
}

/** An association that records sends; the test plays the remote with reply(). */
class FakeAssociation extends EventEmitter implements UdpAssociation {
  readonly sent: { payload: string; to: Destination }[] = [];
  closed = false;

  send(payload: Uint8Array, to: Destination): void {
    if (!this.closed) this.sent.push({ payload: Buffer.from(payload).toString('latin1'), to });
  }

  close(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', error);
  }

  reply(payload: string, address: string, port: number): void {
    this.emit('message', Buffer.from(payload), { address, port });
  }
}

/** A UdpDialer whose associate() outcome the test scripts; it resolves on release() when held. */
class FakeUdpDialer implements UdpDialer {
  readonly name = 'fake';
  readonly associations: FakeAssociation[] = [];
  calls = 0;
  failWith: Error | undefined;
  hold = false;
  private held: (() => void)[] = [];

  signals: (AbortSignal | undefined)[] = [];

  associate(opts?: DialOptions): Promise<UdpAssociation> {
    this.calls++;
    this.signals.push(opts?.signal);
    return new Promise((resolve, reject) => {
      const settle = (): void => {
        if (this.failWith !== undefined) return reject(this.failWith);
        const a = new FakeAssociation();
        this.associations.push(a);
        resolve(a);
      };
      if (this.hold) this.held.push(settle);
      else settle();
    });
  }

  release(): void {
    for (const s of this.held.splice(0)) s();
  }
}

/** Lets promise callbacks run. */
function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

async function until(what: () => boolean, ms = 2000): Promise<void> {
  for (let waited = 0; !what(); waited += 10) {
    if (waited > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A DNS question from the client: 12-byte header with `id`, then a marker byte. */
function dnsQuery(id: number): Buffer {
  const b = Buffer.alloc(13);
  b.writeUInt16BE(id, 0);
  b[12] = 0x51;
  return b;
}

let servers: FakeServer[] = [];
let relays: UdpRelay[] = [];
afterEach(async () => {
  for (const r of relays) r.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  relays = [];
});

/** A TCP DNS server answering every query with the query plus 'A'; the Dialer sends everything to it. */
async function dnsOverTcpDialer(): Promise<{ dialer: Dialer; dialed: Destination[] }> {
  const server = await startServer((socket) => {
    const framer = new DnsTcpFramer();
    socket.on('data', (c: Buffer) => {
      for (const q of framer.push(c)) socket.write(frameDnsMessage(Buffer.concat([q, Buffer.from('A')]))!);
    });
  });
  servers.push(server);
  const dialed: Destination[] = [];
  const dialer: Dialer = {
    name: 'fake-tcp',
    dial: (dst) => {
      dialed.push(dst);
      return new Promise((resolve, reject) => {
        const s = net.connect(server.port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
    },
  };
  return { dialer, dialed };
}

const unusedDialer: Dialer = {
  name: 'unused',
  dial: () => Promise.reject(new DialError('EREJECTED', 'no TCP in this test')),
};

function relay(options: Partial<UdpRelayOptions> & Pick<UdpRelayOptions, 'udpDialer'>): UdpRelay {
  const r = new UdpRelay({ dialer: unusedDialer, ...options });
  relays.push(r);
  return r;
}

describe('UdpRelay: one association per flow', () => {
  it('queues while the association opens, then sends every datagram to its own destination', async () => {
    const udp = new FakeUdpDialer();
    udp.hold = true;
    const r = relay({ udpDialer: udp });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram('one', '198.18.5.9', 7);
    flow.datagram('two', 'fd00:5::9', 8);
    expect(udp.calls).toBe(1);
    udp.release();
    await settle();
    flow.datagram('three', '198.18.5.10', 9);
    expect(udp.associations[0]!.sent).toEqual([
      { payload: 'one', to: { host: '198.18.5.9', port: 7 } },
      { payload: 'two', to: { host: 'fd00:5::9', port: 8 } },
      { payload: 'three', to: { host: '198.18.5.10', port: 9 } },
    ]);
    expect(udp.calls).toBe(1);
    expect(r.stats).toMatchObject({
      flowsOpen: 1,
      flowsTotal: 1,
      datagramsUp: 3,
      bytesUp: 11,
      associations: 1,
    });
  });

  it('delivers replies from any remote (full cone) and counts what the flow refuses', async () => {
    const udp = new FakeUdpDialer();
    const r = relay({ udpDialer: udp });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram('q', '198.18.5.9', 7);
    await settle();
    const a = udp.associations[0]!;
    a.reply('r1', '198.18.5.9', 7);
    a.reply('r2', '198.18.77.1', 5353);
    flow.accept = false;
    a.reply('r3', 'fd00::1', 1);
    a.emit('drop', 'socks5-udp-fragment');
    expect(flow.sent).toEqual([
      { payload: 'r1', from: { address: '198.18.5.9', port: 7 } },
      { payload: 'r2', from: { address: '198.18.77.1', port: 5353 } },
    ]);
    expect(r.stats).toMatchObject({ datagramsDown: 2, bytesDown: 4 });
    expect(r.stats.dropped).toEqual({ 'reply-rejected': 1, 'socks5-udp-fragment': 1 });
  });

  it('bounds the queue by datagrams and by bytes', async () => {
    const udp = new FakeUdpDialer();
    udp.hold = true;
    const r = relay({ udpDialer: udp, queueDatagrams: 3, queueBytes: 10 });
    const flow = new FakeFlow();
    r.accept(flow);
    for (const p of ['aaaa', 'bbbb', 'cccc', 'dd', 'e']) flow.datagram(p, '198.18.5.9', 7);
    udp.release();
    await settle();
    expect(udp.associations[0]!.sent.map((s) => s.payload)).toEqual(['aaaa', 'bbbb', 'dd']);
    expect(r.stats.dropped).toEqual({ 'queue-full': 2 });
  });

  it('re-creates the association on demand after it dies, and closes it with the flow', async () => {
    const udp = new FakeUdpDialer();
    const r = relay({ udpDialer: udp });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram('1', '198.18.5.9', 7);
    await settle();
    udp.associations[0]!.close(new Error('control connection reset'));
    flow.datagram('2', '198.18.5.9', 7);
    await settle();
    expect(udp.calls).toBe(2);
    expect(udp.associations[1]!.sent.map((s) => s.payload)).toEqual(['2']);
    // Replies on the dead association are not delivered.
    udp.associations[0]!.emit('message', Buffer.from('ghost'), { address: '198.18.5.9', port: 7 });
    expect(flow.sent).toEqual([]);
    flow.close();
    expect(udp.associations[1]!.closed).toBe(true);
    expect(r.stats).toMatchObject({ flowsOpen: 0, flowsTotal: 1, associations: 2 });
  });

  it('closes an association that opens after its flow ended', async () => {
    const udp = new FakeUdpDialer();
    udp.hold = true;
    const r = relay({ udpDialer: udp });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram('1', '198.18.5.9', 7);
    flow.close();
    udp.release();
    await settle();
    expect(udp.associations[0]!.closed).toBe(true);
    expect(udp.associations[0]!.sent).toEqual([]);
  });

  it('close() detaches from the runtime and ends every flow and association', async () => {
    const udp = new FakeUdpDialer();
    const r = relay({ udpDialer: udp });
    const handlers: unknown[] = [];
    r.attach({ onUdpFlow: (h) => handlers.push(h) });
    const flows = [new FakeFlow('198.18.0.1', 1), new FakeFlow('fd00::1', 2, 'IPv6')];
    for (const f of flows) {
      (handlers[0] as (f: RelayUdpFlow) => void)(f);
      f.datagram('x', f.family === 'IPv4' ? '198.18.5.9' : 'fd00:5::9', 7);
    }
    await settle();
    expect(udp.signals[0]?.aborted).toBe(false);
    r.close();
    // ASSOCIATE handshakes still running are aborted.
    expect(udp.signals.map((s) => s?.aborted)).toEqual([true, true]);
    expect(handlers[1]).toBeUndefined();
    expect(flows.map((f) => f.closed)).toEqual([true, true]);
    expect(udp.associations.map((a) => a.closed)).toEqual([true, true]);
    expect(r.stats.flowsOpen).toBe(0);
  });
});

describe('UdpRelay: refusals and DNS over TCP', () => {
  it('answers every queued datagram with ICMP unreachable when ASSOCIATE fails', async () => {
    const udp = new FakeUdpDialer();
    udp.failWith = new DialError('EPROXY', 'proxy unreachable');
    const lines: string[] = [];
    const r = relay({ udpDialer: udp, log: new Logger('warn', (l) => lines.push(l)) });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram('1', '198.18.5.9', 7);
    flow.datagram('2', '198.18.5.9', 8);
    await settle();
    expect(flow.unreachables).toEqual([
      { address: '198.18.5.9', port: 7 },
      { address: '198.18.5.9', port: 8 },
    ]);
    expect(r.stats.dropped).toEqual({ 'associate-failed': 2 });
    // The next datagram tries again (the proxy may be back), and the warning is not repeated.
    flow.datagram('3', '198.18.5.9', 9);
    await settle();
    expect(udp.calls).toBe(2);
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain('UDP ASSOCIATE failed');
  });

  it('"no UDP": DNS goes over TCP, other ports are dropped, later flows skip ASSOCIATE', async () => {
    const udp = new FakeUdpDialer();
    udp.failWith = new UdpUnsupportedError('EPROXY', 'no UDP');
    const { dialer, dialed } = await dnsOverTcpDialer();
    const lines: string[] = [];
    const r = relay({ udpDialer: udp, dialer, log: new Logger('warn', (l) => lines.push(l)) });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram(dnsQuery(0x1234), '198.18.5.53', 53);
    flow.datagram('echo', '198.18.5.9', 7);
    await until(() => flow.sent.length === 1);
    expect(flow.sent[0]!.from).toEqual({ address: '198.18.5.53', port: 53 });
    expect(Buffer.from(flow.sent[0]!.payload, 'latin1').readUInt16BE(0)).toBe(0x1234);
    expect(flow.sent[0]!.payload.endsWith('A')).toBe(true);
    expect(dialed).toEqual([{ host: '198.18.5.53', port: 53 }]);
    expect(flow.unreachables).toEqual([]);
    expect(r.udpUnavailable).toBe(true);

    const later = new FakeFlow('198.18.0.1', 40001);
    r.accept(later);
    later.datagram(dnsQuery(7), '198.18.5.53', 53);
    later.datagram('echo', '198.18.5.9', 7);
    later.datagram('echo', '198.18.5.9', 7);
    await until(() => later.sent.length === 1);
    expect(udp.calls).toBe(1);
    expect(r.stats).toMatchObject({ dnsOverTcp: 2, datagramsDown: 2 });
    expect(r.stats.dropped).toEqual({ 'no-udp': 3 });
    expect(lines.filter((l) => l.includes('DNS goes over TCP')).length).toBe(1);
    expect(lines.filter((l) => l.includes('UDP dropped')).length).toBe(1);
  });

  it('without a UdpDialer: DNS over TCP in auto mode, nothing in never mode', async () => {
    const { dialer } = await dnsOverTcpDialer();
    const auto = relay({ udpDialer: undefined, dialer });
    const flow = new FakeFlow();
    auto.accept(flow);
    flow.datagram(dnsQuery(1), 'fd00:5::53', 53);
    await until(() => flow.sent.length === 1);
    expect(flow.sent[0]!.from).toEqual({ address: 'fd00:5::53', port: 53 });

    const never = relay({ udpDialer: undefined, dialer, dnsOverTcp: 'never' });
    const quiet = new FakeFlow();
    never.accept(quiet);
    quiet.datagram(dnsQuery(1), '198.18.5.53', 53);
    await settle();
    expect(never.stats.dropped).toEqual({ 'no-udp': 1 });
    expect(never.stats.dnsOverTcp).toBe(0);
  });

  it("'always' carries DNS over TCP even when the proxy has UDP", async () => {
    const udp = new FakeUdpDialer();
    const { dialer } = await dnsOverTcpDialer();
    const r = relay({ udpDialer: udp, dialer, dnsOverTcp: 'always' });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram(dnsQuery(1), '198.18.5.53', 53);
    flow.datagram('echo', '198.18.5.9', 7);
    await until(() => flow.sent.length === 1);
    await settle();
    expect(udp.associations[0]!.sent.map((s) => s.to.port)).toEqual([7]);
    expect(r.stats.dnsOverTcp).toBe(1);
  });

  it('a DNS-over-TCP dial failure is ICMP unreachable; a non-DNS payload is dropped', async () => {
    const port = await closedPort();
    const dialer: Dialer = {
      name: 'refusing',
      dial: () => Promise.reject(new DialError('ECONNREFUSED', `127.0.0.1:${port} refused`)),
    };
    const r = relay({ udpDialer: undefined, dialer });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram(dnsQuery(1), '198.18.5.53', 53);
    flow.datagram('tiny', '198.18.5.53', 53);
    await until(() => flow.unreachables.length === 1);
    expect(flow.unreachables).toEqual([{ address: '198.18.5.53', port: 53 }]);
    expect(r.stats.dropped).toEqual({ 'dns-dial-failed': 1, 'dns-malformed': 1 });
  });

  it('never relays to the loop guard (the proxy itself)', async () => {
    const udp = new FakeUdpDialer();
    const r = relay({ udpDialer: udp, loopGuard: [{ host: 'FD00:6:0::2', port: 1080 }] });
    const flow = new FakeFlow('fd00::1', 1, 'IPv6');
    r.accept(flow);
    flow.datagram('x', 'fd00:6::2', 1080);
    flow.datagram('y', 'fd00:6::2', 1081);
    await settle();
    expect(r.stats.dropped).toEqual({ loop: 1 });
    expect(udp.associations[0]!.sent.map((s) => s.payload)).toEqual(['y']);
  });
});
