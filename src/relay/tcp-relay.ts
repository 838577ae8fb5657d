/**
 * The TCP relay: joins every TCP connection the stack terminates to an upstream socket opened by a
 * Dialer. The dial happens at SYN time; by default ('auto', see TcpAcceptMode) the SYN-ACK goes
 * out only once it succeeded, so a client whose destination is unreachable sees a refusal instead
 * of an accepted-then-reset connection, except for a destination dialed successfully moments ago,
 * which is accepted at once and dialed while the client sends. Data moves through one pipe per
 * direction with backpressure end to end: an upstream that stops reading stops the TcpSocket
 * being read, whose receive buffer fills and closes the client's window. A FIN travels as end() (half-close both ways); an error or RST on either side
 * resets the other.
 */
import type * as net from 'node:net';
import type { Logger } from '../log.js';
import {
  DEFAULT_DIAL_TIMEOUT_MS,
  type Destination,
  type Dialer,
  formatDestination,
} from '../proxy/dialer.js';
import { DialError } from '../proxy/errors.js';
import type { StackRuntime, TcpRequest } from '../runtime.js';
import type { TcpSocket } from '../tcp-socket.js';
import {
  DIALING,
  type Early,
  ignore,
  type Joined,
  join,
  onEarlyClose,
  RELAYED,
  type Relayed,
  reset,
} from './tcp-relay-join.js';
import {
  DialsInFlight,
  KnownGood,
  LoopGuard,
  refusalFor,
  refuse,
  type TcpAcceptMode,
} from './tcp-relay-policy.js';

export {
  type ClientRefusal,
  canonicalHost,
  LoopGuard,
  refusalFor,
  type TcpAcceptMode,
} from './tcp-relay-policy.js';

/** Default idle timeout: no byte either way for 5 minutes resets both sides (hev-socks5-tunnel's default). */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 300_000;
/** Default half-closed timeout: once one direction ended, 1 minute without a byte closes both. */
export const DEFAULT_TCP_HALF_CLOSED_TIMEOUT_MS = 60_000;
/** The coarsest period of the shared timeout sweep. */
const MAX_SWEEP_MS = 1000;
/** The finest period of the shared timeout sweep (with very short test timeouts). */
const MIN_SWEEP_MS = 10;

/** Options of a TcpRelay. */
export interface TcpRelayOptions {
  /** Where connections go. */
  readonly dialer: Dialer;
  /** Logger; default silent. */
  readonly log?: Logger;
  /** Whole-dial timeout; default DEFAULT_DIAL_TIMEOUT_MS (5000). */
  readonly dialTimeoutMs?: number;
  /** No byte either way for this long resets both sides; default DEFAULT_TCP_IDLE_TIMEOUT_MS. */
  readonly idleTimeoutMs?: number;
  /** Once one direction ended, idle for this long closes both; default DEFAULT_TCP_HALF_CLOSED_TIMEOUT_MS. */
  readonly halfClosedTimeoutMs?: number;
  /** Endpoints never relayed (the proxy's own address:port): refused with RST and one warn line. */
  readonly loopGuard?: readonly Destination[];
  /**
   * Maps the destination a client asked for to the one dialed (fake-IP: a fake address becomes
   * its name, so the proxy resolves it). Undefined refuses the connection with RST, counted in
   * `failed` as 'fake-unmapped'. Default: dial what the client asked for.
   */
  readonly resolveDestination?: (dst: Destination) => Destination | undefined;
  /**
   * A service of the stack itself for `dst` (DNS over TCP to the stack's DNS address): when it
   * returns a handler, the connection is accepted at once, not dialed, and handed to it. The
   * relay destroys such sockets on close(); they are not in the relay's counters.
   */
  readonly localService?: (dst: Destination) => ((socket: TcpSocket) => void) | undefined;
  /** When the SYN-ACK goes out relative to the dial (see TcpAcceptMode); default 'auto'. */
  readonly accept?: TcpAcceptMode;
}

/** Counters of a TcpRelay. */
export interface TcpRelayStats {
  /** Connections being relayed now. */
  open: number;
  /** Connections accepted (dial succeeded) since the relay was created. */
  total: number;
  /** Bytes read from clients (client → upstream). */
  bytesUp: number;
  /** Bytes read from upstreams (upstream → client). */
  bytesDown: number;
  /** Refused connection requests by DialError code, or 'loop' for the loop guard. */
  failed: Record<string, number>;
}

/** The socket of a connection accepted before its dial completed, once it is (a tick after the dial started). */
interface EarlyAccept {
  tcp: Early | undefined;
}

/** Relays the stack's TCP connections to a Dialer. */
export class TcpRelay {
  private readonly dialer: Dialer;
  private readonly log: Logger | undefined;
  private readonly dialTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly halfClosedTimeoutMs: number;
  private readonly sweepMs: number;
  private readonly guard: LoopGuard;
  /** The dials in flight, aborted on close(). */
  private readonly dials = new DialsInFlight();
  private readonly conns = new Set<Relayed>();
  private readonly acceptMode: TcpAcceptMode;
  /** Destinations whose last dial succeeded ('auto' accepts them before the dial). */
  private readonly knownGood = new KnownGood();
  /** Connections accepted before their dial completed. */
  private readonly accepting = new Set<Early>();
  /** Sockets handed to local services. */
  private readonly local = new Set<TcpSocket>();
  private readonly failed: Record<string, number> = {};
  private total = 0;
  private closedBytesUp = 0;
  private closedBytesDown = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  /** 'close' of either socket (one listener for all connections): over once both have closed. */
  private readonly onClose: (this: Joined) => void;

  constructor(private readonly options: TcpRelayOptions) {
    this.dialer = options.dialer;
    this.log = options.log;
    this.dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_TCP_IDLE_TIMEOUT_MS;
    this.halfClosedTimeoutMs = options.halfClosedTimeoutMs ?? DEFAULT_TCP_HALF_CLOSED_TIMEOUT_MS;
    // One shared sweep instead of a timer per connection: 10k connections cost one interval.
    // Its period bounds how late a timeout fires (a quarter of the shortest, at most 1 s).
    const shortest = Math.min(this.idleTimeoutMs, this.halfClosedTimeoutMs);
    this.sweepMs = Math.max(MIN_SWEEP_MS, Math.min(MAX_SWEEP_MS, Math.floor(shortest / 4)));
    this.guard = new LoopGuard(options.loopGuard);
    this.acceptMode = options.accept ?? 'auto';
    const relay = this;
    this.onClose = function (this: Joined): void {
      const c = this[RELAYED]!;
      if (--c.pipes === 0) relay.finish(c);
    };
  }

  /** Handles every TCP connection request of `runtime`. */
  attach(runtime: StackRuntime): void {
    runtime.onTcpRequest((request) => this.onRequest(request));
  }

  /** Live counters (a fresh snapshot at each read; byte counts include open connections). */
  get stats(): TcpRelayStats {
    let up = this.closedBytesUp;
    let down = this.closedBytesDown;
    for (const c of this.conns) {
      up += c.tcp.bytesRead;
      down += c.upstream.bytesRead;
    }
    return {
      open: this.conns.size,
      total: this.total,
      bytesUp: up,
      bytesDown: down,
      failed: { ...this.failed },
    };
  }

  /** Aborts dials in flight and destroys every relayed connection (upstream and client side). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dials.abortAll();
    for (const c of [...this.conns]) {
      this.teardown(c, 'relay-closed');
      this.finish(c);
    }
    for (const socket of [...this.local]) socket.destroy();
    for (const socket of [...this.accepting]) socket.destroy();
    this.accepting.clear();
    this.stopSweep();
  }

  private onRequest(request: TcpRequest): void {
    const asked: Destination = { host: request.localAddress, port: request.localPort };
    const client = formatDestination({ host: request.remoteAddress, port: request.remotePort });
    if (this.closed) {
      request.reject('rst');
      return;
    }
    if (this.guard.matches(asked)) {
      this.count('loop');
      this.log?.warn(`routing loop: ${formatDestination(asked)} is the proxy itself; refused`, {
        client,
        dst: formatDestination(asked),
      });
      refuse(request, 'rst');
      return;
    }
    const service = this.options.localService?.(asked);
    if (service !== undefined) {
      this.serveLocally(request, service);
      return;
    }
    const dst =
      this.options.resolveDestination === undefined ? asked : this.options.resolveDestination(asked);
    if (dst === undefined) {
      this.count('fake-unmapped');
      this.log?.debug('tcp to a fake address with no name: refused', {
        client,
        dst: formatDestination(asked),
      });
      refuse(request, 'rst');
      return;
    }
    const key = formatDestination(dst);
    const startedAt = performance.now();
    const mode = this.acceptMode;
    const early: EarlyAccept | undefined =
      mode === 'before-dial' || (mode === 'auto' && this.knownGood.has(key, startedAt))
        ? { tcp: undefined }
        : undefined;
    this.dials
      .start(this.dialer, dst, this.dialTimeoutMs, request)
      .then(
        (upstream) => this.onDialed(request, upstream, client, key, early?.tcp),
        (err: unknown) => this.onDialFailed(request, err, client, key, startedAt, early?.tcp),
      )
      .catch((err: unknown) => {
        // A bug of ours: never let it end the process.
        this.log?.error(`tcp relay: ${String(err)}`, { client, dst: key });
      });
    // The SYN-ACK goes out on the next tick, after the dial's connect() (net.Socket connects on
    // the next tick too): the upstream's handshake is the longer chain. A dial settled by then
    // took the request its own way (accepted or refused), and the early accept does not happen.
    if (early !== undefined) {
      process.nextTick(() => {
        if (request.pending && !this.closed) early.tcp = this.acceptEarly(request);
      });
    }
  }

  /** Sends the SYN-ACK before the dial completes: the client leaving meanwhile stops the dial. */
  private acceptEarly(request: TcpRequest): Early {
    const tcp: Early = request.accept();
    tcp.on('error', ignore);
    tcp[DIALING] = request;
    tcp.on('close', onEarlyClose);
    this.accepting.add(tcp);
    return tcp;
  }

  /** The dial of an early-accepted connection is over: it is no longer waiting. */
  private settleEarly(tcp: Early): void {
    this.accepting.delete(tcp);
    tcp[DIALING] = undefined;
    tcp.off('close', onEarlyClose);
  }

  /** Accepts a connection for a service of the stack itself. */
  private serveLocally(request: TcpRequest, service: (socket: TcpSocket) => void): void {
    const socket = request.accept();
    // The service handles errors its own way; none may go unhandled here.
    socket.on('error', ignore);
    this.local.add(socket);
    socket.on('close', () => this.local.delete(socket));
    service(socket);
  }

  /**
   * The dial failed: refuse the pending request (refusalFor), or reset a connection accepted
   * before the dial ('answer=reset'). Unless aborted, the destination is no longer known good.
   */
  private onDialFailed(
    request: TcpRequest,
    err: unknown,
    client: string,
    dst: string,
    startedAt: number,
    early: Early | undefined,
  ): void {
    const code = err instanceof DialError ? err.code : 'EPROXY';
    this.count(code);
    // A dial aborted because its client left says nothing about the destination.
    if (code !== 'EABORTED') this.knownGood.failed(dst);
    if (early !== undefined) this.settleEarly(early);
    const waiting = early === undefined ? request.pending : !early.destroyed;
    const refusal = refusalFor(code);
    if (!waiting) {
      this.log?.debug('tcp client gave up during the dial', { client, dst, code });
    } else if (this.log?.enabled('warn')) {
      const ms = Math.round(performance.now() - startedAt);
      this.log.warn('tcp dial failed', { client, dst, code, ms, answer: early ? 'reset' : refusal });
    }
    if (early !== undefined) early.destroy();
    else refuse(request, refusal);
  }

  private onDialed(
    request: TcpRequest,
    upstream: net.Socket,
    client: string,
    dst: string,
    early: Early | undefined,
  ): void {
    // First thing: an error on the upstream must never go unhandled.
    upstream.on('error', ignore);
    this.knownGood.succeeded(dst, performance.now());
    if (early !== undefined) this.settleEarly(early);
    if (this.closed || (early === undefined ? !request.pending : early.destroyed)) {
      this.log?.debug('tcp client gave up during the dial', { client, dst });
      upstream.destroy();
      if (request.pending) request.reject('rst');
      return;
    }
    // A net.Socket from connect() closes its writable side when the readable side ends unless
    // allowHalfOpen is set; the relay needs each direction to end on its own.
    upstream.allowHalfOpen = true;
    // An early-accepted socket sheds its placeholder error listener: join() adds the real one.
    const tcp = early?.off('error', ignore) ?? request.accept();
    const now = performance.now();
    const c: Relayed = {
      tcp,
      upstream,
      client,
      dst,
      openedAt: now,
      activeAt: now,
      activity: 0,
      clientEnded: false,
      upstreamEnded: false,
      pipes: 2,
      reason: undefined,
    };
    this.conns.add(c);
    this.total++;
    this.startSweep();
    this.log?.debug('tcp open', { client, dst: c.dst });

    join(c, this.onClose);
  }

  /** Both pipes are over: forget the connection and log it. */
  private finish(c: Relayed): void {
    if (!this.conns.delete(c)) return;
    if (this.conns.size === 0) this.stopSweep();
    this.closedBytesUp += c.tcp.bytesRead;
    this.closedBytesDown += c.upstream.bytesRead;
    // A clean end both ways leaves each socket to close on its own (our FIN may need resending).
    if (c.reason !== undefined) {
      if (!c.tcp.destroyed) c.tcp.destroy();
      if (!c.upstream.destroyed) c.upstream.destroy();
    }
    if (this.log?.enabled('debug')) {
      this.log.debug('tcp close', {
        client: c.client,
        dst: c.dst,
        up: c.tcp.bytesRead,
        down: c.upstream.bytesRead,
        ms: Math.round(performance.now() - c.openedAt),
        reason: c.reason ?? 'done',
      });
    }
  }

  /** Resets both sides of `c` for `reason`. */
  private teardown(c: Relayed, reason: string): void {
    c.reason ??= reason;
    reset(c.upstream);
    if (!c.tcp.destroyed) c.tcp.destroy();
  }

  private count(code: string): void {
    this.failed[code] = (this.failed[code] ?? 0) + 1;
  }

  private startSweep(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(() => this.sweep(), this.sweepMs);
    this.sweeper.unref();
  }

  private stopSweep(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** The idle and half-closed timeouts: any byte counter that moved since the last sweep is activity. */
  private sweep(): void {
    const now = performance.now();
    // teardown() never removes from the set synchronously (the pipes report later).
    for (const c of this.conns) {
      const activity = c.tcp.bytesRead + c.tcp.bytesWritten + c.upstream.bytesRead + c.upstream.bytesWritten;
      if (activity !== c.activity) {
        c.activity = activity;
        c.activeAt = now;
        continue;
      }
      const halfClosed = c.clientEnded || c.upstreamEnded;
      const limit = halfClosed ? this.halfClosedTimeoutMs : this.idleTimeoutMs;
      if (now - c.activeAt >= limit) this.teardown(c, halfClosed ? 'half-closed-timeout' : 'idle-timeout');
    }
  }
}
