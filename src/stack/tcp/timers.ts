/**
 * The connection's timers, as data on the connection and run by the layer's single heap:
 * retransmission (RFC 6298 §5), persist (RFC 9293 §3.8.6.1), delayed ACK (§3.8.6.3), keepalive
 * (RFC 1122 §4.2.3.6), the user timeout (RFC 9293 §3.8.3 R2), TIME-WAIT, the SYN decision, and
 * the idle trim of the buffers' blocks (ours, not an RFC's).
 */
import { seqSub } from '../wire/seq.js';
import type { TcpConnection } from './connection.js';
import {
  armPersist,
  sendAbortReset,
  sendAck,
  sendPending,
  sendProbe,
  sendSyn,
  sendSynAck,
} from './sender.js';
import { NEVER } from './state.js';

/**
 * Quiet time (nothing sent or received, nothing buffered) after which a connection releases its
 * send and receive buffers' blocks. An idle connection then holds no buffer memory (a few KiB
 * each, times thousands of held connections); a busy one keeps its blocks, since every exchange
 * pushes the trim back. Linux's delayed-ACK timer likewise gives back a socket's
 * unused forward-allocated memory (sk_mem_reclaim).
 */
export const IDLE_TRIM_MS = 500;

/** Runs every timer of `c` that is due at `now`. */
export function runTimers(c: TcpConnection, now: number): void {
  if (c.closeAt <= now) {
    c.closeAt = NEVER;
    if (c.state === 'SYN-PENDING') c.ctx.stats.drop('tcp-syn-decision-timeout');
    c.close(undefined);
    return;
  }
  if (c.rtxAt <= now) {
    c.rtxAt = NEVER;
    retransmitTimeout(c, now);
    if (c.state === 'CLOSED') return;
  }
  if (c.persistAt <= now) {
    c.persistAt = NEVER;
    if (c.sndWnd === 0 && c.state !== 'TIME-WAIT') {
      if (now - c.lastReceiveAt >= c.ctx.config.userTimeoutMs) {
        // Probes unanswered for the user timeout: the peer is gone. Without this a vanished peer
        // that last offered a zero window would be probed forever (Linux's tcp_probe_timer aborts
        // too, after tcp_retries2 unanswered probes or the user timeout).
        sendAbortReset(c);
        c.ctx.stats.drop('tcp-persist-timeout');
        c.close('ETIMEDOUT');
        return;
      }
      sendProbe(c, now);
      c.probes++;
      armPersist(c, now);
    } else if (c.state !== 'TIME-WAIT') {
      // The window is open but smaller than sender SWS avoidance waits for: send what fits.
      sendPending(c, now, true);
    }
  }
  if (c.delackAt <= now) {
    c.delackAt = NEVER;
    if (c.state !== 'TIME-WAIT' && c.lastAckSent !== c.rcvNxt) {
      // No answer carried the ACK in time: not interactive after all (Linux leaves pingpong here).
      c.interactive = false;
      sendAck(c, now);
    }
  }
  if (c.keepaliveAt <= now) {
    c.keepaliveAt = NEVER;
    keepalive(c, now);
  }
  if (c.trimAt <= now) {
    c.trimAt = NEVER;
    idleTrim(c, now);
  }
}

/**
 * Releases the empty buffers' blocks once the connection has been quiet for IDLE_TRIM_MS: both
 * buffers empty and nothing in flight. Otherwise it looks again IDLE_TRIM_MS after the last
 * activity, while some block is still held (the owner re-arms it when it writes or reads again).
 */
function idleTrim(c: TcpConnection, now: number): void {
  const send = c.sendBuffer;
  const recv = c.recvBuffer;
  if (send.storageBytes === 0 && recv.storageBytes === 0) return;
  const quietAt = Math.max(c.lastReceiveAt, c.lastSendAt) + IDLE_TRIM_MS;
  if (quietAt <= now && send.length === 0 && recv.length === 0 && c.sndUna === c.sndMax) {
    send.trim();
    recv.trim();
    return;
  }
  c.trimAt = quietAt > now ? quietAt : now + IDLE_TRIM_MS;
}

/** RFC 6298 §5.4-5.7: back off, collapse the window, and resend from SND.UNA (go-back-N). */
function retransmitTimeout(c: TcpConnection, now: number): void {
  const cfg = c.ctx.config;
  if (c.state === 'SYN-RECEIVED' || c.state === 'SYN-SENT') {
    const active = c.state === 'SYN-SENT';
    if (c.retransmits >= cfg.synAckRetries) {
      c.ctx.stats.drop(active ? 'tcp-syn-timeout' : 'tcp-synack-timeout');
      c.close(active ? 'ETIMEDOUT' : undefined);
      return;
    }
    c.retransmits++;
    c.rtt.backoff();
    if (active) sendSyn(c, now);
    else sendSynAck(c, now);
    c.rtxAt = now + c.rtt.rtoMs;
    return;
  }
  if (c.sndUna === c.sndMax) return;
  if (now - c.lastProgressAt >= cfg.userTimeoutMs) {
    // RFC 9293 §3.8.3: past R2 (the user timeout) the connection is aborted.
    sendAbortReset(c);
    c.ctx.stats.drop('tcp-user-timeout');
    c.close('ETIMEDOUT');
    return;
  }
  c.retransmits++;
  c.rtt.backoff();
  c.cc.onRetransmitTimeout(now, seqSub(c.sndMax, c.sndUna));
  c.ctx.stats.tcpTimeouts++;
  // We forget SACK state on RTO and resend from SND.UNA (RFC 2018 §8 allows it). Linux keeps
  // SACKed marks unless the receiver reneged, sparing resends of SACKed data: a later refinement.
  c.scoreboard.reset();
  c.inRecovery = false;
  c.dupAcks = 0;
  c.rttSeq = -1;
  c.sndNxt = c.sndUna;
  c.highRxt = c.sndUna;
  // RFC 6675 §5.1 (RFC 6582 §4 without SACK): no new recovery until everything sent before the
  // timeout is acknowledged; the go-back-N resend repairs those losses (Linux's Loss state).
  c.recoveryPoint = c.sndMax;
  // The next timeout no later than the user timeout, so the abort comes on time rather than up to
  // a backed-off RTO late (Linux's tcp_clamp_rto_to_user_timeout).
  c.rtxAt = Math.min(now + c.rtt.rtoMs, c.lastProgressAt + cfg.userTimeoutMs);
  c.ctx.wantOutput(c);
}

/** RFC 1122 §4.2.3.6 keepalive: probe when idle, reset after the configured unanswered probes. */
function keepalive(c: TcpConnection, now: number): void {
  if (!c.keepAlive || c.state === 'TIME-WAIT' || c.state === 'SYN-RECEIVED' || c.state === 'SYN-PENDING')
    return;
  const cfg = c.ctx.config;
  // Linux's tcp_keepalive_timer: a connection with data in flight or queued is the retransmission
  // and persist timers' business (the user timeout bounds it); look again after the idle time.
  if (c.sndUna !== c.sndMax || c.sendBuffer.length > 0) {
    c.keepaliveAt = now + c.keepaliveIdleMs;
    return;
  }
  if (c.probes >= cfg.keepaliveProbes) {
    sendAbortReset(c);
    c.ctx.stats.drop('tcp-keepalive-timeout');
    c.close('ETIMEDOUT');
    return;
  }
  sendProbe(c, now);
  c.probes++;
  c.keepaliveAt = now + cfg.keepaliveIntervalMs;
}
