/**
 * UDP flows through the runtime: datagrams from a client endpoint arrive as 'datagram' events on
 * one UdpFlow, replies go back from any address, ICMP errors on request, idle flows close.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StackRuntime } from '../../../src/runtime.js';
import { seededRandom } from '../../../src/stack/random.js';
import { formatAddress } from '../../../src/stack/wire/address.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { Ipv6Packet } from '../../../src/stack/wire/ipv6.js';
import { UdpDatagram } from '../../../src/stack/wire/udp.js';
import { MemoryDevice } from '../../../src/tun/memory-device.js';
import type { UdpEndpoint, UdpFlow } from '../../../src/udp-flow.js';
import { CLIENT4, CLIENT6, REMOTE4, REMOTE6, udpPacket } from '../stack/packets.js';

const open: StackRuntime[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

function bed(options: { idleTimeoutMs?: number } = {}) {
  const device = new MemoryDevice();
  const sent: Uint8Array[] = [];
  device.onTransmit = (p) => sent.push(p);
  const runtime = new StackRuntime(device, { random: seededRandom(3), options: { udp: options } });
  open.push(runtime);
  runtime.start();
  return { device, runtime, sent };
}

const text = (s: string) => new TextEncoder().encode(s);

function udpOf(p: Uint8Array) {
  const v4 = p[0]! >> 4 === 4;
  const ip = v4 ? new Ipv4Packet(p) : new Ipv6Packet(p);
  const udp = new UdpDatagram(ip.payload);
  return {
    src: formatAddress(ip.src),
    dst: formatAddress(ip.dst),
    sport: udp.srcPort,
    dport: udp.dstPort,
    data: new TextDecoder().decode(udp.payload),
  };
}

describe('runtime UDP flows', () => {
  it('emits the first datagram after the handler ran, and replies from any address (v4 and v6)', async () => {
    for (const [client, remote, other] of [
      [CLIENT4, REMOTE4, '198.18.44.4'],
      [CLIENT6, REMOTE6, 'fd00:44::4'],
    ] as const) {
      const { device, runtime, sent } = bed();
      const got: [string, UdpEndpoint][] = [];
      let flow: UdpFlow | undefined;
      runtime.onUdpFlow((f) => {
        flow = f;
        f.on('datagram', (payload, dst) => got.push([payload.toString(), dst]));
      });
      device.inject(udpPacket(client, remote, 1234, 53, text('hello')));
      device.inject(udpPacket(client, remote, 1234, 5353, text('again')));
      await new Promise((r) => setImmediate(r));
      expect(flow?.clientAddress).toBe(formatAddress(client));
      expect(flow?.clientPort).toBe(1234);
      expect(got).toEqual([
        ['hello', { address: formatAddress(remote), port: 53 }],
        ['again', { address: formatAddress(remote), port: 5353 }],
      ]);
      expect(flow!.send(text('answer'), { address: other, port: 99 })).toBe(true);
      expect(udpOf(sent[0]!)).toEqual({
        src: other,
        dst: formatAddress(client),
        sport: 99,
        dport: 1234,
        data: 'answer',
      });
      expect(
        flow!.send(text('x'), { address: client.length === 4 ? 'fd00::9' : '198.18.0.9', port: 1 }),
      ).toBe(false);
      expect(flow!.send(text('x'), { address: 'not an address', port: 1 })).toBe(false);
    }
  });

  it('accepts IPv4-mapped IPv6 sources for an IPv4 flow (dual-stack sockets report those)', async () => {
    const { device, runtime, sent } = bed();
    let flow: UdpFlow | undefined;
    runtime.onUdpFlow((f) => {
      flow = f;
    });
    device.inject(udpPacket(CLIENT4, REMOTE4, 1234, 53, text('q')));
    await new Promise((r) => setImmediate(r));
    expect(flow!.send(text('a'), { address: '::ffff:198.18.5.9', port: 53 })).toBe(true);
    expect(udpOf(sent[0]!).src).toBe('198.18.5.9');
  });

  it('closes an idle flow with reason idle, and a new datagram opens a new flow', async () => {
    const { device, runtime } = bed({ idleTimeoutMs: 50 });
    const events: string[] = [];
    runtime.onUdpFlow((f) => {
      events.push(`open ${f.clientPort}`);
      f.on('close', (reason) => events.push(`close ${reason}`));
    });
    device.inject(udpPacket(CLIENT4, REMOTE4, 1234, 53, text('q')));
    await new Promise((r) => setTimeout(r, 200));
    expect(events).toEqual(['open 1234', 'close idle']);
    device.inject(udpPacket(CLIENT4, REMOTE4, 1234, 53, text('q')));
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['open 1234', 'close idle', 'open 1234']);
  });

  it('sends Port Unreachable on request and without a handler; close() and runtime.close() end flows', async () => {
    const { device, runtime, sent } = bed();
    device.inject(udpPacket(CLIENT4, REMOTE4, 1234, 53, text('q')));
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(1); // no handler: Port Unreachable
    const flows: UdpFlow[] = [];
    const reasons: string[] = [];
    runtime.onUdpFlow((f) => {
      flows.push(f);
      f.on('close', (r) => reasons.push(r));
    });
    device.inject(udpPacket(CLIENT4, REMOTE4, 1234, 53, text('q')));
    device.inject(udpPacket(CLIENT4, REMOTE4, 1235, 53, text('q')));
    await new Promise((r) => setImmediate(r));
    flows[0]!.unreachable({ address: '198.18.5.9', port: 53 });
    const icmp = sent.at(-1)!;
    expect([icmp[9], icmp[20], icmp[21]]).toEqual([1, 3, 3]);
    flows[0]!.close();
    expect(flows[0]!.closed).toBe(true);
    await runtime.close();
    expect(reasons).toEqual(['owner', 'owner']);
  });
});
