/**
 * Forwards DNS queries to one upstream resolver through the proxy, so that no query leaves the
 * machine except inside the proxy connection: over UDP through one shared association (SOCKS5
 * UDP ASSOCIATE) or, when the proxy has no UDP, over TCP (RFC 1035 §4.2.2, src/relay/dns-over-tcp.ts).
 *
 * Clients pick their IDs independently, so each forwarded query gets an ID of ours that no other
 * waiting query holds, and the client's ID is put back in the answer. A UDP answer with TC set
 * is asked again over TCP (RFC 7766 §5), when TCP is allowed.
 */
import { randomInt } from 'node:crypto';
import { DEFAULT_DIAL_TIMEOUT_MS, type Destination, type Dialer } from '../proxy/dialer.js';
import { isUdpUnsupported } from '../proxy/socks5-udp.js';
import type { UdpAssociation, UdpDialer, UdpEndpoint } from '../proxy/udp.js';
import { DNS_ANSWER_GRACE_MS, DnsOverTcp } from '../relay/dns-over-tcp.js';
import { DNS_HEADER_BYTES } from './answer.js';

/** Forwarded queries waiting at once; more fail with EDNS_FWD_BUSY. */
export const DEFAULT_DNS_FORWARD_IN_FLIGHT = 1024;

/** Why a forward failed: the stable `code` of a DnsForwardError. */
export type DnsForwardErrorCode =
  | 'EDNS_FWD_BUSY' // too many queries waiting
  | 'EDNS_FWD_TIMEOUT' // no answer in time
  | 'EDNS_FWD_MALFORMED' // the query or the answer is not a DNS message
  | 'EDNS_FWD_UNAVAILABLE' // no transport: the proxy has no UDP and DNS over TCP is 'never', or the dial failed
  | 'EDNS_FWD_CLOSED'; // close() was called

/** A failed forward. */
export class DnsForwardError extends Error {
  /** The stable reason. */
  readonly code: DnsForwardErrorCode;

  constructor(code: DnsForwardErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'DnsForwardError';
    this.code = code;
  }
}

/** Options of a DnsForwarder. */
export interface DnsForwarderOptions {
  /** The resolver the queries go to (reached through the proxy). */
  readonly upstream: Destination;
  /** UDP associations through the proxy; undefined when it has none. */
  readonly udpDialer: UdpDialer | undefined;
  /** The proxy's TCP dialer, for DNS over TCP. */
  readonly dialer: Dialer;
  /** 'auto' (default): TCP when the proxy has no UDP; 'always' TCP; 'never' TCP. */
  readonly dnsOverTcp?: 'auto' | 'always' | 'never';
  /** Dial and ASSOCIATE timeout; default DEFAULT_DIAL_TIMEOUT_MS. */
  readonly dialTimeoutMs?: number;
  /** One query's deadline; default dialTimeoutMs + DNS_ANSWER_GRACE_MS. */
  readonly queryTimeoutMs?: number;
  /** Waiting queries at most; default DEFAULT_DNS_FORWARD_IN_FLIGHT. */
  readonly maxInFlight?: number;
}

interface Waiting {
  readonly clientId: number;
  /** The query with our ID, kept for a TCP retry after a truncated UDP answer. */
  readonly query: Buffer;
  readonly resolve: (answer: Buffer) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Sends DNS queries to one resolver through the proxy and returns the answers. */
export class DnsForwarder {
  private readonly waiting = new Map<number, Waiting>();
  private readonly mode: 'auto' | 'always' | 'never';
  private readonly dialTimeoutMs: number;
  private readonly queryTimeoutMs: number;
  private readonly maxInFlight: number;
  private readonly closing = new AbortController();
  private association: UdpAssociation | undefined;
  private associating: Promise<UdpAssociation> | undefined;
  private tcp: DnsOverTcp | undefined;
  private noUdp: boolean;
  private nextId = randomInt(0x10000);
  private isClosed = false;

  constructor(private readonly options: DnsForwarderOptions) {
    this.mode = options.dnsOverTcp ?? 'auto';
    this.dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.queryTimeoutMs = options.queryTimeoutMs ?? this.dialTimeoutMs + DNS_ANSWER_GRACE_MS;
    this.maxInFlight = Math.min(options.maxInFlight ?? DEFAULT_DNS_FORWARD_IN_FLIGHT, 0xffff);
    this.noUdp = options.udpDialer === undefined;
  }

  /** Queries waiting for an answer. */
  get inFlight(): number {
    return this.waiting.size;
  }

  /** Sends `query` upstream; resolves with the answer (client's ID restored), or rejects with a DnsForwardError. */
  forward(query: Uint8Array): Promise<Buffer> {
    if (this.isClosed) return Promise.reject(new DnsForwardError('EDNS_FWD_CLOSED', 'forwarder closed'));
    if (query.length < DNS_HEADER_BYTES || query.length > 0xffff) {
      return Promise.reject(new DnsForwardError('EDNS_FWD_MALFORMED', `${query.length}-byte query`));
    }
    if (this.waiting.size >= this.maxInFlight) {
      return Promise.reject(new DnsForwardError('EDNS_FWD_BUSY', `${this.maxInFlight} queries waiting`));
    }
    const id = this.freeId();
    const ours = Buffer.from(query);
    ours[0] = id >>> 8;
    ours[1] = id & 0xff;
    return new Promise<Buffer>((resolve, reject) => {
      const timeoutMs = this.queryTimeoutMs;
      const timer = setTimeout(() => {
        if (this.waiting.delete(id)) {
          reject(new DnsForwardError('EDNS_FWD_TIMEOUT', `no answer from upstream in ${timeoutMs} ms`));
        }
      }, timeoutMs);
      this.waiting.set(id, { clientId: (query[0]! << 8) | query[1]!, query: ours, resolve, reject, timer });
      if (this.useTcp()) this.sendTcp(id, ours);
      else this.sendUdp(id, ours);
    });
  }

  /** Ends the association and TCP connections; waiting queries reject with EDNS_FWD_CLOSED. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closing.abort();
    this.association?.close();
    this.tcp?.close();
    for (const id of [...this.waiting.keys()])
      this.fail(id, new DnsForwardError('EDNS_FWD_CLOSED', 'closed'));
  }

  private useTcp(): boolean {
    if (this.mode === 'always') return true;
    return this.mode === 'auto' && this.noUdp;
  }

  /** An ID no waiting query holds (there are fewer than 65535 waiting). */
  private freeId(): number {
    let id = this.nextId;
    while (this.waiting.has(id)) id = (id + 1) & 0xffff;
    this.nextId = (id + 1) & 0xffff;
    return id;
  }

  private sendTcp(id: number, query: Buffer): void {
    this.tcp ??= new DnsOverTcp({
      dialer: this.options.dialer,
      dialTimeoutMs: this.dialTimeoutMs,
      queryTimeoutMs: this.queryTimeoutMs,
      maxInFlight: this.maxInFlight,
    });
    this.tcp.query(this.options.upstream, query).then(
      (answer) => this.deliver(answer, false),
      (err: unknown) =>
        this.fail(
          id,
          new DnsForwardError('EDNS_FWD_UNAVAILABLE', err instanceof Error ? err.message : String(err)),
        ),
    );
  }

  private sendUdp(id: number, query: Buffer): void {
    const upstream = this.options.upstream;
    const open = this.association;
    if (open !== undefined && !open.closed) {
      open.send(query, upstream);
      return;
    }
    this.openAssociation().then(
      (association) => {
        if (this.waiting.has(id)) association.send(query, upstream);
      },
      (err: unknown) => {
        if (!this.waiting.has(id)) return;
        if (isUdpUnsupported(err)) this.noUdp = true;
        if (this.useTcp()) this.sendTcp(id, query);
        else {
          const message = err instanceof Error ? err.message : String(err);
          this.fail(id, new DnsForwardError('EDNS_FWD_UNAVAILABLE', message));
        }
      },
    );
  }

  /** One association for every forwarded query, opened on demand and re-opened after it ends. */
  private openAssociation(): Promise<UdpAssociation> {
    const udpDialer = this.options.udpDialer;
    if (udpDialer === undefined) {
      return Promise.reject(new DnsForwardError('EDNS_FWD_UNAVAILABLE', 'the proxy has no UDP'));
    }
    this.associating ??= udpDialer
      .associate({ timeoutMs: this.dialTimeoutMs, signal: this.closing.signal })
      .then((association) => {
        this.associating = undefined;
        if (this.isClosed) {
          association.close();
          throw new DnsForwardError('EDNS_FWD_CLOSED', 'closed');
        }
        this.association = association;
        association.on('message', (payload: Buffer, from: UdpEndpoint) => {
          // Only the resolver's port is trusted for answers (a SOCKS server reports the real source).
          if (from.port === this.options.upstream.port) this.deliver(payload, true);
        });
        association.on('close', () => {
          if (this.association === association) this.association = undefined;
        });
        return association;
      })
      .catch((err: unknown) => {
        this.associating = undefined;
        throw err;
      });
    return this.associating;
  }

  /** An answer from upstream: matched by our ID, the client's ID put back. */
  private deliver(answer: Buffer, viaUdp: boolean): void {
    if (answer.length < DNS_HEADER_BYTES) return;
    const id = (answer[0]! << 8) | answer[1]!;
    const w = this.waiting.get(id);
    if (w === undefined) return;
    // RFC 7766 §5: a truncated UDP answer is asked again over TCP.
    if (viaUdp && (answer[2]! & 0x02) !== 0 && this.mode !== 'never') {
      this.sendTcp(id, w.query);
      return;
    }
    this.waiting.delete(id);
    clearTimeout(w.timer);
    const out = Buffer.from(answer);
    out[0] = w.clientId >>> 8;
    out[1] = w.clientId & 0xff;
    w.resolve(out);
  }

  private fail(id: number, err: Error): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.reject(err);
  }
}
