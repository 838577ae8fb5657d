/**
 * Closed ports behave as on a real host, so clients fail at once instead of hanging: UDP with no
 * handler answers ICMP Port Unreachable (RFC 1122 §4.1.3.1), and TCP segments for no connection
 * are answered with a reset (RFC 9293 §3.10.7.1) through `sendReset`. Also the shared header and
 * checksum validation of both transports.
 */
import type { Icmp } from './ip/icmp.js';
import type { IpOutput } from './ip/output.js';
import type { IpPacketInfo, TransportHandler } from './transport.js';
import { RxFlags } from './transport.js';
import { pseudoHeaderSum } from './wire/checksum.js';
import { IpProtocol } from './wire/ip-protocol.js';
import { TcpFlags, TcpRepr, type TcpSegment } from './wire/tcp.js';
import type { TcpOptions } from './wire/tcp-options.js';
import { UdpDatagram } from './wire/udp.js';

/** ICMPv4 port unreachable (RFC 792) and ICMPv6 port unreachable (RFC 4443 §3.1). */
const ICMPV4_PORT_UNREACHABLE = 3;
const ICMPV6_PORT_UNREACHABLE = 4;

/** Checks a UDP datagram's header and checksum (over its Length field); returns a drop reason or undefined. */
export function validateUdp(info: IpPacketInfo, udp: UdpDatagram): string | undefined {
  const bad = udp.check();
  if (bad !== undefined) return bad;
  if ((info.rxFlags & RxFlags.CHECKSUM_VERIFIED) !== 0) return undefined;
  // RFC 768: the pseudo-header carries the UDP Length field, not the IP payload length.
  const sum = pseudoHeaderSum(info.src, info.dst, IpProtocol.UDP, udp.length);
  return udp.verifyChecksum(sum, info.version === 6) ? undefined : 'udp-bad-checksum';
}

/** Checks a TCP segment's header, options and checksum; returns a drop reason or undefined. */
export function validateTcp(
  info: IpPacketInfo,
  tcp: TcpSegment,
  length: number,
  options: TcpOptions,
): string | undefined {
  const bad = tcp.check() ?? options.parse(tcp.options);
  if (bad !== undefined) return bad;
  if ((info.rxFlags & RxFlags.CHECKSUM_VERIFIED) !== 0) return undefined;
  const sum = pseudoHeaderSum(info.src, info.dst, IpProtocol.TCP, length);
  return tcp.verifyChecksum(sum) ? undefined : 'tcp-bad-checksum';
}

/** UDP with no socket bound anywhere: Port Unreachable for every datagram. */
export class ClosedUdp implements TransportHandler {
  constructor(private readonly icmp: Icmp) {}

  /** Answers a valid datagram with ICMP Port Unreachable. */
  input(info: IpPacketInfo, payload: Uint8Array, now: number): string | undefined {
    const bad = validateUdp(info, new UdpDatagram(payload));
    if (bad !== undefined) return bad;
    if (info.version === 4) {
      this.icmp.errorV4(
        info.packet,
        { kind: 'dest-unreachable', code: ICMPV4_PORT_UNREACHABLE, nextHopMtu: 0 },
        now,
      );
    } else {
      this.icmp.errorV6(info.packet, { kind: 'dest-unreachable', code: ICMPV6_PORT_UNREACHABLE }, now);
    }
    return 'udp-port-unreachable';
  }
}

/**
 * Sends the reset that answers `seg` (RFC 9293 §3.10.7.1): <SEQ=SEG.ACK><CTL=RST> when it carries
 * an ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
 */
export function sendReset(output: IpOutput, info: IpPacketInfo, seg: TcpSegment): void {
  const withAck = seg.ack;
  const repr: TcpRepr = {
    srcPort: seg.dstPort,
    dstPort: seg.srcPort,
    seq: withAck ? seg.ackNumber : 0,
    ack: withAck ? 0 : (seg.seqNumber + seg.segmentLength) >>> 0,
    flags: withAck ? TcpFlags.RST : TcpFlags.RST | TcpFlags.ACK,
    window: 0,
    urgentPointer: 0,
    sackPermitted: false,
    sackBlocks: [],
    payloadLength: 0,
  };
  const length = TcpRepr.length(repr);
  const packet = output.allocate(info.dst, info.src, IpProtocol.TCP, length);
  TcpRepr.emit(
    repr,
    packet.subarray(packet.length - length),
    pseudoHeaderSum(info.dst, info.src, IpProtocol.TCP, length),
  );
  output.send(packet);
}
