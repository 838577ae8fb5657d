/**
 * Options of the sockets tun2socks opens upstream (to the proxy, or straight to destinations):
 * SO_MARK so that policy routing sends them around the TUN (loop avoidance with --auto-route),
 * and SO_BINDTODEVICE to pin them to one interface (--interface).
 *
 * Both must be set before the socket connects or sends, which node:net and node:dgram cannot do
 * themselves. So the fd is made with socket(2) through koffi, the options set with setsockopt(2),
 * and Node wraps the fd through documented APIs: `new net.Socket({ fd })` (net.md, "new
 * net.Socket([options])": "fd: If specified, wrap around an existing socket with the given file
 * descriptor") followed by `connect()`, and `dgram.Socket#bind({ fd })` (dgram.md, "socket.bind
 * (options)": "If the fd property is set ... it will wrap around an existing socket with the given
 * file descriptor"). No Node internals are used.
 *
 * The options are process-wide, like the routing they serve: set once by the engine
 * (`Tun2SocksOptions.upstream`), read by every dial.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import {
  AF_INET,
  AF_INET6,
  errnoName,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  libc,
  SO_BINDTODEVICE,
  SO_MARK,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  setsockopt,
} from '../tun/libc.js';

/** Socket options applied to every upstream socket before it connects or sends. */
export interface UpstreamSocketOptions {
  /** SO_MARK (fwmark) of every upstream packet; 0 or undefined: unmarked. Needs CAP_NET_ADMIN. */
  readonly fwmark?: number;
  /** SO_BINDTODEVICE: send only through this interface (e.g. 'eth0'); undefined: any. */
  readonly bindInterface?: string;
}

/** A socket option the kernel refused (EPERM without CAP_NET_ADMIN, ENODEV for a bad interface). */
export class SocketOptionError extends Error {
  /** The errno name (EPERM, ENODEV, ...), Node style, so dial error mapping can read it. */
  readonly code: string;

  constructor(what: string, errno: number) {
    const name = errnoName(errno);
    super(`${what} failed: ${name}${errno === 1 ? ' (needs CAP_NET_ADMIN, run as root)' : ''}`);
    this.name = 'SocketOptionError';
    this.code = name;
  }
}

let current: UpstreamSocketOptions | undefined;

/** Sets the options of every upstream socket opened from now on (undefined: plain sockets). */
export function setUpstreamSocketOptions(options: UpstreamSocketOptions | undefined): void {
  const mark = options?.fwmark;
  if (mark !== undefined && !(Number.isInteger(mark) && mark >= 0 && mark <= 0xffffffff)) {
    throw new RangeError(`fwmark must be an unsigned 32-bit integer, got ${mark}`);
  }
  current = options;
}

/** The options set by setUpstreamSocketOptions(), when they ask for anything. */
export function upstreamSocketOptions(): UpstreamSocketOptions | undefined {
  if (current === undefined) return undefined;
  if ((current.fwmark ?? 0) === 0 && current.bindInterface === undefined) return undefined;
  return current;
}

function int32(value: number): Uint8Array {
  // Native byte order: setsockopt reads an int.
  return new Uint8Array(new Int32Array([value | 0]).buffer);
}

/** The option writes for `options` (and IPV6_V6ONLY for a v6-only socket), in order. */
function optionWrites(
  options: UpstreamSocketOptions,
  v6only: boolean,
): { what: string; level: number; name: number; value: Uint8Array }[] {
  const out: { what: string; level: number; name: number; value: Uint8Array }[] = [];
  if ((options.fwmark ?? 0) !== 0) {
    out.push({ what: 'setsockopt SO_MARK', level: SOL_SOCKET, name: SO_MARK, value: int32(options.fwmark!) });
  }
  if (options.bindInterface !== undefined) {
    const name = new TextEncoder().encode(`${options.bindInterface}\0`);
    out.push({
      what: `setsockopt SO_BINDTODEVICE ${options.bindInterface}`,
      level: SOL_SOCKET,
      name: SO_BINDTODEVICE,
      value: name,
    });
  }
  if (v6only)
    out.push({ what: 'setsockopt IPV6_V6ONLY', level: IPPROTO_IPV6, name: IPV6_V6ONLY, value: int32(1) });
  return out;
}

/** A new non-blocking socket fd of `family`/`type` with `options` set; closes it and throws on failure. */
function optionedFd(family: 4 | 6, type: number, options: UpstreamSocketOptions, v6only: boolean): number {
  const c = libc();
  const fd = c.socket(family === 6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw new SocketOptionError('socket', c.errno());
  const set = setsockopt();
  for (const w of optionWrites(options, v6only)) {
    if (set(fd, w.level, w.name, w.value) !== 0) {
      const errno = c.errno();
      c.close(fd);
      throw new SocketOptionError(w.what, errno);
    }
  }
  return fd;
}

/**
 * An unconnected TCP socket of `family` with `options` set, ready for `connect({ host, port })`
 * to an address of the same family, reading through `onread` when given. Throws
 * SocketOptionError when the kernel refuses an option.
 */
export function openTcpSocket(
  family: 4 | 6,
  options: UpstreamSocketOptions,
  onread?: net.OnReadOpts,
): net.Socket {
  const fd = optionedFd(family, SOCK_STREAM, options, false);
  try {
    return new net.Socket({
      fd,
      readable: true,
      writable: true,
      ...(onread !== undefined ? { onread } : {}),
    });
  } catch (err) {
    libc().close(fd);
    throw err;
  }
}

/**
 * A UDP socket of `family` with `options` set (IPv6 sockets are v6-only, so replies keep their
 * family), already wrapped and listening: send() works at once (the kernel binds an ephemeral
 * port on the first send). Throws SocketOptionError when the kernel refuses an option.
 */
export function openUdpSocket(family: 4 | 6, options: UpstreamSocketOptions): dgram.Socket {
  const fd = optionedFd(family, SOCK_DGRAM, options, family === 6);
  const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    socket.bind({ fd });
  } catch (err) {
    libc().close(fd);
    throw err;
  }
  return socket;
}
