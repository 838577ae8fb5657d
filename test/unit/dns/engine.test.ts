/**
 * The engine with `dns` set, on in-memory devices: UDP DNS to the stack's address answered with a
 * fake address, a datagram to that address sent by NAME with replies shown from the fake address,
 * other types forwarded through the proxy's association, unmapped fake addresses refused with
 * ICMP, hijack; TCP to a fake address dialed by name (the fake dialer records `{host}`), refused
 * when unmapped, and DNS over TCP served by the stack itself.
 */
import * as net from 'node:net';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import type { Destination, Dialer } from '../../../src/proxy/dialer.js';
import { DnsTcpFramer, frameDnsMessage } from '../../../src/relay/dns-over-tcp.js';
import { StackRuntime } from '../../../src/runtime.js';
import { seededRandom } from '../../../src/stack/random.js';
import { MemoryDevice, memoryPair } from '../../../src/tun/memory-device.js';
import { Tun2Socks, type Tun2SocksOptions } from '../../../src/tun2socks.js';
import { type FakeServer, startServer } from '../proxy/fake-server.js';
import { addr, udpPacket } from '../stack/packets.js';
import { FakeUdpDialer, firstData, query, settle, txtAnswer, until } from './fakes.js';

const CLIENT = addr('198.18.0.1');
const CLIENT6 = addr('fd00::1');
const DNS4 = addr('198.18.0.2');
const UPSTREAM = { host: '198.18.9.53', port: 53 };

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** A dialer connecting every destination to a local echo server, recording what it was asked. */
async function echoDialer(): Promise<{ dialer: Dialer; dialed: Destination[] }> {
  const server: FakeServer = await startServer((s) => s.pipe(s));
  cleanups.push(() => server.close());
  const dialed: Destination[] = [];
  return {
    dialed,
    dialer: {
      name: 'echo',
      dial: (dst) => {
        dialed.push(dst);
        return new Promise((resolve, reject) => {
          const s = net.connect(server.port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        });
      },
    },
  };
}

async function engine(options: Omit<Tun2SocksOptions, 'device'>, device: MemoryDevice): Promise<Tun2Socks> {
  const t = new Tun2Socks({ device, runtime: { random: seededRandom(3) }, ...options });
  await t.start();
  cleanups.push(() => t.close());
  return t;
}

/** The UDP payload and source of an IPv4/IPv6 packet the engine wrote (no options, no extension headers). */
function udpOf(packet: Uint8Array): { from: string; port: number; payload: Buffer; protocol: number } {
  const v6 = packet[0]! >> 4 === 6;
  const ipLength = v6 ? 40 : (packet[0]! & 0x0f) * 4;
  const protocol = v6 ? packet[6]! : packet[9]!;
  const src = v6 ? packet.subarray(8, 24) : packet.subarray(12, 16);
  const from = v6 ? Buffer.from(src).toString('hex') : Array.from(src).join('.');
  const port = (packet[ipLength]! << 8) | packet[ipLength + 1]!;
  return { from, port, payload: Buffer.from(packet.subarray(ipLength + 8)), protocol };
}

describe('engine dns over UDP', () => {
  it('answers, relays by name, forwards, refuses unmapped, counts', async () => {
    const device = new MemoryDevice();
    const udp = new FakeUdpDialer();
    const { dialer } = await echoDialer();
    const t = await engine({ dialer, udpDialer: udp, dns: { mode: 'fake-ip', upstream: UPSTREAM } }, device);

    // A name.test → 198.19.0.1, answered from 198.18.0.2:53.
    device.inject(udpPacket(CLIENT, DNS4, 40000, 53, query(0x77, 'name.test')));
    const out: ReturnType<typeof udpOf>[] = [];
    await until(() => {
      out.push(...device.drain().map(udpOf));
      return out.length > 0;
    });
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ from: '198.18.0.2', port: 53, protocol: 17 });
    expect(dnsPacket.decode(out[0]!.payload).answers?.[0]).toMatchObject({ data: '198.19.0.1' });

    // A datagram to the fake address goes to the NAME; the reply comes back from the fake address.
    device.inject(udpPacket(CLIENT, addr('198.19.0.1'), 40000, 9999, Buffer.from('hello')));
    await until(() => udp.associations.some((a) => a.sent.length > 0));
    const flowAssoc = udp.associations.find((a) => a.sent.length > 0)!;
    expect(flowAssoc.sent[0]!.to).toEqual({ host: 'name.test', port: 9999 });
    flowAssoc.reply(Buffer.from('world'), '203.0.113.5', 9999);
    await until(() =>
      device.drain().some((p) => {
        const u = udpOf(p);
        return u.from === '198.19.0.1' && u.port === 9999 && u.payload.toString() === 'world';
      }),
    );

    // A TXT query is forwarded to the upstream through an association of the proxy.
    device.inject(udpPacket(CLIENT, DNS4, 40001, 53, query(0x78, 'name.test', 'TXT')));
    await until(() => udp.associations.some((a) => a.sent.some((s) => s.to.port === 53)));
    const fwd = udp.associations.find((a) => a.sent.some((s) => s.to.port === 53))!;
    expect(fwd.sent[0]!.to).toEqual(UPSTREAM);
    fwd.reply(txtAnswer(fwd.sent[0]!.payload, 'remote'), UPSTREAM.host, 53);
    let txt: ReturnType<typeof udpOf> | undefined;
    await until(() => {
      txt = device
        .drain()
        .map(udpOf)
        .find((u) => u.port === 53);
      return txt !== undefined;
    });
    const decoded = dnsPacket.decode(txt!.payload);
    expect(decoded.id).toBe(0x78);
    expect(firstData(decoded!)).toBe('remote');

    // An unmapped fake address: ICMP port unreachable (protocol 1), counted.
    device.inject(udpPacket(CLIENT, addr('198.19.0.99'), 40002, 7, Buffer.from('x')));
    await until(() => device.drain().some((p) => p[9] === 1));
    const stats = t.stats();
    expect(stats.udp.dropped['fake-unmapped']).toBe(1);
    expect(stats.dns).toMatchObject({ answered: 1, forwarded: 1, unmapped: 1, fakeLive: 1 });
  });

  it('answers AAAA on the IPv6 DNS address and hijacks port 53 of any address', async () => {
    const device = new MemoryDevice();
    const { dialer } = await echoDialer();
    const t = await engine({ dialer, udpDialer: null, dns: { mode: 'fake-ip', hijack: true } }, device);
    device.inject(udpPacket(CLIENT6, addr('fdfe:dcba:9876::2'), 40000, 53, query(1, 'six.test', 'AAAA')));
    device.inject(udpPacket(CLIENT, addr('203.0.113.53'), 40000, 53, query(2, 'four.test')));
    const answers: ReturnType<typeof udpOf>[] = [];
    await until(() => {
      answers.push(...device.drain().map(udpOf));
      return answers.length >= 2;
    });
    const six = answers.find((a) => a.from.startsWith('fdfe'))!;
    expect(dnsPacket.decode(six.payload).answers?.[0]).toMatchObject({ data: 'fdfe:dcba:9877::1' });
    const four = answers.find((a) => a.from === '203.0.113.53')!;
    expect(dnsPacket.decode(four.payload).answers?.[0]).toMatchObject({ data: '198.19.0.1' });
    expect(t.stats().dns?.answered).toBe(2);
  });

  it("leaves DNS alone in 'direct' mode and has no dns counters", async () => {
    const device = new MemoryDevice();
    const udp = new FakeUdpDialer();
    const { dialer } = await echoDialer();
    const t = await engine({ dialer, udpDialer: udp, dns: { mode: 'direct' } }, device);
    device.inject(udpPacket(CLIENT, DNS4, 40000, 53, query(1, 'x.test')));
    await until(() => udp.associations.some((a) => a.sent.length > 0));
    expect(udp.associations[0]!.sent[0]!.to).toEqual({ host: '198.18.0.2', port: 53 });
    expect(t.stats().dns).toBeUndefined();
    expect(t.dns).toBeUndefined();
  });
});

describe('engine dns over TCP', () => {
  async function bed(
    dns: Tun2SocksOptions['dns'],
  ): Promise<{ client: StackRuntime; t: Tun2Socks; dialed: Destination[] }> {
    const [a, b] = memoryPair();
    const { dialer, dialed } = await echoDialer();
    const t = await engine({ dialer, udpDialer: null, ...(dns !== undefined ? { dns } : {}) }, b);
    const client = new StackRuntime(a, { random: seededRandom(4) });
    client.start();
    cleanups.push(() => client.close());
    return { client, t, dialed };
  }

  let nextPort = 41000;
  function connect(client: StackRuntime, host: string, port: number) {
    const socket = client.connect(
      { address: host.includes(':') ? 'fd00::1' : '198.18.0.1', port: nextPort++ },
      { address: host, port },
    );
    socket.on('error', () => {});
    return socket;
  }

  it('dials a fake address by name, refuses an unmapped one, and serves DNS over TCP locally', async () => {
    const { client, t, dialed } = await bed({ mode: 'fake-ip' });
    // DNS over TCP to 198.18.0.2:53, the query cut in two writes.
    const dnsSocket = connect(client, '198.18.0.2', 53);
    await new Promise((r) => dnsSocket.once('connect', r));
    const framer = new DnsTcpFramer();
    const answers: Buffer[] = [];
    dnsSocket.on('data', (c: Buffer) => answers.push(...framer.push(c).map((m) => Buffer.from(m))));
    const frame = frameDnsMessage(query(5, 'web.test'))!;
    dnsSocket.write(frame.subarray(0, 5));
    await settle();
    dnsSocket.write(frame.subarray(5));
    await until(() => answers.length === 1);
    expect(dnsPacket.decode(answers[0]!).answers?.[0]).toMatchObject({ data: '198.19.0.1' });
    expect(dialed).toEqual([]);

    // TCP to the fake address: dialed as web.test, bytes echo.
    const web = connect(client, '198.19.0.1', 80);
    await new Promise((r) => web.once('connect', r));
    expect(dialed).toEqual([{ host: 'web.test', port: 80 }]);
    const echoed = new Promise<string>((r) => web.once('data', (c: Buffer) => r(c.toString())));
    web.write('ping');
    expect(await echoed).toBe('ping');

    // An unmapped fake address is refused with RST.
    const refused = connect(client, '198.19.0.200', 80);
    const err = await new Promise<NodeJS.ErrnoException>((r) => refused.once('error', r));
    expect(err.code).toBe('ECONNREFUSED');
    expect(t.stats().tcp.failed['fake-unmapped']).toBe(1);
    expect(dialed).toHaveLength(1);
    web.destroy();
    dnsSocket.destroy();
  });

  it('without dns, a connection to a would-be fake address is dialed as is', async () => {
    const { client, dialed } = await bed(undefined);
    const s = connect(client, '198.19.0.1', 80);
    await new Promise((r) => s.once('connect', r));
    expect(dialed).toEqual([{ host: '198.19.0.1', port: 80 }]);
    s.destroy();
  });
});
