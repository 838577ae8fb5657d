/**
 * Segment output: building segments with their options, the send loop (window, congestion window,
 * Nagle and sender SWS avoidance, FIN), SACK-based loss recovery (RFC 6675 §5), retransmission,
 * pure ACKs, window updates, probes and resets.
 *
 * Offload: when the device completes checksums, data segments leave theirs as the pseudo-header
 * sum (no payload summed here); when it also segments (TSO), the send loop may build one
 * super-segment of up to `gsoMaxBytes`: exactly the run of MSS-sized segments it would have sent
 * in a row (same window, cwnd, Nagle and SWS decisions, PSH/FIN on the last byte), which the
 * device cuts at `segmentMss` (Linux's tcp_gso_segment copies the header, advances the sequence
 * number and keeps PSH/FIN for the last piece only).
 */
import { IpOutput } from '../ip/output.js';
import { pseudoHeaderSum } from '../wire/checksum.js';
import { IpProtocol } from '../wire/ip-protocol.js';
import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqMax, seqSub } from '../wire/seq.js';
import { TcpFlags, TcpRepr } from '../wire/tcp.js';
import type { TcpConnection } from './connection.js';
import { NEVER } from './state.js';

const NO_SACK: readonly (readonly [number, number])[] = Object.freeze([]);
/** The largest TCP header (RFC 9293 §3.1: data offset 15 words). */
const MAX_TCP_HEADER = 60;
const sackLeft = new Uint32Array(4);
const sackRight = new Uint32Array(4);

/** Our RFC 7323 timestamp clock: 1 ms ticks plus the connection's random offset. */
export function tsNow(c: TcpConnection, now: number): number {
  return (Math.floor(now) + c.tsOffset) >>> 0;
}

/**
 * The window field to send, moving the advertised right edge only forward (RFC 9293 §3.8.6.2.2)
 * and only by at least min(buffer/2, MSS): receiver silly-window avoidance.
 */
export function windowField(c: TcpConnection): number {
  const size = c.recvBufferSize;
  const free = Math.max(0, size - c.recvBuffer.length);
  const edge = seqAdd(c.rcvNxt, free);
  if (seqGt(edge, c.rcvAdv)) {
    const increase = seqSub(edge, c.rcvAdv);
    const zeroWindow = !seqGt(c.rcvAdv, c.rcvNxt);
    if (increase >= Math.min(size >>> 1, c.rcvMss) || (zeroWindow && free >= c.rcvMss)) c.rcvAdv = edge;
  }
  if (seqLt(c.rcvAdv, c.rcvNxt)) c.rcvAdv = c.rcvNxt;
  return Math.min(seqSub(c.rcvAdv, c.rcvNxt) >>> c.rcvWscale, 0xffff);
}

/** Builds one segment from the connection's state and sends it. Data comes from the send buffer. */
export function sendSegment(
  c: TcpConnection,
  now: number,
  seq: number,
  flags: number,
  dataOffset: number,
  dataLength: number,
): void {
  const syn = (flags & TcpFlags.SYN) !== 0;
  let sackBlocks = NO_SACK;
  if (c.sackOk && !syn && (flags & TcpFlags.ACK) !== 0 && (c.ooo.ranges > 0 || c.ooo.dsackPending)) {
    const n = c.ooo.sackBlocks(c.rcvNxt, c.tsOk ? 3 : 4, sackLeft, sackRight);
    const blocks: (readonly [number, number])[] = [];
    for (let i = 0; i < n; i++) blocks.push([sackLeft[i]!, sackRight[i]!]);
    sackBlocks = blocks;
  }
  // RFC 7323 §2.2: the window field of a SYN is never scaled.
  const window = syn ? Math.min(c.recvBufferSize, 0xffff) : windowField(c);
  const repr: TcpRepr = {
    srcPort: c.localPort,
    dstPort: c.remotePort,
    seq,
    ack: (flags & TcpFlags.ACK) !== 0 ? c.rcvNxt : 0,
    flags,
    window,
    urgentPointer: 0,
    mss: syn ? c.rcvMss : undefined,
    windowScale: syn && c.wsOk ? c.rcvWscale : undefined,
    sackPermitted: syn && c.sackOk,
    sackBlocks,
    timestamp: c.tsOk ? { tsVal: tsNow(c, now), tsEcr: c.tsRecent } : undefined,
    payloadLength: dataLength,
  };
  const ctx = c.ctx;
  const output = ctx.output;
  const length = TcpRepr.length(repr);
  const packet = output.allocate(c.localAddress, c.remoteAddress, IpProtocol.TCP, length);
  const start = packet.length - length;
  const pseudoSum = pseudoHeaderSum(c.localAddress, c.remoteAddress, IpProtocol.TCP, length);
  if (dataLength > 0 && output.checksumOffload) {
    const headerLength = TcpRepr.headerLength(repr);
    c.sendBuffer.copyTo(dataOffset, dataLength, packet, start + headerLength);
    // emit() sums what its buffer holds: given the header alone, it sums only the header, and the
    // field then gets the pseudo-header sum for the device to complete (CHECKSUM_PARTIAL).
    TcpRepr.emit(repr, packet.subarray(start, start + headerLength), 0);
    packet[start + 16] = pseudoSum >>> 8;
    packet[start + 17] = pseudoSum & 0xff;
    const mss = output.tso ? segmentMss(c) : 0;
    output.sendPartial(packet, start, dataLength > mss ? mss : 0);
  } else {
    if (dataLength > 0)
      c.sendBuffer.copyTo(dataOffset, dataLength, packet, start + TcpRepr.headerLength(repr));
    TcpRepr.emit(repr, packet.subarray(start), pseudoSum);
    output.send(packet);
  }
  ctx.stats.tcpSegmentsSent++;
  // Data sent within the delayed-ACK time of the peer's last data answers it: interactive mode.
  if (dataLength > 0 && now - c.lastDataInAt < ctx.config.delayedAckMs) c.interactive = true;
  if ((flags & TcpFlags.ACK) !== 0) {
    c.lastAckSent = c.rcvNxt;
    c.ackNow = false;
    c.unackedSegments = 0;
    c.delackAt = NEVER;
  }
}

/**
 * Sends a pure ACK, <SEQ=SND.NXT><ACK=RCV.NXT> (RFC 9293 §3.10.7.4). Our sndNxt is rewound to
 * SND.UNA by a retransmission timeout (go-back-N), so the RFC's SND.NXT is sndMax here: an ACK
 * with the rewound number could fall below the peer's RCV.NXT, be dropped as out of window with
 * its acknowledgment unread, and when both sides retransmit, neither ever learns what the other
 * received. BSD's tcp_output sends pure ACKs at snd_max for the same reason.
 */
export function sendAck(c: TcpConnection, now: number): void {
  sendSegment(c, now, c.sndMax, TcpFlags.ACK, 0, 0);
}

/** Sends (or resends) our SYN-ACK. */
export function sendSynAck(c: TcpConnection, now: number): void {
  sendSegment(c, now, c.iss, TcpFlags.SYN | TcpFlags.ACK, 0, 0);
  c.sndNxt = seqAdd(c.iss, 1);
  c.sndMax = seqMax(c.sndMax, c.sndNxt);
  // The SYN-ACK offered a window (unscaled, RFC 7323 §2.2): data up to its right edge is
  // acceptable from the handshake's last ACK on (RFC 9293 §3.8.6.2.2).
  c.rcvAdv = seqMax(c.rcvAdv, seqAdd(c.rcvNxt, Math.min(c.recvBufferSize, 0xffff)));
}

/** Sends (or resends) our SYN for an active open, offering every option we support. */
export function sendSyn(c: TcpConnection, now: number): void {
  sendSegment(c, now, c.iss, TcpFlags.SYN, 0, 0);
  c.sndNxt = seqAdd(c.iss, 1);
  c.sndMax = seqMax(c.sndMax, c.sndNxt);
}

/** RFC 9293 §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST>. */
export function sendAbortReset(c: TcpConnection): void {
  const now = c.ctx.now;
  sendSegment(c, now, c.sndMax, TcpFlags.RST | TcpFlags.ACK, 0, 0);
  c.ctx.stats.tcpResetsSent++;
}

/**
 * A probe that elicits an ACK without new data: an old sequence number (SND.UNA - 1), as Linux
 * sends zero-window and keepalive probes (RFC 9293 §3.8.6.1 allows either this or one new byte).
 */
export function sendProbe(c: TcpConnection, now: number): void {
  sendSegment(c, now, seqAdd(c.sndUna, -1), TcpFlags.ACK, 0, 0);
}

/** After the owner read: ACK at once when the window at least doubled (Linux's tcp_cleanup_rbuf rule). */
export function windowUpdateAfterRead(c: TcpConnection): void {
  if (c.peerFinReceived) return;
  const current = Math.max(0, seqSub(c.rcvAdv, c.rcvNxt));
  if (2 * current > c.recvBufferSize) return;
  const free = c.recvBufferSize - c.recvBuffer.length;
  if (free >= c.rcvMss && free >= 2 * current) {
    c.ackNow = true;
    c.ctx.wantOutput(c);
  }
}

/**
 * The most data a segment may carry now: SMSS less the SACK option it will carry, so the packet
 * stays within the MTU instead of being fragmented (RFC 9293 §3.7.1: the data is limited so that
 * header and options fit; Linux's tcp_current_mss subtracts the SACK blocks the same way).
 */
export function segmentMss(c: TcpConnection): number {
  if (!c.sackOk) return c.sndMss;
  const blocks = Math.min(c.tsOk ? 3 : 4, c.ooo.ranges + (c.ooo.dsackPending ? 1 : 0));
  return blocks === 0 ? c.sndMss : Math.max(c.sndMss - 4 - 8 * blocks, 1);
}

/**
 * The most data one segment of the send loop may carry: `mss`, or with TSO the whole MSS
 * segments that fit in a `gsoMaxBytes` packet under the largest IP and TCP headers.
 */
export function gsoLimit(c: TcpConnection, mss: number): number {
  const ctx = c.ctx;
  const max = ctx.config.gsoMaxBytes;
  if (max === 0 || !ctx.output.tso) return mss;
  const headers = IpOutput.headerLength(c.localAddress) + MAX_TCP_HEADER;
  const segments = Math.floor((max - headers) / mss);
  return segments >= 2 ? segments * mss : mss;
}

/** Bytes in flight: RFC 6675 pipe during SACK recovery, else SND.NXT - SND.UNA. */
function flightSize(c: TcpConnection): number {
  if (c.inRecovery && c.sackOk) return c.scoreboard.pipe(c.sndUna, c.sndMax, c.highRxt, c.sndMss);
  return seqSub(c.sndNxt, c.sndUna);
}

/**
 * Resends up to `maxLength` bytes at `seq` (with our FIN when it ends there). Returns the
 * sequence space covered, 0 when nothing was left to send there.
 */
export function retransmit(c: TcpConnection, now: number, seq: number, maxLength: number): number {
  const dataEnd = seqAdd(c.sndUna, c.sendBuffer.length);
  const dataLength = Math.max(0, Math.min(maxLength, segmentMss(c), seqSub(dataEnd, seq)));
  const finSent = c.finSeq !== -1 && seqGt(c.sndMax, c.finSeq);
  const fin = finSent && seqAdd(seq, dataLength) === c.finSeq;
  if (dataLength === 0 && !fin) return 0;
  const flags = TcpFlags.ACK | (fin ? TcpFlags.FIN : 0) | (dataLength > 0 ? TcpFlags.PSH : 0);
  sendSegment(c, now, seq, flags, seqSub(seq, c.sndUna), dataLength);
  c.ctx.stats.tcpRetransmits++;
  c.lastSendAt = now;
  return dataLength + (fin ? 1 : 0);
}

/** RFC 6675 §5 (C): while the window allows, retransmit what NextSeg() names. */
function sendRecovery(c: TcpConnection, now: number): boolean {
  let sent = false;
  const sb = c.scoreboard;
  for (let guard = 0; guard < 4096; guard++) {
    const pipe = sb.pipe(c.sndUna, c.sndMax, c.highRxt, c.sndMss);
    if (c.cc.cwnd - pipe < c.sndMss) break;
    const unsent = seqSub(seqAdd(c.sndUna, c.sendBuffer.length), c.sndMax) > 0;
    const kind = sb.nextSeg(c.sndUna, c.sndMax, c.highRxt, c.sndMss, unsent, false);
    if (kind !== 'retransmit') break;
    const covered = retransmit(c, now, sb.nextSegSeq, sb.nextSegLen);
    if (covered === 0) break;
    c.highRxt = seqMax(c.highRxt, seqAdd(sb.nextSegSeq, covered));
    sent = true;
  }
  return sent;
}

/** Arms the retransmission timer unless it runs (RFC 6298 §5.1). */
function armRetransmit(c: TcpConnection, now: number): void {
  if (c.rtxAt === NEVER) {
    c.rtxAt = now + c.rtt.rtoMs;
    c.ctx.reschedule(c);
  }
}

/**
 * Sends what the state, the windows and Nagle allow: recovery retransmissions first, then new
 * data and our FIN, then a pure ACK if one is owed and nothing carried it. `override` (the
 * persist timer) sends a segment smaller than sender SWS avoidance would wait for.
 */
export function sendPending(c: TcpConnection, now: number, override = false): void {
  const state = c.state;
  if (state === 'SYN-PENDING' || state === 'CLOSED') return;
  if (state === 'SYN-RECEIVED' || state === 'SYN-SENT' || state === 'TIME-WAIT') {
    // An owed ACK (challenge ACK, out-of-window or PAWS answer) goes out in SYN-RECEIVED too, as
    // <SEQ=ISS+1><ACK=RCV.NXT> (RFC 5961 §3.2; Linux's tcp_v4_reqsk_send_ack). SYN-SENT has none.
    if (c.ackNow && state !== 'SYN-SENT') sendAck(c, now);
    return;
  }
  if (c.inRecovery && c.sackOk) sendRecovery(c, now);
  // RFC 5681 §4.1 / Linux tcp_slow_start_after_idle: restart from the initial window after an
  // idle period longer than the RTO.
  if (c.sndUna === c.sndMax && now - c.lastSendAt > c.rtt.rtoMs && c.sendBuffer.length > 0)
    c.cc.onIdleRestart(now);
  const mss = segmentMss(c);
  const maxLength = gsoLimit(c, mss);
  for (let guard = 0; guard < 100_000; guard++) {
    const dataEnd = seqAdd(c.sndUna, c.sendBuffer.length);
    const unsent = Math.max(0, seqSub(dataEnd, c.sndNxt));
    const finPending = c.finSeq !== -1 && seqLe(c.sndNxt, c.finSeq);
    if (unsent === 0 && !finPending) break;
    const inFlight = flightSize(c);
    // RFC 3042 limited transmit: each of the first two duplicate ACKs lets one new segment out
    // beyond cwnd (without changing it), so a small window still gets its fast retransmit.
    const limited = !c.inRecovery && c.dupAcks > 0 ? Math.min(c.dupAcks, 2) * c.sndMss : 0;
    const cwndRoom = c.cc.cwnd + limited - inFlight;
    const windowRoom = seqSub(seqAdd(c.sndUna, c.sndWnd), c.sndNxt);
    let length = Math.max(0, Math.min(maxLength, unsent, windowRoom, cwndRoom));
    const tail = length > mss ? length % mss : 0;
    if (tail > 0) {
      // A super-segment is the MSS segments this loop would send in a row: its sub-MSS tail goes
      // only where the small-segment rules below would let it out with the full ones in flight.
      const all = length === unsent;
      const finNow = finPending && all && windowRoom > length;
      if (!(override || (all && (c.noDelay || finNow)) || tail >= c.maxSndWnd / 2)) length -= tail;
    }
    if (length === 0) {
      // Nothing fits: the peer's window is closed (persist timer) or cwnd is full (wait for ACKs).
      if (windowRoom <= 0 && inFlight === 0 && (unsent > 0 || finPending)) armPersist(c, now);
      if (!(finPending && unsent === 0 && windowRoom > 0 && cwndRoom > 0)) break;
    }
    const fin = finPending && length === unsent && windowRoom > length;
    if (length > 0 && length < mss) {
      // RFC 9293 §3.8.6.2.1 sender SWS avoidance and RFC 896 Nagle: a small segment goes out only
      // when it carries everything queued and nothing is in flight (or Nagle is off), or when it
      // is at least half the largest window the peer offered.
      const all = length === unsent;
      const nagleAllows = c.noDelay || inFlight === 0 || fin;
      if (!override && !(all && nagleAllows) && length < c.maxSndWnd / 2) {
        // Held back by the peer's small window with nothing in flight: no ACK will come to
        // release it, so the persist timer is the override timeout of RFC 9293 §3.8.6.2.1 and
        // then sends what fits (Linux: tcp_check_probe_timer, then tcp_write_wakeup).
        if (inFlight === 0) armPersist(c, now);
        break;
      }
    }
    const retransmission = seqLt(c.sndNxt, c.sndMax);
    // Nothing was outstanding: the user timeout (RFC 9293 §3.8.3 R2) counts from this send, not
    // from the last ACK before an idle period (Linux counts from the head segment's send time).
    if (c.sndUna === c.sndMax) c.lastProgressAt = now;
    const flags =
      TcpFlags.ACK | (fin ? TcpFlags.FIN : 0) | (length > 0 && length === unsent ? TcpFlags.PSH : 0);
    sendSegment(c, now, c.sndNxt, flags, seqSub(c.sndNxt, c.sndUna), length);
    if (retransmission) c.ctx.stats.tcpRetransmits++;
    else if (!c.tsOk && c.rttSeq === -1 && length > 0) {
      // Karn's rule: time only segments sent once.
      // The first MSS of a super-segment is the segment MSS-sized sending would have timed.
      c.rttSeq = seqAdd(c.sndNxt, Math.min(length, mss));
      c.rttSentAt = now;
    }
    c.sndNxt = seqAdd(c.sndNxt, length + (fin ? 1 : 0));
    if (seqGt(c.sndNxt, c.sndMax)) c.sndMax = c.sndNxt;
    c.bytesSent += retransmission ? 0 : length;
    c.lastSendAt = now;
    armRetransmit(c, now);
    if (fin) {
      if (c.state === 'ESTABLISHED') c.state = 'FIN-WAIT-1';
      else if (c.state === 'CLOSE-WAIT') c.state = 'LAST-ACK';
      break;
    }
  }
  if (c.ackNow) sendAck(c, now);
}

/** Arms the persist timer for zero-window probing (RFC 9293 §3.8.6.1), backed off like the RTO. */
export function armPersist(c: TcpConnection, now: number): void {
  if (c.persistAt !== NEVER) return;
  const backoff = Math.min(c.rtt.rtoMs * 2 ** Math.min(c.probes, 16), c.ctx.config.maxRtoMs);
  c.persistAt = now + Math.max(backoff, c.ctx.config.minRtoMs);
  c.ctx.reschedule(c);
}

/** True when `seq` lies in [SND.UNA, SND.MAX]: an acceptable acknowledgment number. */
export function ackInRange(c: TcpConnection, ack: number): boolean {
  return seqGe(ack, c.sndUna) && seqLe(ack, c.sndMax);
}
