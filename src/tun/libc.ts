/**
 * The libc calls the TUN device needs, bound through koffi (with uring.ts, the only koffi users),
 * and the Linux constants that go with them. Bound lazily on first use, so importing `src/tun`
 * on a platform without glibc (or in a unit test of the memory device) loads nothing.
 *
 * Constants are the x86-64 / arm64 / riscv64 values of the generic Linux ABI (`asm-generic`);
 * alpha, mips, parisc, powerpc and sparc number some `O_*` flags and ioctls differently and are not
 * supported.
 */
import koffi from 'koffi';

/** `open(2)` flags. */
export const O_RDONLY = 0;
/** `open(2)` flags. */
export const O_RDWR = 2;
/** `open(2)` / `fcntl(2)` flag: non-blocking I/O. */
export const O_NONBLOCK = 0o4000;
/** `open(2)` flag: close on exec. */
export const O_CLOEXEC = 0o2000000;

/** `fcntl(2)` commands. */
export const F_GETFL = 3;
/** `fcntl(2)` commands. */
export const F_SETFL = 4;

/** `poll(2)` event bits (`struct pollfd.events/revents`). */
export const POLLIN = 0x001;
/** `poll(2)`: error condition. */
export const POLLERR = 0x008;
/** `poll(2)`: hang up. */
export const POLLHUP = 0x010;
/** `poll(2)`: the fd is not open. */
export const POLLNVAL = 0x020;

/** `eventfd(2)` flags (same bits as O_CLOEXEC / O_NONBLOCK). */
export const EFD_CLOEXEC = O_CLOEXEC;
/** `eventfd(2)` flags. */
export const EFD_NONBLOCK = O_NONBLOCK;

/** `setns(2)`: the namespace type of a network namespace fd. */
export const CLONE_NEWNET = 0x40000000;

/** `socket(2)` arguments for the ioctl socket: AF_INET, SOCK_DGRAM, SOCK_CLOEXEC. */
export const AF_INET = 2;
/** `socket(2)` type. */
export const SOCK_DGRAM = 2;
/** `socket(2)` type flag. */
export const SOCK_CLOEXEC = O_CLOEXEC;

/** errno values (asm-generic/errno-base.h, errno.h) used to classify failures. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSYS: 38,
  EBADFD: 77,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
} as const;

/** The symbolic name of an errno value, e.g. `EBUSY`, or `errno N` when unknown. */
export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(Errno)) if (value === errno) return name;
  return `errno ${errno}`;
}

/** The libc functions, typed for our call sites. Pointers are Uint8Arrays passed by reference. */
export interface Libc {
  open(path: string, flags: number): number;
  close(fd: number): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  write(fd: number, buf: Uint8Array, count: number): number;
  /** `ioctl(fd, request, void *arg)`. */
  ioctlPtr(fd: number, request: number, arg: Uint8Array): number;
  /** `ioctl(fd, request, unsigned long arg)`: an argument passed by value (e.g. TUNSETOFFLOAD). */
  ioctlInt(fd: number, request: number, arg: number): number;
  /** `ioctl(fd, request)` with no argument (e.g. TUNGETDEVNETNS). */
  ioctlNone(fd: number, request: number): number;
  fcntlGet(fd: number, cmd: number): number;
  fcntlSet(fd: number, cmd: number, arg: number): number;
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  /** `poll()` on libuv's thread pool; `cb(err, result)` runs on the event loop. */
  pollAsync(
    fds: Uint8Array,
    nfds: number,
    timeoutMs: number,
    cb: (err: unknown, result: number) => void,
  ): void;
  /** `read()` on libuv's thread pool. errno is not observable from an async call. */
  readAsync(fd: number, buf: Uint8Array, count: number, cb: (err: unknown, result: number) => void): void;
  eventfd(initval: number, flags: number): number;
  setns(fd: number, nstype: number): number;
  socket(domain: number, type: number, protocol: number): number;
  /**
   * Watches `fd` for readability from the event loop itself (a libuv uv_poll_t: epoll, no thread).
   * `cb(status)` runs on each loop iteration while the fd is readable (level-triggered); status < 0
   * is a libuv error. koffi marks this API undocumented and subject to change (2.15 changelog).
   */
  watchReadable(fd: number, cb: (status: number) => void): PollWatch;
  /** True when this koffi has the (undocumented) readiness binding behind watchReadable. */
  canWatchReadable(): boolean;
  /** errno of the last synchronous call on this thread. */
  errno(): number;
}

/** A readiness watch from Libc.watchReadable(). */
export interface PollWatch {
  /** Stops watching and frees the handle (asynchronously, in libuv). The fd may be closed right after. */
  close(): void;
}

/** koffi.node.poll() as implemented in koffi 2.16 (its index.d.ts types the callback differently). */
type KoffiPoll = (fd: number, opts: { readable: boolean }, cb: (status: number) => void) => PollWatch;

let bound: Libc | undefined;

function loadLibc(): koffi.IKoffiLib {
  try {
    return koffi.load('libc.so.6');
  } catch {
    // musl or an unusual layout: the running process already links a libc.
    return koffi.load(null);
  }
}

/** The bound libc functions (binds them on first call; throws off Linux). */
export function libc(): Libc {
  if (bound !== undefined) return bound;
  if (process.platform !== 'linux') throw new Error(`TUN devices need Linux, not ${process.platform}`);
  const lib = loadLibc();
  const open = lib.func('int open(const char *path, int flags, ...)');
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)');
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
  const read = lib.func('long read(int fd, void *buf, unsigned long count)');
  const poll = lib.func('int poll(void *fds, unsigned long nfds, int timeout)');
  bound = {
    open: (path, flags) => open(path, flags) as number,
    close: lib.func('int close(int fd)') as Libc['close'],
    read: read as Libc['read'],
    write: lib.func('long write(int fd, const void *buf, unsigned long count)') as Libc['write'],
    ioctlPtr: (fd, request, arg) => ioctl(fd, request, 'void *', arg) as number,
    ioctlInt: (fd, request, arg) => ioctl(fd, request, 'unsigned long', arg) as number,
    ioctlNone: (fd, request) => ioctl(fd, request) as number,
    fcntlGet: (fd, cmd) => fcntl(fd, cmd) as number,
    fcntlSet: (fd, cmd, arg) => fcntl(fd, cmd, 'int', arg) as number,
    poll: poll as Libc['poll'],
    pollAsync: (fds, nfds, timeoutMs, cb) => poll.async(fds, nfds, timeoutMs, cb),
    readAsync: (fd, buf, count, cb) => read.async(fd, buf, count, cb),
    eventfd: lib.func('int eventfd(unsigned int initval, int flags)') as Libc['eventfd'],
    setns: lib.func('int setns(int fd, int nstype)') as Libc['setns'],
    socket: lib.func('int socket(int domain, int type, int protocol)') as Libc['socket'],
    watchReadable: (fd, cb) => (koffi.node.poll as unknown as KoffiPoll)(fd, { readable: true }, cb),
    canWatchReadable: () => typeof (koffi as { node?: { poll?: unknown } }).node?.poll === 'function',
    errno: () => koffi.errno(),
  };
  return bound;
}

// --- Socket options for upstream sockets (SO_MARK, SO_BINDTODEVICE), used by src/proxy. ---

/** `socket(2)` domain: IPv6. */
export const AF_INET6 = 10;
/** `socket(2)` type: a TCP stream. */
export const SOCK_STREAM = 1;
/** `socket(2)` type flag: non-blocking (same bit as O_NONBLOCK). */
export const SOCK_NONBLOCK = O_NONBLOCK;
/** `setsockopt(2)` level of the generic socket options. */
export const SOL_SOCKET = 1;
/** `setsockopt(2)`: bind the socket to an interface by name (socket(7)). */
export const SO_BINDTODEVICE = 25;
/** `setsockopt(2)`: the fwmark of every packet the socket sends (socket(7), needs CAP_NET_ADMIN). */
export const SO_MARK = 36;
/** `setsockopt(2)` level of the IPv6 options. */
export const IPPROTO_IPV6 = 41;
/** `setsockopt(2)`: an AF_INET6 socket that carries IPv6 only (ipv6(7)). */
export const IPV6_V6ONLY = 26;

/** `setsockopt(fd, level, name, value, value.length)`; returns 0 or -1 (errno via libc().errno()). */
export type SetSockOpt = (fd: number, level: number, name: number, value: Uint8Array) => number;

let boundSetsockopt: SetSockOpt | undefined;

/** The bound `setsockopt(2)` (binds libc on first call; throws off Linux). */
export function setsockopt(): SetSockOpt {
  if (boundSetsockopt !== undefined) return boundSetsockopt;
  libc();
  const fn = loadLibc().func(
    'int setsockopt(int fd, int level, int name, const void *value, unsigned int length)',
  );
  boundSetsockopt = (fd, level, name, value) => fn(fd, level, name, value, value.length) as number;
  return boundSetsockopt;
}
