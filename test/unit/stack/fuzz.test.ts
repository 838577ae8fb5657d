/**
 * The whole input path under hostile input: 100,000 random and mutated packets (truncated
 * headers, lying length fields, bad checksums, TCP option lengths 0 and overlong, overlapping and
 * endless fragments). Nothing throws, every packet is accounted for (answered, held as a
 * fragment, or dropped and counted by reason), and reassembly memory stays within its bounds.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/stack/random.js';
import { Stack } from '../../../src/stack/stack.js';
import { IpProtocol } from '../../../src/stack/wire/ip-protocol.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { TcpFlags } from '../../../src/stack/wire/tcp.js';
import {
  CLIENT4,
  CLIENT6,
  echoRequest,
  fragmentV4,
  fragmentV6,
  ipPacket,
  REMOTE4,
  REMOTE6,
  tcpPacket,
  udpPacket,
} from './packets.js';

const LIMITS = { reassemblyMaxDatagrams: 16, reassemblyMaxBytes: 256 * 1024, reassemblyMaxFragments: 32 };

function corpus(): Uint8Array[] {
  const syn4 = tcpPacket(CLIENT4, REMOTE4, { srcPort: 40000, dstPort: 80, seq: 7, flags: TcpFlags.SYN });
  const syn6 = tcpPacket(CLIENT6, REMOTE6, { srcPort: 40000, dstPort: 443, seq: 7, flags: TcpFlags.SYN });
  // Hop-by-hop (PadN) + destination options + UDP.
  const udp6 = udpPacket(CLIENT6, REMOTE6, 1, 53, new Uint8Array(20));
  const ext = new Uint8Array(udp6.length + 16);
  ext.set(udp6.subarray(0, 40));
  ext[6] = IpProtocol.HOPOPTS;
  ext.set([IpProtocol.DSTOPTS, 0, 1, 4, 0, 0, 0, 0], 40);
  ext.set([IpProtocol.UDP, 0, 1, 4, 0, 0, 0, 0], 48);
  ext.set(udp6.subarray(40), 56);
  ext[5] = ext[5]! + 16;
  return [
    echoRequest(CLIENT4, REMOTE4),
    echoRequest(CLIENT6, REMOTE6),
    udpPacket(CLIENT4, REMOTE4, 1234, 53, new Uint8Array(40).fill(3)),
    udp6,
    ext,
    syn4,
    syn6,
    ipPacket(CLIENT4, REMOTE4, 99, new Uint8Array(8)),
    ...fragmentV4(echoRequest(CLIENT4, REMOTE4, 3000), 1480),
    ...fragmentV6(echoRequest(CLIENT6, REMOTE6, 3000), 1448),
  ];
}

type Mutator = (p: Uint8Array, r: () => number) => Uint8Array;

const mutators: Mutator[] = [
  // Truncated anywhere, headers included.
  (p, r) => p.slice(0, r() % (p.length + 1)),
  // Random byte flips.
  (p, r) => {
    const q = p.slice();
    for (let n = 1 + (r() % 4); n > 0; n--) q[r() % q.length] = r() & 0xff;
    return q;
  },
  // Lying length fields: IPv4 total length / IPv6 payload length / UDP length.
  (p, r) => {
    const q = p.slice();
    const at = q[0]! >> 4 === 4 ? 2 : 4;
    q[at] = r() & 0xff;
    q[at + 1] = r() & 0xff;
    return q;
  },
  // A bad checksum somewhere in the transport header.
  (p, r) => {
    const q = p.slice();
    const base = q[0]! >> 4 === 4 ? 20 : 40;
    if (q.length > base + 8) {
      const at = base + (r() % 8);
      q[at] = q[at]! ^ (1 + (r() % 255));
    }
    return q;
  },
  // TCP options with length 0, 1 or overlong, recomputing nothing (the checksum may be wrong too).
  (_p, r) => {
    const seg = tcpPacket(CLIENT4, REMOTE4, { srcPort: 1, dstPort: 2, seq: r(), flags: TcpFlags.SYN });
    const opts = 40; // options start after 20 + 20
    seg[opts] = [2, 3, 4, 8, 5, 30][r() % 6]!;
    seg[opts + 1] = [0, 1, 39, 255][r() % 4]!;
    return seg;
  },
  // Overlapping fragments with random offsets of a real datagram.
  (p, r) => {
    if (p[0]! >> 4 !== 4 || p.length < 28) return p;
    const q = p.slice();
    const v = new Ipv4Packet(q);
    if (v.check() !== undefined) return q;
    v.identification = r() & 3;
    v.fragmentOffset = (r() % 64) * 8;
    v.moreFragments = (r() & 1) === 1;
    v.fillChecksum();
    return q;
  },
  // Endless fragments: new identifications that never complete.
  (_p, r) => {
    const body = new Uint8Array(8 * (1 + (r() % 180)));
    const q = ipPacket(CLIENT4, REMOTE4, IpProtocol.UDP, body, r() & 0xffff);
    const v = new Ipv4Packet(q);
    v.moreFragments = true;
    v.fragmentOffset = (r() % 100) * 8;
    v.fillChecksum();
    return q;
  },
  // Pure noise with a plausible version nibble.
  (_p, r) => {
    const q = new Uint8Array(r() % 120);
    for (let i = 0; i < q.length; i++) q[i] = r() & 0xff;
    if (q.length > 0) q[0] = (q[0]! & 0x0f) | ((r() & 1) === 0 ? 0x40 : 0x60);
    return q;
  },
];

describe('hostile input through the whole input path', () => {
  it('takes 100,000 random and mutated packets without a throw, every one accounted for', () => {
    const random = seededRandom(0xdecafbad);
    let sent = 0;
    const stack = new Stack({ transmit: () => sent++, random: seededRandom(2), options: LIMITS });
    const base = corpus();
    const s = stack.stats;
    let now = 0;
    for (let i = 0; i < 100_000; i++) {
      const seed = base[random() % base.length]!;
      const packet = mutators[random() % mutators.length]!(seed, random);
      const before = s.totalDrops() + sent + s.fragmentsReceived;
      stack.input(packet, now);
      const after = s.totalDrops() + sent + s.fragmentsReceived;
      if (after === before)
        throw new Error(`packet ${i} vanished uncounted: ${Buffer.from(packet).toString('hex')}`);
      const usage = stack.reassemblyUsage();
      if (usage.datagrams > LIMITS.reassemblyMaxDatagrams || usage.bytes > LIMITS.reassemblyMaxBytes) {
        throw new Error(`reassembly over its bounds after packet ${i}: ${JSON.stringify(usage)}`);
      }
      now += 1;
      if (i % 1000 === 0) stack.poll(now);
    }
    expect(s.rxPackets).toBe(100_000);
    // Many distinct reasons were exercised, each with a name.
    const reasons = [...s.drops.keys()];
    expect(reasons.length).toBeGreaterThan(15);
    for (const r of reasons) expect(r).toMatch(/^[a-z0-9]+(-[a-z0-9]+)+$/);
  });
});
