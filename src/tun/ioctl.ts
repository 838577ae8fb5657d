/**
 * The TUN ioctls (linux/if_tun.h), the interface MTU ioctls (linux/sockios.h) over `struct ifreq`,
 * and entering a network namespace around a few synchronous calls. Every function returns the
 * errno on failure instead of throwing, so the caller can word the error for its context.
 *
 * Feature flags live in one place (`TunFlags`, `requestedFlags`): adding IFF_VNET_HDR or
 * IFF_MULTI_QUEUE later means a new option bit here and a framing change in linux-tun.ts.
 */
import { endianness } from 'node:os';
import { CLONE_NEWNET, libc, O_CLOEXEC, O_RDONLY } from './libc.js';

/** TUN flags for TUNSETIFF / TUNGETIFF (`ifr_flags`, linux/if_tun.h). */
export const TunFlags = {
  IFF_TUN: 0x0001,
  IFF_TAP: 0x0002,
  IFF_MULTI_QUEUE: 0x0100,
  IFF_PERSIST: 0x0800,
  IFF_NO_PI: 0x1000,
  IFF_VNET_HDR: 0x4000,
  IFF_TUN_EXCL: 0x8000,
} as const;

/** `_IOW('T', 202, int)`: create or attach a TUN/TAP interface. */
export const TUNSETIFF = 0x400454ca;
/** `_IOR('T', 210, unsigned int)`: the name and flags of the interface an fd is attached to. */
export const TUNGETIFF = 0x800454d2;
/** `_IO('T', 227)`: an fd for the network namespace the device lives in (Linux 5.2+). */
export const TUNGETDEVNETNS = 0x54e3;
/** `_IOW('T', 208, unsigned int)`: the offloads the reader can take (TUN_F_*), passed by value. */
export const TUNSETOFFLOAD = 0x400454d0;
/** `_IOR('T', 215, int)`: the virtio-net header size. */
export const TUNGETVNETHDRSZ = 0x800454d7;
/** `_IOW('T', 216, int)`: sets the virtio-net header size (at least 10). */
export const TUNSETVNETHDRSZ = 0x400454d8;

/** TUNSETOFFLOAD bits (linux/if_tun.h): what the reader of the fd can handle. */
export const TunOffload = {
  /** Packets may arrive with partial checksums (virtio-net NEEDS_CSUM). */
  TUN_F_CSUM: 0x01,
  /** IPv4 TCP super-segments may arrive (needs TUN_F_CSUM). */
  TUN_F_TSO4: 0x02,
  /** IPv6 TCP super-segments may arrive (needs TUN_F_CSUM). */
  TUN_F_TSO6: 0x04,
  /** Super-segments with CWR (the ECN bit of gso_type) may arrive. */
  TUN_F_TSO_ECN: 0x08,
} as const;

/** Read an interface's MTU (linux/sockios.h). */
export const SIOCGIFMTU = 0x8921;
/** Set an interface's MTU (linux/sockios.h). */
export const SIOCSIFMTU = 0x8922;

/** sizeof(struct ifreq) on 64-bit Linux: a 16-byte name and a 24-byte union. */
const IFREQ_SIZE = 40;
/** IFNAMSIZ. */
const IFNAMSIZ = 16;
const LITTLE = endianness() === 'LE';

/** A `struct ifreq` buffer with its name set. */
export function ifreq(name: string): Uint8Array {
  const b = new Uint8Array(IFREQ_SIZE);
  b.set(Buffer.from(name, 'utf8').subarray(0, IFNAMSIZ - 1));
  return b;
}

/** The NUL-terminated `ifr_name` of an ifreq buffer. */
export function ifreqName(b: Uint8Array): string {
  const end = b.subarray(0, IFNAMSIZ).indexOf(0);
  return Buffer.from(b.buffer, b.byteOffset, end < 0 ? IFNAMSIZ : end).toString('utf8');
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A syscall result: a value, or the errno it failed with. */
export type Sys<T> = { ok: true; value: T } | { ok: false; errno: number };

function fail<T>(): Sys<T> {
  return { ok: false, errno: libc().errno() };
}

/**
 * The flags TUNSETIFF asks for: a layer-3 TUN without the packet-info header, with a virtio-net
 * header when `vnetHdr`, as one queue of a multi-queue device when `multiQueue`.
 */
export function requestedFlags(vnetHdr = false, multiQueue = false): number {
  return (
    TunFlags.IFF_TUN |
    TunFlags.IFF_NO_PI |
    (vnetHdr ? TunFlags.IFF_VNET_HDR : 0) |
    (multiQueue ? TunFlags.IFF_MULTI_QUEUE : 0)
  );
}

/** TUNSETIFF: attaches `fd` (an open /dev/net/tun) to `name` (created if missing; empty = kernel-chosen). Returns the interface's name. */
export function tunSetIff(fd: number, name: string, flags: number): Sys<string> {
  const req = ifreq(name);
  view(req).setInt16(IFNAMSIZ, flags, LITTLE);
  if (libc().ioctlPtr(fd, TUNSETIFF, req) < 0) return fail();
  return { ok: true, value: ifreqName(req) };
}

/** TUNGETIFF: the interface name and TUN flags of an attached TUN fd. */
export function tunGetIff(fd: number): Sys<{ name: string; flags: number }> {
  const req = new Uint8Array(IFREQ_SIZE);
  if (libc().ioctlPtr(fd, TUNGETIFF, req) < 0) return fail();
  return { ok: true, value: { name: ifreqName(req), flags: view(req).getUint16(IFNAMSIZ, LITTLE) } };
}

/** TUNSETOFFLOAD: tells the kernel which offloads the reader handles; EINVAL names an unknown bit. */
export function tunSetOffload(fd: number, bits: number): Sys<void> {
  if (libc().ioctlInt(fd, TUNSETOFFLOAD, bits) < 0) return fail();
  return { ok: true, value: undefined };
}

/** TUNSETVNETHDRSZ: the virtio-net header size for both directions. */
export function tunSetVnetHdrSize(fd: number, size: number): Sys<void> {
  const arg = new Uint8Array(4);
  view(arg).setInt32(0, size, LITTLE);
  if (libc().ioctlPtr(fd, TUNSETVNETHDRSZ, arg) < 0) return fail();
  return { ok: true, value: undefined };
}

/** TUNGETVNETHDRSZ: the virtio-net header size in use. */
export function tunGetVnetHdrSize(fd: number): Sys<number> {
  const arg = new Uint8Array(4);
  if (libc().ioctlPtr(fd, TUNGETVNETHDRSZ, arg) < 0) return fail();
  return { ok: true, value: view(arg).getInt32(0, LITTLE) };
}

/** TUNGETDEVNETNS: a new fd (to close) for the device's network namespace. */
export function tunGetDevNetns(fd: number): Sys<number> {
  const ns = libc().ioctlNone(fd, TUNGETDEVNETNS);
  return ns < 0 ? fail() : { ok: true, value: ns };
}

/** Runs `fn` with a SOCK_DGRAM socket of the calling thread's namespace, for interface ioctls. */
function withIoctlSocket<T>(fn: (sock: number) => Sys<T>): Sys<T> {
  const c = libc();
  const AF_INET = 2;
  const SOCK_DGRAM_CLOEXEC = 2 | O_CLOEXEC;
  const sock = c.socket(AF_INET, SOCK_DGRAM_CLOEXEC, 0);
  if (sock < 0) return fail();
  try {
    return fn(sock);
  } finally {
    c.close(sock);
  }
}

/** SIOCGIFMTU: the MTU of interface `name` in the calling thread's namespace. */
export function getMtu(name: string): Sys<number> {
  return withIoctlSocket((sock) => {
    const req = ifreq(name);
    if (libc().ioctlPtr(sock, SIOCGIFMTU, req) < 0) return fail();
    return { ok: true, value: view(req).getInt32(IFNAMSIZ, LITTLE) };
  });
}

/** SIOCSIFMTU: sets the MTU of interface `name` in the calling thread's namespace. */
export function setMtu(name: string, mtu: number): Sys<void> {
  return withIoctlSocket((sock) => {
    const req = ifreq(name);
    view(req).setInt32(IFNAMSIZ, mtu, LITTLE);
    if (libc().ioctlPtr(sock, SIOCSIFMTU, req) < 0) return fail();
    return { ok: true, value: undefined };
  });
}

/** Opens a namespace file (`/var/run/netns/X`) read-only. */
export function openNetns(path: string): Sys<number> {
  const fd = libc().open(path, O_RDONLY | O_CLOEXEC);
  return fd < 0 ? fail() : { ok: true, value: fd };
}

/**
 * Runs `fn` with the calling thread moved into the network namespace `nsFd`, then moves it back,
 * even when `fn` throws. Only the calling thread changes namespace (setns(2)); nothing else can run
 * on it meanwhile because `fn` is synchronous. Failing to return is unrecoverable and throws.
 */
export function inNetns<T>(nsFd: number, fn: () => T): Sys<T> {
  const c = libc();
  const home = c.open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC);
  if (home < 0) return fail();
  try {
    if (c.setns(nsFd, CLONE_NEWNET) < 0) return fail();
    let value: T;
    try {
      value = fn();
    } catch (err) {
      returnHome(home);
      throw err;
    }
    returnHome(home);
    return { ok: true, value };
  } finally {
    c.close(home);
  }
}

function returnHome(home: number): void {
  const c = libc();
  if (c.setns(home, CLONE_NEWNET) < 0)
    throw new Error(`setns back to the original network namespace failed (errno ${c.errno()})`);
}
