/**
 * Counters of the stack: traffic per protocol and every dropped packet by reason (gVisor's
 * per-reason drop counters). Plain numbers, incremented in place: no allocation per packet.
 */

/** Traffic and event counters. */
export class StackStats {
  /** IP packets handed to `Stack.input`. */
  rxPackets = 0;
  /** Bytes handed to `Stack.input`. */
  rxBytes = 0;
  /** IP packets transmitted. */
  txPackets = 0;
  /** Bytes transmitted. */
  txBytes = 0;
  /** IPv4 packets that passed header validation. */
  rxIpv4 = 0;
  /** IPv6 packets that passed header validation. */
  rxIpv6 = 0;
  /** TCP segments delivered to the TCP layer. */
  rxTcp = 0;
  /** UDP datagrams delivered to the UDP layer. */
  rxUdp = 0;
  /** ICMP and ICMPv6 messages received (valid checksum). */
  rxIcmp = 0;
  /** Fragments accepted into reassembly. */
  fragmentsReceived = 0;
  /** Datagrams completed by reassembly. */
  datagramsReassembled = 0;
  /** Datagrams we split into fragments on output. */
  datagramsFragmented = 0;
  /** Echo replies sent. */
  echoReplies = 0;
  /** ICMP error messages sent. */
  icmpErrorsSent = 0;
  /** ICMP errors not sent because of the rate limit. */
  icmpErrorsRateLimited = 0;
  /** TCP SYNs that opened a connection request. */
  tcpSynReceived = 0;
  /** TCP connections that completed the handshake. */
  tcpEstablished = 0;
  /** TCP connections open now (every state but CLOSED). */
  tcpOpen = 0;
  /** TCP segments sent. */
  tcpSegmentsSent = 0;
  /** TCP segments retransmitted (timeouts, fast retransmit, recovery). */
  tcpRetransmits = 0;
  /** Fast retransmits (entries into loss recovery). */
  tcpFastRetransmits = 0;
  /** Retransmission timeouts. */
  tcpTimeouts = 0;
  /** RFC 5961 challenge ACKs sent. */
  tcpChallengeAcks = 0;
  /** Resets sent. */
  tcpResetsSent = 0;
  /** Resets received that closed a connection. */
  tcpResetsReceived = 0;
  /** Full-size (64 KiB) receive blocks taken by connections (block-pool.ts). */
  tcpBlocksTaken = 0;
  /** Of those, blocks reused from the pool rather than newly allocated. */
  tcpBlocksReused = 0;
  /** UDP flows (client endpoints) opened. */
  udpFlowsOpened = 0;
  /** UDP flows closed after their idle timeout. */
  udpFlowsExpired = 0;
  /** UDP flows closed to make room when the table was full. */
  udpFlowsEvicted = 0;
  /** UDP datagrams delivered to the owner. */
  udpDatagramsIn = 0;
  /** UDP datagrams sent to clients. */
  udpDatagramsOut = 0;
  /** Dropped packets by reason, e.g. 'ipv4-bad-checksum'. */
  readonly drops = new Map<string, number>();

  /** Counts one dropped packet under `reason`. */
  drop(reason: string): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
  }

  /** The number of packets dropped for every reason together. */
  totalDrops(): number {
    let n = 0;
    for (const v of this.drops.values()) n += v;
    return n;
  }

  /** A plain JSON-able copy, drops sorted by reason. */
  snapshot(): Record<string, number | Record<string, number>> {
    const out: Record<string, number | Record<string, number>> = {};
    for (const [k, v] of Object.entries(this)) if (typeof v === 'number') out[k] = v;
    out.drops = Object.fromEntries([...this.drops.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
    return out;
  }
}
