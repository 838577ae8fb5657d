/**
 * Opening a TUN: create or attach by name, or adopt an fd handed over by a parent; optionally
 * inside a network namespace; set or read the MTU. Every failure becomes a TunError whose message
 * says what to do about it.
 */
import { TunError } from './errors.js';
import {
  getMtu,
  inNetns,
  openNetns,
  requestedFlags,
  type Sys,
  setMtu,
  TunFlags,
  tunGetDevNetns,
  tunGetIff,
  tunSetIff,
} from './ioctl.js';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  Errno,
  errnoName,
  F_GETFL,
  F_SETFL,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
} from './libc.js';
import { tunLinkInfo } from './netlink.js';
import { checkIfName } from './spec.js';

/** What openTunHandle() needs from TunOptions. */
export interface TunOpenOptions {
  name?: string;
  fd?: number;
  mtu?: number;
  netns?: string;
}

/** An opened TUN: its non-blocking fd, the eventfd that wakes the reader, name, flags and MTU. */
export interface TunHandle {
  readonly fd: number;
  readonly eventFd: number;
  readonly name: string;
  readonly flags: number;
  readonly mtu: number;
}

/** The clone device every TUN is opened through. */
export const TUN_CLONE_DEVICE = '/dev/net/tun';
/** The MTU range Linux allows on a TUN (ETH_MIN_MTU .. MAX_MTU in drivers/net/tun.c). */
export const TUN_MIN_MTU = 68;
/** The MTU range Linux allows on a TUN. */
export const TUN_MAX_MTU = 65535;

const PERMISSION_HINT = 'run as root or give the process CAP_NET_ADMIN';

function sysError(what: string, errno: number): TunError {
  const name = errnoName(errno);
  if (errno === Errno.EPERM || errno === Errno.EACCES)
    return new TunError('TUN_PERMISSION', `${what}: permission denied (${name}): ${PERMISSION_HINT}`, name);
  return new TunError('TUN_SYSCALL', `${what} failed (${name})`, name);
}

function unwrap<T>(r: Sys<T>, onError: (errno: number) => TunError): T {
  if (r.ok) return r.value;
  throw onError(r.errno);
}

/** Opens /dev/net/tun non-blocking; the caller attaches it with TUNSETIFF. */
export function openCloneDevice(): number {
  const c = libc();
  const fd = c.open(TUN_CLONE_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) return fd;
  const errno = c.errno();
  const name = errnoName(errno);
  if (errno === Errno.ENOENT || errno === Errno.ENXIO || errno === Errno.ENODEV)
    throw new TunError(
      'TUN_UNAVAILABLE',
      `${TUN_CLONE_DEVICE} is missing (${name}): load the tun module (modprobe tun), or pass the device into the container`,
      name,
    );
  throw sysError(`cannot open ${TUN_CLONE_DEVICE}`, errno);
}

function setIffError(name: string, errno: number): TunError {
  const shown = name === '' ? 'a new TUN' : `TUN ${name}`;
  const e = errnoName(errno);
  if (errno === Errno.EBUSY)
    return new TunError(
      'TUN_BUSY',
      `${shown} is busy (${e}): another process holds it (a single-queue TUN has one reader) or it has different flags`,
      e,
    );
  if (errno === Errno.EINVAL)
    return new TunError(
      'TUN_NOT_TUN',
      `interface ${name} exists but is not a TUN device, or is a TUN with other flags such as multi_queue (${e})`,
      e,
    );
  if (errno === Errno.EPERM)
    return new TunError(
      'TUN_PERMISSION',
      `creating or attaching ${shown} was refused (${e}): ${PERMISSION_HINT}, or match the owner/group of a persistent device`,
      e,
    );
  return sysError(`TUNSETIFF on ${shown}`, errno);
}

/** Creates or attaches TUN `name` ('' lets the kernel pick tunN) on a new fd. */
function attachByName(name: string, flags = requestedFlags()): { fd: number; name: string; flags: number } {
  if (name !== '') checkIfName(name);
  const fd = openCloneDevice();
  const r = tunSetIff(fd, name, flags);
  if (!r.ok) {
    libc().close(fd);
    throw setIffError(name, r.errno);
  }
  return { fd, name: r.value, flags };
}

/** Checks a handed-over fd with TUNGETIFF: its interface name and (partly ambiguous) flags. */
function inspectFd(fd: number): { name: string; flags: number } {
  if (!Number.isInteger(fd) || fd < 0) throw new TunError('TUN_BAD_FD', `fd ${fd} is not a file descriptor`);
  const info = tunGetIff(fd);
  if (!info.ok) {
    const e = errnoName(info.errno);
    if (info.errno === Errno.EBADF) throw new TunError('TUN_BAD_FD', `fd ${fd} is not open (${e})`, e);
    if (info.errno === Errno.EBADFD)
      throw new TunError(
        'TUN_NOT_TUN',
        `fd ${fd} is a ${TUN_CLONE_DEVICE} handle not attached to any interface (no TUNSETIFF was done)`,
        e,
      );
    throw new TunError('TUN_NOT_TUN', `fd ${fd} is not a TUN device (${e})`, e);
  }
  const { name, flags } = info.value;
  if ((flags & TunFlags.IFF_TAP) !== 0)
    throw new TunError(
      'TUN_NOT_TUN',
      `fd ${fd} is a TAP device (${name}, Ethernet frames), not a TUN device`,
    );
  if ((flags & TunFlags.IFF_VNET_HDR) !== 0)
    throw new TunError(
      'TUN_UNSUPPORTED',
      `fd ${fd} (${name}) has IFF_VNET_HDR set, which is not supported yet`,
    );
  return info.value;
}

/**
 * The true flags of an adopted fd's interface, asked over rtnetlink in the calling thread's
 * namespace (TUNGETIFF reports IFF_NO_PI's bit as IFF_NOFILTER: see netlink.ts), and its MTU.
 */
function describeAdopted(fd: number, name: string, rawFlags: number, mtu: number | undefined) {
  const info = unwrap(tunLinkInfo(name), (errno) => sysError(`asking rtnetlink about ${name}`, errno));
  if (info === undefined || info.type !== TunFlags.IFF_TUN)
    throw new TunError(
      'TUN_NOT_TUN',
      `fd ${fd} is attached to ${name}, which is not a TUN device in the expected network namespace (pass its netns)`,
    );
  if (info.vnetHdr)
    throw new TunError(
      'TUN_UNSUPPORTED',
      `fd ${fd} (${name}) has IFF_VNET_HDR set, which is not supported yet`,
    );
  const flags = (rawFlags & ~TunFlags.IFF_NO_PI) | (info.packetInfo ? 0 : TunFlags.IFF_NO_PI);
  return { flags, mtu: configureMtu(name, mtu) };
}

/** Runs `fn` in the network namespace of the TUN behind `fd` (TUNGETDEVNETNS, Linux 5.2+), or in the current one when the kernel cannot tell. */
function inDeviceNetns<T>(fd: number, fn: () => T): T {
  const ns = tunGetDevNetns(fd);
  if (!ns.ok) return fn();
  try {
    return unwrap(inNetns(ns.value, fn), (errno) =>
      sysError(`entering the network namespace of fd ${fd}`, errno),
    );
  } finally {
    libc().close(ns.value);
  }
}

/** Adopts a handed-over fd: verified, described, then made non-blocking (untouched on failure). */
function adoptFd(fd: number, mtu: number | undefined, knownNetns: boolean): Omit<TunHandle, 'eventFd'> {
  const { name, flags: rawFlags } = inspectFd(fd);
  const describe = () => describeAdopted(fd, name, rawFlags, mtu);
  const { flags, mtu: actualMtu } = knownNetns ? describe() : inDeviceNetns(fd, describe);
  const c = libc();
  const fl = c.fcntlGet(fd, F_GETFL);
  if (fl < 0 || c.fcntlSet(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    throw sysError(`making fd ${fd} non-blocking`, c.errno());
  return { fd, name, flags, mtu: actualMtu };
}

function validateMtu(mtu: number | undefined): void {
  if (mtu === undefined) return;
  if (!Number.isInteger(mtu) || mtu < TUN_MIN_MTU || mtu > TUN_MAX_MTU)
    throw new TunError('TUN_MTU', `MTU ${mtu} is out of range: a TUN allows ${TUN_MIN_MTU}..${TUN_MAX_MTU}`);
}

/** Sets (when asked) and reads the MTU of `name` in the calling thread's namespace. */
function configureMtu(name: string, mtu: number | undefined): number {
  if (mtu !== undefined)
    unwrap(setMtu(name, mtu), (errno) =>
      errno === Errno.EINVAL
        ? new TunError('TUN_MTU', `setting MTU ${mtu} on ${name} was refused (EINVAL)`, 'EINVAL')
        : sysError(`setting MTU ${mtu} on ${name}`, errno),
    );
  return unwrap(getMtu(name), (errno) => sysError(`reading the MTU of ${name}`, errno));
}

function enterNetns<T>(path: string, fn: () => T): T {
  const ns = openNetns(path);
  if (!ns.ok) {
    const e = errnoName(ns.errno);
    if (ns.errno === Errno.ENOENT)
      throw new TunError(
        'TUN_NETNS',
        `network namespace ${path} does not exist (create it with: ip netns add NAME)`,
        e,
      );
    throw sysError(`opening network namespace ${path}`, ns.errno);
  }
  try {
    return unwrap(inNetns(ns.value, fn), (errno) =>
      errno === Errno.EINVAL
        ? new TunError('TUN_NETNS', `${path} is not a network namespace (EINVAL)`, 'EINVAL')
        : sysError(`entering network namespace ${path}`, errno),
    );
  } finally {
    libc().close(ns.value);
  }
}

function createEventFd(): number {
  const c = libc();
  const fd = c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw sysError('eventfd', c.errno());
  return fd;
}

/** Opens the TUN described by `opts` and the reader's eventfd; throws TunError. */
export function openTunHandle(opts: TunOpenOptions): TunHandle {
  if (opts.name !== undefined && opts.fd !== undefined)
    throw new TunError('TUN_SPEC', 'give a TUN name or an fd, not both');
  if (opts.name !== undefined) checkIfName(opts.name);
  validateMtu(opts.mtu);
  const setup = (): Omit<TunHandle, 'eventFd'> => {
    // A handed-over fd stays the caller's until we succeed.
    if (opts.fd !== undefined) return adoptFd(opts.fd, opts.mtu, opts.netns !== undefined);
    const dev = attachByName(opts.name ?? '');
    try {
      return { ...dev, mtu: configureMtu(dev.name, opts.mtu) };
    } catch (err) {
      libc().close(dev.fd);
      throw err;
    }
  };
  const dev = opts.netns !== undefined ? enterNetns(opts.netns, setup) : setup();
  let eventFd: number;
  try {
    eventFd = createEventFd();
  } catch (err) {
    if (opts.fd === undefined) libc().close(dev.fd);
    throw err;
  }
  return { ...dev, eventFd };
}

/** Options of openTunFd(). */
export interface TunFdOptions {
  /** Network namespace path to create the interface in. */
  netns?: string;
  /** Keep the 4-byte `struct tun_pi` header (omit IFF_NO_PI), as some parents hand over. */
  packetInfo?: boolean;
}

/**
 * Creates or attaches TUN `name` and returns its raw fd (non-blocking, close-on-exec), without a
 * device around it: for a parent that hands the fd to a child (`fd://3`), and for tests.
 */
export function openTunFd(name: string, opts: TunFdOptions = {}): { fd: number; name: string } {
  const flags = opts.packetInfo === true ? TunFlags.IFF_TUN : requestedFlags();
  const open = (): { fd: number; name: string } => {
    const dev = attachByName(name, flags);
    return { fd: dev.fd, name: dev.name };
  };
  return opts.netns !== undefined ? enterNetns(opts.netns, open) : open();
}
