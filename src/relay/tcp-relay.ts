/**
 * The TCP relay: joins every TCP connection the stack terminates to an upstream socket opened by a
 * Dialer. The dial happens at SYN time and the SYN-ACK goes out only once it succeeded, so a
 * client whose destination is unreachable sees a refusal instead of an accepted-then-reset
 * connection. Data moves through one pipe per direction with backpressure end to end: an upstream
 * that stops reading stops the TcpSocket being read, whose receive buffer fills and closes the
 * client's window. A FIN travels as end() (half-close both ways); an error or RST on either side
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
import { DialsInFlight, LoopGuard, refusalFor, refuse } from './tcp-relay-policy.js';

export { type ClientRefusal, canonicalHost, LoopGuard, refusalFor } from './tcp-relay-policy.js';

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

/** One connection being relayed. */
interface Relayed {
  readonly tcp: TcpSocket;
  readonly upstream: net.Socket;
  readonly client: string;
  readonly dst: string;
  readonly openedAt: number;
  /** Last time the byte counters moved (sweep clock). */
  activeAt: number;
  /** Sum of the byte counters at the last sweep. */
  activity: number;
  /** The client sent its FIN. */
  clientEnded: boolean;
  /** The upstream sent its FIN. */
  upstreamEnded: boolean;
  /** Sockets not yet closed (2, then 1, then 0: finished). */
  pipes: number;
  /** Why it ends; the first cause wins. */
  reason: string | undefined;
}

/**
 * The record of a connection, set on both of its sockets: the per-connection listeners are then
 * shared functions (an EventEmitter calls a listener with `this` = the emitter) rather than a
 * dozen closures per connection (pipe() alone allocates ten per direction), which matters with
 * thousands of idle connections held.
 */
const RELAYED = Symbol('relayed');

/** A socket joined by the relay. */
type Joined = (TcpSocket | net.Socket) & { [RELAYED]?: Relayed };

/** The other socket of `socket`'s connection. */
function peerOf(c: Relayed, socket: Joined): TcpSocket | net.Socket {
  return socket === c.tcp ? c.upstream : c.tcp;
}

/** 'data': forward to the other side; pause when it pushes back (what pipe() does). */
function onData(this: Joined, chunk: Buffer): void {
  const c = this[RELAYED]!;
  const dst = peerOf(c, this);
  if (dst.destroyed) return;
  if (!dst.write(chunk)) this.pause();
}

/** 'drain': the other side took what was queued; resume it. */
function onDrain(this: Joined): void {
  const c = this[RELAYED]!;
  peerOf(c, this).resume();
}

/** 'end' (a FIN): end the other side's writing (half-close travels as end()). */
function onEnd(this: Joined): void {
  const c = this[RELAYED]!;
  if (this === c.tcp) c.clientEnded = true;
  else c.upstreamEnded = true;
  const dst = peerOf(c, this);
  if (!dst.destroyed) dst.end();
}

/** 'error' on the client side: the first error names the cause; reset the upstream at once. */
function onClientError(this: Joined, err: unknown): void {
  const c = this[RELAYED]!;
  c.reason ??= `client-${errorCode(err)}`;
  reset(c.upstream);
}

/** 'error' on the upstream: the first error names the cause; reset the client at once. */
function onUpstreamError(this: Joined, err: unknown): void {
  const c = this[RELAYED]!;
  c.reason ??= `upstream-${errorCode(err)}`;
  if (!c.tcp.destroyed) c.tcp.destroy();
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

function ignore(): void {}

/** Resets a socket (RST) when it can, else destroys it (a test double or wrapped stream). */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
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
    const startedAt = performance.now();
    this.dials
      .start(this.dialer, dst, this.dialTimeoutMs, request)
      .then(
        (upstream) => this.onDialed(request, upstream, client, dst),
        (err: unknown) => this.onDialFailed(request, err, client, dst, startedAt),
      )
      .catch((err: unknown) => {
        // A bug of ours: never let it end the process.
        this.log?.error(`tcp relay: ${String(err)}`, { client, dst: formatDestination(dst) });
      });
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

  private onDialFailed(
    request: TcpRequest,
    err: unknown,
    client: string,
    dst: Destination,
    startedAt: number,
  ): void {
    const code = err instanceof DialError ? err.code : 'EPROXY';
    this.count(code);
    const refusal = refusalFor(code);
    if (!request.pending) {
      this.log?.debug('tcp client gave up during the dial', { client, dst: formatDestination(dst), code });
    } else if (this.log?.enabled('warn')) {
      this.log.warn('tcp dial failed', {
        client,
        dst: formatDestination(dst),
        code,
        ms: Math.round(performance.now() - startedAt),
        answer: refusal,
      });
    }
    refuse(request, refusal);
  }

  private onDialed(request: TcpRequest, upstream: net.Socket, client: string, dst: Destination): void {
    // First thing: an error on the upstream must never go unhandled.
    upstream.on('error', ignore);
    if (this.closed || !request.pending) {
      this.log?.debug('tcp client gave up during the dial', { client, dst: formatDestination(dst) });
      upstream.destroy();
      if (request.pending) request.reject('rst');
      return;
    }
    // A net.Socket from connect() closes its writable side when the readable side ends unless
    // allowHalfOpen is set; the relay needs each direction to end on its own.
    upstream.allowHalfOpen = true;
    const tcp = request.accept();
    const now = performance.now();
    const c: Relayed = {
      tcp,
      upstream,
      client,
      dst: formatDestination(dst),
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

    // Each direction is piped by hand with shared listeners (see RELAYED): 'data' writes to the
    // other side and a false write() pauses the source until that side's 'drain' (backpressure);
    // 'end' ends the other side (FIN ↔ FIN). The first error names the cause and resets the other
    // side at once (a client RST becomes an upstream RST, an upstream RST a client RST), and the
    // connection is over once both sockets have closed. Not pipeline(): it allocates an
    // AbortController per stream (~150 µs per connection in a profile); not pipe(): ten closures
    // and two once() wrappers per direction, kept for as long as the connection lives.
    const joinedTcp = tcp as Joined;
    const joinedUpstream = upstream as Joined;
    joinedTcp[RELAYED] = c;
    joinedUpstream[RELAYED] = c;
    tcp.on('error', onClientError);
    upstream.on('error', onUpstreamError);
    tcp.on('end', onEnd);
    upstream.on('end', onEnd);
    tcp.on('close', this.onClose);
    upstream.on('close', this.onClose);
    tcp.on('drain', onDrain);
    upstream.on('drain', onDrain);
    tcp.on('data', onData);
    upstream.on('data', onData);
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
