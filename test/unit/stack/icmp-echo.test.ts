import { describe, expect, it } from 'vitest';
import { formatAddress } from '../../../src/stack/wire/address.js';
import { pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { Icmpv4Packet, Icmpv4Type } from '../../../src/stack/wire/icmpv4.js';
import { Icmpv6Packet, Icmpv6Type } from '../../../src/stack/wire/icmpv6.js';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { Ipv6Packet } from '../../../src/stack/wire/ipv6.js';
import {
  addr,
  CLIENT4,
  CLIENT6,
  echoRequest,
  fragmentV4,
  fragmentV6,
  pattern,
  REMOTE4,
  REMOTE6,
  testStack,
} from './packets.js';

function parseV4Reply(p: Uint8Array) {
  const ip = new Ipv4Packet(p);
  expect(ip.check()).toBeUndefined();
  expect(ip.verifyChecksum()).toBe(true);
  const icmp = new Icmpv4Packet(ip.payload);
  expect(icmp.check()).toBeUndefined();
  expect(icmp.verifyChecksum()).toBe(true);
  return { ip, icmp };
}

function parseV6Reply(p: Uint8Array) {
  const ip = new Ipv6Packet(p);
  expect(ip.check()).toBeUndefined();
  const icmp = new Icmpv6Packet(ip.payload);
  expect(icmp.check()).toBeUndefined();
  expect(icmp.verifyChecksum(pseudoHeaderSum(ip.src, ip.dst, IpProtocol.ICMPV6, ip.payload.length))).toBe(
    true,
  );
  return { ip, icmp };
}

/** Joins fragments the stack sent back into one payload, checking each fits the MTU. */
function joinV4(frags: Uint8Array[], mtu: number): Uint8Array {
  const parts = frags.map((f) => {
    expect(f.length).toBeLessThanOrEqual(mtu);
    const ip = new Ipv4Packet(f);
    expect(ip.verifyChecksum()).toBe(true);
    return { off: ip.fragmentOffset, more: ip.moreFragments, data: ip.payload.slice() };
  });
  expect(parts.at(-1)!.more).toBe(false);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.data.length, 0));
  for (const p of parts) out.set(p.data, p.off);
  return out;
}

describe('ICMP echo for any destination', () => {
  it('answers an IPv4 ping from the address it was sent to', () => {
    const { stack, sent } = testStack();
    stack.input(echoRequest(CLIENT4, REMOTE4, 56, 0x77, 3), 0);
    expect(sent).toHaveLength(1);
    const { ip, icmp } = parseV4Reply(sent[0]!);
    expect(formatAddress(ip.src)).toBe('198.18.5.9');
    expect(formatAddress(ip.dst)).toBe('198.18.0.1');
    expect(ip.ttl).toBe(64);
    expect(icmp.type).toBe(Icmpv4Type.ECHO_REPLY);
    expect(icmp.identifier).toBe(0x77);
    expect(icmp.sequence).toBe(3);
    expect(icmp.data).toEqual(pattern(56));
    expect(stack.stats.echoReplies).toBe(1);
  });

  it('answers an IPv6 ping from the address it was sent to', () => {
    const { stack, sent } = testStack();
    stack.input(echoRequest(CLIENT6, REMOTE6, 56, 9, 1), 0);
    expect(sent).toHaveLength(1);
    const { ip, icmp } = parseV6Reply(sent[0]!);
    expect(formatAddress(ip.src)).toBe('fd00:5::9');
    expect(formatAddress(ip.dst)).toBe('fd00::1');
    expect(icmp.type).toBe(Icmpv6Type.ECHO_REPLY);
    expect(icmp.identifier).toBe(9);
    expect(icmp.data).toEqual(pattern(56));
  });

  it('answers any destination, one reply per request', () => {
    const { stack, sent } = testStack();
    for (const d of ['198.18.0.2', '198.19.255.254', '198.18.77.1'])
      stack.input(echoRequest(CLIENT4, addr(d)), 0);
    expect(sent.map((p) => formatAddress(new Ipv4Packet(p).src))).toEqual([
      '198.18.0.2',
      '198.19.255.254',
      '198.18.77.1',
    ]);
  });

  it('stays silent and counts when echo is switched off', () => {
    const { stack, sent } = testStack({ icmpEcho: false });
    stack.input(echoRequest(CLIENT4, REMOTE4), 0);
    stack.input(echoRequest(CLIENT6, REMOTE6), 0);
    expect(sent).toHaveLength(0);
    expect(stack.stats.drops.get('icmpv4-echo-disabled')).toBe(1);
    expect(stack.stats.drops.get('icmpv6-echo-disabled')).toBe(1);
  });

  it('drops a ping with a bad ICMP checksum, counted', () => {
    const { stack, sent } = testStack();
    const p = echoRequest(CLIENT4, REMOTE4);
    p[30] = p[30]! ^ 0xff;
    stack.input(p, 0);
    expect(sent).toHaveLength(0);
    expect(stack.stats.drops.get('icmpv4-bad-checksum')).toBe(1);
  });

  it('ignores pings to broadcast and multicast addresses', () => {
    const { stack, sent } = testStack();
    stack.input(echoRequest(CLIENT4, addr('255.255.255.255')), 0);
    stack.input(echoRequest(CLIENT4, addr('224.0.0.1')), 0);
    stack.input(echoRequest(CLIENT6, addr('ff02::1')), 0);
    expect(sent).toHaveLength(0);
    expect(stack.stats.drops.get('ipv4-multicast-destination')).toBe(2);
    expect(stack.stats.drops.get('ipv6-multicast-destination')).toBe(1);
  });

  it('reassembles a fragmented 4000-byte IPv4 ping and fragments the reply to the MTU', () => {
    const { stack, sent } = testStack({ mtu: 1500 });
    const frags = fragmentV4(echoRequest(CLIENT4, REMOTE4, 4000, 5, 1), 1480);
    expect(frags).toHaveLength(3);
    // Out of order, as a network may deliver them.
    for (const f of [frags[2]!, frags[0]!, frags[1]!]) stack.input(f, 10);
    expect(stack.stats.datagramsReassembled).toBe(1);
    expect(sent.length).toBe(3);
    const icmp = new Icmpv4Packet(joinV4(sent, 1500));
    expect(icmp.verifyChecksum()).toBe(true);
    expect(icmp.type).toBe(Icmpv4Type.ECHO_REPLY);
    expect(icmp.data).toEqual(pattern(4000));
    expect(stack.reassemblyUsage()).toEqual({ datagrams: 0, bytes: 0 });
  });

  it('reassembles a fragmented IPv6 ping and answers with IPv6 fragments', () => {
    const { stack, sent } = testStack({ mtu: 1500 });
    const frags = fragmentV6(echoRequest(CLIENT6, REMOTE6, 4000, 5, 1), 1448);
    for (const f of frags.reverse()) stack.input(f, 10);
    expect(stack.stats.datagramsReassembled).toBe(1);
    expect(sent.length).toBeGreaterThan(1);
    const parts: Uint8Array[] = [];
    let nextHeader = -1;
    for (const f of sent) {
      expect(f.length).toBeLessThanOrEqual(1500);
      expect(f[6]).toBe(IpProtocol.FRAGMENT);
      nextHeader = f[40]!;
      const off = ((f[42]! << 8) | f[43]!) & 0xfff8;
      parts[off] = f.subarray(48);
    }
    expect(nextHeader).toBe(IpProtocol.ICMPV6);
    const joined = new Uint8Array(parts.reduce((n, p) => n + (p?.length ?? 0), 0));
    parts.forEach((p, off) => {
      joined.set(p, off);
    });
    const icmp = new Icmpv6Packet(joined);
    expect(icmp.type).toBe(Icmpv6Type.ECHO_REPLY);
    expect(icmp.verifyChecksum(pseudoHeaderSum(REMOTE6, CLIENT6, IpProtocol.ICMPV6, joined.length))).toBe(
      true,
    );
    expect(icmp.data).toEqual(pattern(4000));
  });
});
