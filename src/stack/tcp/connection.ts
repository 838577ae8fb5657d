/**
 * One TCP connection (the TCB of RFC 9293 §3.3.1) and the operations its owner calls: accept or
 * reject at SYN time, write, read, shutdown (FIN), abort (RST), Nagle and keepalive switches.
 *
 * Segment arrival is in input.ts, segment output in sender.ts, timers in timers.ts: functions over
 * this object, as gVisor splits its endpoint. Owner calls never emit packets directly: they mark
 * the connection for output, and the layer sends at `flush`, once per batch.
 */

import type { IpOutput } from '../ip/output.js';
import type { TcpConfig } from '../options.js';
import type { StackStats } from '../stats.js';
import { TcpFlags } from '../wire/tcp.js';
import type { BlockPool } from './block-pool.js';
import { createCongestionControl } from './congestion/index.js';
import type { CongestionControl } from './congestion/types.js';
import { OutOfOrderQueue } from './ooo-queue.js';
import { RecvBuffer } from './recv-buffer.js';
import { RttEstimator } from './rtt.js';
import { SackScoreboard } from './sack-scoreboard.js';
import { SendBuffer } from './send-buffer.js';
import { sendAbortReset, sendSegment, sendSynAck, windowUpdateAfterRead } from './sender.js';
import { isSynchronized, NEVER, type TcpErrorCode, TcpEvent, type TcpState } from './state.js';
import { IDLE_TRIM_MS } from './timers.js';

/** What a connection needs from its layer. */
export interface TcpContext {
  readonly config: TcpConfig;
  /** Where full-size receive blocks come from and go back to (absent: plain allocation). */
  readonly blockPool?: BlockPool;
  readonly output: IpOutput;
  readonly stats: StackStats;
  /** Queue `events` (TcpEvent bits) for the owner. */
  notify(c: TcpConnection, events: number): void;
  /** Ask for `sendPending` at the next flush. */
  wantOutput(c: TcpConnection): void;
  /** The connection's earliest timer changed. */
  reschedule(c: TcpConnection): void;
  /** The connection reached CLOSED: forget it. */
  remove(c: TcpConnection): void;
  /** The connection left the half-open states (it no longer counts against maxPendingSyns). */
  releasePending(c: TcpConnection): void;
  /** Takes one challenge ACK from the layer-wide budget (RFC 5961 §7); false when spent. */
  takeChallengeAck(): boolean;
  /** Sends the client ICMP Destination Unreachable about the SYN of `c`. */
  unreachable(c: TcpConnection, kind: 'net' | 'host'): void;
  /** Milliseconds of the current call (input, poll, flush or an owner call). */
  readonly now: number;
}

/** How a connection request is refused; see `TcpConnection.reject`. */
export type TcpRejectHow = 'rst' | 'drop' | 'net-unreachable' | 'host-unreachable';

/** A TCP connection terminated by the stack for one four-tuple. */
export class TcpConnection {
  state: TcpState = 'SYN-PENDING';
  /** Events not yet delivered to the owner (TcpEvent bits). */
  pendingEvents = 0;
  /** In the layer's output queue for the next flush. */
  outputQueued = false;
  /** Why the connection ended, when it did not end cleanly. */
  error: TcpErrorCode | undefined;
  /** Free for the owner (the runtime keeps its socket object here). */
  owner: unknown;

  // Send sequence space (RFC 9293 §3.3.1). sndMax is the highest sequence sent (SND.NXT before a
  // retransmission timeout rewound sndNxt).
  iss: number;
  sndUna: number;
  sndNxt: number;
  sndMax: number;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  maxSndWnd = 0;
  /** Shift applied to the peer's window field (RFC 7323 §2.3). */
  sndWscale = 0;
  /** Shift we apply to our window field. */
  rcvWscale = 0;
  /** Both SYNs carried window scale (RFC 7323 §2.2). */
  wsOk = false;

  // Receive sequence space.
  irs: number;
  rcvNxt: number;
  /** Right edge of the window we advertised: it never moves left (RFC 9293 §3.8.6.2.2). */
  rcvAdv: number;
  /** rcvNxt when we last sent an ACK. */
  lastAckSent: number;

  // Negotiated options.
  /** MSS we send with: the peer's MSS less options we always carry. */
  sndMss: number;
  /** MSS we advertised (the largest segment we accept without options). */
  rcvMss: number;
  sackOk = false;
  tsOk = false;
  /** RFC 7323 TS.Recent and the time it was set (for the 24-day PAWS rule, §5.5). */
  tsRecent = 0;
  tsRecentAt = 0;
  /** Random per-connection offset of our TSval clock (RFC 7323 §5.4). */
  readonly tsOffset: number;

  // Buffers.
  readonly sendBuffer: SendBuffer;
  readonly recvBuffer: RecvBuffer;
  /** The receive buffer's configured size (its capacity also holds scale-rounding slack). */
  recvBufferSize: number;
  readonly ooo: OutOfOrderQueue;
  readonly scoreboard: SackScoreboard;

  // Closing. finSeq is the sequence of our FIN once the owner ended its side (-1 before).
  finSeq = -1;
  /** The peer's FIN has been received in order: reads end after the buffer drains. */
  peerFinReceived = false;
  /** The peer's FIN arrived ahead of missing data: its sequence, or -1. */
  peerFinSeq = -1;

  // Timers, as absolute times (NEVER when not armed).
  rtxAt = NEVER;
  persistAt = NEVER;
  delackAt = NEVER;
  keepaliveAt = NEVER;
  /** TIME-WAIT end, FIN-WAIT-2 timeout, or the SYN decision deadline. */
  closeAt = NEVER;
  /** Idle trim: when to release the buffers' blocks if the connection has stayed quiet (see timers.ts). */
  trimAt = NEVER;
  /** The time the layer's heap holds for this connection. */
  scheduledAt = NEVER;

  // Retransmission and congestion control.
  readonly rtt: RttEstimator;
  readonly cc: CongestionControl;
  /** Retransmissions of the current segment (SYN-ACK, data or FIN) since the last progress. */
  retransmits = 0;
  /** Zero-window probes / keepalive probes sent without an answer. */
  probes = 0;
  /** Last time the peer acknowledged new data (or the connection began): user timeout base. */
  lastProgressAt: number;
  /** Last time anything arrived from the peer (keepalive idle base). */
  lastReceiveAt: number;
  /** Last time we sent data (for restart after idle, RFC 5681 §4.1). */
  lastSendAt: number;
  /** Round-trip timing without timestamps (Karn's rule): the sequence timed and when, -1 if none. */
  rttSeq = -1;
  rttSentAt = 0;
  dupAcks = 0;
  inRecovery = false;
  /**
   * RFC 6675 RecoveryPoint / RFC 6582 "recover": the highest sequence sent when loss was detected
   * or the retransmission timer expired; no fast recovery starts before SND.UNA reaches it.
   */
  recoveryPoint: number;
  /** RFC 6675 HighRxt: the highest sequence retransmitted in this recovery. */
  highRxt = 0;

  // Receiver state.
  /** An ACK must go out at the next flush (out-of-order data, a hole filled, FIN, window update). */
  ackNow = false;
  /** Full-sized segments received since our last ACK (ACK every second one, RFC 9293 §3.8.6.3). */
  unackedSegments = 0;
  /** In-order data segments received, counted up to QUICK_ACK_SEGMENTS (quick-ACK mode until then). */
  dataSegmentsIn = 0;
  /** When in-order data last arrived (ms). */
  lastDataInAt = Number.NEGATIVE_INFINITY;
  /**
   * Interactive (Linux's "pingpong") mode: we answered the peer's data with data of our own within
   * the delayed-ACK time, so a small segment waits for the answer to carry its ACK. Left when the
   * delayed-ACK timer has to send a pure ACK after all.
   */
  interactive = false;
  /** Receive-buffer auto-tuning: bytes read by the owner at the start of the current RTT. */
  tuneReadMark = 0;
  tuneAt = 0;
  /** Receiver-side RTT estimate from echoed timestamps, for auto-tuning (ms; 0 before a sample). */
  rcvRttMs = 0;

  // Owner switches.
  noDelay = false;
  keepAlive = false;
  keepaliveIdleMs: number;

  /** Segments and bytes, for the owner's bytesRead/bytesWritten. */
  bytesReceived = 0;
  bytesSent = 0;

  constructor(
    readonly ctx: TcpContext,
    /** The address we impersonate (the SYN's destination), a copy. */
    readonly localAddress: Uint8Array,
    readonly localPort: number,
    /** The peer (the SYN's source), a copy. */
    readonly remoteAddress: Uint8Array,
    readonly remotePort: number,
    /** The four-tuple key in the layer's table. */
    readonly key: string,
    iss: number,
    irs: number,
    tsOffset: number,
    now: number,
  ) {
    const cfg = ctx.config;
    this.iss = iss;
    this.sndUna = iss;
    this.sndNxt = iss;
    this.sndMax = iss;
    this.recoveryPoint = iss;
    this.irs = irs;
    this.rcvNxt = (irs + 1) >>> 0;
    this.rcvAdv = this.rcvNxt;
    this.lastAckSent = this.rcvNxt;
    this.tsOffset = tsOffset >>> 0;
    const headers = localAddress.length === 4 ? 40 : 60;
    this.rcvMss = Math.max(ctx.output.mtu - headers, 64);
    this.sndMss = localAddress.length === 4 ? 536 : 1220;
    this.sendBuffer = new SendBuffer(cfg.sendBufferBytes, ctx.blockPool);
    this.recvBufferSize = cfg.recvBufferBytes;
    this.recvBuffer = new RecvBuffer(cfg.recvBufferBytes, ctx.blockPool);
    this.ooo = new OutOfOrderQueue(cfg.recvBufferMaxBytes, cfg.maxOutOfOrderSegments);
    this.scoreboard = new SackScoreboard();
    this.rtt = new RttEstimator({
      initialRtoMs: cfg.initialRtoMs,
      minRtoMs: cfg.minRtoMs,
      maxRtoMs: cfg.maxRtoMs,
    });
    this.cc = createCongestionControl(cfg.congestionControl, this.sndMss, now);
    this.lastProgressAt = now;
    this.lastReceiveAt = now;
    this.lastSendAt = now;
    this.keepaliveIdleMs = cfg.keepaliveIdleMs;
  }

  /**
   * Accepts the pending SYN: the SYN-ACK goes out now (the owner decided, e.g. its upstream dial
   * succeeded). Only in SYN-PENDING.
   */
  accept(): void {
    if (this.state !== 'SYN-PENDING') return;
    const now = this.ctx.now;
    this.state = 'SYN-RECEIVED';
    this.closeAt = NEVER;
    sendSynAck(this, now);
    this.rtxAt = now + this.rtt.rtoMs;
    this.ctx.reschedule(this);
  }

  /**
   * Refuses the pending SYN. 'rst' answers like a closed port (RST, the client sees ECONNREFUSED);
   * 'drop' stays silent (the client times out, as behind a firewall); 'net-unreachable' and
   * 'host-unreachable' answer with ICMP Destination Unreachable about the SYN, which a client's
   * connect() reports as ENETUNREACH / EHOSTUNREACH. Only in SYN-PENDING.
   */
  reject(how: TcpRejectHow = 'rst'): void {
    if (this.state !== 'SYN-PENDING') return;
    if (how === 'rst') {
      sendSegment(this, this.ctx.now, 0, TcpFlags.RST | TcpFlags.ACK, 0, 0);
      this.ctx.stats.tcpResetsSent++;
    } else if (how === 'net-unreachable') {
      this.ctx.unreachable(this, 'net');
    } else if (how === 'host-unreachable') {
      this.ctx.unreachable(this, 'host');
    }
    this.close(undefined);
  }

  /** Bytes the owner can read now. */
  get readableLength(): number {
    return this.recvBuffer.length;
  }

  /** True once the peer's FIN was received and every byte before it was read. */
  get readEnded(): boolean {
    return this.peerFinReceived && this.recvBuffer.length === 0;
  }

  /** Bytes the owner may write now without waiting. */
  get writableLength(): number {
    return this.finSeq === -1 && this.canSend() ? this.sendBuffer.free : 0;
  }

  /** Bytes written and not yet acknowledged. */
  get unacknowledged(): number {
    return this.sendBuffer.length;
  }

  /** True while the owner may still write (no FIN queued, not closed). */
  canSend(): boolean {
    const s = this.state;
    return (
      s === 'SYN-RECEIVED' ||
      s === 'ESTABLISHED' ||
      s === 'CLOSE-WAIT' ||
      s === 'SYN-PENDING' ||
      s === 'SYN-SENT'
    );
  }

  /** Queues `data` for sending; returns how many bytes were taken (0 when the buffer is full). */
  write(data: Uint8Array, owned: boolean): number {
    if (this.finSeq !== -1 || !this.canSend() || data.length === 0) return 0;
    const n = this.sendBuffer.append(data, owned);
    if (n > 0 && isSynchronized(this.state)) this.ctx.wantOutput(this);
    if (this.trimAt === NEVER) this.armIdleTrim();
    return n;
  }

  /** Takes up to `max` received bytes; the window reopens as the buffer drains. */
  read(max: number): Uint8Array | undefined {
    const chunk = this.recvBuffer.read(max);
    if (chunk === undefined) return undefined;
    if (this.state !== 'CLOSED' && this.state !== 'TIME-WAIT') {
      this.autotune(this.ctx.now);
      windowUpdateAfterRead(this);
      if (this.trimAt === NEVER) this.armIdleTrim();
    }
    return chunk;
  }

  /**
   * The owner is done with `chunk`, a view `read` returned: its bytes may be reused (block-pool.ts).
   * Optional (chunks never released are simply not reused); at most once per chunk, and the
   * chunk must not be touched afterwards.
   */
  release(chunk: Uint8Array): void {
    this.ctx.blockPool?.release(chunk);
  }

  /** `chunk` is a view `read` returned whose release would let its block be reused. */
  releasable(chunk: Uint8Array): boolean {
    return this.ctx.blockPool?.isLent(chunk) === true;
  }

  /**
   * Arms the idle trim after the owner wrote or read, the only ways our buffers gain blocks that
   * stay (a received block stays only until read): see `idleTrim` in timers.ts.
   */
  private armIdleTrim(): void {
    this.trimAt = this.ctx.now + IDLE_TRIM_MS;
    this.ctx.reschedule(this);
  }

  /**
   * Receive-buffer auto-tuning (Linux's tcp_rcv_space_adjust, the "dynamic right-sizing" idea):
   * once per receiver RTT, grow the buffer to twice what the owner read in that RTT, up to
   * recvBufferMaxBytes, so the window follows the bandwidth-delay product. A slow reader reads
   * little and never grows it.
   */
  private autotune(now: number): void {
    const rtt = this.rcvRttMs > 0 ? this.rcvRttMs : (this.rtt.srttMs ?? 0);
    if (rtt <= 0 || now - this.tuneAt < rtt) return;
    const read = this.recvBuffer.totalRead;
    const copied = read - this.tuneReadMark;
    this.tuneReadMark = read;
    this.tuneAt = now;
    const want = Math.min(this.ctx.config.recvBufferMaxBytes, 2 * copied);
    if (want > this.recvBufferSize) {
      this.recvBufferSize = want;
      this.recvBuffer.capacity = want;
    }
  }

  /** Ends our side: a FIN follows the queued data (RFC 9293 §3.10.4 CLOSE). */
  shutdown(): void {
    if (this.finSeq !== -1) return;
    switch (this.state) {
      case 'SYN-PENDING':
        return this.abort();
      case 'SYN-SENT':
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
      case 'CLOSE-WAIT': {
        const handshaking = this.state === 'SYN-RECEIVED' || this.state === 'SYN-SENT';
        // While the SYN is unacknowledged, data starts at ISS + 1.
        this.finSeq = (this.sndUna + this.sendBuffer.length + (handshaking ? 1 : 0)) >>> 0;
        if (!handshaking) this.ctx.wantOutput(this);
        return;
      }
      default:
    }
  }

  /** Aborts: RST to the peer unless it never saw us, then CLOSED (RFC 9293 §3.10.5 ABORT). */
  abort(): void {
    if (this.state === 'CLOSED') return;
    // RFC 9293 §3.10.5: no RST from SYN-SENT (the peer never saw a connection) or TIME-WAIT.
    const s = this.state;
    if (s !== 'SYN-PENDING' && s !== 'SYN-SENT' && s !== 'TIME-WAIT') sendAbortReset(this);
    this.close(undefined);
  }

  /** Disables (true) or enables (false) Nagle's algorithm (RFC 9293 §3.7.4). */
  setNoDelay(noDelay: boolean): void {
    this.noDelay = noDelay;
    if (noDelay) this.ctx.wantOutput(this);
  }

  /** Enables keepalive probes after `idleMs` without traffic (RFC 1122 §4.2.3.6). */
  setKeepAlive(enable: boolean, idleMs?: number): void {
    this.keepAlive = enable;
    if (idleMs !== undefined && idleMs > 0) this.keepaliveIdleMs = idleMs;
    this.keepaliveAt = enable ? this.lastReceiveAt + this.keepaliveIdleMs : NEVER;
    this.probes = 0;
    this.ctx.reschedule(this);
  }

  /** The earliest armed timer. */
  nextDeadline(): number {
    return Math.min(this.rtxAt, this.persistAt, this.delackAt, this.keepaliveAt, this.closeAt, this.trimAt);
  }

  /** Moves to CLOSED, releasing buffers and telling the owner (with `error` when abnormal). */
  close(error: TcpErrorCode | undefined): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.error = error;
    this.rtxAt = this.persistAt = this.delackAt = this.keepaliveAt = this.closeAt = this.trimAt = NEVER;
    this.sendBuffer.clear();
    this.ooo.clear();
    this.scoreboard.reset();
    this.ctx.remove(this);
    this.ctx.notify(this, TcpEvent.CLOSED | TcpEvent.READABLE | TcpEvent.WRITABLE);
  }
}
