/**
 * DNS over TCP for proxies without UDP: each DNS query (the payload of a UDP datagram to port 53)
 * goes over a TCP connection through the TCP Dialer, framed with a two-byte length (RFC 1035
 * §4.2.2), and the answer comes back as a UDP payload. One connection per server is kept for a
 * few idle seconds and carries pipelined queries (RFC 7766 §6.2.1.1); answers may come in any
 * order, so they are matched by DNS message ID (RFC 7766 §7).
 *
 * A query whose connection fails or closes before its answer is not retried (the client's own
 * UDP retransmission does that).
 */
import type * as net from 'node:net';
import {
  DEFAULT_DIAL_TIMEOUT_MS,
  type Destination,
  type Dialer,
  formatDestination,
} from '../proxy/dialer.js';

/** How long an idle DNS-over-TCP connection stays open for further queries. */
export const DEFAULT_DNS_TCP_IDLE_MS = 5000;
/** Queries waiting for an answer at once per DnsOverTcp (one per client flow). */
export const DEFAULT_DNS_MAX_IN_FLIGHT = 64;
/** Added to the dial timeout to give a query's whole deadline. */
export const DNS_ANSWER_GRACE_MS = 5000;
/** A DNS header is 12 bytes (RFC 1035 §4.1.1); anything shorter is not a message. */
export const DNS_HEADER_LENGTH = 12;

/** Why a query failed without a DialError: the stable `code` of a DnsOverTcpError. */
export type DnsOverTcpErrorCode =
  | 'EDNS_MALFORMED' // not a DNS message (shorter than a header, or over 65535 bytes)
  | 'EDNS_BUSY' // maxInFlight queries already waiting
  | 'EDNS_TIMEOUT' // no answer within the query deadline
  | 'EDNS_CLOSED'; // the connection closed before the answer, or close() was called

/** A DNS-over-TCP failure that is not a dial failure (those reject with the Dialer's DialError). */
export class DnsOverTcpError extends Error {
  /** The stable reason. */
  readonly code: DnsOverTcpErrorCode;

  constructor(code: DnsOverTcpErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'DnsOverTcpError';
    this.code = code;
  }
}

/** Prefixes a DNS message with its two-byte length (RFC 1035 §4.2.2); undefined over 65535. */
export function frameDnsMessage(message: Uint8Array): Buffer | undefined {
  if (message.length > 0xffff) return undefined;
  const b = Buffer.allocUnsafe(2 + message.length);
  b[0] = message.length >>> 8;
  b[1] = message.length & 0xff;
  b.set(message, 2);
  return b;
}

/** Splits a TCP byte stream into length-prefixed DNS messages, wherever the stream is cut. */
export class DnsTcpFramer {
  private buffered: Buffer = Buffer.alloc(0);

  /** Bytes held waiting for the rest of a message (at most 65537 plus one chunk). */
  get pendingBytes(): number {
    return this.buffered.length;
  }

  /** Adds received bytes; returns every message now complete, in order (views, not copies). */
  push(chunk: Uint8Array): Buffer[] {
    const data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let b = this.buffered.length === 0 ? data : Buffer.concat([this.buffered, data]);
    const out: Buffer[] = [];
    while (b.length >= 2) {
      const n = (b[0]! << 8) | b[1]!;
      if (b.length < 2 + n) break;
      out.push(b.subarray(2, 2 + n));
      b = b.subarray(2 + n);
    }
    this.buffered = b;
    return out;
  }
}

/** Options of DnsOverTcp. */
export interface DnsOverTcpOptions {
  /** The TCP dialer the queries go through (the proxy's). */
  readonly dialer: Dialer;
  /** Dial timeout; a query's deadline is this plus DNS_ANSWER_GRACE_MS. */
  readonly dialTimeoutMs?: number;
  /** A query's whole deadline; default dialTimeoutMs + DNS_ANSWER_GRACE_MS. */
  readonly queryTimeoutMs?: number;
  /** Idle time before a connection closes; default DEFAULT_DNS_TCP_IDLE_MS. */
  readonly idleMs?: number;
  /** Waiting queries at most; default DEFAULT_DNS_MAX_IN_FLIGHT. */
  readonly maxInFlight?: number;
}

interface Pending {
  readonly id: number;
  readonly resolve: (answer: Buffer) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Connection {
  readonly key: string;
  socket: net.Socket | undefined;
  /** Frames written once the dial completes. */
  readonly queued: Buffer[];
  /** Waiting queries by DNS ID, oldest first. */
  readonly waiting: Map<number, Pending[]>;
  count: number;
  idleTimer: NodeJS.Timeout | undefined;
  closed: boolean;
  readonly framer: DnsTcpFramer;
}

/** Carries DNS queries over TCP through a Dialer: one instance per client flow. */
export class DnsOverTcp {
  private readonly connections = new Map<string, Connection>();
  private readonly dialTimeoutMs: number;
  private readonly idleMs: number;
  private readonly queryTimeoutMs: number;
  private readonly maxInFlight: number;
  private inFlightCount = 0;
  private isClosed = false;
  /** Answers that matched no waiting query (late after a timeout, or a confused server). */
  unmatchedAnswers = 0;

  constructor(private readonly options: DnsOverTcpOptions) {
    this.dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.idleMs = options.idleMs ?? DEFAULT_DNS_TCP_IDLE_MS;
    this.queryTimeoutMs = options.queryTimeoutMs ?? this.dialTimeoutMs + DNS_ANSWER_GRACE_MS;
    this.maxInFlight = options.maxInFlight ?? DEFAULT_DNS_MAX_IN_FLIGHT;
  }

  /** Queries waiting for an answer. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Open (or dialing) connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Sends one DNS message to `server` over TCP; resolves with the answer message. Rejects with the
   * dialer's DialError when the connection cannot be made, else with a DnsOverTcpError.
   */
  query(server: Destination, message: Uint8Array): Promise<Buffer> {
    if (this.isClosed) return Promise.reject(new DnsOverTcpError('EDNS_CLOSED', 'DNS over TCP closed'));
    const frame = message.length < DNS_HEADER_LENGTH ? undefined : frameDnsMessage(message);
    if (frame === undefined) {
      return Promise.reject(new DnsOverTcpError('EDNS_MALFORMED', `${message.length}-byte DNS message`));
    }
    if (this.inFlightCount >= this.maxInFlight) {
      return Promise.reject(new DnsOverTcpError('EDNS_BUSY', `${this.maxInFlight} DNS queries in flight`));
    }
    const key = formatDestination(server);
    const conn = this.connections.get(key) ?? this.open(server, key);
    if (conn.idleTimer !== undefined) clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    const id = (message[0]! << 8) | message[1]!;
    return new Promise<Buffer>((resolve, reject) => {
      const timeoutMs = this.queryTimeoutMs;
      const pending: Pending = {
        id,
        resolve,
        reject,
        timer: setTimeout(() => {
          if (this.forget(conn, pending)) {
            reject(new DnsOverTcpError('EDNS_TIMEOUT', `no answer from ${key} in ${timeoutMs} ms`));
          }
        }, timeoutMs),
      };
      const list = conn.waiting.get(id);
      if (list === undefined) conn.waiting.set(id, [pending]);
      else list.push(pending);
      conn.count++;
      this.inFlightCount++;
      if (conn.socket !== undefined) conn.socket.write(frame);
      else conn.queued.push(frame);
    });
  }

  /** Closes every connection; waiting queries reject with EDNS_CLOSED. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const conn of [...this.connections.values()]) {
      this.fail(conn, new DnsOverTcpError('EDNS_CLOSED', 'DNS over TCP closed'));
    }
  }

  private open(server: Destination, key: string): Connection {
    const conn: Connection = {
      key,
      socket: undefined,
      queued: [],
      waiting: new Map(),
      count: 0,
      idleTimer: undefined,
      closed: false,
      framer: new DnsTcpFramer(),
    };
    this.connections.set(key, conn);
    this.options.dialer.dial(server, { timeoutMs: this.dialTimeoutMs }).then(
      (socket) => {
        if (conn.closed) {
          socket.destroy();
          return;
        }
        conn.socket = socket;
        const closedEarly = (): void =>
          this.fail(conn, new DnsOverTcpError('EDNS_CLOSED', `${key} closed the connection`));
        socket.on('data', (chunk: Buffer) => {
          for (const answer of conn.framer.push(chunk)) this.deliver(conn, answer);
        });
        socket.on('end', closedEarly);
        socket.on('close', closedEarly);
        socket.on('error', (err: Error) =>
          this.fail(conn, new DnsOverTcpError('EDNS_CLOSED', `${key}: ${err.message}`)),
        );
        for (const frame of conn.queued.splice(0)) socket.write(frame);
      },
      (err: unknown) => this.fail(conn, err instanceof Error ? err : new Error(String(err))),
    );
    return conn;
  }

  private deliver(conn: Connection, answer: Buffer): void {
    if (answer.length < DNS_HEADER_LENGTH) {
      this.unmatchedAnswers++;
      return;
    }
    const id = (answer[0]! << 8) | answer[1]!;
    const pending = conn.waiting.get(id)?.[0];
    if (pending === undefined || !this.forget(conn, pending)) {
      this.unmatchedAnswers++;
      return;
    }
    // A copy: the framer's views share the connection's receive buffers.
    pending.resolve(Buffer.from(answer));
  }

  /** Removes a waiting query; false when it was no longer waiting. Arms the idle timer at zero. */
  private forget(conn: Connection, pending: Pending): boolean {
    const list = conn.waiting.get(pending.id);
    const at = list === undefined ? -1 : list.indexOf(pending);
    if (list === undefined || at < 0) return false;
    list.splice(at, 1);
    if (list.length === 0) conn.waiting.delete(pending.id);
    clearTimeout(pending.timer);
    conn.count--;
    this.inFlightCount--;
    if (conn.count === 0 && !conn.closed) {
      conn.idleTimer = setTimeout(() => this.retire(conn), this.idleMs);
      conn.idleTimer.unref();
    }
    return true;
  }

  /** Ends an idle connection: later queries to its server open a new one. */
  private retire(conn: Connection): void {
    if (conn.count !== 0 || conn.closed) return;
    conn.closed = true;
    if (this.connections.get(conn.key) === conn) this.connections.delete(conn.key);
    conn.socket?.end();
  }

  private fail(conn: Connection, err: Error): void {
    if (conn.idleTimer !== undefined) clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    const wasClosed = conn.closed;
    conn.closed = true;
    if (this.connections.get(conn.key) === conn) this.connections.delete(conn.key);
    conn.socket?.destroy();
    if (wasClosed && conn.count === 0) return;
    for (const list of [...conn.waiting.values()]) {
      for (const pending of [...list]) {
        if (this.forget(conn, pending)) pending.reject(err);
      }
    }
  }
}
