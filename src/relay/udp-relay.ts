/**
 * The UDP relay: joins every client UDP flow the runtime sees to one upstream association (SOCKS5
 * UDP ASSOCIATE or direct), opened on the flow's first datagram and re-opened on demand after it
 * dies. Every datagram of the flow goes to its own destination through the association, and every
 * reply comes back from whichever remote sent it (full cone). When the proxy has no UDP, DNS
 * (port 53) is carried over TCP through the TCP dialer and other datagrams are dropped. Its
 * options, counters and defaults are in udp-relay-types.ts.
 */
import { canonicalHost } from '../proxy/address.js';
import { DEFAULT_DIAL_TIMEOUT_MS, type Destination } from '../proxy/dialer.js';
import { DialError } from '../proxy/errors.js';
import { isUdpUnsupported } from '../proxy/socks5-udp.js';
import type { UdpAssociation, UdpDropReason, UdpEndpoint } from '../proxy/udp.js';
import { DnsOverTcp, DnsOverTcpError } from './dns-over-tcp.js';
import { LoopGuard } from './tcp-relay-policy.js';
import {
  DEFAULT_UDP_QUEUE_BYTES,
  DEFAULT_UDP_QUEUE_DATAGRAMS,
  DNS_PORT,
  newUdpRelayStats,
  type RelayUdpFlow,
  type UdpFlowSource,
  type UdpRelayOptions,
  type UdpRelayStats,
} from './udp-relay-types.js';

export {
  DEFAULT_UDP_QUEUE_BYTES,
  DEFAULT_UDP_QUEUE_DATAGRAMS,
  DNS_PORT,
  newUdpRelayStats,
  type RelayUdpFlow,
  type UdpFlowSource,
  type UdpLocalService,
  type UdpRelayOptions,
  type UdpRelayStats,
} from './udp-relay-types.js';

/** Destinations the flow sent to by name, kept per flow to present replies as from the fake address. */
const NAMED_PORTS_MAX = 256;
/** A repeated warning (same key) is logged at most once per this period. */
const LOG_EVERY_MS = 60_000;
/** Keys remembered by the warning rate limiter before it starts over. */
const LOG_KEYS_MAX = 1024;

/** A datagram waiting for its flow's association. */
interface Queued {
  readonly payload: Buffer;
  /** Where the client sent it. */
  readonly dst: UdpEndpoint;
  /** Where it goes (a name for a fake address). */
  readonly to: Destination;
}

/** The relay's state for one client flow. */
interface FlowState {
  readonly flow: RelayUdpFlow;
  association: UdpAssociation | undefined;
  associating: boolean;
  queue: Queued[];
  queuedBytes: number;
  dns: DnsOverTcp | undefined;
  closed: boolean;
  /** Port → fake address the flow sent to by name (replies from that port are shown from it). */
  named: Map<number, string> | undefined;
  /** Remote endpoints the flow sent to by address, when it also sends by name. */
  direct: Set<string> | undefined;
  /** Per-flow counters for the debug close line. */
  readonly openedAt: number;
  up: number;
  down: number;
}

/** An endpoint as a lookup key, addresses in canonical text. */
function endpointKey(host: string, port: number): string {
  return `${canonicalHost(host)}|${port}`;
}

/** Relays the runtime's UDP flows through a UdpDialer (and DNS over TCP through a Dialer). */
export class UdpRelay {
  /** Counters, updated live. */
  readonly stats: UdpRelayStats = newUdpRelayStats();
  private readonly flows = new Set<FlowState>();
  private readonly loopGuard: LoopGuard;
  private readonly dialTimeoutMs: number;
  private readonly mode: 'auto' | 'always' | 'never';
  private readonly queueDatagrams: number;
  private readonly queueBytes: number;
  private readonly logged = new Map<string, number>();
  /** Aborts the ASSOCIATE handshakes still running when the relay closes. */
  private readonly closing = new AbortController();
  private source: UdpFlowSource | undefined;
  /** Learned: the proxy refused ASSOCIATE as unsupported, so later flows skip it. */
  private noUdp = false;
  private isClosed = false;

  constructor(private readonly options: UdpRelayOptions) {
    this.loopGuard = new LoopGuard(options.loopGuard);
    this.dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.mode = options.dnsOverTcp ?? 'auto';
    this.queueDatagrams = options.queueDatagrams ?? DEFAULT_UDP_QUEUE_DATAGRAMS;
    this.queueBytes = options.queueBytes ?? DEFAULT_UDP_QUEUE_BYTES;
  }

  /** True when this relay has learned (or was told) that the proxy carries no UDP. */
  get udpUnavailable(): boolean {
    return this.noUdp || this.options.udpDialer === undefined;
  }

  /** Takes over the runtime's UDP flows (replacing any earlier handler). */
  attach(runtime: UdpFlowSource): void {
    this.source = runtime;
    runtime.onUdpFlow((flow) => this.accept(flow));
  }

  /** Detaches from the runtime and ends every flow and association. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closing.abort();
    this.source?.onUdpFlow(undefined);
    for (const state of [...this.flows]) {
      state.flow.close();
      this.flowClosed(state);
    }
  }

  /** Starts relaying one flow; its first datagram follows right after. */
  accept(flow: RelayUdpFlow): void {
    if (this.isClosed) {
      flow.close();
      return;
    }
    const state: FlowState = {
      flow,
      association: undefined,
      associating: false,
      queue: [],
      queuedBytes: 0,
      dns: undefined,
      closed: false,
      named: undefined,
      direct: undefined,
      openedAt: performance.now(),
      up: 0,
      down: 0,
    };
    this.options.log?.debug('udp open', { client: clientOf(state) });
    this.flows.add(state);
    this.stats.flowsOpen++;
    this.stats.flowsTotal++;
    flow.on('datagram', (payload, dst) => {
      this.stats.datagramsUp++;
      this.stats.bytesUp += payload.length;
      state.up += payload.length;
      this.route(state, payload, dst);
    });
    flow.on('close', (reason?: string) => this.flowClosed(state, reason ?? 'closed'));
  }

  private route(state: FlowState, payload: Buffer, dst: UdpEndpoint): void {
    if (state.closed) return;
    if (this.loopGuard.matches({ host: dst.address, port: dst.port })) {
      this.drop('loop');
      this.warnLimited(`loop|${dst.address}|${dst.port}`, 'UDP to the proxy itself dropped', dst);
      return;
    }
    const service = this.options.localService?.({ host: dst.address, port: dst.port });
    if (service !== undefined) {
      service(payload, (answer) => this.deliver(state, answer, dst));
      return;
    }
    const to = this.destinationOf(state, dst);
    if (to === undefined) {
      this.drop('fake-unmapped');
      state.flow.unreachable(dst);
      return;
    }
    this.forward(state, payload, dst, to);
  }

  /** Where a datagram to `dst` goes: resolveDestination's answer, remembering named ones for replies. */
  private destinationOf(state: FlowState, dst: UdpEndpoint): Destination | undefined {
    const asked: Destination = { host: dst.address, port: dst.port };
    const resolve = this.options.resolveDestination;
    if (resolve === undefined) return asked;
    const to = resolve(asked);
    if (to === undefined) return undefined;
    if (to.host !== asked.host) {
      state.named ??= new Map();
      if (state.named.size >= NAMED_PORTS_MAX && !state.named.has(dst.port)) state.named.clear();
      state.named.set(dst.port, dst.address);
    } else if (state.named !== undefined) {
      state.direct ??= new Set();
      if (state.direct.size >= NAMED_PORTS_MAX) state.direct.clear();
      state.direct.add(endpointKey(dst.address, dst.port));
    }
    return to;
  }

  /** A reply's source as the client expects it: the fake address it sent to, for a named destination. */
  private replySource(state: FlowState, from: UdpEndpoint): UdpEndpoint {
    const fake = state.named?.get(from.port);
    if (fake === undefined || state.direct?.has(endpointKey(from.address, from.port)) === true) return from;
    return { address: fake, port: from.port };
  }

  /** Sends a datagram to the client from `from`, counting it. */
  private deliver(state: FlowState, payload: Uint8Array, from: UdpEndpoint): void {
    if (state.closed) return;
    if (state.flow.send(payload, from)) {
      this.stats.datagramsDown++;
      this.stats.bytesDown += payload.length;
      state.down += payload.length;
    } else this.drop('reply-rejected');
  }

  private forward(state: FlowState, payload: Buffer, dst: UdpEndpoint, to: Destination): void {
    if (dst.port === DNS_PORT && this.dnsOverTcpFor()) {
      this.dnsQuery(state, payload, dst, to);
      return;
    }
    if (this.udpUnavailable) {
      this.drop('no-udp');
      this.warnLimited(`no-udp|${dst.address}|${dst.port}`, 'UDP dropped: the proxy has no UDP', dst);
      return;
    }
    const association = state.association;
    if (association !== undefined && !association.closed) {
      association.send(payload, to);
      return;
    }
    if (state.queue.length >= this.queueDatagrams || state.queuedBytes + payload.length > this.queueBytes) {
      this.drop('queue-full');
      return;
    }
    state.queue.push({ payload, dst, to });
    state.queuedBytes += payload.length;
    if (!state.associating) this.associate(state);
  }

  /** Whether a DNS datagram goes over TCP now. */
  private dnsOverTcpFor(): boolean {
    if (this.mode === 'always') return true;
    return this.mode === 'auto' && this.udpUnavailable;
  }

  private associate(state: FlowState): void {
    const udpDialer = this.options.udpDialer;
    if (udpDialer === undefined) return;
    state.associating = true;
    udpDialer.associate({ timeoutMs: this.dialTimeoutMs, signal: this.closing.signal }).then(
      (association) => {
        state.associating = false;
        if (state.closed || this.isClosed) {
          association.close();
          return;
        }
        this.stats.associations++;
        state.association = association;
        association.on('message', (payload: Buffer, from: UdpEndpoint) => {
          if (state.association !== association) return;
          this.deliver(state, payload, this.replySource(state, from));
        });
        association.on('drop', (reason: UdpDropReason) => this.drop(reason));
        association.on('close', (err?: Error) => {
          // The next datagram of the flow opens a new association.
          if (state.association === association) state.association = undefined;
          if (err !== undefined && !state.closed) {
            this.options.log?.debug('UDP association ended', { client: clientOf(state), error: err.message });
          }
        });
        for (const q of this.takeQueue(state)) association.send(q.payload, q.to);
      },
      (err: unknown) => {
        state.associating = false;
        const queued = this.takeQueue(state);
        if (state.closed || this.isClosed) return;
        if (isUdpUnsupported(err)) {
          if (!this.noUdp) {
            this.options.log?.warn('the proxy has no UDP: DNS goes over TCP, other UDP is dropped', {
              proxy: this.options.udpDialer?.name,
            });
          }
          this.noUdp = true;
          for (const q of queued) this.forward(state, q.payload, q.dst, q.to);
          return;
        }
        const message = err instanceof Error ? err.message : String(err);
        this.warnLimited('associate', 'UDP ASSOCIATE failed', undefined, message);
        for (const q of queued) {
          this.drop('associate-failed');
          state.flow.unreachable(q.dst);
        }
      },
    );
  }

  private dnsQuery(state: FlowState, payload: Buffer, dst: UdpEndpoint, to: Destination): void {
    state.dns ??= new DnsOverTcp({ dialer: this.options.dialer, dialTimeoutMs: this.dialTimeoutMs });
    this.stats.dnsOverTcp++;
    state.dns.query(to, payload).then(
      (answer) => this.deliver(state, answer, dst),
      (err: unknown) => {
        if (state.closed) return;
        if (err instanceof DialError) {
          this.drop('dns-dial-failed');
          this.warnLimited(`dns|${dst.address}`, 'DNS over TCP dial failed', dst, err.message);
          state.flow.unreachable(dst);
        } else if (err instanceof DnsOverTcpError) {
          this.drop(`dns-${err.code.slice('EDNS_'.length).toLowerCase()}`);
        } else this.drop('dns-failed');
      },
    );
  }

  private takeQueue(state: FlowState): Queued[] {
    const queued = state.queue;
    state.queue = [];
    state.queuedBytes = 0;
    return queued;
  }

  private flowClosed(state: FlowState, reason = 'relay-closed'): void {
    if (state.closed) return;
    state.closed = true;
    this.options.log?.debug('udp close', {
      client: clientOf(state),
      up: state.up,
      down: state.down,
      ms: Math.round(performance.now() - state.openedAt),
      reason,
    });
    this.flows.delete(state);
    this.stats.flowsOpen--;
    this.takeQueue(state);
    const association = state.association;
    state.association = undefined;
    association?.close();
    state.dns?.close();
  }

  private drop(reason: string): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
  }

  /** One warning per key per LOG_EVERY_MS. */
  private warnLimited(key: string, message: string, dst?: UdpEndpoint, error?: string): void {
    const log = this.options.log;
    if (log === undefined || !log.enabled('warn')) return;
    const now = performance.now();
    const last = this.logged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    if (this.logged.size >= LOG_KEYS_MAX) this.logged.clear();
    this.logged.set(key, now);
    const fields: Record<string, unknown> = {};
    if (dst !== undefined) fields.dst = endpointText(dst);
    if (error !== undefined) fields.error = error;
    log.warn(message, fields);
  }
}

function endpointText(e: UdpEndpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

function clientOf(state: FlowState): string {
  return endpointText({ address: state.flow.clientAddress, port: state.flow.clientPort });
}
