import { describe, expect, it } from 'vitest';
import { pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { Icmpv4Packet, Icmpv4Repr, Icmpv4Type } from '../../../src/stack/wire/icmpv4.js';
import { Icmpv6Packet, Icmpv6Type } from '../../../src/stack/wire/icmpv6.js';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { Ipv6Packet } from '../../../src/stack/wire/ipv6.js';
import { TcpFlags, TcpSegment } from '../../../src/stack/wire/tcp.js';
import {
  CLIENT4,
  CLIENT6,
  echoRequest,
  fragmentV4,
  ipPacket,
  REMOTE4,
  REMOTE6,
  tcpPacket,
  testStack,
  udpPacket,
} from './packets.js';

function icmpv4Of(p: Uint8Array): Icmpv4Packet {
  const icmp = new Icmpv4Packet(new Ipv4Packet(p).payload);
  expect(icmp.verifyChecksum()).toBe(true);
  return icmp;
}

function icmpv6Of(p: Uint8Array): Icmpv6Packet {
  const ip = new Ipv6Packet(p);
  const icmp = new Icmpv6Packet(ip.payload);
  expect(icmp.verifyChecksum(pseudoHeaderSum(ip.src, ip.dst, IpProtocol.ICMPV6, ip.payload.length))).toBe(
    true,
  );
  return icmp;
}

describe('closed ports, as a host with nothing listening', () => {
  it('answers UDP with ICMP port unreachable quoting the datagram (IPv4)', () => {
    const { stack, sent } = testStack();
    const dgram = udpPacket(CLIENT4, REMOTE4, 5353, 53, new Uint8Array(30).fill(7));
    stack.input(dgram, 0);
    expect(sent).toHaveLength(1);
    const ip = new Ipv4Packet(sent[0]!);
    expect(ip.src).toEqual(REMOTE4);
    expect(ip.dst).toEqual(CLIENT4);
    const icmp = icmpv4Of(sent[0]!);
    expect([icmp.type, icmp.code]).toEqual([Icmpv4Type.DEST_UNREACHABLE, 3]);
    expect(icmp.data).toEqual(dgram);
    expect(stack.stats.drops.get('udp-port-unreachable')).toBe(1);
  });

  it('answers UDP with ICMPv6 port unreachable (code 4)', () => {
    const { stack, sent } = testStack();
    const dgram = udpPacket(CLIENT6, REMOTE6, 5353, 53, new Uint8Array(10));
    stack.input(dgram, 0);
    const icmp = icmpv6Of(sent[0]!);
    expect([icmp.type, icmp.code]).toEqual([Icmpv6Type.DEST_UNREACHABLE, 4]);
    expect(icmp.data).toEqual(dgram);
  });

  it('quotes at most 576 bytes in ICMPv4 and 1280 in ICMPv6 errors', () => {
    const { stack, sent } = testStack({ mtu: 9000 });
    stack.input(udpPacket(CLIENT4, REMOTE4, 1, 2, new Uint8Array(3000)), 0);
    stack.input(udpPacket(CLIENT6, REMOTE6, 1, 2, new Uint8Array(3000)), 0);
    expect(sent[0]!.length).toBe(576);
    expect(sent[1]!.length).toBe(1280);
  });

  it('drops UDP with a bad checksum without answering', () => {
    const { stack, sent } = testStack();
    const dgram = udpPacket(CLIENT4, REMOTE4, 1000, 2000, new Uint8Array(8).fill(1));
    dgram[dgram.length - 1] = 9;
    stack.input(dgram, 0);
    expect(sent).toHaveLength(0);
    expect(stack.stats.drops.get('udp-bad-checksum')).toBe(1);
  });

  it('answers a SYN with RST|ACK acknowledging it (RFC 9293 §3.10.7.1)', () => {
    const { stack, sent } = testStack();
    stack.input(
      tcpPacket(CLIENT4, REMOTE4, { srcPort: 40000, dstPort: 80, seq: 1000, flags: TcpFlags.SYN }),
      0,
    );
    expect(sent).toHaveLength(1);
    const ip = new Ipv4Packet(sent[0]!);
    const seg = new TcpSegment(ip.payload);
    expect(seg.verifyChecksum(pseudoHeaderSum(ip.src, ip.dst, IpProtocol.TCP, ip.payload.length))).toBe(true);
    expect([seg.srcPort, seg.dstPort, seg.seqNumber, seg.ackNumber]).toEqual([80, 40000, 0, 1001]);
    expect(seg.flags).toBe(TcpFlags.RST | TcpFlags.ACK);
  });

  it('answers a stray ACK with RST at its ack number, and never answers a RST (IPv6)', () => {
    const { stack, sent } = testStack();
    stack.input(
      tcpPacket(CLIENT6, REMOTE6, { srcPort: 4, dstPort: 443, seq: 5, ack: 0xfffffff0, flags: TcpFlags.ACK }),
      0,
    );
    stack.input(tcpPacket(CLIENT6, REMOTE6, { srcPort: 4, dstPort: 443, seq: 5, flags: TcpFlags.RST }), 0);
    expect(sent).toHaveLength(1);
    const ip = new Ipv6Packet(sent[0]!);
    const seg = new TcpSegment(ip.payload);
    expect(seg.verifyChecksum(pseudoHeaderSum(ip.src, ip.dst, IpProtocol.TCP, ip.payload.length))).toBe(true);
    expect([seg.seqNumber, seg.flags]).toEqual([0xfffffff0, TcpFlags.RST]);
    expect(stack.stats.drops.get('tcp-no-connection')).toBe(2);
  });

  it('answers an unknown protocol with protocol unreachable (v4) and parameter problem code 1 (v6)', () => {
    const { stack, sent } = testStack();
    stack.input(ipPacket(CLIENT4, REMOTE4, 132 /* SCTP */, new Uint8Array(12)), 0);
    stack.input(ipPacket(CLIENT6, REMOTE6, 132, new Uint8Array(12)), 0);
    const v4 = icmpv4Of(sent[0]!);
    expect([v4.type, v4.code]).toEqual([Icmpv4Type.DEST_UNREACHABLE, 2]);
    const v6 = icmpv6Of(sent[1]!);
    expect([v6.type, v6.code, v6.pointer]).toEqual([Icmpv6Type.PARAMETER_PROBLEM, 1, 6]);
  });
});

describe('when not to send an ICMP error (RFC 1122 §3.2.2, RFC 4443 §2.4)', () => {
  it('never about an ICMP error message, nor from a source that is not one host', () => {
    const { stack, sent } = testStack();
    // A large ICMP Destination Unreachable whose first fragment times out: no Time Exceeded.
    const error: Icmpv4Repr = {
      kind: 'dest-unreachable',
      code: 3,
      nextHopMtu: 0,
      invoking: new Uint8Array(2000),
    };
    const msg = new Uint8Array(Icmpv4Repr.length(error));
    Icmpv4Repr.emit(error, msg);
    stack.input(fragmentV4(ipPacket(CLIENT4, REMOTE4, IpProtocol.ICMP, msg), 1480)[0]!, 0);
    stack.poll(100_000);
    // UDP from 0.0.0.0 (a DHCP client) to a closed port: no Port Unreachable.
    stack.input(udpPacket(new Uint8Array(4), REMOTE4, 68, 67, new Uint8Array(4)), 0);
    expect(sent).toHaveLength(0);
    expect(stack.stats.drops.get('frag-timeout')).toBe(1);
    expect(stack.stats.drops.get('udp-port-unreachable')).toBe(1);
  });

  it('is rate limited by a token bucket', () => {
    const { stack, sent } = testStack({ icmpErrorBurst: 5, icmpErrorRatePerSec: 10 });
    for (let i = 0; i < 20; i++) stack.input(udpPacket(CLIENT4, REMOTE4, 1000 + i, 9, new Uint8Array(1)), 0);
    expect(sent).toHaveLength(5);
    expect(stack.stats.icmpErrorsRateLimited).toBe(15);
    // 10 per second: after 500 ms five more tokens.
    for (let i = 0; i < 20; i++)
      stack.input(udpPacket(CLIENT4, REMOTE4, 2000 + i, 9, new Uint8Array(1)), 500);
    expect(sent).toHaveLength(10);
  });

  it('sends Time Exceeded (reassembly) when a datagram times out after its first fragment', () => {
    const { stack, sent } = testStack();
    const frags = fragmentV4(echoRequest(CLIENT4, REMOTE4, 3000), 1480);
    stack.input(frags[0]!, 1000);
    expect(stack.nextDeadline()).toBe(31_000);
    stack.poll(30_999);
    expect(sent).toHaveLength(0);
    stack.poll(31_000);
    expect(sent).toHaveLength(1);
    const icmp = icmpv4Of(sent[0]!);
    expect([icmp.type, icmp.code]).toEqual([Icmpv4Type.TIME_EXCEEDED, 1]);
    expect(stack.stats.drops.get('frag-timeout')).toBe(1);
    expect(stack.nextDeadline()).toBeUndefined();
  });

  it('stays silent when a datagram without its first fragment times out', () => {
    const { stack, sent } = testStack();
    const frags = fragmentV4(echoRequest(CLIENT4, REMOTE4, 3000), 1480);
    stack.input(frags[1]!, 0);
    stack.poll(60_000);
    expect(sent).toHaveLength(0);
    expect(stack.stats.drops.get('frag-timeout')).toBe(1);
  });
});
