import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getLinkRequest, parseGetLinkReply } from '../../../src/tun/netlink.js';

/** Host-order (little-endian on the test machines) netlink helpers for hand-built replies. */
const u16 = (n: number): number[] => [n & 0xff, n >> 8];
const u32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
function attr(type: number, value: number[]): number[] {
  const len = 4 + value.length;
  const pad = (4 - (len % 4)) % 4;
  return [...u16(len), ...u16(type), ...value, ...new Array(pad).fill(0)];
}
function message(type: number, body: number[]): Uint8Array {
  return Uint8Array.from([...u32(16 + body.length), ...u16(type), ...u16(0), ...u32(1), ...u32(0), ...body]);
}
const IFINFOMSG = new Array(16).fill(0);
const ascii = (s: string): number[] => [...Buffer.from(s)];

/** An RTM_NEWLINK reply as the kernel sends for `ip -d link show`: name, mtu, then IFLA_LINKINFO. */
function tunReply(pi: number, vnet: number, type = 1, kind = 'tun\0'): Uint8Array {
  const data = [
    ...attr(1, u32(0xffffffff)), // IFLA_TUN_OWNER
    ...attr(3, [type]), // IFLA_TUN_TYPE
    ...attr(4, [pi]), // IFLA_TUN_PI
    ...attr(5, [vnet]), // IFLA_TUN_VNET_HDR
    ...attr(6, [0]), // IFLA_TUN_PERSIST
    ...attr(7, [0]), // IFLA_TUN_MULTI_QUEUE
  ];
  const linkinfo = [...attr(1, ascii(kind)), ...attr(2 | 0x8000, data)];
  return message(16, [
    ...IFINFOMSG,
    ...attr(3, ascii('tun0\0')),
    ...attr(4, u32(1500)),
    ...attr(18 | 0x8000, linkinfo),
  ]);
}

describe.runIf(new Uint8Array(new Uint16Array([1]).buffer)[0] === 1)('rtnetlink TUN query', () => {
  it('builds the RTM_GETLINK request by name', () => {
    expect(Buffer.from(getLinkRequest('tun0', 7)).toString('hex')).toBe(
      '2c000000' +
        '1200' +
        '0100' +
        '07000000' +
        '00000000' +
        '00'.repeat(16) +
        '0900' +
        '0300' +
        '74756e3000' +
        '000000',
    );
  });

  it('reads the packet-info, vnet-header and multi-queue attributes of a TUN', () => {
    expect(parseGetLinkReply(tunReply(1, 0))).toEqual({
      type: 1,
      packetInfo: true,
      vnetHdr: false,
      multiQueue: false,
    });
    expect(parseGetLinkReply(tunReply(0, 1))).toEqual({
      type: 1,
      packetInfo: false,
      vnetHdr: true,
      multiQueue: false,
    });
    expect(parseGetLinkReply(tunReply(0, 0, 2))).toMatchObject({ type: 2 });
  });

  it('says undefined for a link of another kind, and gives the errno of an NLMSG_ERROR', () => {
    expect(parseGetLinkReply(tunReply(0, 0, 1, 'veth\0'))).toBeUndefined();
    expect(parseGetLinkReply(message(16, [...IFINFOMSG, ...attr(3, ascii('lo\0'))]))).toBeUndefined();
    expect(parseGetLinkReply(message(2, [...u32(-19 >>> 0), ...new Array(16).fill(0)]))).toEqual({
      errno: 19,
    });
    expect(parseGetLinkReply(new Uint8Array(8))).toEqual({ errno: -1 });
  });

  it('stops at every truncation without reading out of bounds', () => {
    const full = tunReply(1, 0);
    for (let n = 0; n < full.length; n++) expect(() => parseGetLinkReply(full.subarray(0, n))).not.toThrow();
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        parseGetLinkReply(b);
      }),
      { numRuns: 3000 },
    );
  });
});
