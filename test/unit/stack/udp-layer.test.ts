import { describe, expect, it } from 'vitest';
import type { UdpCloseReason, UdpFlowEntry, UdpOwner } from '../../../src/stack/udp/udp-layer.js';
import { formatAddress } from '../../../src/stack/wire/address.js';
import { pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { Icmpv4Packet } from '../../../src/stack/wire/icmpv4.js';
import { Icmpv6Packet } from '../../../src/stack/wire/icmpv6.js';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { Ipv6Packet } from '../../../src/stack/wire/ipv6.js';
import { TcpSegment } from '../../../src/stack/wire/tcp.js';
import { UdpDatagram } from '../../../src/stack/wire/udp.js';
import { addr, CLIENT4, CLIENT6, REMOTE4, REMOTE6, tcpPacket, testStack, udpPacket } from './packets.js';

/** An owner that records what the layer tells it. */
function recorder() {
  const log: string[] = [];
  const flows: UdpFlowEntry[] = [];
  const owner: UdpOwner = {
    opened: (f) => {
      flows.push(f);
      log.push(`open ${formatAddress(f.clientAddress)}:${f.clientPort}`);
    },
    datagram: (f, payload, dst, dstPort) =>
      log.push(
        `data #${flows.indexOf(f)} -> ${formatAddress(dst)}:${dstPort} ${new TextDecoder().decode(payload)}`,
      ),
    closed: (f, reason: UdpCloseReason) => log.push(`close #${flows.indexOf(f)} ${reason}`),
  };
  return { log, flows, owner };
}

const text = (s: string) => new TextEncoder().encode(s);

/** The UDP datagram inside a sent IPv4 or IPv6 packet, with its addresses. */
function parseSent(p: Uint8Array) {
  if (p[0]! >> 4 === 4) {
    const ip = new Ipv4Packet(p);
    return {
      src: formatAddress(ip.src),
      dst: formatAddress(ip.dst),
      proto: ip.protocol,
      body: ip.payload,
      ip,
    };
  }
  const ip = new Ipv6Packet(p);
  return {
    src: formatAddress(ip.src),
    dst: formatAddress(ip.dst),
    proto: ip.nextHeader,
    body: ip.payload,
    ip,
  };
}

describe('UDP layer: flows per client endpoint (full cone)', () => {
  it('delivers every destination of one client port to one flow, and a second port to a second flow', () => {
    const { stack } = testStack();
    const r = recorder();
    stack.udp.owner = r.owner;
    stack.input(udpPacket(CLIENT4, REMOTE4, 40000, 53, text('q1')), 0);
    stack.input(udpPacket(CLIENT4, addr('198.18.7.7'), 40000, 7, text('q2')), 1);
    stack.input(udpPacket(CLIENT4, REMOTE4, 40001, 53, text('q3')), 2);
    expect(r.log).toEqual([
      'open 198.18.0.1:40000',
      'data #0 -> 198.18.5.9:53 q1',
      'data #0 -> 198.18.7.7:7 q2',
      'open 198.18.0.1:40001',
      'data #1 -> 198.18.5.9:53 q3',
    ]);
    expect(stack.udp.size).toBe(2);
    expect(stack.stats.udpFlowsOpened).toBe(2);
    expect(stack.stats.udpDatagramsIn).toBe(3);
  });

  it('sends replies from any remote address with a valid checksum, IPv4 and IPv6', () => {
    for (const [client, remote] of [
      [CLIENT4, REMOTE4],
      [CLIENT6, REMOTE6],
    ] as const) {
      const { stack, sent } = testStack();
      const r = recorder();
      stack.udp.owner = r.owner;
      stack.input(udpPacket(client, remote, 5000, 53, text('q')), 0);
      const other = client.length === 4 ? addr('198.18.200.1') : addr('fd00:77::1');
      expect(stack.udp.send(r.flows[0]!, other, 9999, text('reply'))).toBe(true);
      const out = parseSent(sent[0]!);
      expect([out.src, out.dst, out.proto]).toEqual([
        formatAddress(other),
        formatAddress(client),
        IpProtocol.UDP,
      ]);
      const udp = new UdpDatagram(out.body);
      expect(udp.check()).toBeUndefined();
      expect([udp.srcPort, udp.dstPort]).toEqual([9999, 5000]);
      expect(new TextDecoder().decode(udp.payload)).toBe('reply');
      expect(
        udp.verifyChecksum(pseudoHeaderSum(other, client, IpProtocol.UDP, udp.length), client.length === 16),
      ).toBe(true);
    }
  });

  it('refuses a reply of the other family or on a closed flow', () => {
    const { stack, sent } = testStack();
    const r = recorder();
    stack.udp.owner = r.owner;
    stack.input(udpPacket(CLIENT4, REMOTE4, 5000, 53, text('q')), 0);
    const flow = r.flows[0]!;
    expect(stack.udp.send(flow, REMOTE6, 53, text('x'))).toBe(false);
    stack.udp.close(flow);
    expect(r.log.at(-1)).toBe('close #0 owner');
    expect(stack.udp.send(flow, REMOTE4, 53, text('x'))).toBe(false);
    expect(sent).toHaveLength(0);
  });

  it('fragments a reply larger than the MTU', () => {
    const { stack, sent } = testStack({ mtu: 1500 });
    const r = recorder();
    stack.udp.owner = r.owner;
    stack.input(udpPacket(CLIENT4, REMOTE4, 5000, 53, text('q')), 0);
    expect(stack.udp.send(r.flows[0]!, REMOTE4, 53, new Uint8Array(4000))).toBe(true);
    expect(sent.length).toBe(3);
    expect(stack.stats.datagramsFragmented).toBe(1);
  });

  it('answers Port Unreachable while there is no owner, quoting the datagram', () => {
    const { stack, sent } = testStack();
    const dgram = udpPacket(CLIENT4, REMOTE4, 5353, 53, text('nobody'));
    stack.input(dgram, 0);
    expect(stack.stats.drops.get('udp-port-unreachable')).toBe(1);
    const out = parseSent(sent[0]!);
    const icmp = new Icmpv4Packet(out.body);
    expect([out.src, out.dst, icmp.type, icmp.code]).toEqual(['198.18.5.9', '198.18.0.1', 3, 3]);
  });
});

describe('UDP layer: idle timeout and the flow bound', () => {
  it('closes a flow idle for the timeout; traffic either way keeps it open', () => {
    const { stack } = testStack({ udp: { idleTimeoutMs: 1000 } });
    const r = recorder();
    stack.udp.owner = r.owner;
    stack.input(udpPacket(CLIENT4, REMOTE4, 5000, 53, text('a')), 0);
    expect(stack.nextDeadline()).toBe(1000);
    stack.udp.now = 800;
    stack.udp.send(r.flows[0]!, REMOTE4, 53, text('reply'));
    stack.poll(1000);
    expect(stack.udp.size).toBe(1);
    expect(stack.nextDeadline()).toBe(1800);
    stack.poll(1800);
    expect(r.log.at(-1)).toBe('close #0 idle');
    expect(stack.udp.size).toBe(0);
    expect(stack.stats.udpFlowsExpired).toBe(1);
    expect(stack.nextDeadline()).toBeUndefined();
    // The client's next datagram opens a new flow.
    stack.input(udpPacket(CLIENT4, REMOTE4, 5000, 53, text('b')), 2000);
    expect(r.log.slice(-2)).toEqual(['open 198.18.0.1:5000', 'data #1 -> 198.18.5.9:53 b']);
  });

  it('evicts the least recently active flow when the table is full', () => {
    const { stack } = testStack({ udp: { maxFlows: 2 } });
    const r = recorder();
    stack.udp.owner = r.owner;
    stack.input(udpPacket(CLIENT4, REMOTE4, 1, 53, text('a')), 0);
    stack.input(udpPacket(CLIENT4, REMOTE4, 2, 53, text('b')), 1);
    stack.input(udpPacket(CLIENT4, REMOTE4, 1, 53, text('a2')), 2); // port 1 is now the most recent
    stack.input(udpPacket(CLIENT4, REMOTE4, 3, 53, text('c')), 3);
    expect(r.log).toContain('close #1 evicted');
    expect(stack.udp.size).toBe(2);
    expect(stack.stats.udpFlowsEvicted).toBe(1);
  });

  it('keeps IPv4 and IPv6 clients with equal ports apart', () => {
    const { stack } = testStack();
    const r = recorder();
    stack.udp.owner = r.owner;
    stack.input(udpPacket(CLIENT4, REMOTE4, 7, 7, text('4')), 0);
    stack.input(udpPacket(CLIENT6, REMOTE6, 7, 7, text('6')), 0);
    stack.input(udpPacket(addr('fd00::2'), REMOTE6, 7, 7, text('6b')), 0);
    expect(stack.udp.size).toBe(3);
  });
});

describe('Destination Unreachable about a packet no longer held', () => {
  it('UDP: quotes a rebuilt client → destination header, IPv4 code 3 and IPv6 code 4', () => {
    for (const [client, remote, code] of [
      [CLIENT4, REMOTE4, 3],
      [CLIENT6, REMOTE6, 4],
    ] as const) {
      const { stack, sent } = testStack();
      const r = recorder();
      stack.udp.owner = r.owner;
      stack.input(udpPacket(client, remote, 5000, 53, text('q')), 0);
      stack.udp.unreachable(r.flows[0]!, remote, 53);
      const out = parseSent(sent[0]!);
      expect([out.src, out.dst]).toEqual([formatAddress(remote), formatAddress(client)]);
      const type = client.length === 4 ? new Icmpv4Packet(out.body).type : new Icmpv6Packet(out.body).type;
      const gotCode = client.length === 4 ? new Icmpv4Packet(out.body).code : new Icmpv6Packet(out.body).code;
      expect([type, gotCode]).toEqual([client.length === 4 ? 3 : 1, code]);
      // The quote: the client's datagram header, ports in client order.
      const quoted = out.body.subarray(8);
      const inner = client.length === 4 ? new Ipv4Packet(quoted).payload : quoted.subarray(40);
      const q = new UdpDatagram(inner);
      expect([q.srcPort, q.dstPort]).toEqual([5000, 53]);
    }
  });

  it('TCP reject: host and net unreachable quote the SYN with its sequence number', () => {
    for (const [how, v4code, v6code] of [
      ['host-unreachable', 1, 3],
      ['net-unreachable', 0, 0],
    ] as const) {
      for (const [client, remote] of [
        [CLIENT4, REMOTE4],
        [CLIENT6, REMOTE6],
      ] as const) {
        const { stack, sent } = testStack();
        stack.tcp.listening = true;
        stack.input(
          tcpPacket(client, remote, { srcPort: 40000, dstPort: 80, seq: 0x11223344, flags: 0x02 }),
          0,
        );
        let conn: Parameters<Parameters<typeof stack.tcp.takeEvents>[0]>[0] | undefined;
        stack.tcp.takeEvents((c) => {
          conn = c;
        });
        conn!.reject(how);
        stack.flush(0);
        expect(sent).toHaveLength(1);
        const out = parseSent(sent[0]!);
        const v4 = client.length === 4;
        const msg = v4 ? new Icmpv4Packet(out.body) : new Icmpv6Packet(out.body);
        expect([msg.type, msg.code]).toEqual(v4 ? [3, v4code] : [1, v6code]);
        const quoted = out.body.subarray(8);
        const seg = new TcpSegment(v4 ? new Ipv4Packet(quoted).payload : quoted.subarray(40));
        expect([seg.srcPort, seg.dstPort, seg.seqNumber, seg.syn]).toEqual([40000, 80, 0x11223344, true]);
        expect(stack.tcp.size).toBe(0);
      }
    }
  });
});
