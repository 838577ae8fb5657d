/**
 * One rtnetlink query (RFC 3549; linux/rtnetlink.h, linux/if_link.h): the TUN attributes of a link
 * (IFLA_LINKINFO → IFLA_INFO_DATA → IFLA_TUN_*), as `ip -d link show` prints them.
 *
 * Needed because TUNGETIFF cannot tell whether an fd handed over by another process has IFF_NO_PI:
 * the kernel ORs IFF_NOFILTER, the same bit (0x1000), into its answer whenever no socket filter is
 * attached, which for a TUN (TUNATTACHFILTER is TAP-only) is always.
 */
import { endianness } from 'node:os';
import type { Sys } from './ioctl.js';
import { Errno, libc, O_CLOEXEC, O_NONBLOCK } from './libc.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_ROUTE = 0;
const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 1;
const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_TUN_TYPE = 3;
const IFLA_TUN_PI = 4;
const IFLA_TUN_VNET_HDR = 5;
const IFLA_TUN_MULTI_QUEUE = 7;
/** Attribute type bits that are flags, not part of the type (NLA_F_NESTED, NLA_F_NET_BYTEORDER). */
const NLA_TYPE_MASK = 0x3fff;
const NLMSG_HDRLEN = 16;
const IFINFOMSG_LEN = 16;
const LITTLE = endianness() === 'LE';

/** The TUN attributes of a link. */
export interface TunLinkInfo {
  /** IFF_TUN (1) or IFF_TAP (2). */
  readonly type: number;
  /** Packets carry a 4-byte `struct tun_pi` header (IFF_NO_PI is not set). */
  readonly packetInfo: boolean;
  /** Packets carry a virtio-net header (IFF_VNET_HDR). */
  readonly vnetHdr: boolean;
  /** IFF_MULTI_QUEUE. */
  readonly multiQueue: boolean;
}

const align4 = (n: number): number => (n + 3) & ~3;

/** The RTM_GETLINK request for interface `name`. */
export function getLinkRequest(name: string, seq: number): Uint8Array {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const attrLen = 4 + nameBytes.length;
  const len = NLMSG_HDRLEN + IFINFOMSG_LEN + align4(attrLen);
  const b = new Uint8Array(len);
  const v = new DataView(b.buffer);
  v.setUint32(0, len, LITTLE);
  v.setUint16(4, RTM_GETLINK, LITTLE);
  v.setUint16(6, NLM_F_REQUEST, LITTLE);
  v.setUint32(8, seq, LITTLE);
  // ifinfomsg: all zero (AF_UNSPEC, any index): the name attribute selects the link.
  const a = NLMSG_HDRLEN + IFINFOMSG_LEN;
  v.setUint16(a, attrLen, LITTLE);
  v.setUint16(a + 2, IFLA_IFNAME, LITTLE);
  b.set(nameBytes, a + 4);
  return b;
}

/** Calls `fn(type, value)` for each attribute in `b[start, end)`; stops at a malformed one. */
function forEachAttr(
  b: Uint8Array,
  start: number,
  end: number,
  fn: (type: number, value: Uint8Array) => void,
): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = start;
  while (o + 4 <= end) {
    const len = v.getUint16(o, LITTLE);
    if (len < 4 || o + len > end) return;
    fn(v.getUint16(o + 2, LITTLE) & NLA_TYPE_MASK, b.subarray(o + 4, o + len));
    o += align4(len);
  }
}

/**
 * Parses the reply to getLinkRequest(): the TUN attributes, undefined when the link is not a
 * TUN/TAP, or the errno of an NLMSG_ERROR (ENODEV: no such link). -1 for a malformed reply.
 */
export function parseGetLinkReply(b: Uint8Array): TunLinkInfo | undefined | { errno: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < NLMSG_HDRLEN) return { errno: -1 };
  const len = Math.min(v.getUint32(0, LITTLE), b.length);
  const type = v.getUint16(4, LITTLE);
  if (type === NLMSG_ERROR) return { errno: b.length >= 20 ? -v.getInt32(16, LITTLE) : -1 };
  if (type !== RTM_NEWLINK || len < NLMSG_HDRLEN + IFINFOMSG_LEN) return { errno: -1 };
  let kind = '';
  let data: Uint8Array | undefined;
  forEachAttr(b, NLMSG_HDRLEN + IFINFOMSG_LEN, len, (t, value) => {
    if (t !== IFLA_LINKINFO) return;
    forEachAttr(value, 0, value.length, (it, iv) => {
      if (it === IFLA_INFO_KIND) kind = Buffer.from(iv).toString('utf8').replace(/\0+$/, '');
      else if (it === IFLA_INFO_DATA) data = iv;
    });
  });
  if (kind !== 'tun' || data === undefined) return undefined;
  const info = { type: 0, packetInfo: false, vnetHdr: false, multiQueue: false };
  forEachAttr(data, 0, data.length, (t, value) => {
    const on = value[0] === 1;
    if (t === IFLA_TUN_TYPE) info.type = value[0] ?? 0;
    else if (t === IFLA_TUN_PI) info.packetInfo = on;
    else if (t === IFLA_TUN_VNET_HDR) info.vnetHdr = on;
    else if (t === IFLA_TUN_MULTI_QUEUE) info.multiQueue = on;
  });
  return info;
}

/** Queries the TUN attributes of `name` in the calling thread's network namespace. */
export function tunLinkInfo(name: string): Sys<TunLinkInfo | undefined> {
  const c = libc();
  const sock = c.socket(AF_NETLINK, SOCK_RAW | O_CLOEXEC | O_NONBLOCK, NETLINK_ROUTE);
  if (sock < 0) return { ok: false, errno: c.errno() };
  try {
    const req = getLinkRequest(name, 1);
    // A write to an unbound netlink socket goes to the kernel (portid 0), which answers within
    // the call, so the reply is already queued when the read comes.
    if (c.write(sock, req, req.length) !== req.length) return { ok: false, errno: c.errno() };
    const buf = new Uint8Array(32768);
    const n = c.read(sock, buf, buf.length);
    if (n < 0) return { ok: false, errno: c.errno() };
    const r = parseGetLinkReply(buf.subarray(0, n));
    if (r !== undefined && 'errno' in r) {
      if (r.errno === Errno.ENODEV) return { ok: true, value: undefined };
      return { ok: false, errno: r.errno < 0 ? Errno.EIO : r.errno };
    }
    return { ok: true, value: r };
  } finally {
    c.close(sock);
  }
}
