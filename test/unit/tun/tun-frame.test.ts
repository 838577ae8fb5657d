import { describe, expect, it } from 'vitest';
import { RxFlags, TxMeta } from '../../../src/stack/transport.js';
import { TunFlags } from '../../../src/tun/ioctl.js';
import { FRAME_GSO, FRAME_UNDELIVERABLE, TunFrame } from '../../../src/tun/tun-frame.js';
import { VnetFlags, VnetGso } from '../../../src/tun/vnet.js';

/** The first byte of an IPv4 and an IPv6 header. */
const V4 = Uint8Array.of(0x45);
const V6 = Uint8Array.of(0x60);

/** A buffer pre-filled with 0xA5, so every byte the frame writes shows. */
const dirty = (n: number): Uint8Array => new Uint8Array(n).fill(0xa5);

describe('TunFrame', () => {
  it('IFF_NO_PI without a virtio-net header: no prefix, nothing to read', () => {
    const f = new TunFrame(TunFlags.IFF_NO_PI, false, false);
    expect(f.prefix).toBe(0);
    expect(f.vnetAt).toBe(-1);
    expect(f.receive(dirty(20), 0)).toBe(0);
  });

  it('packet info: flags 0 and the EtherType of the packet, big-endian', () => {
    const f = new TunFrame(0, false, false);
    expect(f.prefix).toBe(4);
    const b = dirty(4);
    f.writePrefix(b, V4, undefined);
    expect([...b]).toEqual([0, 0, 0x08, 0x00]);
    f.writePrefix(b, V6, undefined);
    expect([...b]).toEqual([0, 0, 0x86, 0xdd]);
  });

  it('packet info then a virtio-net header: a plain packet gets ten zero bytes after tun_pi', () => {
    const f = new TunFrame(0, true, true);
    expect(f.prefix).toBe(14);
    expect(f.vnetAt).toBe(4);
    const b = dirty(14);
    f.writePrefix(b, V4, undefined);
    expect([...b]).toEqual([0, 0, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('NEEDS_CSUM is written only with checksum offload granted', () => {
    const meta = new TxMeta();
    meta.needsCsum = true;
    meta.csumStart = 20;
    meta.csumOffset = 16;
    const granted = dirty(10);
    new TunFrame(TunFlags.IFF_NO_PI, true, true).writePrefix(granted, V4, meta);
    expect([...granted]).toEqual([VnetFlags.NEEDS_CSUM, 0, 0, 0, 0, 0, 20, 0, 16, 0]);
    const refused = dirty(10);
    new TunFrame(TunFlags.IFF_NO_PI, true, false).writePrefix(refused, V4, meta);
    expect([...refused]).toEqual(new Array(10).fill(0));
  });

  it('reads the checksum state and TCP super-segments; a UDP GSO packet is undeliverable', () => {
    const f = new TunFrame(TunFlags.IFF_NO_PI, true, true);
    const at = 7; // a packet read at an offset of its buffer
    const b = new Uint8Array(at + 10 + 20);
    expect(f.receive(b, at)).toBe(0);
    b[at] = VnetFlags.DATA_VALID;
    expect(f.receive(b, at)).toBe(RxFlags.CHECKSUM_VERIFIED);
    b[at] = VnetFlags.NEEDS_CSUM;
    b[at + 1] = VnetGso.TCPV6 | VnetGso.ECN;
    expect(f.receive(b, at)).toBe(RxFlags.CHECKSUM_VERIFIED | FRAME_GSO);
    b[at + 1] = VnetGso.UDP_L4;
    expect(f.receive(b, at)).toBe(FRAME_UNDELIVERABLE);
  });
});
