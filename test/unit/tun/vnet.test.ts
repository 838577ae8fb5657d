import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GsoType, TxMeta } from '../../../src/stack/transport.js';
import {
  emitTxHeader,
  fillTransportChecksum,
  VIRTIO_NET_HDR_LENGTH,
  VirtioNetHdr,
  VirtioNetHdrRepr,
  VnetFlags,
  VnetGso,
} from '../../../src/tun/vnet.js';
import {
  CLIENT4,
  CLIENT6,
  fragmentV4,
  pattern,
  REMOTE4,
  REMOTE6,
  tcpPacket,
  udpPacket,
} from '../stack/packets.js';

/**
 * What the kernel hands a TUN reader for a locally sent IPv4 TCP super-segment (seen with
 * TUNSETOFFLOAD(CSUM|TSO4|TSO6)): NEEDS_CSUM, GSO TCPV4, hdr_len 20 + 32 (timestamps), gso_size
 * 1448, csum_start 20, csum_offset 16, every 16-bit field little-endian.
 */
const KERNEL_TCPV4 = Uint8Array.of(0x01, 0x01, 0x34, 0x00, 0xa8, 0x05, 0x14, 0x00, 0x10, 0x00);
/** The same for IPv6 with CWR on the super-segment (the ECN bit), hdr_len 40 + 32. */
const KERNEL_TCPV6_ECN = Uint8Array.of(0x01, 0x84, 0x48, 0x00, 0x94, 0x05, 0x28, 0x00, 0x10, 0x00);

describe('virtio_net_hdr', () => {
  it('reads the fields of a kernel TCPv4 super-segment header', () => {
    const h = new VirtioNetHdr(KERNEL_TCPV4);
    expect(h.check()).toBeUndefined();
    expect(h.flags).toBe(VnetFlags.NEEDS_CSUM);
    expect(h.gsoType).toBe(VnetGso.TCPV4);
    expect(h.hdrLen).toBe(52);
    expect(h.gsoSize).toBe(1448);
    expect(h.csumStart).toBe(20);
    expect(h.csumOffset).toBe(16);
    expect(VirtioNetHdrRepr.parse(h)).toEqual({
      flags: 1,
      gsoType: VnetGso.TCPV4,
      ecn: false,
      hdrLen: 52,
      gsoSize: 1448,
      csumStart: 20,
      csumOffset: 16,
    });
  });

  it('separates the ECN bit from the GSO type', () => {
    const r = VirtioNetHdrRepr.parse(new VirtioNetHdr(KERNEL_TCPV6_ECN));
    expect(r).toMatchObject({ gsoType: VnetGso.TCPV6, ecn: true, hdrLen: 72, gsoSize: 1428, csumStart: 40 });
  });

  it('writes every field with the setters, touching only its own bytes', () => {
    const buf = new Uint8Array(14).fill(0xa5);
    const h = new VirtioNetHdr(buf.subarray(2, 12));
    h.flags = VnetFlags.NEEDS_CSUM;
    h.gsoType = VnetGso.TCPV4;
    h.hdrLen = 52;
    h.gsoSize = 1448;
    h.csumStart = 20;
    h.csumOffset = 16;
    expect([...buf]).toEqual([0xa5, 0xa5, ...KERNEL_TCPV4, 0xa5, 0xa5]);
  });

  it('emits the golden bytes at an offset, and round-trips', () => {
    const r = VirtioNetHdrRepr.parse(new VirtioNetHdr(KERNEL_TCPV6_ECN));
    if (typeof r === 'string') throw new Error(r);
    expect(VirtioNetHdrRepr.length(r)).toBe(VIRTIO_NET_HDR_LENGTH);
    const buf = new Uint8Array(13).fill(0xa5);
    VirtioNetHdrRepr.emit(r, buf, 3);
    expect([...buf.subarray(3)]).toEqual([...KERNEL_TCPV6_ECN]);
    expect([...buf.subarray(0, 3)]).toEqual([0xa5, 0xa5, 0xa5]);
    expect(VirtioNetHdrRepr.parse(new VirtioNetHdr(buf.subarray(3)))).toEqual(r);
  });

  it('refuses a truncated header at every length', () => {
    for (let n = 0; n < VIRTIO_NET_HDR_LENGTH; n++) {
      const h = new VirtioNetHdr(KERNEL_TCPV4.subarray(0, n));
      expect(h.check()).toBe('vnet-truncated');
      expect(VirtioNetHdrRepr.parse(h)).toBe('vnet-truncated');
    }
  });

  it('refuses the UDP GSO types it never asks for', () => {
    for (const t of [VnetGso.UDP, VnetGso.UDP_L4, 2, 0x7f]) {
      const b = KERNEL_TCPV4.slice();
      b[1] = t;
      expect(VirtioNetHdrRepr.parse(new VirtioNetHdr(b))).toBe('vnet-gso-unsupported');
    }
  });

  it('round-trips any valid header', () => {
    const repr = fc.record({
      flags: fc.integer({ min: 0, max: 7 }),
      gsoType: fc.constantFrom(VnetGso.NONE, VnetGso.TCPV4, VnetGso.TCPV6),
      ecn: fc.boolean(),
      hdrLen: fc.integer({ min: 0, max: 0xffff }),
      gsoSize: fc.integer({ min: 0, max: 0xffff }),
      csumStart: fc.integer({ min: 0, max: 0xffff }),
      csumOffset: fc.integer({ min: 0, max: 0xffff }),
    });
    fc.assert(
      fc.property(repr, (r) => {
        const buf = new Uint8Array(VIRTIO_NET_HDR_LENGTH);
        VirtioNetHdrRepr.emit(r, buf);
        expect(VirtioNetHdrRepr.parse(new VirtioNetHdr(buf))).toEqual(r);
      }),
    );
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (b) => {
        const h = new VirtioNetHdr(b);
        const r = VirtioNetHdrRepr.parse(h);
        if (typeof r !== 'string') expect(h.check()).toBeUndefined();
      }),
    );
  });
});

describe('the TX header from the stack’s TxMeta', () => {
  function header(meta: TxMeta | undefined): number[] {
    const buf = new Uint8Array(12).fill(0xa5);
    emitTxHeader(meta, buf, 1);
    expect(buf[0]).toBe(0xa5);
    expect(buf[11]).toBe(0xa5);
    return [...buf.subarray(1, 11)];
  }

  it('is all zeroes (GSO_NONE) for a plain packet, with or without meta', () => {
    expect(header(undefined)).toEqual(new Array(10).fill(0));
    expect(header(new TxMeta())).toEqual(new Array(10).fill(0));
  });

  it('marks an IPv4 super-segment GSO TCPV4 with NEEDS_CSUM at the TCP checksum', () => {
    const m = new TxMeta();
    m.needsCsum = true;
    m.csumStart = 20;
    m.csumOffset = 16;
    m.gsoType = GsoType.TCPV4;
    m.gsoSize = 1448;
    m.hdrLen = 52;
    expect(header(m)).toEqual([...KERNEL_TCPV4]);
  });

  it('marks an IPv6 super-segment GSO TCPV6', () => {
    const m = new TxMeta();
    m.needsCsum = true;
    m.csumStart = 40;
    m.csumOffset = 16;
    m.gsoType = GsoType.TCPV6;
    m.gsoSize = 1428;
    m.hdrLen = 72;
    expect(header(m)).toEqual([0x01, 0x04, 0x48, 0x00, 0x94, 0x05, 0x28, 0x00, 0x10, 0x00]);
  });

  it('marks a plain segment NEEDS_CSUM only, without GSO fields', () => {
    const m = new TxMeta();
    m.needsCsum = true;
    m.csumStart = 20;
    m.csumOffset = 16;
    m.hdrLen = 52;
    expect(header(m)).toEqual([0x01, 0x00, 0, 0, 0, 0, 0x14, 0x00, 0x10, 0x00]);
  });

  it('uses the virtio-net values for GsoType', () => {
    expect(GsoType.TCPV4).toBe(VnetGso.TCPV4);
    expect(GsoType.TCPV6).toBe(VnetGso.TCPV6);
    expect(GsoType.NONE).toBe(VnetGso.NONE);
  });
});

describe('fillTransportChecksum (a fault injector settling offloaded packets)', () => {
  /** Replaces the transport checksum with what a NEEDS_CSUM packet carries: the pseudo-header sum. */
  function partial(packet: Uint8Array, ipLen: number, at: number): Uint8Array {
    const p = packet.slice();
    p[ipLen + at] = 0x12;
    p[ipLen + at + 1] = 0x34;
    return p;
  }

  it('restores the exact TCP checksum of an IPv4 and an IPv6 segment', () => {
    for (const [src, dst, ipLen] of [
      [CLIENT4, REMOTE4, 20],
      [CLIENT6, REMOTE6, 40],
    ] as const) {
      const good = tcpPacket(src, dst, {
        srcPort: 1,
        dstPort: 2,
        seq: 7,
        ack: 9,
        flags: 0x18,
        data: pattern(999),
      });
      const p = partial(good, ipLen, 16);
      fillTransportChecksum(p);
      expect(p).toEqual(good);
    }
  });

  it('restores a UDP checksum, all ones for a computed zero (RFC 768)', () => {
    const good = udpPacket(CLIENT6, REMOTE6, 53, 5353, pattern(77));
    const p = partial(good, 40, 6);
    fillTransportChecksum(p);
    expect(p).toEqual(good);
    // A datagram whose checksum comes out as zero: find one by varying a payload byte.
    for (let b = 0; b < 0x10000; b++) {
      const data = Uint8Array.of(b >> 8, b & 0xff, 0, 0);
      const u = udpPacket(CLIENT4, REMOTE4, 1, 2, data);
      if (u[26] === 0xff && u[27] === 0xff) {
        const q = partial(u, 20, 6);
        fillTransportChecksum(q);
        expect([q[26], q[27]]).toEqual([0xff, 0xff]);
        return;
      }
    }
    throw new Error('no zero-sum datagram found');
  });

  it('leaves fragments, other protocols and bad headers alone', () => {
    const tcp = tcpPacket(CLIENT4, REMOTE4, {
      srcPort: 1,
      dstPort: 2,
      seq: 7,
      flags: 0x10,
      data: pattern(3000),
    });
    for (const frag of fragmentV4(tcp, 1200)) {
      const before = frag.slice();
      fillTransportChecksum(frag);
      expect(frag).toEqual(before);
    }
    for (const junk of [new Uint8Array(0), Uint8Array.of(0x45, 0, 0), pattern(40)]) {
      const before = junk.slice();
      fillTransportChecksum(junk);
      expect(junk).toEqual(before);
    }
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (b, v6) => {
        if (b.length > 0) b[0] = (b[0]! & 0x0f) | (v6 ? 0x60 : 0x40);
        fillTransportChecksum(b);
      }),
    );
  });
});
