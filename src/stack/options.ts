/**
 * Every bound and switch of the stack, with its documented default, in one place.
 *
 * Defaults follow Linux where the RFCs leave a choice; each says which.
 */
import { DEFAULT_POOLED_BLOCKS } from './tcp/block-pool.js';
import { DEFAULT_UDP_CONFIG, type UdpConfig } from './udp/udp-layer.js';

export { DEFAULT_UDP_CONFIG, type UdpConfig };

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
  /**
   * The device cuts TCP super-segments (virtio-net GSO, TxMeta.gsoType): TCP may send segments of
   * up to `tcp.gsoMaxBytes` that the device segments at the MSS. Set by the runtime from the
   * device's offload grant; implies `txChecksumOffload`. Default false.
   */
  readonly tso: boolean;
  /** The device completes transport checksums marked TxMeta.needsCsum (TUN_F_CSUM): TCP data segments are not summed here. Default false. */
  readonly txChecksumOffload: boolean;
  /** Bytes left free in front of every packet for the device's own header (TxMeta.headroom). Default 0. */
  readonly txHeadroom: number;
}

/** Options of the TCP layer: bounds, buffers and timers. */
export interface TcpConfig {
  /** Connections at once, all states; SYNs past it are dropped and counted. Default 16384. */
  readonly maxConnections: number;
  /** SYNs awaiting the application's accept/refuse decision or the handshake's last ACK. Default 1024 (Linux's somaxconn is 4096; a relay decides fast). */
  readonly maxPendingSyns: number;
  /** How long a SYN may wait for the application's decision before it is dropped. Default 30 s. */
  readonly synDecisionTimeoutMs: number;
  /** SYN-ACK retransmissions before a half-open connection is dropped. Default 5 (Linux's tcp_synack_retries). */
  readonly synAckRetries: number;
  /** Initial send buffer per connection in bytes (written, not yet acknowledged). Default 256 KiB. */
  readonly sendBufferBytes: number;
  /** Largest send buffer auto-tuning may grow to (two congestion windows). Default 4 MiB (Linux's tcp_wmem max). */
  readonly sendBufferMaxBytes: number;
  /** Initial receive buffer per connection in bytes: the first advertised window. Default 128 KiB (Linux's tcp_rmem default). */
  readonly recvBufferBytes: number;
  /** Largest receive buffer auto-tuning may grow to (RFC 7323 §1.1 bandwidth-delay product). Default 4 MiB. */
  readonly recvBufferMaxBytes: number;
  /**
   * Free 64 KiB receive-buffer blocks the TCP layer keeps for reuse (block-pool.ts): busy
   * connections then recycle their blocks instead of allocating new ones. Default 64 (4 MiB);
   * 0 turns recycling off.
   */
  readonly pooledBlocks: number;
  /** Out-of-order segments held per connection (bytes are bounded by the window). Default 1024. */
  readonly maxOutOfOrderSegments: number;
  /** TIME-WAIT duration. Short because we are the terminating end, not a shared host. Default 2 s (RFC 9293 says 2*MSL = 4 min). */
  readonly timeWaitMs: number;
  /** FIN-WAIT-2 without the peer's FIN before the connection is dropped. Default 60 s (Linux's tcp_fin_timeout). */
  readonly finWait2TimeoutMs: number;
  /** Delayed-ACK timer. Default 40 ms (Linux's minimum; RFC 9293 §3.8.6.3 requires under 0.5 s). */
  readonly delayedAckMs: number;
  /** Abort a connection whose outstanding data has made no progress for this long (RFC 9293 §3.8.3 R2, RFC 5482 user timeout). Default 120 s. */
  readonly userTimeoutMs: number;
  /** Keepalive: idle time before the first probe, once enabled with setKeepAlive. Default 2 h (RFC 1122 §4.2.3.6, Linux's tcp_keepalive_time). */
  readonly keepaliveIdleMs: number;
  /** Keepalive: interval between unanswered probes. Default 75 s (Linux). */
  readonly keepaliveIntervalMs: number;
  /** Keepalive: unanswered probes before the connection is reset. Default 9 (Linux). */
  readonly keepaliveProbes: number;
  /** Initial retransmission timeout. Default 1 s (RFC 6298 §2.1). */
  readonly initialRtoMs: number;
  /** Lower bound of the RTO. Default 200 ms (Linux's TCP_RTO_MIN; RFC 6298 says 1 s, too slow for a local peer). */
  readonly minRtoMs: number;
  /** Upper bound of the RTO. Default 120 s (Linux's TCP_RTO_MAX). */
  readonly maxRtoMs: number;
  /** Challenge ACKs per second across all connections (RFC 5961 §7). Default 1000 (Linux's tcp_challenge_ack_limit). */
  readonly challengeAcksPerSec: number;
  /** Congestion control: 'cubic' (RFC 9438, default) or 'newreno' (RFC 5681/6582). */
  readonly congestionControl: 'cubic' | 'newreno';
  /** Offer and accept SACK (RFC 2018). Default true. */
  readonly sack: boolean;
  /** Offer and accept timestamps (RFC 7323). Default true. */
  readonly timestamps: boolean;
  /** Offer and accept window scaling (RFC 7323). Default true. */
  readonly windowScaling: boolean;
  /**
   * Largest IP packet, headers included, of one TCP super-segment when the IP layer has `tso`:
   * the payload is the rest rounded down to whole MSS. Default 65535 (the IPv4 total length
   * limit, like Linux's GSO_LEGACY_MAX_SIZE); 0 turns GSO output off.
   */
  readonly gsoMaxBytes: number;
}

/** Options accepted by `Stack`: any subset of the defaults. */
export type StackOptions = Partial<IpOptions> & {
  readonly tcp?: Partial<TcpConfig>;
  readonly udp?: Partial<UdpConfig>;
};

/** The documented TCP defaults. */
export const DEFAULT_TCP_CONFIG: TcpConfig = Object.freeze({
  maxConnections: 16384,
  maxPendingSyns: 1024,
  synDecisionTimeoutMs: 30_000,
  synAckRetries: 5,
  sendBufferBytes: 256 * 1024,
  sendBufferMaxBytes: 4 * 1024 * 1024,
  recvBufferBytes: 128 * 1024,
  recvBufferMaxBytes: 4 * 1024 * 1024,
  pooledBlocks: DEFAULT_POOLED_BLOCKS,
  maxOutOfOrderSegments: 1024,
  timeWaitMs: 2000,
  finWait2TimeoutMs: 60_000,
  delayedAckMs: 40,
  userTimeoutMs: 120_000,
  keepaliveIdleMs: 7_200_000,
  keepaliveIntervalMs: 75_000,
  keepaliveProbes: 9,
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 120_000,
  challengeAcksPerSec: 1000,
  congestionControl: 'cubic',
  sack: true,
  timestamps: true,
  windowScaling: true,
  gsoMaxBytes: 65535,
});

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
  tso: false,
  txChecksumOffload: false,
  txHeadroom: 0,
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
  const { tcp: _tcp, udp: _udp, ...ip } = options;
  const o: IpOptions = { ...DEFAULT_IP_OPTIONS, ...ip };
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
  integer('txHeadroom', o.txHeadroom, 0, 256);
  if (typeof o.tso !== 'boolean' || typeof o.txChecksumOffload !== 'boolean')
    throw new StackOptionError('tso and txChecksumOffload must be booleans');
  return Object.freeze(o);
}

/** Fills UDP defaults and validates ranges. */
export function resolveUdpConfig(options: Partial<UdpConfig> = {}): UdpConfig {
  const o: UdpConfig = { ...DEFAULT_UDP_CONFIG, ...options };
  integer('udp.idleTimeoutMs', o.idleTimeoutMs, 1, 86_400_000);
  integer('udp.maxFlows', o.maxFlows, 1, 1 << 24);
  return Object.freeze(o);
}

/** Fills TCP defaults and validates ranges. */
export function resolveTcpConfig(options: Partial<TcpConfig> = {}): TcpConfig {
  const o: TcpConfig = { ...DEFAULT_TCP_CONFIG, ...options };
  integer('tcp.maxConnections', o.maxConnections, 1, 1 << 24);
  integer('tcp.maxPendingSyns', o.maxPendingSyns, 1, 1 << 20);
  integer('tcp.synDecisionTimeoutMs', o.synDecisionTimeoutMs, 1, 600_000);
  integer('tcp.synAckRetries', o.synAckRetries, 0, 20);
  integer('tcp.sendBufferBytes', o.sendBufferBytes, 1024, 1 << 30);
  integer('tcp.sendBufferMaxBytes', o.sendBufferMaxBytes, o.sendBufferBytes, 1 << 30);
  integer('tcp.recvBufferBytes', o.recvBufferBytes, 1024, 1 << 30);
  integer('tcp.recvBufferMaxBytes', o.recvBufferMaxBytes, o.recvBufferBytes, 1 << 30);
  integer('tcp.pooledBlocks', o.pooledBlocks, 0, 1 << 16);
  integer('tcp.maxOutOfOrderSegments', o.maxOutOfOrderSegments, 0, 1 << 20);
  integer('tcp.timeWaitMs', o.timeWaitMs, 0, 600_000);
  integer('tcp.finWait2TimeoutMs', o.finWait2TimeoutMs, 1, 3_600_000);
  integer('tcp.delayedAckMs', o.delayedAckMs, 1, 500);
  integer('tcp.userTimeoutMs', o.userTimeoutMs, 1, 86_400_000);
  integer('tcp.keepaliveIdleMs', o.keepaliveIdleMs, 1, 86_400_000);
  integer('tcp.keepaliveIntervalMs', o.keepaliveIntervalMs, 1, 86_400_000);
  integer('tcp.keepaliveProbes', o.keepaliveProbes, 1, 1000);
  integer('tcp.challengeAcksPerSec', o.challengeAcksPerSec, 0, 1_000_000);
  integer('tcp.initialRtoMs', o.initialRtoMs, 1, 600_000);
  integer('tcp.minRtoMs', o.minRtoMs, 1, 600_000);
  integer('tcp.maxRtoMs', o.maxRtoMs, o.minRtoMs, 3_600_000);
  integer('tcp.gsoMaxBytes', o.gsoMaxBytes, 0, 65535);
  if (o.congestionControl !== 'cubic' && o.congestionControl !== 'newreno') {
    throw new StackOptionError(
      `tcp.congestionControl must be 'cubic' or 'newreno', got ${String(o.congestionControl)}`,
    );
  }
  return Object.freeze(o);
}
