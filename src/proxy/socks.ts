/**
 * SOCKS5 (RFC 1928, username/password auth RFC 1929) and SOCKS4/4a dialers. We open the TCP
 * connection to the proxy ourselves, so "proxy unreachable" (EPROXY) is told apart from the
 * proxy's own replies; SOCKS5 then runs our own handshake (socks5-handshake.ts), SOCKS4/4a the
 * `socks` package's.
 */
import * as dns from 'node:dns/promises';
import * as net from 'node:net';
import { SocksClient, type SocksProxy } from 'socks';
import { type DialContext, proxyErrorCode, runDial, tcpConnect } from './dial.js';
import type { Destination, Dialer, DialOptions } from './dialer.js';
import { formatDestination } from './dialer.js';
import { DialError, type DialErrorCode } from './errors.js';
import { Socks5Error, socks5Handshake, socks5ReplyCode } from './socks5-handshake.js';
import { DEFAULT_SOCKS5_SPARES, Socks5Spares } from './socks5-spares.js';
import type { ProxyServerConfig } from './url.js';

export { socks5ReplyCode } from './socks5-handshake.js';

/**
 * SOCKS4 reply code (SOCKS4 protocol, "CD" field) to dial code: 91 (0x5B) rejected or failed →
 * ECONNREFUSED; 92 (0x5C) identd unreachable and 93 (0x5D) user id mismatch → EPROXYAUTH;
 * anything else → EPROXY.
 */
export function socks4ReplyCode(cd: number): DialErrorCode {
  switch (cd) {
    case 0x5b:
      return 'ECONNREFUSED';
    case 0x5c:
    case 0x5d:
      return 'EPROXYAUTH';
    default:
      return 'EPROXY';
  }
}

/** Reply names used by `socks` in its error messages, with their wire values. */
const SOCKS5_REPLY_NAMES: Readonly<Record<string, number>> = {
  Failure: 0x01,
  NotAllowed: 0x02,
  NetworkUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnectionRefused: 0x05,
  TTLExpired: 0x06,
  CommandNotSupported: 0x07,
  AddressNotSupported: 0x08,
};
const SOCKS4_REPLY_NAMES: Readonly<Record<string, number>> = {
  Failed: 0x5b,
  Rejected: 0x5c,
  RejectedIdent: 0x5d,
};

/**
 * Maps an error message of the `socks` package to a dial code. The package reports failures
 * only as text (its SocksClientError also carries the options, password included, so we never
 * pass it on).
 */
export function socksMessageCode(message: string): DialErrorCode {
  if (message.startsWith('Socks5 proxy rejected connection')) {
    const name = / - (\w+)$/.exec(message)?.[1];
    const rep = name === undefined ? undefined : SOCKS5_REPLY_NAMES[name];
    return rep === undefined ? 'EPROXY' : socks5ReplyCode(rep);
  }
  if (message.startsWith('Socks4 Proxy rejected connection')) {
    const name = /\((\w+)\)$/.exec(message)?.[1];
    const cd = name === undefined ? undefined : SOCKS4_REPLY_NAMES[name];
    return cd === undefined ? 'EPROXY' : socks4ReplyCode(cd);
  }
  if (message.startsWith('Socks5 Authentication failed')) return 'EPROXYAUTH';
  if (message.includes('no accepted authentication type')) return 'EPROXYAUTH';
  if (message.startsWith('Proxy connection timed out')) return 'ETIMEDOUT';
  return 'EPROXY';
}

/**
 * Returns the socket in the state of a fresh one, its early bytes still unread. On 'established'
 * the `socks` package re-emits bytes that came with the reply as a 'data' event and resumes the
 * socket one setImmediate later: a caller that attaches its listener after that would lose them.
 */
async function handBack(socket: net.Socket): Promise<net.Socket> {
  const early: Buffer[] = [];
  const collect = (chunk: Buffer): void => {
    early.push(chunk);
  };
  socket.on('data', collect);
  // Queued after the package's own setImmediate, so its re-emit and resume have happened.
  await new Promise<void>((resolve) => setImmediate(resolve));
  socket.off('data', collect);
  socket.pause();
  if (early.length > 0) socket.unshift(Buffer.concat(early));
  // Adding then removing a 'readable' listener puts the stream back to "not flowing yet" (on the
  // next tick), so the caller's first 'data' listener or pipe() starts the flow.
  const noop = (): void => {};
  socket.on('readable', noop);
  socket.off('readable', noop);
  await new Promise<void>((resolve) => process.nextTick(resolve));
  return socket;
}

type SocksConfig = ProxyServerConfig<'socks5' | 'socks4' | 'socks4a'>;

/** A SOCKS4 request carries only an IPv4 address, so plain socks4 resolves names itself. */
async function socks4Host(host: string, what: string): Promise<string> {
  if (net.isIPv4(host)) return host;
  if (net.isIPv6(host)) {
    throw new DialError('EPROXY', `SOCKS4 cannot carry the IPv6 destination ${what}`);
  }
  try {
    return (await dns.lookup(host, { family: 4 })).address;
  } catch (err) {
    throw new DialError('EHOSTUNREACH', `cannot resolve ${what} for SOCKS4`, { cause: err });
  }
}

async function handshake(
  ctx: DialContext,
  config: SocksConfig,
  dst: Destination,
  spares: Socks5Spares | undefined,
): Promise<net.Socket> {
  const what = formatDestination(dst);
  const spare = spares?.take();
  if (spare !== undefined) {
    ctx.track(spare);
    try {
      await socks5Handshake(
        spare,
        { command: 'connect', host: dst.host, port: dst.port, phase: 'request' },
        `CONNECT to ${what}`,
      );
      return spare;
    } catch (err) {
      // A spare that died unnoticed (the proxy closed it) says nothing about the destination:
      // dial afresh. Any answer from the proxy stands.
      if (!(err instanceof Socks5Error && err.closed) || ctx.settled) throw err;
      spare.destroy();
    }
  }
  let host = dst.host;
  if (config.kind === 'socks4') host = await socks4Host(host, what);
  else if (config.kind === 'socks4a' && net.isIPv6(host)) {
    throw new DialError('EPROXY', `SOCKS4a cannot carry the IPv6 destination ${what}`);
  }
  const socket = await tcpConnect(ctx, config.host, config.port, proxyErrorCode, 'proxy unreachable');
  if (ctx.settled) return socket;
  if (config.kind === 'socks5') {
    const { username, password } = config;
    await socks5Handshake(
      socket,
      { command: 'connect', host, port: dst.port, username, password },
      `CONNECT to ${what}`,
    );
    return socket;
  }
  const proxy: SocksProxy = {
    host: config.host,
    port: config.port,
    type: 4,
    ...(config.username !== undefined ? { userId: config.username } : {}),
  };
  try {
    const { socket: established } = await SocksClient.createConnection({
      proxy,
      command: 'connect',
      destination: { host, port: dst.port },
      existing_socket: socket,
      timeout: ctx.remainingMs(),
    });
    return await handBack(established);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // `message` comes from the package's fixed table plus a reply name: no credentials in it.
    throw new DialError(socksMessageCode(message), `${config.kind} to ${what}: ${message}`);
  }
}

/** Options of a SOCKS dialer. */
export interface SocksDialerOptions {
  /**
   * SOCKS5 only: connections kept open and greeted ahead of the next dial (see socks5-spares.ts);
   * default DEFAULT_SOCKS5_SPARES (1), 0 for none.
   */
  readonly spares?: number;
}

/** A dialer that connects through a SOCKS5, SOCKS4 or SOCKS4a proxy. */
export function createSocksDialer(config: SocksConfig, opts: SocksDialerOptions = {}): Dialer {
  const count = config.kind === 'socks5' ? (opts.spares ?? DEFAULT_SOCKS5_SPARES) : 0;
  const spares = count > 0 ? new Socks5Spares(config, count) : undefined;
  return {
    name: config.kind,
    cancellable: true,
    dial(dst: Destination, opts?: DialOptions): Promise<net.Socket> {
      return runDial(opts, formatDestination(dst), (ctx) => handshake(ctx, config, dst, spares));
    },
    close(): void {
      spares?.close();
    },
    stats(): Readonly<Record<string, number>> {
      return spares?.counters() ?? {};
    },
  };
}
