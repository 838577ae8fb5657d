/**
 * DNS without leaks for the engine: the `dns` option of Tun2Socks and the one factory that turns
 * it into a DnsServer (fake-IP pool, forwarder through the proxy) plus the relay hooks.
 */
import type { Logger } from '../log.js';
import type { Destination, Dialer } from '../proxy/dialer.js';
import type { UdpDialer } from '../proxy/udp.js';
import { FakeIpPool } from './fake-pool.js';
import { DnsForwarder } from './forwarder.js';
import { DnsServer } from './server.js';

export { answerLocally, type DnsDropReason, type DnsErrorReason, type LocalAnswer } from './answer.js';
export {
  DEFAULT_FAKE_MAX_NAMES,
  DEFAULT_FAKE_RANGES,
  DEFAULT_FAKE_TTL_SECONDS,
  FakeIpPool,
  type FakeIpPoolOptions,
  FakeRangeError,
} from './fake-pool.js';
export { DnsForwardError, type DnsForwardErrorCode, DnsForwarder } from './forwarder.js';
export { DEFAULT_DNS_ADDRESSES, DnsServer, type DnsServerOptions, type DnsStats } from './server.js';

/** Default resolver for forwarded queries (reached through the proxy, never directly). */
export const DEFAULT_DNS_UPSTREAM: Destination = { host: '1.1.1.1', port: 53 };

/**
 * The engine's DNS option. 'direct' leaves DNS alone (relayed like any UDP/TCP); 'remote'
 * forwards every query to the stack's DNS addresses (any port 53 with hijack) through the proxy
 * to `upstream`; 'fake-ip' answers A/AAAA with fake addresses and relays connections to them by
 * name, forwarding other query types like 'remote'.
 */
export interface DnsOptions {
  readonly mode: 'fake-ip' | 'remote' | 'direct';
  /** Every query to port 53 of any address (UDP and TCP) is served; default false. */
  readonly hijack?: boolean;
  /** The stack's DNS addresses; default DEFAULT_DNS_ADDRESSES ['198.18.0.2', 'fdfe:dcba:9876::2']. */
  readonly addresses?: readonly string[];
  /** Fake ranges, one per family; default DEFAULT_FAKE_RANGES ['198.19.0.0/16', 'fdfe:dcba:9877::/64']. */
  readonly fakeRanges?: readonly string[];
  /** Resolver behind the proxy for forwarded queries; default DEFAULT_DNS_UPSTREAM (1.1.1.1:53). */
  readonly upstream?: { readonly host: string; readonly port: number };
  /** TTL of fake answers and of an untouched mapping, seconds; default 60. */
  readonly ttlSeconds?: number;
  /** LRU bound of the mappings per family; default 65536 (capped by the range's size). */
  readonly maxNames?: number;
}

/** What the DNS server needs from the engine: the proxy's dialers and its settings. */
export interface DnsContext {
  readonly dialer: Dialer;
  readonly udpDialer: UdpDialer | undefined;
  readonly dnsOverTcp?: 'auto' | 'always' | 'never';
  readonly dialTimeoutMs?: number;
  readonly log?: Logger;
}

/** Builds the DnsServer for `options`; undefined for 'direct'. Throws FakeRangeError on bad ranges. */
export function createDnsServer(options: DnsOptions, context: DnsContext): DnsServer | undefined {
  if (options.mode === 'direct') return undefined;
  const pool =
    options.mode === 'fake-ip'
      ? new FakeIpPool({
          ...(options.fakeRanges !== undefined ? { ranges: options.fakeRanges } : {}),
          ...(options.ttlSeconds !== undefined ? { ttlSeconds: options.ttlSeconds } : {}),
          ...(options.maxNames !== undefined ? { maxNames: options.maxNames } : {}),
        })
      : undefined;
  const upstream = new DnsForwarder({
    upstream: options.upstream ?? DEFAULT_DNS_UPSTREAM,
    udpDialer: context.udpDialer,
    dialer: context.dialer,
    ...(context.dnsOverTcp !== undefined ? { dnsOverTcp: context.dnsOverTcp } : {}),
    ...(context.dialTimeoutMs !== undefined ? { dialTimeoutMs: context.dialTimeoutMs } : {}),
  });
  return new DnsServer({
    mode: options.mode,
    upstream,
    ...(pool !== undefined ? { pool } : {}),
    ...(options.hijack !== undefined ? { hijack: options.hijack } : {}),
    ...(options.addresses !== undefined ? { addresses: options.addresses } : {}),
    ...(context.log !== undefined ? { log: context.log } : {}),
  });
}
