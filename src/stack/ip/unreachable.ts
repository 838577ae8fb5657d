/**
 * Destination Unreachable about a packet we no longer hold: a relay learns only later (after its
 * upstream dial) that a destination cannot be reached. The invoking packet is rebuilt from what
 * the transport remembers (addresses, protocol and its header), which is all a client's stack
 * reads from the quote to find the socket: Linux matches the ports and, for TCP, the sequence.
 */
import type { Icmp } from './icmp.js';
import type { IpOutput } from './output.js';

/** What could not be reached: the network, the host, or the port (RFC 792, RFC 4443 §3.1). */
export type UnreachableKind = 'net' | 'host' | 'port';

/** ICMPv4 codes (RFC 792): 0 net, 1 host, 3 port. */
const V4_CODES: Readonly<Record<UnreachableKind, number>> = { net: 0, host: 1, port: 3 };
/** ICMPv6 codes (RFC 4443 §3.1): 0 no route, 3 address unreachable, 4 port unreachable. */
const V6_CODES: Readonly<Record<UnreachableKind, number>> = { net: 0, host: 3, port: 4 };

/**
 * Sends Destination Unreachable to `client` from `destination`, quoting a rebuilt packet
 * client → destination of `protocol` whose transport header is `header`.
 */
export function sendUnreachable(
  icmp: Icmp,
  output: IpOutput,
  kind: UnreachableKind,
  client: Uint8Array,
  destination: Uint8Array,
  protocol: number,
  header: Uint8Array,
  now: number,
): void {
  const invoking = output.allocate(client, destination, protocol, header.length);
  invoking.set(header, invoking.length - header.length);
  if (client.length === 4) {
    icmp.errorV4(invoking, { kind: 'dest-unreachable', code: V4_CODES[kind], nextHopMtu: 0 }, now);
  } else {
    icmp.errorV6(invoking, { kind: 'dest-unreachable', code: V6_CODES[kind] }, now);
  }
}
