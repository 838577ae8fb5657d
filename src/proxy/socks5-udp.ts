/**
 * SOCKS5 UDP ASSOCIATE (RFC 1928 §7): a TCP control connection asks the proxy for a UDP relay
 * endpoint, and every datagram to or from that endpoint carries a small header naming the remote
 * end. The association lives exactly as long as the control connection (§7: "A UDP association
 * terminates when the TCP connection that the UDP ASSOCIATE request arrived on terminates").
 *
 * The handshake is socks5-handshake.ts's; the datagram header is our own codec too rather than
 * the `socks` package's createUDPFrame/parseUDPFrame, because parseUDPFrame throws on truncated
 * frames (we never throw on a peer's bytes) and returns IPv6 addresses in the uncompressed form.
 */
import * as dgram from 'node:dgram';
import * as dns from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { formatAddress, isUnspecified, parseAddress } from '../stack/wire/address.js';
import { proxyErrorCode, runDial, tcpConnect } from './dial.js';
import type { Destination, DialOptions } from './dialer.js';
import { formatDestination } from './dialer.js';
import { DialError } from './errors.js';
import { openUdpSocket, upstreamSocketOptions } from './socket-options.js';
import { Socks5Error, type Socks5Reply, socks5Handshake } from './socks5-handshake.js';
import type { UdpAssociation, UdpDialer, UdpDropReason, UdpEndpoint } from './udp.js';
import type { ProxyServerConfig } from './url.js';

/** RFC 1928 §5 address types. */
const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;

/**
 * A refused ASSOCIATE that means "this proxy has no UDP": reply 07 (command not supported), or
 * the proxy closing the control connection after accepting our authentication but before
 * replying to the request (microsocks and other CONNECT-only servers). `code` is EPROXY;
 * callers test `udpUnsupported === true` (or isUdpUnsupported()).
 */
export class UdpUnsupportedError extends DialError {
  /** Always true: the proxy does not carry UDP. */
  readonly udpUnsupported = true as const;
}

/** True when `err` says the proxy has no UDP at all (see UdpUnsupportedError). */
export function isUdpUnsupported(err: unknown): boolean {
  return (err as { udpUnsupported?: unknown } | null)?.udpUnsupported === true;
}

/** A parsed RFC 1928 §7 UDP request header and its data. */
export interface Socks5UdpFrame {
  /** FRAG: 0 for a standalone datagram; anything else is a fragment we do not reassemble. */
  readonly frag: number;
  /** DST.ADDR: dotted IPv4, RFC 5952 IPv6 text, or a domain name. */
  readonly host: string;
  /** DST.PORT. */
  readonly port: number;
  /** DATA (a view into the input). */
  readonly data: Uint8Array;
}

/** Why a UDP frame could not be parsed. */
export type Socks5UdpParseError = 'socks5-udp-malformed';

/** Header bytes before DATA for a destination, or undefined when it cannot be encoded (long name). */
export function socks5UdpHeaderLength(host: string): number | undefined {
  return headerLength(host, parseAddress(host));
}

function headerLength(host: string, a: Uint8Array | undefined): number | undefined {
  if (a !== undefined) return 4 + a.length + 2;
  const n = Buffer.byteLength(host);
  return n === 0 || n > 255 ? undefined : 4 + 1 + n + 2;
}

/**
 * Builds RSV(2)=0, FRAG=0, ATYP, DST.ADDR, DST.PORT, DATA (RFC 1928 §7) in one buffer; undefined
 * when the host cannot be encoded (a domain name longer than 255 bytes).
 */
export function encodeSocks5UdpFrame(to: Destination, data: Uint8Array): Buffer | undefined {
  const a = parseAddress(to.host);
  const length = headerLength(to.host, a);
  if (length === undefined) return undefined;
  const b = Buffer.allocUnsafe(length + data.length);
  b[0] = 0;
  b[1] = 0;
  b[2] = 0;
  let o = 4;
  if (a !== undefined) {
    b[3] = a.length === 4 ? ATYP_IPV4 : ATYP_IPV6;
    b.set(a, o);
    o += a.length;
  } else {
    b[3] = ATYP_DOMAIN;
    b[o] = Buffer.byteLength(to.host);
    o += 1 + b.write(to.host, o + 1);
  }
  b[o] = (to.port >>> 8) & 0xff;
  b[o + 1] = to.port & 0xff;
  b.set(data, o + 2);
  return b;
}

/** Parses an RFC 1928 §7 UDP frame; returns a drop reason for anything truncated or unknown. */
export function parseSocks5UdpFrame(b: Uint8Array): Socks5UdpFrame | Socks5UdpParseError {
  if (b.length < 4) return 'socks5-udp-malformed';
  const frag = b[2]!;
  let o = 4;
  let host: string;
  switch (b[3]) {
    case ATYP_IPV4:
      if (b.length < o + 4 + 2) return 'socks5-udp-malformed';
      host = formatAddress(b.subarray(o, o + 4));
      o += 4;
      break;
    case ATYP_IPV6:
      if (b.length < o + 16 + 2) return 'socks5-udp-malformed';
      host = formatAddress(b.subarray(o, o + 16));
      o += 16;
      break;
    case ATYP_DOMAIN: {
      if (b.length < o + 1) return 'socks5-udp-malformed';
      const n = b[o]!;
      if (n === 0 || b.length < o + 1 + n + 2) return 'socks5-udp-malformed';
      host = Buffer.from(b.buffer, b.byteOffset + o + 1, n).toString('utf8');
      o += 1 + n;
      break;
    }
    default:
      return 'socks5-udp-malformed';
  }
  const port = (b[o]! << 8) | b[o + 1]!;
  return { frag, host, port, data: b.subarray(o + 2) };
}

/** One association: the control connection and a UDP socket connected to the proxy's relay. */
class Socks5UdpAssociation extends EventEmitter implements UdpAssociation {
  private isClosed = false;

  constructor(
    private readonly control: net.Socket,
    private readonly socket: dgram.Socket,
  ) {
    super();
    // Anything the proxy sends on the control connection after the reply is meaningless.
    control.on('data', () => {});
    control.on('end', () => this.close());
    control.on('close', () => this.close());
    control.on('error', (err: Error) => this.close(err));
    socket.on('message', (msg: Buffer) => this.receive(msg));
    // On a connected socket an ICMP error from the relay surfaces here: the relay is gone.
    socket.on('error', (err: Error) => this.close(err));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(payload: Uint8Array, to: Destination): void {
    if (this.isClosed) return;
    const frame = encodeSocks5UdpFrame(to, payload);
    if (frame === undefined) return;
    this.socket.send(frame, () => {});
  }

  close(error?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.control.destroy();
    this.socket.close();
    this.emit('close', error);
  }

  private receive(msg: Buffer): void {
    if (this.isClosed) return;
    const frame = parseSocks5UdpFrame(msg);
    if (typeof frame === 'string') {
      this.emit('drop', frame satisfies UdpDropReason);
      return;
    }
    // RFC 1928 §7: fragmentation is optional; an implementation without it drops FRAG ≠ 0.
    if (frame.frag !== 0) {
      this.emit('drop', 'socks5-udp-fragment' satisfies UdpDropReason);
      return;
    }
    const from: UdpEndpoint = { address: frame.host, port: frame.port };
    this.emit('message', msg.subarray(msg.length - frame.data.length), from);
  }
}

type Socks5Config = ProxyServerConfig<'socks5'>;

/** Where datagrams go: the reply's BND.ADDR, or the proxy's own address when that is 0.0.0.0/::. */
async function relayEndpoint(remote: Socks5Reply, control: net.Socket): Promise<UdpEndpoint> {
  const host = remote.host;
  const a = parseAddress(host);
  if (a !== undefined && isUnspecified(a)) {
    return { address: control.remoteAddress ?? '127.0.0.1', port: remote.port };
  }
  if (a !== undefined) return { address: formatAddress(a), port: remote.port };
  // BND.ADDR may be a domain name (ATYP 03).
  const { address } = await dns.lookup(host);
  return { address, port: remote.port };
}

/** Opens a UDP socket connected to the relay endpoint (marked / bound per upstream socket options). */
function connectUdp(relay: UdpEndpoint): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const family = relay.address.includes(':') ? 6 : 4;
    const options = upstreamSocketOptions();
    // openUdpSocket throws (SocketOptionError) inside the executor: the promise rejects.
    const socket =
      options !== undefined
        ? openUdpSocket(family, options)
        : dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.connect(relay.port, relay.address, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

async function associate(config: Socks5Config, opts: DialOptions | undefined): Promise<UdpAssociation> {
  const what = `UDP ASSOCIATE at ${formatDestination(config)}`;
  let relay: Socks5Reply | undefined;
  const control = await runDial(opts, what, async (ctx) => {
    const socket = await tcpConnect(ctx, config.host, config.port, proxyErrorCode, 'proxy unreachable');
    if (ctx.settled) return socket;
    const { username, password } = config;
    try {
      // RFC 1928 §7: zeros when the client does not yet know the address it will send from.
      relay = await socks5Handshake(
        socket,
        { command: 'associate', host: '0.0.0.0', port: 0, username, password },
        `UDP ASSOCIATE at ${formatDestination(config)}`,
      );
      return socket;
    } catch (err) {
      if (err instanceof Socks5Error && (err.rep === 0x07 || (err.closed && err.stage === 'reply'))) {
        throw new UdpUnsupportedError('EPROXY', `${what}: the proxy has no UDP (${err.message})`);
      }
      throw err;
    }
  });
  try {
    if (relay === undefined) throw new Error('no relay endpoint in the reply');
    const socket = await connectUdp(await relayEndpoint(relay, control));
    if (control.destroyed) {
      socket.close();
      throw new Error('control connection closed');
    }
    return new Socks5UdpAssociation(control, socket);
  } catch (err) {
    control.destroy();
    throw new DialError('EPROXY', `${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** A UdpDialer that relays datagrams through a SOCKS5 proxy's UDP ASSOCIATE (RFC 1928 §7). */
export function createSocks5UdpDialer(config: Socks5Config): UdpDialer {
  return {
    name: 'socks5',
    associate(opts?: DialOptions): Promise<UdpAssociation> {
      return associate(config, opts);
    },
  };
}
