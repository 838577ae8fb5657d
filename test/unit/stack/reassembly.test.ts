import { describe, expect, it } from 'vitest';
import { type Reassembled, Reassembler } from '../../../src/stack/ip/reassembly.js';
import { Icmpv4Packet } from '../../../src/stack/wire/icmpv4.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import {
  CLIENT4,
  CLIENT6,
  echoRequest,
  fragmentV4,
  fragmentV6,
  REMOTE4,
  REMOTE6,
  testStack,
} from './packets.js';

const LIMITS = {
  maxDatagrams: 4,
  maxBytes: 10_000,
  maxFragments: 8,
  timeoutV4Ms: 30_000,
  timeoutV6Ms: 60_000,
};
const HDR = new Uint8Array(20).fill(0x45);

function bytes(n: number, fill: number): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

describe('Reassembler', () => {
  it('joins fragments arriving in any order', () => {
    const r = new Reassembler(LIMITS);
    expect(r.add('a', false, 16, true, bytes(8, 2), undefined, 0)).toBeUndefined();
    expect(r.add('a', false, 24, false, bytes(3, 3), undefined, 0)).toBeUndefined();
    const done = r.add('a', false, 0, true, bytes(16, 1), HDR, 0) as Reassembled;
    expect(done.header).toEqual(HDR);
    expect([...done.payload]).toEqual([...bytes(16, 1), ...bytes(8, 2), ...bytes(3, 3)]);
    expect([r.size, r.heldBytes]).toEqual([0, 0]);
  });

  it('discards the whole datagram on an overlap (RFC 5722)', () => {
    const r = new Reassembler(LIMITS);
    r.add('a', false, 0, true, bytes(16, 1), HDR, 0);
    expect(r.add('a', false, 8, true, bytes(16, 9), undefined, 0)).toBe('frag-overlap');
    expect([r.size, r.heldBytes]).toEqual([0, 0]);
    // The rest of the datagram then starts a new, never-completing queue.
    expect(r.add('a', false, 16, false, bytes(4, 2), undefined, 0)).toBeUndefined();
  });

  it('ignores an exact duplicate as Linux does', () => {
    const r = new Reassembler(LIMITS);
    r.add('a', false, 8, false, bytes(8, 2), undefined, 0);
    expect(r.add('a', false, 8, false, bytes(8, 2), undefined, 0)).toBe('frag-duplicate');
    expect((r.add('a', false, 0, true, bytes(8, 1), HDR, 0) as Reassembled).payload.length).toBe(16);
  });

  it('rejects inconsistent last fragments and data past the end', () => {
    const r = new Reassembler(LIMITS);
    r.add('a', false, 16, false, bytes(8, 1), undefined, 0);
    expect(r.add('a', false, 32, false, bytes(8, 1), undefined, 0)).toBe('frag-inconsistent-length');
    r.add('b', false, 0, false, bytes(8, 1), undefined, 0);
    expect(r.add('b', false, 8, true, bytes(8, 1), undefined, 0)).toBe('frag-inconsistent-length');
    expect(r.add('c', false, 0, true, new Uint8Array(0), undefined, 0)).toBe('frag-empty');
  });

  it('bounds datagrams, evicting the oldest', () => {
    const r = new Reassembler(LIMITS);
    for (let i = 0; i < 10; i++) r.add(`d${i}`, false, 8, true, bytes(8, i), undefined, i);
    expect(r.size).toBe(4);
    expect(r.evicted).toBe(6);
    expect(r.heldBytes).toBe(32);
  });

  it('bounds bytes held and fragments per datagram', () => {
    const r = new Reassembler(LIMITS);
    r.add('a', false, 8, true, bytes(6000, 1), undefined, 0);
    r.add('b', false, 8, true, bytes(6000, 1), undefined, 0);
    expect(r.heldBytes).toBeLessThanOrEqual(LIMITS.maxBytes);
    expect(r.size).toBe(1);
    expect(r.add('c', false, 0, true, bytes(20_000, 1), HDR, 0)).toBe('frag-over-memory');
    const s = new Reassembler(LIMITS);
    const results: unknown[] = [];
    for (let i = 0; i < 9; i++) results.push(s.add('x', false, 8 * (i + 1), true, bytes(8, 1), undefined, 0));
    expect(results.at(-1)).toBe('frag-too-many');
    expect(s.size).toBe(0);
  });

  it('expires datagrams at their deadline, per family', () => {
    const r = new Reassembler(LIMITS);
    r.add('v4', false, 0, true, bytes(8, 1), HDR, 100);
    r.add('v6', true, 8, true, bytes(8, 1), undefined, 200);
    expect(r.nextDeadline()).toBe(30_100);
    const seen: (Uint8Array | undefined)[] = [];
    r.expire(30_100, (e) => seen.push(e.firstFragment));
    expect(seen).toHaveLength(1);
    expect(seen[0]!.length).toBe(28);
    expect(r.nextDeadline()).toBe(60_200);
  });
});

describe('reassembly through the stack', () => {
  it('drops an overlapping fragment attack and answers nothing', () => {
    const { stack, sent } = testStack();
    const frags = fragmentV4(echoRequest(CLIENT4, REMOTE4, 3000), 1480);
    const evil = frags[1]!.slice();
    const v = new Ipv4Packet(evil);
    v.fragmentOffset = 1480 - 8;
    v.fillChecksum();
    for (const f of [frags[0]!, evil, frags[1]!, frags[2]!]) stack.input(f, 0);
    expect(stack.stats.drops.get('frag-overlap')).toBe(1);
    expect(sent).toHaveLength(0);
  });

  it('rejects IPv4 non-final fragments that are not a multiple of 8 bytes', () => {
    const { stack } = testStack();
    const frags = fragmentV4(echoRequest(CLIENT4, REMOTE4, 3000), 1480);
    const odd = frags[0]!.subarray(0, frags[0]!.length - 3).slice();
    const v = new Ipv4Packet(odd);
    v.totalLength = odd.length;
    v.fillChecksum();
    stack.input(odd, 0);
    expect(stack.stats.drops.get('ipv4-fragment-bad-length')).toBe(1);
  });

  it('answers an IPv6 fragment of bad length with Parameter Problem pointing at Payload Length', () => {
    const { stack, sent } = testStack();
    const frags = fragmentV6(echoRequest(CLIENT6, REMOTE6, 3000), 1448);
    const odd = frags[0]!.subarray(0, frags[0]!.length - 3).slice();
    odd[5] = odd[5]! - 3;
    stack.input(odd, 0);
    expect(stack.stats.drops.get('ipv6-fragment-bad-length')).toBe(1);
    expect(sent).toHaveLength(1);
    expect([sent[0]![40], sent[0]![41], sent[0]![47]]).toEqual([4, 0, 4]);
  });

  it('completes a ping whose fragments came twice (duplication)', () => {
    const { stack, sent } = testStack();
    const frags = fragmentV4(echoRequest(CLIENT4, REMOTE4, 2000), 1480);
    for (const f of [frags[0]!, frags[0]!, frags[1]!, frags[1]!]) stack.input(f, 0);
    expect(stack.stats.datagramsReassembled).toBe(1);
    expect(sent.length).toBe(2);
    const icmp = new Icmpv4Packet(new Ipv4Packet(sent[0]!).payload);
    expect(icmp.type).toBe(0);
  });

  it('rebuilds an IPv6 datagram whose unfragmentable part has a hop-by-hop header', () => {
    const { stack, sent } = testStack();
    const plain = fragmentV6(echoRequest(CLIENT6, REMOTE6, 2000), 1448);
    const withHbh = plain.map((f) => {
      const g = new Uint8Array(f.length + 8);
      g.set(f.subarray(0, 40));
      g[6] = 0; // hop-by-hop first
      g.set([44, 0, 1, 4, 0, 0, 0, 0], 40); // next: Fragment; PadN
      g.set(f.subarray(40), 48);
      const len = f.length - 40 + 8;
      g[4] = len >>> 8;
      g[5] = len & 0xff;
      return g;
    });
    for (const f of withHbh) stack.input(f, 0);
    expect(stack.stats.datagramsReassembled).toBe(1);
    expect(stack.stats.echoReplies).toBe(1);
    expect(sent.length).toBe(2);
  });
});
