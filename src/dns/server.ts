/**
 * The stack's DNS server: answers the DNS messages that clients send to the stack's DNS addresses
 * (and, with hijack, to port 53 of any address), over UDP (one message per datagram) and over
 * TCP (RFC 1035 §4.2.2 framing, pipelined, answers in completion order as RFC 7766 §6.2.1.1
 * allows). In 'fake-ip' mode A/AAAA questions get fake addresses and everything else is
 * forwarded through the proxy; in 'remote' mode everything is forwarded. It also maps fake
 * destinations back to names for the relays.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { canonicalHost } from '../proxy/address.js';
import type { Destination } from '../proxy/dialer.js';
import { DnsTcpFramer, frameDnsMessage } from '../relay/dns-over-tcp.js';
import { answerLocally, servfail } from './answer.js';
import type { FakeIpPool } from './fake-pool.js';

/** The DNS port (RFC 1035 §4.2.1). */
export const DNS_PORT = 53;
/** Default DNS addresses of the stack: one per family, next to the TUN's default addresses. */
export const DEFAULT_DNS_ADDRESSES: readonly string[] = ['198.18.0.2', 'fdfe:dcba:9876::2'];
/** A local DNS-over-TCP connection idle this long is closed (RFC 7766 §6.2.3 suggests seconds). */
export const DEFAULT_DNS_TCP_SERVE_IDLE_MS = 10_000;
/** Queries answered at once per local DNS-over-TCP connection; reading pauses beyond it. */
export const DNS_TCP_SERVE_IN_FLIGHT = 32;

/** DNS counters; `dropped`/`errors` are per reason (DnsDropReason, DnsErrorReason). */
export interface DnsStats {
  /** Queries answered by the stack itself with NOERROR (fake addresses, NODATA). */
  answered: number;
  /** Queries forwarded upstream and answered. */
  forwarded: number;
  /** Forwarded queries that failed (the client got SERVFAIL). */
  failed: number;
  /** Error answers of our own by reason: 'dns-formerr', 'dns-notimp', 'dns-exhausted'. */
  errors: Record<string, number>;
  /** Messages not answered at all by reason: 'dns-short', 'dns-not-query'. */
  dropped: Record<string, number>;
  /** Connections or datagrams to a fake address with no mapping (refused). */
  unmapped: number;
  /** Fake mappings held now. */
  fakeLive: number;
  /** Fake mappings recycled for another name. */
  fakeEvicted: number;
}

/** Where forwarded queries go: DnsForwarder satisfies it. */
export interface DnsUpstream {
  /** Resolves with the answer to `query` (same ID), rejects when there is none. */
  forward(query: Uint8Array): Promise<Buffer>;
  /** Ends the upstream transports. */
  close(): void;
}

/** Options of a DnsServer. */
export interface DnsServerOptions {
  /** 'fake-ip' answers A/AAAA from `pool`; 'remote' forwards everything. */
  readonly mode: 'fake-ip' | 'remote';
  /** Serve port 53 of every address, not only `addresses`. */
  readonly hijack?: boolean;
  /** The stack's DNS addresses; default DEFAULT_DNS_ADDRESSES. */
  readonly addresses?: readonly string[];
  /** The fake-IP pool (required for 'fake-ip', unused in 'remote'). */
  readonly pool?: FakeIpPool;
  /** Forwarded queries go here. */
  readonly upstream: DnsUpstream;
  /** Milliseconds for the pool's TTLs; default performance.now. */
  readonly now?: () => number;
  /** Logger; default silent. */
  readonly log?: Logger;
  /** Local DNS-over-TCP idle close; default DEFAULT_DNS_TCP_SERVE_IDLE_MS. */
  readonly tcpIdleMs?: number;
}

/** Answers DNS sent to the stack and maps fake addresses back to names. */
export class DnsServer {
  private readonly counters = { answered: 0, forwarded: 0, failed: 0, unmapped: 0 };
  private readonly errors: Record<string, number> = {};
  private readonly dropped: Record<string, number> = {};
  private readonly addresses: Set<string>;
  private readonly now: () => number;
  private readonly tcpIdleMs: number;
  private readonly streams = new Set<Duplex>();
  /** The fake-IP pool, in fake-ip mode only. */
  private readonly pool: FakeIpPool | undefined;
  private closed = false;

  constructor(private readonly options: DnsServerOptions) {
    if (options.mode === 'fake-ip' && options.pool === undefined) {
      throw new TypeError("DnsServer: 'fake-ip' needs a pool");
    }
    this.pool = options.mode === 'fake-ip' ? options.pool : undefined;
    this.addresses = new Set((options.addresses ?? DEFAULT_DNS_ADDRESSES).map((a) => canonicalHost(a)));
    this.now = options.now ?? (() => performance.now());
    this.tcpIdleMs = options.tcpIdleMs ?? DEFAULT_DNS_TCP_SERVE_IDLE_MS;
  }

  /** Counters now (a fresh object). */
  get stats(): DnsStats {
    const pool = this.pool?.stats;
    return {
      ...this.counters,
      errors: { ...this.errors },
      dropped: { ...this.dropped },
      fakeLive: pool?.live ?? 0,
      fakeEvicted: pool?.evicted ?? 0,
    };
  }

  /** True when messages to `dst` are ours: port 53 of a DNS address, or of any address with hijack. */
  serves(dst: Destination): boolean {
    if (this.closed || dst.port !== DNS_PORT) return false;
    return this.options.hijack === true || this.addresses.has(canonicalHost(dst.host));
  }

  /**
   * The destination to dial for `dst`: a fake address becomes its name (fake-ip mode), anything
   * else stays. Undefined for a fake address with no mapping (never handed out, or recycled):
   * the caller refuses it, and it is counted as `unmapped`.
   */
  resolveDestination(dst: Destination): Destination | undefined {
    const pool = this.pool;
    if (pool === undefined || !pool.isFake(dst.host)) return dst;
    const name = pool.nameOf(dst.host, this.now());
    if (name === undefined) {
      this.counters.unmapped++;
      return undefined;
    }
    return { host: name, port: dst.port };
  }

  /** Answers one DNS message; resolves with the answer, or undefined when it gets none. Never rejects. */
  async handle(query: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.pool !== undefined) {
      const local = answerLocally(query, this.pool, this.now());
      switch (local.kind) {
        case 'answer':
          this.counters.answered++;
          return local.message;
        case 'error':
          this.errors[local.reason] = (this.errors[local.reason] ?? 0) + 1;
          return local.message;
        case 'drop':
          this.dropped[local.reason] = (this.dropped[local.reason] ?? 0) + 1;
          return undefined;
        case 'forward':
          break;
      }
    } else if (query.length < 12 || (query[2]! & 0x80) !== 0) {
      const reason = query.length < 12 ? 'dns-short' : 'dns-not-query';
      this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
      return undefined;
    }
    try {
      const answer = await this.options.upstream.forward(query);
      this.counters.forwarded++;
      return answer;
    } catch (err) {
      this.counters.failed++;
      this.options.log?.debug('dns forward failed', {
        error: err instanceof Error ? err.message : String(err),
      });
      return servfail(query);
    }
  }

  /**
   * Serves DNS over TCP on an accepted stream: length-prefixed messages in, answers out as they
   * complete. Closed after `tcpIdleMs` without a query, when the client ends, or on close().
   */
  serveStream(stream: Duplex): void {
    if (this.closed) {
      stream.destroy();
      return;
    }
    this.streams.add(stream);
    const framer = new DnsTcpFramer();
    let inFlight = 0;
    let ended = false;
    let idle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (idle !== undefined) clearTimeout(idle);
      idle = inFlight === 0 ? setTimeout(() => stream.end(), this.tcpIdleMs) : undefined;
      idle?.unref();
    };
    const finishIfDone = (): void => {
      if (ended && inFlight === 0 && !stream.writableEnded) stream.end();
    };
    stream.on('data', (chunk: Buffer) => {
      for (const message of framer.push(chunk)) {
        // The framer's views share its buffers: the answer path may outlive them.
        const query = Buffer.from(message);
        inFlight++;
        if (inFlight >= DNS_TCP_SERVE_IN_FLIGHT) stream.pause();
        void this.handle(query).then((answer) => {
          inFlight--;
          const frame = answer === undefined ? undefined : frameDnsMessage(answer);
          if (frame !== undefined && !stream.destroyed && !stream.writableEnded) stream.write(frame);
          if (inFlight < DNS_TCP_SERVE_IN_FLIGHT && stream.isPaused()) stream.resume();
          arm();
          finishIfDone();
        });
      }
      arm();
    });
    stream.on('end', () => {
      ended = true;
      finishIfDone();
    });
    stream.on('error', () => stream.destroy());
    stream.on('close', () => {
      if (idle !== undefined) clearTimeout(idle);
      this.streams.delete(stream);
    });
    arm();
  }

  /** Closes local DNS-over-TCP streams and the upstream; later queries are not served. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.streams]) s.destroy();
    this.options.upstream.close();
  }
}
