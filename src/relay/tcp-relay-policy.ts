/**
 * The TCP relay's small policies: what a client sees when its upstream dial fails, the loop
 * guard that keeps the relay from dialing the proxy through itself, and the dials in flight.
 */

import type * as net from 'node:net';
import { canonicalHost } from '../proxy/address.js';
import type { Destination, Dialer, DialOptions } from '../proxy/dialer.js';
import { DialCancel, formatDestination } from '../proxy/dialer.js';
import type { TcpRequest } from '../runtime.js';

/**
 * How a refused connection request is answered: 'rst' like a closed port (connect() fails with
 * ECONNREFUSED), or an ICMP Destination Unreachable quoting the SYN (RFC 792 code 1 / RFC 4443
 * §3.1 code 3 for a host, RFC 792 code 0 / RFC 4443 §3.1 code 0 for a network), which Linux's
 * connect() reports as EHOSTUNREACH or ENETUNREACH.
 */
export type ClientRefusal = 'rst' | 'host-unreachable' | 'net-unreachable';

/**
 * What the client sees when the dial for its SYN fails, by DialError code (or 'loop'):
 *
 * | dial failure                                     | client sees                        |
 * |--------------------------------------------------|------------------------------------|
 * | EHOSTUNREACH                                     | host unreachable (EHOSTUNREACH)    |
 * | ENETUNREACH                                      | network unreachable (ENETUNREACH)  |
 * | ECONNREFUSED, ETIMEDOUT, EPROXY, EPROXYAUTH,     | RST (ECONNREFUSED)                 |
 * | EREJECTED, EABORTED, loop, anything else         |                                    |
 *
 * A timed-out dial answers with RST rather than silence: the client has already waited the dial
 * timeout, and a prompt refusal beats its own SYN retries running on for minutes. Failures of the
 * proxy itself (down, bad credentials, protocol errors) are refusals as far as the client can tell.
 */
export function refusalFor(code: string): ClientRefusal {
  switch (code) {
    case 'EHOSTUNREACH':
      return 'host-unreachable';
    case 'ENETUNREACH':
      return 'net-unreachable';
    default:
      return 'rst';
  }
}

/** Answers a pending request with `refusal` (no-op once the client gave up). */
export function refuse(request: TcpRequest, refusal: ClientRefusal): void {
  if (request.pending) request.reject(refusal);
}

/** A set of endpoints (the proxy's own address:port) the relay must never dial through itself. */
export class LoopGuard {
  private readonly keys: Set<string>;
  /** The guarded ports: most connections go elsewhere and need no address text at all. */
  private readonly ports: Set<number>;

  constructor(endpoints: readonly Destination[] = []) {
    this.keys = new Set(
      endpoints.map((d) => formatDestination({ host: canonicalHost(d.host), port: d.port })),
    );
    this.ports = new Set(endpoints.map((d) => d.port));
  }

  /** True when `dst` is one of the guarded endpoints. */
  matches(dst: Destination): boolean {
    if (!this.ports.has(dst.port)) return false;
    return this.keys.has(formatDestination({ host: canonicalHost(dst.host), port: dst.port }));
  }
}

export { canonicalHost };

/**
 * The relay's dials in flight: each one stops when its client gives up (request.onAbandon, called
 * by the runtime for a pending SYN or by the relay for a connection accepted before its dial) or
 * when abortAll() runs (relay close). A DialCancel per dial for a dialer that heeds one (the
 * built-in ones), else an AbortController, and the request's onAbandon hook (AbortSignal.any
 * over two signals cost ~10 us per connection, the controller and its listener more again).
 */
export class DialsInFlight {
  private readonly open = new Set<DialCancel | AbortController>();

  /** Dials `dst` now (not on a later tick: the dial is the critical path of the client's connect()). */
  start(dialer: Dialer, dst: Destination, timeoutMs: number, request: TcpRequest): Promise<net.Socket> {
    const abort = dialer.cancellable === true ? new DialCancel() : new AbortController();
    this.open.add(abort);
    request.onAbandon = () => abort.abort();
    const opts: DialOptions =
      abort instanceof DialCancel ? { timeoutMs, cancel: abort } : { timeoutMs, signal: abort.signal };
    let dialing: Promise<net.Socket>;
    try {
      dialing = dialer.dial(dst, opts);
    } catch (err) {
      // A dialer that throws synchronously is treated like one that rejects.
      dialing = Promise.reject(err);
    }
    return dialing.then(
      (socket) => {
        this.open.delete(abort);
        request.onAbandon = undefined;
        return socket;
      },
      (err: unknown) => {
        this.open.delete(abort);
        request.onAbandon = undefined;
        throw err;
      },
    );
  }

  /** Aborts every dial in flight. */
  abortAll(): void {
    for (const abort of [...this.open]) abort.abort();
    this.open.clear();
  }
}

/**
 * When the SYN-ACK goes out relative to the upstream dial:
 * - 'after-dial': only once the dial succeeded, so a failed dial is a refusal the client sees
 *   (RST or ICMP, see refusalFor) and never an accepted-then-reset connection;
 * - 'before-dial': at once, the dial running while the client sends its first bytes (held in the
 *   connection's receive window); a failed dial resets the accepted connection. What gVisor- and
 *   lwIP-based tun2socks always do; it takes the client's handshake round trip off the dial's path;
 * - 'auto' (default): 'before-dial' for a destination whose last dial succeeded within
 *   KNOWN_GOOD_TTL_MS, 'after-dial' for one never dialed, or whose last dial failed.
 */
export type TcpAcceptMode = 'auto' | 'after-dial' | 'before-dial';

/** Default of the known-good destinations an 'auto' relay remembers (oldest forgotten first). */
export const DEFAULT_KNOWN_GOOD_MAX = 4096;
/** A destination is known good for this long after a successful dial. */
export const KNOWN_GOOD_TTL_MS = 60_000;

/**
 * The destinations (host:port as dialed) whose last dial succeeded, with when: at most `max`
 * entries, least recently succeeded forgotten first; a failed dial forgets its destination.
 */
export class KnownGood {
  /** key → time of the last successful dial; Map order is the order of those times. */
  private readonly at = new Map<string, number>();

  constructor(
    private readonly max = DEFAULT_KNOWN_GOOD_MAX,
    private readonly ttlMs = KNOWN_GOOD_TTL_MS,
  ) {}

  /** Entries held. */
  get size(): number {
    return this.at.size;
  }

  /** True when a dial to `key` succeeded within the TTL before `now`. */
  has(key: string, now: number): boolean {
    const t = this.at.get(key);
    return t !== undefined && now - t < this.ttlMs;
  }

  /** A dial to `key` succeeded at `now`. */
  succeeded(key: string, now: number): void {
    this.at.delete(key);
    this.at.set(key, now);
    if (this.at.size > this.max) this.at.delete(this.at.keys().next().value!);
  }

  /** A dial to `key` failed. */
  failed(key: string): void {
    this.at.delete(key);
  }
}
