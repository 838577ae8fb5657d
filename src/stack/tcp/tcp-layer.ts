/**
 * The TCP layer: the connection table for every four-tuple, passive open for any address and
 * port with the owner's accept/refuse decision before the SYN-ACK, the bounds on connections and
 * half-open SYNs, owner events queued until input returns, output batched per flush, and every
 * connection's timers on one heap.
 */
import { sendReset, validateTcp } from '../closed.js';
import type { Icmp } from '../ip/icmp.js';
import type { IpOutput } from '../ip/output.js';
import { sendUnreachable } from '../ip/unreachable.js';
import type { TcpConfig } from '../options.js';
import type { RandomSource } from '../random.js';
import type { StackStats } from '../stats.js';
import type { IpPacketInfo, TransportHandler } from '../transport.js';
import { IpProtocol } from '../wire/ip-protocol.js';
import { seqGt } from '../wire/seq.js';
import { TcpFlags, TcpSegment } from '../wire/tcp.js';
import { TcpOptions } from '../wire/tcp-options.js';
import { BlockPool } from './block-pool.js';
import { TcpConnection, type TcpContext } from './connection.js';
import { segmentArrives } from './input.js';
import { negotiate, windowScaleFor } from './negotiate.js';
import { sendPending, sendSyn } from './sender.js';
import { NEVER, TcpEvent } from './state.js';
import { TimerHeap } from './timer-heap.js';
import { runTimers } from './timers.js';

const keyCodes: number[] = new Array(18).fill(0);

/** The table key of a four-tuple: 16-bit code units of the addresses and ports. */
export function tupleKey(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number): string {
  if (src.length === 4) {
    return String.fromCharCode(
      (src[0]! << 8) | src[1]!,
      (src[2]! << 8) | src[3]!,
      srcPort,
      (dst[0]! << 8) | dst[1]!,
      (dst[2]! << 8) | dst[3]!,
      dstPort,
    );
  }
  for (let i = 0; i < 8; i++) {
    keyCodes[i] = (src[2 * i]! << 8) | src[2 * i + 1]!;
    keyCodes[9 + i] = (dst[2 * i]! << 8) | dst[2 * i + 1]!;
  }
  keyCodes[8] = srcPort;
  keyCodes[17] = dstPort;
  return String.fromCharCode(...keyCodes);
}

/** Connection events for the owner: `(connection, TcpEvent bits)`. */
export type TcpEventHandler = (c: TcpConnection, events: number) => void;

/** Terminates TCP for every address and port. */
export class TcpLayer implements TransportHandler, TcpContext {
  /** Milliseconds of the current call into the layer. */
  now = 0;
  /** When false, every SYN is answered with RST (a host with nothing listening). */
  listening = false;
  private readonly table = new Map<string, TcpConnection>();
  private readonly pendingSet = new Set<TcpConnection>();
  private readonly events: TcpConnection[] = [];
  private readonly outputQueue: TcpConnection[] = [];
  private readonly heap = new TimerHeap<TcpConnection>();
  private readonly options = new TcpOptions();
  private readonly synHeader = new Uint8Array(20);
  private challengeTokens: number;
  private challengeRefilledAt = 0;
  /** TcpContext: the recycled receive blocks of every connection (config.pooledBlocks). */
  readonly blockPool: BlockPool;

  constructor(
    readonly config: TcpConfig,
    readonly output: IpOutput,
    readonly stats: StackStats,
    private readonly random: RandomSource,
    private readonly icmp: Icmp,
  ) {
    this.challengeTokens = config.challengeAcksPerSec;
    this.blockPool = new BlockPool(config.pooledBlocks, stats);
  }

  /** TcpContext: Destination Unreachable quoting the client's SYN (its ports and ISN, which Linux matches). */
  unreachable(c: TcpConnection, kind: 'net' | 'host'): void {
    const h = this.synHeader;
    h.fill(0);
    h[0] = c.remotePort >>> 8;
    h[1] = c.remotePort & 0xff;
    h[2] = c.localPort >>> 8;
    h[3] = c.localPort & 0xff;
    h[4] = c.irs >>> 24;
    h[5] = (c.irs >>> 16) & 0xff;
    h[6] = (c.irs >>> 8) & 0xff;
    h[7] = c.irs & 0xff;
    h[12] = 5 << 4;
    h[13] = TcpFlags.SYN;
    sendUnreachable(
      this.icmp,
      this.output,
      kind,
      c.remoteAddress,
      c.localAddress,
      IpProtocol.TCP,
      h,
      this.now,
    );
  }

  /** TcpContext: a token bucket of challengeAcksPerSec, refilled continuously. */
  takeChallengeAck(): boolean {
    const rate = this.config.challengeAcksPerSec;
    const elapsed = this.now - this.challengeRefilledAt;
    if (elapsed > 0) {
      this.challengeTokens = Math.min(rate, this.challengeTokens + (elapsed * rate) / 1000);
      this.challengeRefilledAt = this.now;
    }
    if (this.challengeTokens < 1) return false;
    this.challengeTokens -= 1;
    return true;
  }

  /** Connections in the table (every state but CLOSED). */
  get size(): number {
    return this.table.size;
  }

  /** Half-open connections (awaiting the decision or the handshake's last ACK). */
  get halfOpen(): number {
    return this.pendingSet.size;
  }

  /** Iterates the live connections (for shutdown and stats). */
  connections(): IterableIterator<TcpConnection> {
    return this.table.values();
  }

  /** TransportHandler: one TCP segment. */
  input(info: IpPacketInfo, payload: Uint8Array, now: number): string | undefined {
    this.now = now;
    const seg = new TcpSegment(payload);
    const opts = this.options;
    const bad = validateTcp(info, seg, payload.length, opts);
    if (bad !== undefined) return bad;
    const key = tupleKey(info.src, seg.srcPort, info.dst, seg.dstPort);
    const c = this.table.get(key);
    if (c !== undefined) {
      // RFC 6191 / Linux (tcp_timewait_state_process): a SYN for a four-tuple in TIME-WAIT with a
      // higher sequence number, or a newer timestamp, starts a new connection.
      const newer =
        seqGt(seg.seqNumber, c.rcvNxt) || (c.tsOk && opts.hasTimestamp && seqGt(opts.tsVal, c.tsRecent));
      if (c.state === 'TIME-WAIT' && seg.syn && !seg.ack && !seg.rst && newer) {
        c.close(undefined);
        return this.listen(info, seg, key, now);
      }
      const verdict = segmentArrives(c, seg, opts, now);
      if (verdict === 'reset') {
        sendReset(this.output, info, seg);
        this.stats.tcpResetsSent++;
        return 'tcp-bad-ack-syn-received';
      }
      return verdict;
    }
    if (!seg.syn || seg.ack || seg.rst || seg.fin) {
      // RFC 9293 §3.10.7.1: no connection; answer everything but a RST with a RST.
      if (!seg.rst) {
        sendReset(this.output, info, seg);
        this.stats.tcpResetsSent++;
      }
      return seg.syn ? 'tcp-bad-syn' : 'tcp-no-connection';
    }
    return this.listen(info, seg, key, now);
  }

  /** A SYN for a new four-tuple: a connection request in SYN-PENDING, or a refusal. */
  private listen(info: IpPacketInfo, seg: TcpSegment, key: string, now: number): string | undefined {
    if (!this.listening) {
      sendReset(this.output, info, seg);
      this.stats.tcpResetsSent++;
      return 'tcp-no-listener';
    }
    if (this.table.size >= this.config.maxConnections) return 'tcp-too-many-connections';
    if (this.pendingSet.size >= this.config.maxPendingSyns) return 'tcp-syn-backlog-full';
    const cfg = this.config;
    const opts = this.options;
    const c = new TcpConnection(
      this,
      info.dst.slice(),
      seg.dstPort,
      info.src.slice(),
      seg.srcPort,
      key,
      this.random(),
      seg.seqNumber,
      this.random(),
      now,
    );
    negotiate(c, opts, cfg);
    c.sndWnd = seg.window;
    c.maxSndWnd = seg.window;
    c.sndWl1 = seg.seqNumber;
    c.sndWl2 = c.iss;
    c.closeAt = now + cfg.synDecisionTimeoutMs;
    this.table.set(key, c);
    this.pendingSet.add(c);
    this.stats.tcpSynReceived++;
    this.stats.tcpOpen++;
    this.reschedule(c);
    this.notify(c, TcpEvent.SYN);
    return undefined;
  }

  /**
   * Active open (RFC 9293 §3.10.1): a SYN from `local:localPort` to `remote:remotePort`. The
   * stack is a terminator, so this serves tests and simulations that run it against itself.
   * Returns undefined when the four-tuple is taken or the table is full.
   */
  connect(
    local: Uint8Array,
    localPort: number,
    remote: Uint8Array,
    remotePort: number,
    now: number,
  ): TcpConnection | undefined {
    this.now = now;
    // Keys are built from the peer's point of view (its source first), as input() looks them up.
    const key = tupleKey(remote, remotePort, local, localPort);
    if (this.table.has(key) || this.table.size >= this.config.maxConnections) return undefined;
    const cfg = this.config;
    const c = new TcpConnection(
      this,
      local.slice(),
      localPort,
      remote.slice(),
      remotePort,
      key,
      this.random(),
      0,
      this.random(),
      now,
    );
    c.state = 'SYN-SENT';
    c.closeAt = NEVER;
    // Offer everything we support; the SYN-ACK decides (RFC 7323 §2.2, RFC 2018 §2).
    c.tsOk = cfg.timestamps;
    c.sackOk = cfg.sack;
    c.wsOk = cfg.windowScaling;
    if (c.wsOk) c.rcvWscale = windowScaleFor(cfg.recvBufferMaxBytes);
    this.table.set(key, c);
    this.stats.tcpOpen++;
    sendSyn(c, now);
    c.rtxAt = now + c.rtt.rtoMs;
    this.reschedule(c);
    return c;
  }

  /** TcpContext: queue events for the owner. */
  notify(c: TcpConnection, events: number): void {
    if (c.pendingEvents === 0) this.events.push(c);
    c.pendingEvents |= events;
  }

  /** Delivers queued events; handlers may call into connections (they are not inside input). */
  takeEvents(handler: TcpEventHandler): void {
    const events = this.events;
    for (let i = 0; i < events.length; i++) {
      const c = events[i]!;
      const bits = c.pendingEvents;
      c.pendingEvents = 0;
      if (bits !== 0) handler(c, bits);
    }
    events.length = 0;
  }

  /** True when events wait for `takeEvents`. */
  hasEvents(): boolean {
    return this.events.length > 0;
  }

  /** TcpContext: send for `c` at the next flush. */
  wantOutput(c: TcpConnection): void {
    if (c.outputQueued) return;
    c.outputQueued = true;
    this.outputQueue.push(c);
  }

  /** Sends everything connections have pending: once per batch of input or owner calls. */
  flush(now: number): void {
    this.now = now;
    const q = this.outputQueue;
    for (let i = 0; i < q.length; i++) {
      const c = q[i]!;
      c.outputQueued = false;
      sendPending(c, now);
      this.reschedule(c);
    }
    q.length = 0;
  }

  /** True when some connection has output pending (the runtime should flush). */
  hasOutput(): boolean {
    return this.outputQueue.length > 0;
  }

  /** TcpContext: the connection's earliest timer may be earlier now. */
  reschedule(c: TcpConnection): void {
    if (c.state === 'CLOSED') return;
    this.heap.schedule(c, c.nextDeadline());
  }

  /** Runs every timer due at `now`. */
  poll(now: number): void {
    this.now = now;
    for (let guard = 0; guard < 1_000_000; guard++) {
      const c = this.heap.popDue(now);
      if (c === undefined) break;
      if (c.state === 'CLOSED') continue;
      runTimers(c, now);
      this.reschedule(c);
    }
  }

  /** The earliest timer of any connection, or undefined. */
  nextDeadline(): number | undefined {
    const t = this.heap.peek();
    return t === undefined || t === NEVER ? undefined : t;
  }

  /** TcpContext: forget a closed connection. */
  remove(c: TcpConnection): void {
    if (this.table.get(c.key) === c) {
      this.table.delete(c.key);
      this.stats.tcpOpen--;
    }
    this.releasePending(c);
  }

  /** TcpContext: `c` no longer counts as half-open. */
  releasePending(c: TcpConnection): void {
    this.pendingSet.delete(c);
  }
}
