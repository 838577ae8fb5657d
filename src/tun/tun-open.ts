/**
 * Opening a TUN: create or attach by name, or adopt an fd handed over by a parent; optionally
 * inside a network namespace; set or read the MTU. Every failure becomes a TunError whose message
 * says what to do about it.
 */
import { type DeviceOffload, NO_OFFLOAD } from './device.js';
import { TunError } from './errors.js';
import {
  getMtu,
  inNetns,
  openNetns,
  requestedFlags,
  type Sys,
  setMtu,
  TunFlags,
  TunOffload,
  tunGetDevNetns,
  tunGetIff,
  tunSetIff,
  tunSetOffload,
  tunSetVnetHdrSize,
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
import { VIRTIO_NET_HDR_LENGTH } from './vnet.js';

/**
 * Offload: 'auto' asks for IFF_VNET_HDR with checksum and TCP segmentation offload and falls back
 * to what the kernel grants; 'off' opens a plain TUN (an fd handed over with IFF_VNET_HDR keeps its
 * header, with every offload turned off).
 */
export type OffloadMode = 'auto' | 'off';

/** What openTunHandle() needs from TunOptions. */
export interface TunOpenOptions {
  name?: string;
  fd?: number;
  mtu?: number;
  netns?: string;
  /** Default 'auto'. */
  offload?: OffloadMode;
  /**
   * Attach as one queue of a multi-queue device (IFF_MULTI_QUEUE): every open of the same name
   * adds a queue, and the kernel spreads flows over the queues by their hash. Default false.
   */
  multiQueue?: boolean;
}

/** An opened TUN: its non-blocking fd, the eventfd that wakes the reader, name, flags, MTU and offload. */
export interface TunHandle {
  readonly fd: number;
  readonly eventFd: number;
  readonly name: string;
  readonly flags: number;
  readonly mtu: number;
  /** What the kernel granted. */
  readonly offload: DeviceOffload;
  /** Why offload is less than asked for ('auto' only), e.g. `TUNSETOFFLOAD refused (EINVAL)`. */
  readonly offloadNote: string | undefined;
}

/** What TUNSETOFFLOAD asks for under 'auto': checksums and TSO for both families, nothing UDP. */
const WANTED_OFFLOAD = TunOffload.TUN_F_CSUM | TunOffload.TUN_F_TSO4 | TunOffload.TUN_F_TSO6;

/**
 * Configures the offloads of an fd attached with IFF_VNET_HDR: the header size, then TUNSETOFFLOAD
 * with TSO, or checksums alone, or nothing ('off'). Never throws: a refusal lowers the grant.
 */
function configureOffload(
  fd: number,
  mode: OffloadMode,
): { offload: DeviceOffload; note: string | undefined } {
  const size = tunSetVnetHdrSize(fd, VIRTIO_NET_HDR_LENGTH);
  if (!size.ok)
    // The header size cannot be trusted: keep the kernel from sending anything that needs it.
    return {
      offload: { vnetHdr: true, tso: false, csum: false },
      note: `TUNSETVNETHDRSZ refused (${errnoName(size.errno)})`,
    };
  if (mode === 'off') {
    tunSetOffload(fd, 0);
    return { offload: { vnetHdr: true, tso: false, csum: false }, note: undefined };
  }
  const full = tunSetOffload(fd, WANTED_OFFLOAD);
  if (full.ok) return { offload: { vnetHdr: true, tso: true, csum: true }, note: undefined };
  const note = `TUNSETOFFLOAD(CSUM|TSO4|TSO6) refused (${errnoName(full.errno)})`;
  if (tunSetOffload(fd, TunOffload.TUN_F_CSUM).ok)
    return { offload: { vnetHdr: true, tso: false, csum: true }, note };
  tunSetOffload(fd, 0);
  return { offload: { vnetHdr: true, tso: false, csum: false }, note: `${note}, and CSUM alone too` };
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

/**
 * attachByName asking for IFF_VNET_HDR under 'auto'; when the kernel refuses the flag (EINVAL,
 * e.g. a kernel or a persistent device that will not take it), attaches again without it.
 */
function attachWithOffload(
  name: string,
  mode: OffloadMode,
  multiQueue = false,
): { fd: number; name: string; flags: number; offload: DeviceOffload; offloadNote: string | undefined } {
  if (mode === 'off')
    return {
      ...attachByName(name, requestedFlags(false, multiQueue)),
      offload: NO_OFFLOAD,
      offloadNote: undefined,
    };
  let dev: { fd: number; name: string; flags: number };
  try {
    dev = attachByName(name, requestedFlags(true, multiQueue));
  } catch (err) {
    if (!(err instanceof TunError) || err.errno !== 'EINVAL') throw err;
    const plain = attachByName(name, requestedFlags(false, multiQueue));
    return { ...plain, offload: NO_OFFLOAD, offloadNote: 'IFF_VNET_HDR refused (EINVAL)' };
  }
  const { offload, note } = configureOffload(dev.fd, mode);
  return { ...dev, offload, offloadNote: note };
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
  const flags =
    (rawFlags & ~(TunFlags.IFF_NO_PI | TunFlags.IFF_VNET_HDR)) |
    (info.packetInfo ? 0 : TunFlags.IFF_NO_PI) |
    (info.vnetHdr ? TunFlags.IFF_VNET_HDR : 0);
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

/**
 * Adopts a handed-over fd: verified, described, then made non-blocking (untouched on failure). An
 * fd with IFF_VNET_HDR keeps its header and gets the offloads `mode` asks for; one without it
 * stays plain (the flag cannot be added to an attached fd).
 */
function adoptFd(
  fd: number,
  mtu: number | undefined,
  knownNetns: boolean,
  mode: OffloadMode,
): Omit<TunHandle, 'eventFd'> {
  const { name, flags: rawFlags } = inspectFd(fd);
  const describe = () => describeAdopted(fd, name, rawFlags, mtu);
  const { flags, mtu: actualMtu } = knownNetns ? describe() : inDeviceNetns(fd, describe);
  const c = libc();
  const fl = c.fcntlGet(fd, F_GETFL);
  if (fl < 0 || c.fcntlSet(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    throw sysError(`making fd ${fd} non-blocking`, c.errno());
  if ((flags & TunFlags.IFF_VNET_HDR) === 0)
    return {
      fd,
      name,
      flags,
      mtu: actualMtu,
      offload: NO_OFFLOAD,
      offloadNote: mode === 'auto' ? 'the fd was handed over without IFF_VNET_HDR' : undefined,
    };
  const { offload, note } = configureOffload(fd, mode);
  return { fd, name, flags, mtu: actualMtu, offload, offloadNote: note };
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
  const mode = opts.offload ?? 'auto';
  if (mode !== 'auto' && mode !== 'off')
    throw new TunError('TUN_SPEC', `offload must be 'auto' or 'off', not ${String(mode)}`);
  const setup = (): Omit<TunHandle, 'eventFd'> => {
    // A handed-over fd stays the caller's until we succeed.
    if (opts.fd !== undefined) return adoptFd(opts.fd, opts.mtu, opts.netns !== undefined, mode);
    if (opts.multiQueue === true && (opts.name === undefined || opts.name === ''))
      throw new TunError('TUN_SPEC', 'a multi-queue TUN needs a name, so that every queue attaches to it');
    const dev = attachWithOffload(opts.name ?? '', mode, opts.multiQueue === true);
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
  /** Attach with IFF_VNET_HDR (offloads are then set by whoever adopts the fd). */
  vnetHdr?: boolean;
}

/**
 * Creates or attaches TUN `name` and returns its raw fd (non-blocking, close-on-exec), without a
 * device around it: for a parent that hands the fd to a child (`fd://3`), and for tests.
 */
export function openTunFd(name: string, opts: TunFdOptions = {}): { fd: number; name: string } {
  const flags =
    (opts.packetInfo === true ? TunFlags.IFF_TUN : requestedFlags()) |
    (opts.vnetHdr === true ? TunFlags.IFF_VNET_HDR : 0);
  const open = (): { fd: number; name: string } => {
    const dev = attachByName(name, flags);
    return { fd: dev.fd, name: dev.name };
  };
  return opts.netns !== undefined ? enterNetns(opts.netns, open) : open();
}
