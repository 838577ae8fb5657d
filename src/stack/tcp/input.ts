/**
 * SEGMENT ARRIVES for an existing connection (RFC 9293 §3.10.7.4): PAWS, sequence acceptability,
 * RST and SYN with RFC 5961's challenge ACKs, ACK processing with RTT sampling, window update,
 * duplicate-ACK and SACK loss detection, in-order and out-of-order data, and FIN.
 */
import { seqAdd, seqGe, seqGt, seqInWindow, seqLe, seqLt, seqMax, seqSub } from '../wire/seq.js';
import type { TcpSegment } from '../wire/tcp.js';
import type { TcpOptions } from '../wire/tcp-options.js';
import type { TcpConnection } from './connection.js';
import { negotiate } from './negotiate.js';
import { enterTimeWait, receiveData, receiveFin } from './receive.js';
import { retransmit, sendSynAck, tsNow } from './sender.js';
import { canReceive, NEVER, TcpEvent } from './state.js';

/** RFC 7323 §5.5: TS.Recent older than 24 days is invalid for PAWS. */
const PAWS_IDLE_MS = 24 * 24 * 3600 * 1000;
/** Ticks of TSval a segment may lag TS.Recent and still pass PAWS (Linux's TCP_PAWS_WINDOW). */
const PAWS_WINDOW = 1;
/** RFC 5681 §3.2 DupThresh. */
const DUP_THRESH = 3;

/** What happened to a segment that was not simply taken: a drop reason, or 'reset' to answer with RST. */
export type SegmentVerdict = string | undefined;

/** Processes one valid segment (checksum and options already checked) for connection `c`. */
export function segmentArrives(
  c: TcpConnection,
  seg: TcpSegment,
  opts: TcpOptions,
  now: number,
): SegmentVerdict {
  c.lastReceiveAt = now;
  if (c.keepAlive) c.keepaliveAt = now + c.keepaliveIdleMs;
  c.probes = c.persistAt === NEVER ? 0 : c.probes;
  const state = c.state;
  const seq = seg.seqNumber;

  if (state === 'SYN-SENT') return synSent(c, seg, opts, now);
  if (state === 'SYN-PENDING') {
    // The application is still deciding: absorb the client's SYN retransmissions (no SYN-ACK yet).
    if (seg.syn && !seg.ack && seq === c.irs) return 'tcp-syn-retransmit-pending';
    if (seg.rst && seq === c.rcvNxt) {
      c.close(undefined);
      return 'tcp-reset-pending';
    }
    return 'tcp-unexpected-pending';
  }
  if (state === 'SYN-RECEIVED' && seg.syn && !seg.ack && seq === c.irs) {
    // Our SYN-ACK was lost: answer the retransmitted SYN with it again (Linux does the same).
    sendSynAck(c, now);
    return 'tcp-syn-retransmit';
  }

  // RFC 7323 §5.3 PAWS: a segment with an older timestamp is a duplicate from an old incarnation.
  // Linux tolerates one tick (TCP_PAWS_WINDOW = 1) so slightly reordered segments survive; we match.
  if (c.tsOk && opts.hasTimestamp && !seg.rst) {
    if (
      seqSub(c.tsRecent, opts.tsVal) > PAWS_WINDOW &&
      now - c.tsRecentAt < PAWS_IDLE_MS &&
      !isDisorderedAck(c, seg, opts)
    ) {
      c.ackNow = true;
      c.ctx.wantOutput(c);
      return 'tcp-paws';
    }
  }

  // First check: sequence number acceptability (RFC 9293 §3.10.7.4, the four cases).
  const window = Math.max(0, seqSub(c.rcvAdv, c.rcvNxt));
  let payload = seg.payload;
  let fin = seg.fin;
  const segLength = payload.length + (seg.syn ? 1 : 0) + (fin ? 1 : 0);
  let acceptable: boolean;
  let dataRefused = false;
  if (segLength === 0) acceptable = window === 0 ? seq === c.rcvNxt : seqInWindow(seq, c.rcvNxt, window);
  else if (window === 0) {
    // A zero window accepts no data, but the ACK and RST of an in-sequence segment still count.
    acceptable = seq === c.rcvNxt;
    dataRefused = true;
  } else {
    acceptable =
      seqInWindow(seq, c.rcvNxt, window) || seqInWindow(seqAdd(seq, segLength - 1), c.rcvNxt, window);
  }
  if (!acceptable) {
    // RFC 2883 §4: report data we already had as a D-SACK block on the ACK this triggers.
    if (c.sackOk && payload.length > 0 && seqLe(seqAdd(seq, payload.length), c.rcvNxt)) {
      c.ooo.noteDuplicate(seq, seqAdd(seq, payload.length));
    }
    if (!seg.rst) {
      c.ackNow = true;
      c.ctx.wantOutput(c);
      // A retransmitted FIN in TIME-WAIT restarts the 2 MSL timer.
      if (state === 'TIME-WAIT' && fin) enterTimeWait(c, now);
    }
    return 'tcp-out-of-window';
  }

  // Second check: RST (RFC 5961 §3.2: exact match resets, in-window draws a challenge ACK).
  if (seg.rst) {
    if (seq !== c.rcvNxt) {
      challengeAck(c);
      return 'tcp-rst-challenged';
    }
    c.ctx.stats.tcpResetsReceived++;
    // SYN-RECEIVED from a passive open returns to LISTEN: for us the connection just goes.
    c.close(
      state === 'SYN-RECEIVED' || state === 'TIME-WAIT' || state === 'CLOSING' || state === 'LAST-ACK'
        ? undefined
        : 'ECONNRESET',
    );
    return undefined;
  }

  // Fourth check: a SYN in a synchronized state draws a challenge ACK (RFC 5961 §4.2).
  if (seg.syn) {
    challengeAck(c);
    return 'tcp-syn-challenged';
  }

  // Fifth check: the ACK field.
  if (!seg.ack) return 'tcp-no-ack';
  if (state === 'SYN-RECEIVED') {
    const ack = seg.ackNumber;
    if (!(seqGt(ack, c.sndUna) && seqLe(ack, c.sndMax))) return 'reset';
    establish(c, seg, opts, now);
  } else if (state === 'TIME-WAIT') {
    if (fin) {
      c.ackNow = true;
      c.ctx.wantOutput(c);
      enterTimeWait(c, now);
    }
    return undefined;
  } else {
    const verdict = processAck(c, seg, opts, now);
    if (verdict !== undefined) return verdict;
    if (c.state === 'CLOSED') return undefined;
  }

  // RFC 7323 §4.3: remember the peer's timestamp when this segment covers Last.ACK.sent. A
  // TS.Recent idle for 24 days is invalid (§5.5) and is replaced even by an older TSval, as
  // Linux's tcp_paws_check does; otherwise we would echo the stale value forever.
  if (
    c.tsOk &&
    opts.hasTimestamp &&
    seqLe(seq, c.lastAckSent) &&
    (seqGe(opts.tsVal, c.tsRecent) || now - c.tsRecentAt >= PAWS_IDLE_MS)
  ) {
    c.tsRecent = opts.tsVal;
    c.tsRecentAt = now;
  }

  // Seventh check: segment text, trimmed to the window.
  if (dataRefused) {
    payload = payload.subarray(0, 0);
    fin = false;
    c.ackNow = true;
    c.ctx.wantOutput(c);
  }
  let dataSeq = seq;
  const before = seqSub(c.rcvNxt, dataSeq);
  if (before > 0) {
    payload = payload.subarray(Math.min(before, payload.length));
    dataSeq = c.rcvNxt;
  }
  const room = Math.max(0, seqSub(c.rcvAdv, dataSeq));
  if (payload.length > room) {
    payload = payload.subarray(0, room);
    fin = false;
  }
  if (payload.length > 0) {
    if (canReceive(c.state)) receiveData(c, dataSeq, payload, opts, now);
    else return 'tcp-data-after-fin';
  }

  // Eighth check: FIN.
  if (fin && canReceive(c.state)) {
    const finSeq = seqAdd(dataSeq, payload.length);
    if (finSeq === c.rcvNxt) receiveFin(c, now);
    else if (seqGt(finSeq, c.rcvNxt)) c.peerFinSeq = finSeq;
  }
  return undefined;
}

/** RFC 9293 §3.10.7.3: SYN-SENT, waiting for the SYN-ACK of our active open. */
function synSent(c: TcpConnection, seg: TcpSegment, opts: TcpOptions, now: number): SegmentVerdict {
  const ack = seg.ackNumber;
  const ackOk = seg.ack && seqGt(ack, c.iss) && seqLe(ack, c.sndMax);
  if (seg.ack && !ackOk) return seg.rst ? 'tcp-bad-ack-syn-sent' : 'reset';
  if (seg.rst) {
    if (!ackOk) return 'tcp-rst-without-ack';
    c.close('ECONNREFUSED');
    return undefined;
  }
  if (!seg.syn) return 'tcp-no-syn';
  if (!ackOk) return 'tcp-simultaneous-open'; // not supported: we are a terminator
  c.irs = seg.seqNumber;
  c.rcvNxt = seqAdd(c.irs, 1);
  c.rcvAdv = c.rcvNxt;
  c.lastAckSent = c.rcvNxt;
  negotiate(c, opts, c.ctx.config);
  // RFC 7323 §2.2: the window of a SYN-ACK is not scaled.
  c.sndWnd = seg.window;
  c.maxSndWnd = seg.window;
  c.sndWl1 = seg.seqNumber;
  c.sndWl2 = ack;
  c.sndUna = ack;
  if (seqLt(c.sndNxt, ack)) c.sndNxt = ack;
  if (c.retransmits === 0) {
    const sample = rttSample(c, opts, now);
    if (sample !== undefined) c.rtt.sample(sample);
  } else c.rtt.resetForData(); // RFC 6298 §5.7: 3 s after a retransmitted SYN left no sample
  c.state = 'ESTABLISHED';
  c.retransmits = 0;
  c.rtxAt = NEVER;
  c.lastProgressAt = now;
  c.ackNow = true;
  c.ctx.wantOutput(c);
  c.ctx.reschedule(c);
  c.ctx.notify(c, TcpEvent.ESTABLISHED | TcpEvent.WRITABLE);
  c.ctx.stats.tcpEstablished++;
  return undefined;
}

/**
 * A reordered duplicate ACK is exempt from PAWS, as in Linux (tcp_disordered_ack): a pure ACK at
 * RCV.NXT acknowledging SND.UNA, with the window unchanged and a timestamp no older than one RTO.
 * Dropping it would only lose a duplicate-ACK signal that loss recovery counts on.
 */
function isDisorderedAck(c: TcpConnection, seg: TcpSegment, opts: TcpOptions): boolean {
  return (
    seg.ack &&
    !seg.syn &&
    !seg.fin &&
    seg.payload.length === 0 &&
    seg.seqNumber === c.rcvNxt &&
    seg.ackNumber === c.sndUna &&
    seg.window * 2 ** c.sndWscale === c.sndWnd &&
    seqSub(c.tsRecent, opts.tsVal) <= c.rtt.rtoMs
  );
}

/** SYN-RECEIVED → ESTABLISHED on an acceptable ACK of our SYN. */
function establish(c: TcpConnection, seg: TcpSegment, opts: TcpOptions, now: number): void {
  c.state = 'ESTABLISHED';
  c.ctx.releasePending(c);
  c.sndUna = seg.ackNumber;
  if (seqLt(c.sndNxt, c.sndUna)) c.sndNxt = c.sndUna;
  c.sndWnd = seg.window * 2 ** c.sndWscale;
  c.maxSndWnd = c.sndWnd;
  c.sndWl1 = seg.seqNumber;
  c.sndWl2 = seg.ackNumber;
  if (c.retransmits === 0) {
    const sample = rttSample(c, opts, now);
    if (sample !== undefined) c.rtt.sample(sample);
  } else c.rtt.resetForData(); // RFC 6298 §5.7: 3 s after a retransmitted SYN left no sample
  c.retransmits = 0;
  c.rtxAt = NEVER;
  c.lastProgressAt = now;
  c.ctx.reschedule(c);
  c.ctx.notify(c, TcpEvent.ESTABLISHED | TcpEvent.WRITABLE);
  c.ctx.stats.tcpEstablished++;
  if (c.sendBuffer.length > 0 || c.finSeq !== -1) c.ctx.wantOutput(c);
}

/** An RTT measurement from this ACK: the echoed timestamp (RFC 7323 §4.1), else Karn-safe timing. */
function rttSample(c: TcpConnection, opts: TcpOptions, now: number): number | undefined {
  if (c.tsOk && opts.hasTimestamp && opts.tsEcr !== 0) {
    const ms = seqSub(tsNow(c, now), opts.tsEcr);
    return ms >= 0 && ms < 600_000 ? Math.max(ms, 0.5) : undefined;
  }
  if (c.rttSeq !== -1 && seqGe(c.sndUna, c.rttSeq)) {
    c.rttSeq = -1;
    return Math.max(now - c.rttSentAt, 0.5);
  }
  return undefined;
}

/** Challenge ACK (RFC 5961 §3.2, §4.2, §5.2). */
function challengeAck(c: TcpConnection): void {
  // RFC 5961 §7: challenge ACKs are throttled, so a flood of forged RSTs or SYNs cannot turn the
  // stack into an ACK amplifier (Linux's tcp_challenge_ack_limit).
  if (!c.ctx.takeChallengeAck()) {
    c.ctx.stats.drop('tcp-challenge-ack-limited');
    return;
  }
  c.ackNow = true;
  c.ctx.wantOutput(c);
  c.ctx.stats.tcpChallengeAcks++;
}

/** ACK processing in a synchronized state; returns a drop reason when the segment stops here. */
function processAck(c: TcpConnection, seg: TcpSegment, opts: TcpOptions, now: number): SegmentVerdict {
  const ack = seg.ackNumber;
  if (seqGt(ack, c.sndMax)) {
    // RFC 9293: an ACK for something not yet sent is answered with an ACK and dropped.
    c.ackNow = true;
    c.ctx.wantOutput(c);
    return 'tcp-ack-unsent';
  }
  if (seqLt(ack, seqAdd(c.sndUna, -Math.max(c.maxSndWnd, 1)))) {
    // RFC 5961 §5.2: far too old an ACK is an attack or a stray: challenge it.
    challengeAck(c);
    return 'tcp-ack-too-old';
  }
  const seq = seg.seqNumber;
  const ctx = c.ctx;
  let newlySacked = 0;
  if (c.sackOk && opts.sackCount > 0) {
    newlySacked = c.scoreboard.update(c.sndUna, c.sndMax, opts.sackCount, opts.sackLeft, opts.sackRight);
  }
  // Window update (RFC 9293 §3.10.7.4, SND.WL1/SND.WL2 rule).
  const previousWindow = c.sndWnd;
  const advertised = seg.window * 2 ** c.sndWscale;
  if (seqLt(c.sndWl1, seq) || (c.sndWl1 === seq && seqLe(c.sndWl2, ack))) {
    c.sndWnd = advertised;
    c.sndWl1 = seq;
    c.sndWl2 = ack;
    if (advertised > c.maxSndWnd) c.maxSndWnd = advertised;
    if (advertised > previousWindow) ctx.wantOutput(c);
    if (advertised > 0 && c.persistAt !== NEVER) {
      c.persistAt = NEVER;
      c.probes = 0;
      ctx.reschedule(c);
    }
  }

  if (seqGt(ack, c.sndUna)) {
    const acked = seqSub(ack, c.sndUna);
    const finAcked = c.finSeq !== -1 && seqGt(ack, c.finSeq);
    const dataAcked = Math.min(acked, c.sendBuffer.length);
    const flight = seqSub(c.sndMax, c.sndUna);
    c.sendBuffer.consume(dataAcked);
    c.sndUna = ack;
    // After SND.UNA moved: the timed segment counts once this ACK covers it (RFC 6298 §3).
    const sample = rttSample(c, opts, now);
    if (seqLt(c.sndNxt, ack)) c.sndNxt = ack;
    if (seqLt(c.highRxt, ack)) c.highRxt = ack;
    if (sample !== undefined) c.rtt.sample(sample);
    if (c.inRecovery) {
      if (seqGe(ack, c.recoveryPoint)) {
        c.inRecovery = false;
        c.cc.onRecoveryEnd(now);
      } else if (!c.sackOk) {
        // RFC 6582 §3.2 step 5: a partial ACK retransmits the next unacknowledged segment.
        retransmit(c, now, c.sndUna, c.sndMss);
      }
    } else {
      c.cc.onAck(acked, now, sample, flight);
      // Send-buffer auto-tuning (Linux's tcp_sndbuf_expand): room for two congestion windows,
      // up to sendBufferMaxBytes, so the buffer never caps a long fat path.
      const want = Math.min(c.ctx.config.sendBufferMaxBytes, 2 * c.cc.cwnd);
      if (want > c.sendBuffer.capacity) {
        c.sendBuffer.capacity = want;
        ctx.notify(c, TcpEvent.WRITABLE);
      }
    }
    c.dupAcks = 0;
    c.retransmits = 0;
    c.lastProgressAt = now;
    c.rtxAt = c.sndUna === c.sndMax ? NEVER : now + c.rtt.rtoMs;
    ctx.reschedule(c);
    if (dataAcked > 0) ctx.notify(c, TcpEvent.WRITABLE);
    ctx.wantOutput(c);
    if (finAcked) ourFinAcked(c, now);
    if (c.state === 'CLOSED') return undefined;
  } else if (ack === c.sndUna && c.sndMax !== c.sndUna) {
    // RFC 5681 §2 duplicate ACK: no data, no SYN/FIN, same window, data outstanding; with SACK,
    // RFC 6675 §5 counts only ACKs that SACK new data.
    const duplicate =
      seg.payload.length === 0 && !seg.fin && advertised === previousWindow && (!c.sackOk || newlySacked > 0);
    if (duplicate) {
      c.dupAcks++;
      // Recovery sends on each duplicate ACK; before it, limited transmit may (RFC 3042).
      ctx.wantOutput(c);
    }
  }

  if (!c.inRecovery && c.sndMax !== c.sndUna) {
    const lost =
      c.dupAcks >= DUP_THRESH || (c.sackOk && newlySacked > 0 && c.scoreboard.isLost(c.sndUna, c.sndMss));
    if (lost && seqGe(c.sndUna, c.recoveryPoint)) enterRecovery(c, now);
  }
  return undefined;
}

/** Fast retransmit and the start of recovery (RFC 6675 §5 step 4, RFC 6582 §3.2 step 2). */
function enterRecovery(c: TcpConnection, now: number): void {
  const flight = seqSub(c.sndMax, c.sndUna);
  c.inRecovery = true;
  c.recoveryPoint = c.sndMax;
  c.highRxt = c.sndUna;
  c.cc.onCongestionEvent(now, flight);
  c.rttSeq = -1;
  const covered = retransmit(c, now, c.sndUna, c.sndMss);
  c.highRxt = seqMax(c.highRxt, seqAdd(c.sndUna, covered));
  c.rtxAt = now + c.rtt.rtoMs;
  c.ctx.reschedule(c);
  c.ctx.stats.tcpFastRetransmits++;
  c.ctx.wantOutput(c);
}

/** Our FIN was acknowledged: FIN-WAIT-1 → FIN-WAIT-2, CLOSING → TIME-WAIT, LAST-ACK → CLOSED. */
function ourFinAcked(c: TcpConnection, now: number): void {
  if (c.state === 'FIN-WAIT-1') {
    // No FIN-WAIT-2 timer while the owner may still read: Linux's tcp_fin_timeout applies only to
    // orphaned sockets; the relay's idle timeout bounds a half-closed connection instead.
    c.state = 'FIN-WAIT-2';
  } else if (c.state === 'CLOSING') enterTimeWait(c, now);
  else if (c.state === 'LAST-ACK') c.close(undefined);
}
