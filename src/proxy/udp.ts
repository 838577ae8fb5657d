/**
 * The upstream side of UDP: a UdpDialer opens one association per client flow, and the
 * association carries that flow's datagrams to any destination and brings back every reply
 * (full cone). The direct dialer uses plain node:dgram sockets; SOCKS5 UDP ASSOCIATE lives in
 * socks5-udp.ts; SOCKS4, HTTP CONNECT and reject have no UDP.
 */
import * as dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Destination, DialOptions } from './dialer.js';
import { openUdpSocket, upstreamSocketOptions } from './socket-options.js';
import { createSocks5UdpDialer } from './socks5-udp.js';
import type { ProxyConfig } from './url.js';

/** An address string (dotted IPv4 or IPv6 text) and a port. */
export interface UdpEndpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * One upstream UDP "socket" for one client flow. Events:
 * - 'message' (payload: Buffer, from: UdpEndpoint): a reply from any remote.
 * - 'drop' (reason: UdpDropReason): a datagram from upstream was discarded.
 * - 'close' (error?: Error): once, when the association ends (close(), or the upstream died).
 * Sending on a closed association does nothing.
 */
export interface UdpAssociation extends EventEmitter {
  /** Sends one datagram to `to`; never throws, failures are dropped silently (UDP semantics). */
  send(payload: Uint8Array, to: Destination): void;
  /** Ends the association; emits 'close' unless already closed. */
  close(): void;
  /** True once closed. */
  readonly closed: boolean;
}

/** Why an association discarded a datagram it received. */
export type UdpDropReason = 'socks5-udp-fragment' | 'socks5-udp-malformed';

/** Opens UDP associations, through a proxy or directly. */
export interface UdpDialer {
  /** 'socks5' or 'direct'. */
  readonly name: string;
  /**
   * Resolves with an open association or rejects with a DialError. A DialError with
   * `udpUnsupported === true` means the proxy has no UDP at all (see socks5-udp.ts).
   */
  associate(opts?: DialOptions): Promise<UdpAssociation>;
}

/** The address family a destination host needs: 6 for an IPv6 literal, 4 otherwise. */
export function udpFamily(host: string): 4 | 6 {
  return net.isIPv6(host) ? 6 : 4;
}

/** Direct UDP: one udp4 and one udp6 socket, each bound on first use of its family. */
class DirectUdpAssociation extends EventEmitter implements UdpAssociation {
  private readonly sockets: { 4?: dgram.Socket; 6?: dgram.Socket } = {};
  private isClosed = false;

  get closed(): boolean {
    return this.isClosed;
  }

  send(payload: Uint8Array, to: Destination): void {
    if (this.isClosed) return;
    const socket = this.socket(udpFamily(to.host));
    if (socket === undefined) return;
    // Errors (no route, message too long) are per datagram; UDP has no one to tell.
    socket.send(payload, to.port, to.host, () => {});
  }

  close(error?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const s of [this.sockets[4], this.sockets[6]]) s?.close();
    this.emit('close', error);
  }

  private socket(family: 4 | 6): dgram.Socket | undefined {
    const existing = this.sockets[family];
    if (existing !== undefined) return existing;
    // ipv6Only: a udp6 socket never sees IPv4-mapped peers, so replies keep their family.
    // With --fwmark / --interface the socket carries them from before its first datagram.
    const options = upstreamSocketOptions();
    let socket: dgram.Socket;
    try {
      socket =
        options !== undefined
          ? openUdpSocket(family, options)
          : dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', ipv6Only: family === 6 });
    } catch (err) {
      // The kernel refused an option (EPERM, ENODEV): a socket without it could loop or leak,
      // so the association ends instead (after this send returns, so 'close' is asynchronous).
      queueMicrotask(() => this.close(err as Error));
      return undefined;
    }
    this.sockets[family] = socket;
    socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (!this.isClosed) this.emit('message', msg, { address: rinfo.address, port: rinfo.port });
    });
    // A socket-level error (bind failed, family unavailable) ends the association.
    socket.on('error', (err: Error) => this.close(err));
    return socket;
  }
}

/** A UdpDialer that sends straight to destinations with node:dgram. */
export function createDirectUdpDialer(): UdpDialer {
  return {
    name: 'direct',
    associate(): Promise<UdpAssociation> {
      return Promise.resolve(new DirectUdpAssociation());
    },
  };
}

/**
 * The UDP dialer of a proxy URL: SOCKS5 (UDP ASSOCIATE) and direct have one; SOCKS4/4a, HTTP
 * CONNECT and reject carry no UDP, so this returns undefined (the relay then carries DNS over
 * TCP and drops other datagrams).
 */
export function createUdpDialer(config: ProxyConfig): UdpDialer | undefined {
  switch (config.kind) {
    case 'direct':
      return createDirectUdpDialer();
    case 'socks5':
      return createSocks5UdpDialer({ ...config, kind: 'socks5' });
    default:
      return undefined;
  }
}
