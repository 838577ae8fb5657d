/**
 * The engine behind the `tun2socks` command, for embedding: a stack on a device (TUN or in
 * memory), TCP connections relayed through a Dialer, UDP flows through a UdpDialer (or DNS over
 * TCP when the proxy has no UDP), with the proxy's own address guarded against routing loops.
 * Give it a proxy URL, or plug in your own dialers.
 */
import { lookup } from 'node:dns/promises';
import type { BusyPollStats } from './busy-poll.js';
import { createDnsServer, type DnsOptions, type DnsServer, type DnsStats } from './dns/index.js';
import type { Logger } from './log.js';
import type { Destination, Dialer } from './proxy/dialer.js';
import { createDialer } from './proxy/index.js';
import { setUpstreamSocketOptions, type UpstreamSocketOptions } from './proxy/socket-options.js';
import { createUdpDialer, type UdpDialer } from './proxy/udp.js';
import { type ProxyConfig, parseProxyUrl, redactProxyUrl } from './proxy/url.js';
import { type TcpAcceptMode, TcpRelay, type TcpRelayOptions, type TcpRelayStats } from './relay/tcp-relay.js';
import { newUdpRelayStats, UdpRelay, type UdpRelayOptions, type UdpRelayStats } from './relay/udp-relay.js';
import { type RuntimeOptions, StackRuntime } from './runtime.js';
import type { Device } from './tun/device.js';

/** Options of a Tun2Socks engine; everything but the device has a default. */
export interface Tun2SocksOptions {
  /** The device to terminate traffic on: `openTun(...)`, a MemoryDevice, a PcapDevice wrapper. */
  readonly device: Device;
  /** The upstream as a URL or a parsed config. Default 'direct://'. */
  readonly proxy?: string | ProxyConfig;
  /** A custom TCP dialer, used instead of the proxy's. */
  readonly dialer?: Dialer;
  /**
   * SOCKS5 proxies: connections opened and greeted ahead of the next dial, so a dial sends its
   * CONNECT at once (src/proxy/socks5-spares.ts). Default 1; 0 for none.
   */
  readonly socks5Spares?: number;
  /** A custom UDP dialer, used instead of the proxy's; null means "no UDP" (DNS over TCP). */
  readonly udpDialer?: UdpDialer | null;
  /** Logger; default silent. */
  readonly log?: Logger;
  /** Upstream connect timeout. Default 5 s. */
  readonly dialTimeoutMs?: number;
  /** A relayed TCP connection idle this long is reset. Default 300 s. */
  readonly tcpIdleTimeoutMs?: number;
  /** A half-closed TCP connection idle this long is closed. Default 60 s. */
  readonly tcpHalfClosedTimeoutMs?: number;
  /** When a SYN is answered relative to its upstream dial (see TcpAcceptMode). Default 'auto'. */
  readonly tcpAccept?: TcpAcceptMode;
  /** DNS over TCP through the proxy: 'auto' (default: when the proxy has no UDP), 'always', 'never'. */
  readonly dnsOverTcp?: 'auto' | 'always' | 'never';
  /**
   * DNS handling (src/dns): 'fake-ip' answers A/AAAA sent to the stack's DNS addresses with fake
   * addresses and relays connections to them by name; 'remote' forwards every query through the
   * proxy; 'direct' (the default when absent) leaves DNS alone. `hijack` serves port 53 of every
   * address. Defaults: addresses ['198.18.0.2', 'fdfe:dcba:9876::2'], fakeRanges
   * ['198.19.0.0/16', 'fdfe:dcba:9877::/64'], upstream 1.1.1.1:53 (through the proxy),
   * ttlSeconds 60, maxNames 65536 per family.
   */
  readonly dns?: DnsOptions;
  /** Stack options (MTU, TCP buffers, UDP idle timeout and flow bound, ...) and randomness. */
  readonly runtime?: RuntimeOptions;
  /** SO_MARK / SO_BINDTODEVICE on every upstream socket (process-wide, see socket-options.ts). */
  readonly upstream?: UpstreamSocketOptions;
}

/** Every counter of an engine, as plain JSON. */
export interface Tun2SocksStats {
  readonly tcp: TcpRelayStats;
  readonly udp: UdpRelayStats;
  readonly stack: Record<string, number | Record<string, number>>;
  readonly device: Readonly<Record<string, number>>;
  /** Busy polling: loop turns spun, spins that found nothing, periods capped (busy-poll.ts). */
  readonly busyPoll: Readonly<BusyPollStats>;
  /** DNS counters; absent when DNS is 'direct'. */
  readonly dns?: DnsStats;
  /** The dialer's own counters (SOCKS5 spares: ready, taken, opened, dropped); absent when it has none. */
  readonly dialer?: Readonly<Record<string, number>>;
}

/** The proxy's endpoints to refuse through the TUN: its address (resolved if a name) and port. */
async function proxyEndpoints(config: ProxyConfig, log: Logger | undefined): Promise<Destination[]> {
  if (config.kind === 'direct' || config.kind === 'reject') return [];
  const out: Destination[] = [{ host: config.host, port: config.port }];
  try {
    for (const a of await lookup(config.host, { all: true }))
      out.push({ host: a.address, port: config.port });
  } catch (err) {
    log?.warn(`cannot resolve the proxy's name for the routing-loop guard: ${(err as Error).message}`);
  }
  return out;
}

/** A running tun2socks: device → stack → relays → upstream. */
export class Tun2Socks {
  /** The runtime driving the stack on the device. */
  readonly runtime: StackRuntime;
  /** The upstream, printable (no password). */
  readonly upstream: string;
  private readonly config: ProxyConfig;
  private readonly dialer: Dialer;
  private readonly udpDialer: UdpDialer | undefined;
  private tcpRelay: TcpRelay | undefined;
  private udpRelay: UdpRelay | undefined;
  /** The stack's DNS server (undefined with DNS 'direct'). */
  readonly dns: DnsServer | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: Tun2SocksOptions) {
    const proxy = options.proxy ?? 'direct://';
    this.config = typeof proxy === 'string' ? parseProxyUrl(proxy) : proxy;
    this.upstream = options.dialer !== undefined ? options.dialer.name : redactProxyUrl(this.config);
    this.dialer =
      options.dialer ??
      createDialer(
        this.config,
        options.socks5Spares !== undefined ? { socks5Spares: options.socks5Spares } : {},
      );
    this.udpDialer =
      options.udpDialer === null
        ? undefined
        : (options.udpDialer ?? (options.dialer !== undefined ? undefined : createUdpDialer(this.config)));
    this.dns =
      options.dns === undefined
        ? undefined
        : createDnsServer(options.dns, {
            dialer: this.dialer,
            udpDialer: this.udpDialer,
            ...(options.dnsOverTcp !== undefined ? { dnsOverTcp: options.dnsOverTcp } : {}),
            ...(options.dialTimeoutMs !== undefined ? { dialTimeoutMs: options.dialTimeoutMs } : {}),
            ...(options.log !== undefined ? { log: options.log } : {}),
          });
    this.runtime = new StackRuntime(options.device, options.runtime);
    if (options.upstream !== undefined) setUpstreamSocketOptions(options.upstream);
  }

  /** The relays' DNS hooks: local service for the DNS addresses, fake address → name. */
  private dnsHooks(): {
    tcp: Pick<TcpRelayOptions, 'localService' | 'resolveDestination'>;
    udp: Pick<UdpRelayOptions, 'localService' | 'resolveDestination'>;
  } {
    const dns = this.dns;
    if (dns === undefined) return { tcp: {}, udp: {} };
    const resolveDestination = (dst: Destination): Destination | undefined => dns.resolveDestination(dst);
    return {
      tcp: {
        resolveDestination,
        localService: (dst) => (dns.serves(dst) ? (socket) => dns.serveStream(socket) : undefined),
      },
      udp: {
        resolveDestination,
        localService: (dst) =>
          dns.serves(dst)
            ? (payload, reply) => {
                void dns.handle(payload).then((answer) => {
                  if (answer !== undefined) reply(answer);
                });
              }
            : undefined,
      },
    };
  }

  /** Resolves the loop guard, attaches the relays and starts reading the device. */
  async start(): Promise<void> {
    const o = this.options;
    const loopGuard = await proxyEndpoints(this.config, o.log);
    const hooks = this.dnsHooks();
    this.tcpRelay = new TcpRelay({
      ...hooks.tcp,
      dialer: this.dialer,
      loopGuard,
      ...(o.log !== undefined ? { log: o.log } : {}),
      ...(o.dialTimeoutMs !== undefined ? { dialTimeoutMs: o.dialTimeoutMs } : {}),
      ...(o.tcpIdleTimeoutMs !== undefined ? { idleTimeoutMs: o.tcpIdleTimeoutMs } : {}),
      ...(o.tcpHalfClosedTimeoutMs !== undefined ? { halfClosedTimeoutMs: o.tcpHalfClosedTimeoutMs } : {}),
      ...(o.tcpAccept !== undefined ? { accept: o.tcpAccept } : {}),
    });
    this.udpRelay = new UdpRelay({
      ...hooks.udp,
      udpDialer: this.udpDialer,
      dialer: this.dialer,
      loopGuard,
      ...(o.log !== undefined ? { log: o.log } : {}),
      ...(o.dialTimeoutMs !== undefined ? { dialTimeoutMs: o.dialTimeoutMs } : {}),
      ...(o.dnsOverTcp !== undefined ? { dnsOverTcp: o.dnsOverTcp } : {}),
    });
    this.tcpRelay.attach(this.runtime);
    this.udpRelay.attach(this.runtime);
    this.runtime.start();
  }

  /** Every counter now. */
  stats(): Tun2SocksStats {
    const none = { open: 0, total: 0, bytesUp: 0, bytesDown: 0, failed: {} };
    return {
      tcp: this.tcpRelay?.stats ?? none,
      udp: this.udpRelay?.stats ?? newUdpRelayStats(),
      stack: this.runtime.stack.stats.snapshot(),
      device: { ...this.options.device.stats } as Record<string, number>,
      busyPoll: { ...this.runtime.busy.stats },
      ...(this.dns !== undefined ? { dns: this.dns.stats } : {}),
      ...(this.dialer.stats !== undefined ? { dialer: this.dialer.stats() } : {}),
    };
  }

  /**
   * Stops: new SYNs are refused, every relayed connection is reset both ways, UDP flows and
   * associations end, and the device is closed. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.runtime.onTcpRequest(undefined);
      this.tcpRelay?.close();
      this.udpRelay?.close();
      this.dns?.close();
      // Only a dialer of our own: one passed in may serve others.
      if (this.options.dialer === undefined) this.dialer.close?.();
      await this.runtime.close();
    })();
    return this.closing;
  }
}
