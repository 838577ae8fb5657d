/**
 * The UDP relay's public shapes: the flow it works on, its options, its counters and defaults
 * (the relay itself is in udp-relay.ts).
 */
import type { Logger } from '../log.js';
import type { Destination, Dialer } from '../proxy/dialer.js';
import type { UdpDialer, UdpEndpoint } from '../proxy/udp.js';

/** Datagrams held per flow while its association opens; more are dropped ('queue-full'). */
export const DEFAULT_UDP_QUEUE_DATAGRAMS = 64;
/** Payload bytes held per flow while its association opens; more are dropped ('queue-full'). */
export const DEFAULT_UDP_QUEUE_BYTES = 256 * 1024;
/** The DNS port (RFC 1035 §4.2.1). */
export const DNS_PORT = 53;
/** The client flow the relay works on; the runtime's UdpFlow (src/udp-flow.ts) satisfies it. */
export interface RelayUdpFlow {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly family: 'IPv4' | 'IPv6';
  readonly closed: boolean;
  /** Sends a datagram to the client as if from `from`; false when dropped. */
  send(payload: Uint8Array, from: UdpEndpoint): boolean;
  /** ICMP port unreachable to the client about a datagram it sent to `destination`. */
  unreachable(destination: UdpEndpoint): void;
  /** Ends the flow ('close' follows). */
  close(): void;
  on(event: 'datagram', listener: (payload: Buffer, destination: UdpEndpoint) => void): unknown;
  on(event: 'close', listener: (reason?: string) => void): unknown;
}

/**
 * A service of the stack itself for UDP (the DNS server): gets each datagram sent to its
 * destination and may answer through `reply`, which sends from that destination to the client.
 */
export type UdpLocalService = (payload: Buffer, reply: (answer: Uint8Array) => void) => void;

/** What attach() needs from the runtime: StackRuntime.onUdpFlow. */
export interface UdpFlowSource {
  onUdpFlow(handler: ((flow: RelayUdpFlow) => void) | undefined): void;
}

/** Options of a UdpRelay. */
export interface UdpRelayOptions {
  /** Opens associations; undefined when the proxy has no UDP (SOCKS4, HTTP, reject). */
  readonly udpDialer: UdpDialer | undefined;
  /** The TCP dialer, for DNS over TCP. */
  readonly dialer: Dialer;
  /**
   * DNS (port 53) over TCP: 'auto' (default) when the proxy has no UDP (udpDialer undefined, or
   * its ASSOCIATE refused as unsupported), 'always' for every DNS datagram, 'never' at all.
   */
  readonly dnsOverTcp?: 'auto' | 'always' | 'never';
  /** Logger; default silent. */
  readonly log?: Logger;
  /** Dial and ASSOCIATE timeout; default DEFAULT_DIAL_TIMEOUT_MS. */
  readonly dialTimeoutMs?: number;
  /** Destinations never relayed (the proxy itself); dropped as 'loop'. */
  readonly loopGuard?: readonly Destination[];
  /** Per-flow queue while an association opens; default DEFAULT_UDP_QUEUE_DATAGRAMS. */
  readonly queueDatagrams?: number;
  /** Per-flow queued payload bytes; default DEFAULT_UDP_QUEUE_BYTES. */
  readonly queueBytes?: number;
  /**
   * Maps each datagram's destination to the one sent to (fake-IP: a fake address becomes its
   * name, resolved at the proxy). Undefined drops the datagram ('fake-unmapped') with an ICMP
   * port unreachable. Replies from the resolved remote whose port matches a named destination's
   * are presented to the client as from the fake address (unless the client also sent to that
   * remote address directly). Default: send where the client sent.
   */
  readonly resolveDestination?: (dst: Destination) => Destination | undefined;
  /** A service of the stack itself for a destination (the DNS server): its datagrams go there, not upstream. */
  readonly localService?: (dst: Destination) => UdpLocalService | undefined;
}

/**
 * Counters of a UdpRelay. `dropped` reasons: 'loop', 'no-udp', 'queue-full', 'associate-failed',
 * 'reply-rejected' (the flow refused a reply: closed, wrong family), 'dns-dial-failed',
 * 'dns-timeout', 'dns-busy', 'dns-malformed', 'dns-closed', 'fake-unmapped' (a fake address
 * with no name, see resolveDestination), and the associations' own
 * ('socks5-udp-fragment', 'socks5-udp-malformed').
 */
export interface UdpRelayStats {
  /** Flows being relayed now. */
  flowsOpen: number;
  /** Flows seen since the relay was created. */
  flowsTotal: number;
  /** Datagrams from clients. */
  datagramsUp: number;
  /** Datagrams delivered to clients. */
  datagramsDown: number;
  /** Payload bytes from clients. */
  bytesUp: number;
  /** Payload bytes delivered to clients. */
  bytesDown: number;
  /** Associations opened (including re-opened ones). */
  associations: number;
  /** DNS datagrams handed to DNS over TCP (answered or not; failures are in `dropped`). */
  dnsOverTcp: number;
  /** Dropped datagrams by reason. */
  dropped: Record<string, number>;
}

/** Zeroed UdpRelayStats. */
export function newUdpRelayStats(): UdpRelayStats {
  return {
    flowsOpen: 0,
    flowsTotal: 0,
    datagramsUp: 0,
    datagramsDown: 0,
    bytesUp: 0,
    bytesDown: 0,
    associations: 0,
    dnsOverTcp: 0,
    dropped: {},
  };
}
