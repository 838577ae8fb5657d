/**
 * The UDP relay on a real StackRuntime over an in-memory device: client datagrams built as IP
 * packets go in, an association (scripted) carries them, and what comes out of the device is
 * checked as packets — replies from any remote (full cone), ICMP port unreachable when ASSOCIATE
 * fails, and the association closed with an idle flow and re-created by the next datagram.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Destination, Dialer } from '../../../src/proxy/dialer.js';
import { DialError } from '../../../src/proxy/errors.js';
import type { UdpAssociation, UdpDialer } from '../../../src/proxy/udp.js';
import { UdpRelay } from '../../../src/relay/udp-relay.js';
import { StackRuntime } from '../../../src/runtime.js';
import { seededRandom } from '../../../src/stack/random.js';
import { formatAddress } from '../../../src/stack/wire/address.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { Ipv6Packet } from '../../../src/stack/wire/ipv6.js';
import { UdpDatagram } from '../../../src/stack/wire/udp.js';
import { MemoryDevice } from '../../../src/tun/memory-device.js';
import { CLIENT4, CLIENT6, REMOTE4, REMOTE6, udpPacket } from '../stack/packets.js';

class ScriptedAssociation extends EventEmitter implements UdpAssociation {
  readonly sent: { payload: string; to: Destination }[] = [];
  closed = false;
  send(payload: Uint8Array, to: Destination): void {
    this.sent.push({ payload: Buffer.from(payload).toString(), to });
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }
}

class ScriptedUdpDialer implements UdpDialer {
  readonly name = 'scripted';
  readonly associations: ScriptedAssociation[] = [];
  failWith: Error | undefined;
  associate(): Promise<UdpAssociation> {
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    const a = new ScriptedAssociation();
    this.associations.push(a);
    return Promise.resolve(a);
  }
}

const noTcp: Dialer = { name: 'none', dial: () => Promise.reject(new DialError('EREJECTED', 'no TCP')) };

const runtimes: StackRuntime[] = [];
const relays: UdpRelay[] = [];
afterEach(async () => {
  for (const r of relays.splice(0)) r.close();
  await Promise.all(runtimes.splice(0).map((r) => r.close()));
});

function site(idleTimeoutMs = 60_000) {
  const device = new MemoryDevice();
  const out: Uint8Array[] = [];
  device.onTransmit = (p) => out.push(p.slice());
  const runtime = new StackRuntime(device, { random: seededRandom(5), options: { udp: { idleTimeoutMs } } });
  runtimes.push(runtime);
  const udp = new ScriptedUdpDialer();
  const relay = new UdpRelay({ udpDialer: udp, dialer: noTcp });
  relays.push(relay);
  relay.attach(runtime);
  runtime.start();
  return { device, out, udp, relay };
}

/** The addresses, ports and payload of a UDP packet, or the ICMP type/code of an error. */
function decode(p: Uint8Array) {
  const ip = p[0]! >> 4 === 4 ? new Ipv4Packet(p) : new Ipv6Packet(p);
  const proto = ip instanceof Ipv4Packet ? ip.protocol : ip.nextHeader;
  const head = { src: formatAddress(ip.src), dst: formatAddress(ip.dst) };
  if (proto !== 17) return { ...head, icmp: [ip.payload[0], ip.payload[1]] };
  const udp = new UdpDatagram(ip.payload);
  return { ...head, sport: udp.srcPort, dport: udp.dstPort, data: Buffer.from(udp.payload).toString() };
}

async function until(what: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(what()).toBe(true);
}

const text = (s: string) => new TextEncoder().encode(s);

describe('UdpRelay on a StackRuntime', () => {
  it('relays v4 and v6 flows and writes replies from any remote back to the client', async () => {
    const { device, out, udp } = site();
    device.inject(udpPacket(CLIENT4, REMOTE4, 4000, 7, text('ping4')));
    device.inject(udpPacket(CLIENT6, REMOTE6, 6000, 7, text('ping6')));
    await until(() => udp.associations.length === 2 && udp.associations.every((a) => a.sent.length === 1));
    expect(udp.associations.map((a) => a.sent[0])).toEqual([
      { payload: 'ping4', to: { host: '198.18.5.9', port: 7 } },
      { payload: 'ping6', to: { host: 'fd00:5::9', port: 7 } },
    ]);
    udp.associations[0]!.emit('message', Buffer.from('pong4'), { address: '198.18.99.1', port: 9999 });
    udp.associations[1]!.emit('message', Buffer.from('pong6'), { address: 'fd00:5::9', port: 7 });
    await until(() => out.length === 2);
    expect(out.map(decode)).toEqual([
      { src: '198.18.99.1', dst: '198.18.0.1', sport: 9999, dport: 4000, data: 'pong4' },
      { src: 'fd00:5::9', dst: 'fd00::1', sport: 7, dport: 6000, data: 'pong6' },
    ]);
  });

  it('answers with ICMP port unreachable when ASSOCIATE fails (v4 and v6)', async () => {
    const { device, out, udp, relay } = site();
    udp.failWith = new DialError('EPROXY', 'proxy unreachable');
    device.inject(udpPacket(CLIENT4, REMOTE4, 4000, 7, text('x')));
    device.inject(udpPacket(CLIENT6, REMOTE6, 6000, 7, text('y')));
    await until(() => out.length === 2);
    // RFC 792: type 3 code 3; RFC 4443 §3.1: type 1 code 4.
    expect(out.map(decode)).toEqual([
      { src: '198.18.5.9', dst: '198.18.0.1', icmp: [3, 3] },
      { src: 'fd00:5::9', dst: 'fd00::1', icmp: [1, 4] },
    ]);
    expect(relay.stats.dropped).toEqual({ 'associate-failed': 2 });
  });

  it('closes the association with an idle flow; the next datagram opens a new one', async () => {
    const { device, udp, relay } = site(50);
    device.inject(udpPacket(CLIENT4, REMOTE4, 4000, 7, text('1')));
    await until(() => udp.associations.length === 1);
    await until(() => udp.associations[0]!.closed);
    expect(relay.stats.flowsOpen).toBe(0);
    device.inject(udpPacket(CLIENT4, REMOTE4, 4000, 7, text('2')));
    await until(() => udp.associations.length === 2 && udp.associations[1]!.sent.length === 1);
    expect(relay.stats).toMatchObject({ flowsTotal: 2, associations: 2, flowsOpen: 1 });
  });
});
