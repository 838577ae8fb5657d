/**
 * Spare connections to a SOCKS5 proxy, opened and greeted (method choice and RFC 1929
 * authentication done) ahead of the next dial, so that a dial sends its CONNECT at once: the TCP
 * handshake with the proxy and the greeting round trip leave the client's critical path, which
 * for a new connection through the relay is otherwise three round trips to the proxy long.
 *
 * Bounded and lazy: at most `count` spares; a spare is opened only after a dial (one per dial
 * taken or missed), never while the relay is quiet, and closed unused after `ttlMs` (below the
 * negotiation timeouts of common servers: danted's is 30 s). A spare the proxy closed or wrote to
 * is dropped at once; one that died unnoticed fails its request as `closed`, and the dialer then
 * dials afresh (see socks.ts).
 */
import type * as net from 'node:net';
import { type DialContext, proxyErrorCode, runDial, tcpConnect } from './dial.js';
import { socks5Handshake } from './socks5-handshake.js';

/** Default number of spares kept (`--socks5-spares`). */
export const DEFAULT_SOCKS5_SPARES = 1;
/** Default lifetime of an unused spare. */
export const DEFAULT_SPARE_TTL_MS = 10_000;
/** The most spares a dialer may be asked to keep. */
export const MAX_SOCKS5_SPARES = 16;

/** Where the proxy is and how to greet it. */
export interface SpareTarget {
  readonly host: string;
  readonly port: number;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

const SPARE = Symbol('spare');

/** A greeted connection waiting for a request, with its expiry timer. */
type Spare = net.Socket & { [SPARE]?: { timer: NodeJS.Timeout; pool: Socks5Spares } };

/** A spare that errors, ends, closes or receives bytes is no longer clean: drop it. */
function onSpareEvent(this: Spare): void {
  this[SPARE]?.pool.drop(this);
}

/** Keeps up to `count` greeted connections to one SOCKS5 proxy. */
export class Socks5Spares {
  private readonly ready: Spare[] = [];
  /** Spares being opened now. */
  private opening = 0;
  private closed = false;
  /** A refill is queued for the next loop turn. */
  private refillQueued = false;
  /** Counters: spares taken by a dial, opened, and dropped unused (expired or died). */
  readonly stats = { taken: 0, opened: 0, dropped: 0 };

  constructor(
    private readonly target: SpareTarget,
    readonly count = DEFAULT_SOCKS5_SPARES,
    private readonly ttlMs = DEFAULT_SPARE_TTL_MS,
  ) {
    if (!Number.isInteger(count) || count < 0 || count > MAX_SOCKS5_SPARES)
      throw new RangeError(
        `SOCKS5 spares must be a whole number from 0 to ${MAX_SOCKS5_SPARES}, got ${count}`,
      );
  }

  /** A greeted connection for a dial, or undefined; either way one more is opened to replace it. */
  take(): net.Socket | undefined {
    if (this.count === 0 || this.closed) return undefined;
    let spare = this.ready.shift();
    // One whose bytes or end are buffered but not yet reported is not clean either.
    while (spare !== undefined && (spare.destroyed || spare.readableEnded || spare.readableLength > 0)) {
      this.discard(spare);
      spare = this.ready.shift();
    }
    if (spare !== undefined) {
      this.release(spare);
      this.stats.taken++;
    }
    // On the next loop turn: the dial's own connect or CONNECT goes out first.
    if (!this.refillQueued && this.ready.length + this.opening < this.count) {
      this.refillQueued = true;
      setImmediate(() => {
        this.refillQueued = false;
        this.refill();
      });
    }
    return spare;
  }

  /** Closes every spare; nothing is opened after. */
  close(): void {
    this.closed = true;
    for (const spare of this.ready.splice(0)) {
      this.release(spare);
      spare.destroy();
    }
  }

  /** Spares ready now. */
  get size(): number {
    return this.ready.length;
  }

  /** The counters as the engine's `dialer` stats show them. */
  counters(): Readonly<Record<string, number>> {
    const s = this.stats;
    return { sparesReady: this.size, sparesTaken: s.taken, sparesOpened: s.opened, sparesDropped: s.dropped };
  }

  /** Drops `spare` (it expired, or the proxy closed it or wrote to it). */
  drop(spare: Spare): void {
    const i = this.ready.indexOf(spare);
    if (i < 0) return;
    this.ready.splice(i, 1);
    this.discard(spare);
  }

  /** A spare out of `ready` that will not be used: closed and counted. */
  private discard(spare: Spare): void {
    this.release(spare);
    spare.destroy();
    this.stats.dropped++;
  }

  /** Opens spares up to `count` (those ready and those opening). */
  private refill(): void {
    while (!this.closed && this.ready.length + this.opening < this.count) {
      this.opening++;
      this.open().then(
        (socket) => {
          this.opening--;
          this.add(socket);
        },
        () => {
          // The proxy is down or refuses us: the next dial will say so; no retry loop here.
          this.opening--;
        },
      );
    }
  }

  /** One connection, greeted, under the dial harness's timeout. */
  private open(): Promise<net.Socket> {
    const t = this.target;
    return runDial({ timeoutMs: this.ttlMs }, 'socks5 spare', async (ctx: DialContext) => {
      const socket = await tcpConnect(ctx, t.host, t.port, proxyErrorCode, 'proxy unreachable');
      const reply = await socks5Handshake(
        socket,
        {
          command: 'connect',
          host: '',
          port: 0,
          username: t.username,
          password: t.password,
          phase: 'greeting',
        },
        'spare greeting',
      );
      // Bytes after the method choice would be read as the reply to our request: not clean.
      if (reply.rest.length > 0) throw new Error('the proxy sent bytes after its method choice');
      return socket;
    });
  }

  private add(socket: Spare): void {
    if (this.closed || socket.destroyed) {
      socket.destroy();
      return;
    }
    this.stats.opened++;
    const timer = setTimeout(() => this.drop(socket), this.ttlMs);
    timer.unref();
    socket[SPARE] = { timer, pool: this };
    socket.on('error', onSpareEvent);
    socket.on('close', onSpareEvent);
    socket.on('readable', onSpareEvent);
    // A spare alone does not keep the process alive.
    socket.unref();
    this.ready.push(socket);
  }

  /** Undoes add(): the socket is the caller's again, in its initial state. */
  private release(spare: Spare): void {
    const meta = spare[SPARE];
    if (meta !== undefined) clearTimeout(meta.timer);
    spare[SPARE] = undefined;
    spare.off('error', onSpareEvent);
    spare.off('close', onSpareEvent);
    spare.off('readable', onSpareEvent);
    spare.ref();
  }
}
