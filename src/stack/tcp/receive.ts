/**
 * The receive side of segment arrival (RFC 9293 §3.10.7.4, seventh and eighth checks): in-order
 * data into the receive buffer, out-of-order data into the queue, delayed ACKs, the peer's FIN,
 * and TIME-WAIT.
 */
import { seqAdd, seqGt, seqSub } from '../wire/seq.js';
import type { TcpOptions } from '../wire/tcp-options.js';
import type { TcpConnection } from './connection.js';
import { tsNow } from './sender.js';
import { NEVER, TcpEvent } from './state.js';

/** In-order data segments always ACKed at once when small (Linux's TCP_MAX_QUICKACKS). */
export const QUICK_ACK_SEGMENTS = 16;

/** In-order data goes to the receive buffer (then queued data it joins); the rest waits in the queue. */
export function receiveData(
  c: TcpConnection,
  seq: number,
  payload: Uint8Array,
  opts: TcpOptions,
  now: number,
): void {
  if (c.tsOk && opts.hasTimestamp && opts.tsEcr !== 0) {
    const ms = seqSub(tsNow(c, now), opts.tsEcr);
    if (ms >= 0 && ms < 600_000) c.rcvRttMs = c.rcvRttMs === 0 ? ms : (7 * c.rcvRttMs + ms) / 8;
  }
  if (seq !== c.rcvNxt) {
    // RFC 5681 §4.2: out-of-order data is acknowledged at once (a duplicate ACK carrying SACK).
    if (!c.ooo.insert(seq, payload)) c.ctx.stats.drop('tcp-out-of-order-full');
    c.ackNow = true;
    c.ctx.wantOutput(c);
    return;
  }
  const n = c.recvBuffer.write(payload);
  c.rcvNxt = seqAdd(c.rcvNxt, n);
  c.bytesReceived += n;
  if (c.ooo.ranges > 0) {
    // A hole was filled: drain what became contiguous and ACK at once (RFC 5681 §4.2).
    c.rcvNxt = c.ooo.drainInOrder(c.rcvNxt, (chunk) => {
      c.recvBuffer.write(chunk);
      c.bytesReceived += chunk.length;
    });
    c.ackNow = true;
  }
  if (c.peerFinSeq !== -1 && c.rcvNxt === c.peerFinSeq) receiveFin(c, now);
  c.ctx.notify(c, TcpEvent.READABLE);
  // RFC 9293 §3.8.6.3: ACK at least every second full-sized segment, else within the delay. A
  // segment under half an MSS is ACKed at once: its sender is likely a Nagle-ing writer waiting
  // for this ACK to send more. Not so in interactive mode once past the first QUICK_ACK_SEGMENTS
  // (Linux's quick-ACK count): there our answer is due shortly and carries the ACK, which spares a
  // device write per request-response exchange; a late answer ends interactive mode (timers.ts).
  // A segment longer than the MSS is a super-segment from an offloading kernel (GSO): it stands
  // for many full-sized segments, so it is ACKed at once too (Linux's "more than one full frame").
  const quick = c.dataSegmentsIn < QUICK_ACK_SEGMENTS;
  if (quick) c.dataSegmentsIn++;
  c.lastDataInAt = now;
  const small = payload.length < c.rcvMss / 2 && (quick || !c.interactive);
  if (++c.unackedSegments >= 2 || small || payload.length > c.rcvMss) c.ackNow = true;
  if (c.ackNow) c.ctx.wantOutput(c);
  else if (c.delackAt === NEVER) {
    c.delackAt = now + c.ctx.config.delayedAckMs;
    c.ctx.reschedule(c);
  }
}

/** The peer's FIN, in order: reads end after the buffer; the state moves on (RFC 9293 eighth check). */
export function receiveFin(c: TcpConnection, now: number): void {
  c.rcvNxt = seqAdd(c.rcvNxt, 1);
  c.peerFinReceived = true;
  c.peerFinSeq = -1;
  c.ooo.clear();
  c.ackNow = true;
  c.ctx.wantOutput(c);
  c.ctx.notify(c, TcpEvent.READABLE);
  switch (c.state) {
    case 'SYN-RECEIVED':
    case 'ESTABLISHED':
      c.state = 'CLOSE-WAIT';
      break;
    case 'FIN-WAIT-1':
      if (c.finSeq !== -1 && seqGt(c.sndUna, c.finSeq)) enterTimeWait(c, now);
      else c.state = 'CLOSING';
      break;
    case 'FIN-WAIT-2':
      enterTimeWait(c, now);
      break;
    default:
  }
}

/** TIME-WAIT: keep the four-tuple for the configured time, then forget it. */
export function enterTimeWait(c: TcpConnection, now: number): void {
  c.state = 'TIME-WAIT';
  c.rtxAt = c.persistAt = c.keepaliveAt = c.delackAt = NEVER;
  c.closeAt = now + c.ctx.config.timeWaitMs;
  c.sendBuffer.clear();
  c.ctx.reschedule(c);
}
