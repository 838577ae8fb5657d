/** The upstream dialer interface shared by every proxy protocol. */
import type * as net from 'node:net';

/** Where a connection should go: an IP literal or a domain name, and a port. */
export interface Destination {
  readonly host: string;
  readonly port: number;
}

/** Per-dial options. */
export interface DialOptions {
  /** Whole-dial deadline (proxy connect + handshake); default DEFAULT_DIAL_TIMEOUT_MS. */
  readonly timeoutMs?: number;
  /** Aborts the dial; the promise rejects with DialError code EABORTED. */
  readonly signal?: AbortSignal;
}

/** Default whole-dial timeout in milliseconds. */
export const DEFAULT_DIAL_TIMEOUT_MS = 5000;

/** Opens TCP streams to destinations, through a proxy or directly. */
export interface Dialer {
  /** 'socks5', 'socks4', 'socks4a', 'http', 'direct' or 'reject'. */
  readonly name: string;
  /** Resolves with a connected socket (Nagle off) or rejects with a DialError. */
  dial(dst: Destination, opts?: DialOptions): Promise<net.Socket>;
  /** Frees what the dialer holds between dials (spare connections); optional. */
  close?(): void;
  /** Counters of what the dialer keeps between dials (spare connections); optional. */
  stats?(): Readonly<Record<string, number>>;
}

/** Formats a destination as `host:port`, bracketing IPv6 literals. */
export function formatDestination(dst: Destination): string {
  return dst.host.includes(':') ? `[${dst.host}]:${dst.port}` : `${dst.host}:${dst.port}`;
}
