/**
 * Every bound and switch of the stack, with its documented default, in one place.
 *
 * Defaults follow Linux where the RFCs leave a choice; each says which.
 */

/** Options of the IP layer (fragments, ICMP). */
export interface IpOptions {
  /** The device MTU in bytes: the largest IP packet we send unfragmented. Default 1500. */
  readonly mtu: number;
  /** Answer ICMP/ICMPv6 echo requests for every destination. Default true. */
  readonly icmpEcho: boolean;
  /** TTL / hop limit of packets we originate. Default 64 (Linux's ip_default_ttl). */
  readonly defaultTtl: number;
  /** Datagrams under reassembly at once; the oldest is evicted past it. Default 64. */
  readonly reassemblyMaxDatagrams: number;
  /** Bytes of fragment data held across all datagrams. Default 4 MiB (Linux's ipfrag_high_thresh). */
  readonly reassemblyMaxBytes: number;
  /** Fragments one datagram may have before it is dropped. Default 64 (Linux's ipfrag_max_dist is 64). */
  readonly reassemblyMaxFragments: number;
  /** IPv4 reassembly timeout. Default 30 s (Linux's ipfrag_time; RFC 791 suggests 15 s). */
  readonly reassemblyTimeoutV4Ms: number;
  /** IPv6 reassembly timeout. Default 60 s (RFC 8200 §4.5). */
  readonly reassemblyTimeoutV6Ms: number;
  /** ICMP errors per second we may send (token bucket, RFC 4443 §2.4(f)). Default 1000 (Linux's icmp_msgs_per_sec). */
  readonly icmpErrorRatePerSec: number;
  /** Burst of the ICMP error bucket. Default 50 (Linux's icmp_msgs_burst). */
  readonly icmpErrorBurst: number;
}

/** Options accepted by `Stack`: any subset of the defaults. */
export type StackOptions = Partial<IpOptions>;

/** The documented defaults. */
export const DEFAULT_IP_OPTIONS: IpOptions = Object.freeze({
  mtu: 1500,
  icmpEcho: true,
  defaultTtl: 64,
  reassemblyMaxDatagrams: 64,
  reassemblyMaxBytes: 4 * 1024 * 1024,
  reassemblyMaxFragments: 64,
  reassemblyTimeoutV4Ms: 30_000,
  reassemblyTimeoutV6Ms: 60_000,
  icmpErrorRatePerSec: 1000,
  icmpErrorBurst: 50,
});

/** A bad option value: thrown at construction, never on packet input. */
export class StackOptionError extends Error {
  /** Stable error code. */
  readonly code = 'ERR_STACK_OPTION';
}

function integer(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new StackOptionError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
}

/** Fills defaults and validates ranges. */
export function resolveIpOptions(options: StackOptions = {}): IpOptions {
  const o: IpOptions = { ...DEFAULT_IP_OPTIONS, ...options };
  // 576 is the IPv4 minimum reassembly size (RFC 791); IPv6 needs 1280 (RFC 8200 §5), checked on use.
  integer('mtu', o.mtu, 576, 65535);
  integer('defaultTtl', o.defaultTtl, 1, 255);
  integer('reassemblyMaxDatagrams', o.reassemblyMaxDatagrams, 0, 1 << 20);
  integer('reassemblyMaxBytes', o.reassemblyMaxBytes, 0, 1 << 30);
  integer('reassemblyMaxFragments', o.reassemblyMaxFragments, 1, 8192);
  integer('reassemblyTimeoutV4Ms', o.reassemblyTimeoutV4Ms, 1, 3_600_000);
  integer('reassemblyTimeoutV6Ms', o.reassemblyTimeoutV6Ms, 1, 3_600_000);
  integer('icmpErrorRatePerSec', o.icmpErrorRatePerSec, 0, 1_000_000);
  integer('icmpErrorBurst', o.icmpErrorBurst, 0, 1_000_000);
  return Object.freeze(o);
}
