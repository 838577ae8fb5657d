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
  /** Aborts the dial as `signal` does, more cheaply; only dialers whose `cancellable` is true heed it. */
  readonly cancel?: DialCancel;
}

/**
 * A dial's abort without an AbortController: one flag and one callback. A controller, its
 * signal's listener and the listener's removal cost tens of microseconds per dial in a
 * profile of new connections, where an AbortSignal buys nothing: the relay is the only one
 * to abort, and the dial harness (runDial) the only one to listen. The relay passes one to
 * dialers that declare `cancellable` (all built-in ones) and an AbortSignal to any other.
 */
export class DialCancel {
  #aborted = false;
  #listener: (() => void) | undefined;

  /** True once abort() was called. */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** Sets the one function abort() calls (undefined: none); an earlier one is replaced. */
  listen(listener: (() => void) | undefined): void {
    this.#listener = listener;
  }

  /** Aborts: calls the listener, once. */
  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }
}

/** Default whole-dial timeout in milliseconds. */
export const DEFAULT_DIAL_TIMEOUT_MS = 5000;

/** Opens TCP streams to destinations, through a proxy or directly. */
export interface Dialer {
  /** 'socks5', 'socks4', 'socks4a', 'http', 'direct' or 'reject'. */
  readonly name: string;
  /** Resolves with a connected socket (Nagle off) or rejects with a DialError. */
  dial(dst: Destination, opts?: DialOptions): Promise<net.Socket>;
  /** True when dial() heeds `DialOptions.cancel` as it does `signal`; optional. */
  readonly cancellable?: boolean;
  /** Frees what the dialer holds between dials (spare connections); optional. */
  close?(): void;
  /** Counters of what the dialer keeps between dials (spare connections); optional. */
  stats?(): Readonly<Record<string, number>>;
}

/** Formats a destination as `host:port`, bracketing IPv6 literals. */
export function formatDestination(dst: Destination): string {
  return dst.host.includes(':') ? `[${dst.host}]:${dst.port}` : `${dst.host}:${dst.port}`;
}
