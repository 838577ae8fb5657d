/**
 * Closed ports behave as on a real host, so clients fail at once instead of hanging: TCP segments
 * for no connection are answered with a reset (RFC 9293 §3.10.7.1) through `sendReset` (UDP's
 * Port Unreachable is in udp/udp-layer.ts). Also the shared header and checksum validation of
 * both transports.
 */
import type { IpOutput } from './ip/output.js';
import type { IpPacketInfo } from './transport.js';
import { RxFlags } from './transport.js';
import { pseudoHeaderSum } from './wire/checksum.js';
import { IpProtocol } from './wire/ip-protocol.js';
import { TcpFlags, TcpRepr, type TcpSegment } from './wire/tcp.js';
import type { TcpOptions } from './wire/tcp-options.js';
import type { UdpDatagram } from './wire/udp.js';

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
