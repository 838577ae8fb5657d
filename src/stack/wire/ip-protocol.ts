/**
 * IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), shared by the IPv4 Protocol
 * field (RFC 791 §3.1) and the IPv6 Next Header field (RFC 8200 §3).
 */

/** The protocol numbers this stack names: upper layers and the IPv6 extension headers. */
export const IpProtocol = {
  /** IPv6 Hop-by-Hop Options (RFC 8200 §4.3). */
  HOPOPTS: 0,
  /** ICMP for IPv4 (RFC 792). */
  ICMP: 1,
  /** TCP (RFC 9293). */
  TCP: 6,
  /** UDP (RFC 768). */
  UDP: 17,
  /** IPv6 Routing header (RFC 8200 §4.4). */
  ROUTING: 43,
  /** IPv6 Fragment header (RFC 8200 §4.5). */
  FRAGMENT: 44,
  /** ICMPv6 (RFC 4443). */
  ICMPV6: 58,
  /** IPv6 "No Next Header" (RFC 8200 §4.7). */
  NONE: 59,
  /** IPv6 Destination Options (RFC 8200 §4.6). */
  DSTOPTS: 60,
} as const;

/** One of the protocol numbers named in `IpProtocol`. */
export type IpProtocol = (typeof IpProtocol)[keyof typeof IpProtocol];
