/**
 * From parsed command-line options to a running engine: the device and the engine options. Shared
 * by the command's main thread and the per-queue worker threads of `--multi-queue`.
 */
import type { CliOptions } from './cli-args.js';
import type { Logger } from './log.js';
import { DEFAULT_TCP_CONFIG, type TcpConfig } from './stack/options.js';
import type { Device } from './tun/device.js';
import { openTun } from './tun/linux-tun.js';
import { PcapDevice } from './tun/pcap.js';
import { parseDeviceSpec } from './tun/spec.js';
import type { Tun2SocksOptions, Tun2SocksStats } from './tun2socks.js';

/** --tcp-sndbuf / --tcp-rcvbuf set the initial buffers; auto-tuning may still grow to the larger of the two maxima. */
function tcpBuffers(opts: CliOptions): Partial<TcpConfig> {
  const tcp: Partial<{ -readonly [K in keyof TcpConfig]: TcpConfig[K] }> = {};
  if (opts.tcpSndbuf !== undefined) {
    tcp.sendBufferBytes = opts.tcpSndbuf;
    tcp.sendBufferMaxBytes = Math.max(opts.tcpSndbuf, DEFAULT_TCP_CONFIG.sendBufferMaxBytes);
  }
  if (opts.tcpRcvbuf !== undefined) {
    tcp.recvBufferBytes = opts.tcpRcvbuf;
    tcp.recvBufferMaxBytes = Math.max(opts.tcpRcvbuf, DEFAULT_TCP_CONFIG.recvBufferMaxBytes);
  }
  return tcp;
}

/** How `device` reads and writes, for the start-up line: `uring`, or `plain` with the reason when there is one. */
export function ioText(device: Device): string {
  const mode = device.ioMode ?? 'plain';
  return device.ioNote === undefined ? mode : `${mode} (${device.ioNote})`;
}

/** Opens the device of `opts` (one queue of it with --multi-queue), wrapped for --pcap. */
export function openDevice(opts: CliOptions): Device {
  const spec = parseDeviceSpec(opts.device!);
  let device: Device = openTun({
    ...spec,
    ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
    offload: opts.offload,
    ioMode: opts.tunIo,
    multiQueue: opts.multiQueue > 1,
  });
  if (opts.pcap !== undefined) device = new PcapDevice(device, opts.pcap);
  return device;
}

/** The engine options of `opts` on `device`. */
export function engineOptions(opts: CliOptions, device: Device, log: Logger): Tun2SocksOptions {
  return {
    device,
    proxy: opts.proxy,
    log,
    dialTimeoutMs: opts.dialTimeoutMs,
    tcpIdleTimeoutMs: opts.tcpIdleTimeoutMs,
    tcpAccept: opts.tcpAccept,
    socks5Spares: opts.socks5Spares,
    dnsOverTcp: opts.dnsOverTcp,
    ...(opts.dns.mode !== 'direct'
      ? {
          dns: {
            mode: opts.dns.mode,
            hijack: opts.dns.hijack,
            addresses: opts.dns.addresses,
            fakeRanges: opts.dns.fakeRanges,
            ...(opts.dns.upstream !== undefined ? { upstream: opts.dns.upstream } : {}),
          },
        }
      : {}),
    ...(opts.upstreamSocket.fwmark !== 0 || opts.upstreamSocket.bindInterface !== undefined
      ? {
          upstream: {
            fwmark: opts.upstreamSocket.fwmark,
            ...(opts.upstreamSocket.bindInterface !== undefined
              ? { bindInterface: opts.upstreamSocket.bindInterface }
              : {}),
          },
        }
      : {}),
    runtime: {
      busyPoll: opts.busyPoll,
      options: {
        icmpEcho: opts.icmpEcho,
        udp: { idleTimeoutMs: opts.udpTimeoutMs },
        tcp: tcpBuffers(opts),
      },
    },
  };
}

/** The counters the CLI prints (SIGUSR1, --stats-interval): the engine's, with drops at the top. */
export function countersOf(s: Tun2SocksStats): Record<string, unknown> {
  return {
    tcp: s.tcp,
    udp: s.udp,
    drops: s.stack.drops,
    stack: { ...s.stack, drops: undefined },
    device: s.device,
    busyPoll: s.busyPoll,
    ...(s.dialer !== undefined ? { dialer: s.dialer } : {}),
  };
}

/** Adds the numbers of `b` into `a`, recursively (counters of several queues into one). */
export function sumCounters(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(b)) {
    const cur = a[k];
    if (typeof v === 'number') a[k] = (typeof cur === 'number' ? cur : 0) + v;
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      a[k] = sumCounters(
        cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>) : {},
        v as Record<string, unknown>,
      );
    } else if (!(k in a)) a[k] = v;
  }
  return a;
}
