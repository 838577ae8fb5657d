/**
 * Command-line parsing for `tun2socks`: flags named as in the most used tun2socks, strict (an
 * unknown flag or a bad value is a one-line error, exit code 2), and `--config FILE` (YAML with
 * the same keys as the flags; a flag given on the command line wins over the file).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { type BusyPollSetting, MAX_BUSY_POLL_MS } from './busy-poll.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { DEFAULT_SOCKS5_SPARES, MAX_SOCKS5_SPARES } from './proxy/socks5-spares.js';
import { type ProxyConfig, parseProxyUrl } from './proxy/url.js';
import type { TcpAcceptMode } from './relay/tcp-relay.js';
import { parseRouteFlags, ROUTE_HELP, ROUTE_OPTIONS, type RouteCliFlags } from './route/flags.js';

/** A bad flag or value: the CLI prints the message alone and exits with code 2. */
export class UsageError extends Error {
  /** Stable error code. */
  readonly code = 'ERR_USAGE';
}

/** How DNS is carried when the proxy has no UDP: see UdpRelayOptions.dnsOverTcp. */
export type DnsOverTcpMode = 'auto' | 'always' | 'never';

/** The parsed command line (and config file); the issue-6 fields (autoRoute, upstreamSocket, dns) come from route/flags.ts. */
export interface CliOptions extends RouteCliFlags {
  readonly device: string | undefined;
  readonly proxy: ProxyConfig;
  readonly mtu: number | undefined;
  readonly pcap: string | undefined;
  readonly loglevel: LogLevel;
  readonly icmpEcho: boolean;
  /** UDP flow idle timeout in ms. */
  readonly udpTimeoutMs: number;
  /** TCP relay idle timeout in ms. */
  readonly tcpIdleTimeoutMs: number;
  /** Upstream dial timeout in ms. */
  readonly dialTimeoutMs: number;
  /** When the SYN-ACK goes out relative to the upstream dial (see TcpAcceptMode). */
  readonly tcpAccept: TcpAcceptMode;
  /** SOCKS5 connections greeted ahead of the next dial (0: none). */
  readonly socks5Spares: number;
  /** TCP send / receive buffer per connection in bytes (undefined: the stack's default). */
  readonly tcpSndbuf: number | undefined;
  readonly tcpRcvbuf: number | undefined;
  readonly dnsOverTcp: DnsOverTcpMode;
  /** Print the counters every this many ms (0: only on SIGUSR1). */
  readonly statsIntervalMs: number;
  /** Busy polling after each packet: 'auto', or a fixed window in ms (0: off). */
  readonly busyPoll: BusyPollSetting;
  /** TUN checksum/segmentation offload: 'auto' (when the kernel grants it) or 'off'. */
  readonly offload: 'auto' | 'off';
  /** How TUN packets are read and written: 'auto' (io_uring batches when the kernel allows), 'uring' (required) or 'plain'. */
  readonly tunIo: 'auto' | 'uring' | 'plain';
  /** Queues (worker threads, each with its own stack) of a multi-queue TUN; 1 = one queue in the main thread. */
  readonly multiQueue: number;
  readonly help: boolean;
  readonly version: boolean;
}

/** Defaults of the flags with one. */
export const CLI_DEFAULTS = Object.freeze({
  proxy: 'direct://',
  loglevel: 'info' as LogLevel,
  udpTimeoutMs: 60_000,
  tcpIdleTimeoutMs: 300_000,
  dialTimeoutMs: 5000,
  tcpAccept: 'auto' as TcpAcceptMode,
  dnsOverTcp: 'auto' as DnsOverTcpMode,
});

/** The text of `--help`. */
export const HELP = `Usage: tun2socks --device <tun0|tun://tun0|fd://N> [--proxy URL] [options]

Options:
  --device SPEC          TUN device to create or attach (tun0, tun://tun0), or fd://N handed over by a parent
  --proxy URL            upstream: socks5://[user:pass@]host:port, socks4://, socks4a://,
                         http://[user:pass@]host:port (CONNECT, TCP only), direct://, reject://
                         (default: direct://)
  --mtu N                set the device MTU (default: the device's own)
  --udp-timeout DUR      close a UDP flow idle this long (default: 60s)
  --tcp-idle-timeout DUR reset a relayed TCP connection idle this long (default: 300s)
  --dial-timeout DUR     give up on an upstream connect after this long (default: 5s)
  --socks5-spares N      keep N connections to a SOCKS5 proxy open and greeted ahead of the next
                         dial, after dials only, each closed unused after 10s (default: 1; 0: none)
  --tcp-accept MODE      when a client's SYN is answered: after-dial (once the upstream connected,
                         so a failed dial is a refusal), before-dial (at once; a failed dial resets
                         the connection), auto (before-dial for a destination that dialed fine in
                         the last minute, else after-dial; default: auto)
  --tcp-sndbuf SIZE      TCP send buffer per connection, e.g. 256k (default: 256k, grows to 4m)
  --tcp-rcvbuf SIZE      TCP receive buffer per connection, e.g. 128k (default: 128k, grows to 4m)
  --dns-over-tcp MODE    auto | always | never: carry DNS (port 53) over TCP through the proxy;
                         auto does so when the proxy has no UDP (default: auto)
  --loglevel LEVEL       debug | info | warn | error | silent (default: info)
  --pcap FILE            write every packet in and out to FILE (pcap, LINKTYPE_RAW)
  --icmp-echo on|off     answer ping for every address (default: on)
  --stats-interval DUR   print the counters periodically (default: 0, only on SIGUSR1)
  --busy-poll MODE       after each packet keep polling instead of sleeping: auto (120us, spins
                         that find nothing capped at 5% of a core), off, or a fixed DUR (e.g.
                         200us, no cap): lower round-trip latency and higher request rates for up
                         to a core of CPU while dense traffic flows (default: auto)
  --offload auto|off     TUN checksum and TCP segmentation offload (IFF_VNET_HDR) when the kernel
                         grants it (default: auto)
  --tun-io MODE          how the TUN is read and written: uring (a wake-up's reads and a turn's
                         writes each in one io_uring_enter), plain (one read()/write() per
                         packet), auto (uring when the kernel allows it; default)
  --multi-queue N        open N queues of a multi-queue TUN, each served by a worker thread with its
                         own stack; the kernel spreads flows over them (default: 1)
${ROUTE_HELP.trim()}

  --config FILE          read options from a YAML file with the same keys (flags win)
  --version              print the version and exit
  --help                 print this help and exit

DUR is a number with us, ms, s, m or h (a bare number is seconds); SIZE is bytes with k, m or g.
Signals: SIGUSR1 prints the counters; SIGINT/SIGTERM reset open connections and exit.
`;

const OPTIONS = {
  device: { type: 'string' },
  proxy: { type: 'string' },
  mtu: { type: 'string' },
  'udp-timeout': { type: 'string' },
  'tcp-idle-timeout': { type: 'string' },
  'dial-timeout': { type: 'string' },
  'socks5-spares': { type: 'string' },
  'tcp-accept': { type: 'string' },
  'tcp-sndbuf': { type: 'string' },
  'tcp-rcvbuf': { type: 'string' },
  'dns-over-tcp': { type: 'string' },
  loglevel: { type: 'string' },
  pcap: { type: 'string' },
  'icmp-echo': { type: 'string' },
  'stats-interval': { type: 'string' },
  'busy-poll': { type: 'string' },
  offload: { type: 'string' },
  'tun-io': { type: 'string' },
  'multi-queue': { type: 'string' },
  ...ROUTE_OPTIONS,
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** The keys a config file may hold: every flag but config, help and version. */
const CONFIG_KEYS = Object.keys(OPTIONS).filter((k) => k !== 'config' && k !== 'help' && k !== 'version');

/** Parses a duration: `500ms`, `5s`, `2m`, `1h`, or a bare number of seconds. Returns ms. */
export function parseDuration(name: string, value: string, max = 86_400_000): number {
  const m = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)?$/.exec(value.trim());
  if (m === null) throw new UsageError(`--${name} must be a duration like 500ms, 30s or 5m, got "${value}"`);
  const unit = m[2] ?? 's';
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
  const ms = Number(m[1]) * scale;
  if (!Number.isFinite(ms) || ms > max)
    throw new UsageError(
      `--${name} must be at most ${max >= 1000 ? `${max / 1000}s` : `${max}ms`}, got "${value}"`,
    );
  // Whole microseconds (only --busy-poll uses less than a millisecond).
  return Math.round(ms * 1000) / 1000;
}

/** Parses a byte size: `65536`, `256k`, `4m`, `1g` (binary multiples). */
export function parseSize(name: string, value: string, min: number, max: number): number {
  const m = /^(\d+)([kmg])?i?b?$/i.exec(value.trim());
  if (m === null) throw new UsageError(`--${name} must be a size like 262144, 256k or 4m, got "${value}"`);
  const unit = (m[2] ?? '').toLowerCase();
  const n = Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1);
  if (n < min || n > max)
    throw new UsageError(`--${name} must be from ${min} to ${max} bytes, got "${value}"`);
  return n;
}

/** --busy-poll: auto (default), off, or a duration up to MAX_BUSY_POLL_MS (0: off). */
function busyPoll(value: string | undefined): BusyPollSetting {
  if (value === undefined || value === 'auto') return 'auto';
  if (value === 'off') return 0;
  if (!/^\d/.test(value.trim()))
    throw new UsageError(`--busy-poll must be auto, off or a duration like 200us, got "${value}"`);
  return parseDuration('busy-poll', value, MAX_BUSY_POLL_MS);
}

function integerFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be from ${min} to ${max}, got ${n}`);
  return n;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

/** Reads a YAML config file into flag values (strings; lists for repeatable flags), with one-line errors. */
export function readConfigFile(
  path: string,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): Record<string, string | string[]> {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    throw new UsageError(
      `--config ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new UsageError(`--config ${path}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UsageError(`--config ${path}: expected a mapping of option names to values`);
  }
  const out: Record<string, string | string[]> = {};
  for (const [rawKey, value] of Object.entries(doc as Record<string, unknown>)) {
    const key = rawKey.replaceAll('_', '-');
    if (!CONFIG_KEYS.includes(key)) {
      throw new UsageError(`--config ${path}: unknown key "${rawKey}" (keys are the flag names, see --help)`);
    }
    const spec = OPTIONS[key as keyof typeof OPTIONS] as { type: string; multiple?: boolean };
    if (typeof value === 'boolean' && key === 'icmp-echo') out[key] = value ? 'on' : 'off';
    else if (spec.type === 'boolean') {
      if (typeof value !== 'boolean')
        throw new UsageError(`--config ${path}: "${rawKey}" must be true or false`);
      out[key] = String(value);
    } else if (spec.multiple === true && Array.isArray(value)) {
      if (!value.every((v) => typeof v === 'string' || typeof v === 'number')) {
        throw new UsageError(`--config ${path}: "${rawKey}" must be a list of strings`);
      }
      out[key] = value.map(String);
    } else if (spec.multiple === true && (typeof value === 'string' || typeof value === 'number')) {
      out[key] = [String(value)];
    } else if (typeof value === 'string' || typeof value === 'number') out[key] = String(value);
    else throw new UsageError(`--config ${path}: "${rawKey}" must be a string or a number`);
  }
  return out;
}

/** Parses argv (without node and script), and the config file it names; throws UsageError on any problem. */
export function parseCliArgs(argv: readonly string[], read?: (path: string) => string): CliOptions {
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof OPTIONS; strict: true; allowPositionals: false }>
  >;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} (see --help)`);
  }
  const flags = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const help = flags.help === true;
  const version = flags.version === true;
  const fromFile =
    typeof flags.config === 'string' && !help && !version ? readConfigFile(flags.config, read) : {};
  const get = (key: string): string | undefined => {
    const v = flags[key];
    const f = fromFile[key];
    return typeof v === 'string' ? v : typeof f === 'string' ? f : undefined;
  };
  const getAll = (key: string): string[] | undefined => {
    const v = flags[key];
    const f = fromFile[key];
    return Array.isArray(v) ? v : Array.isArray(f) ? f : undefined;
  };
  const getBool = (key: string): boolean => {
    const v = flags[key];
    return typeof v === 'boolean' ? v : fromFile[key] === 'true';
  };

  const loglevel = oneOf('loglevel', get('loglevel') ?? CLI_DEFAULTS.loglevel, LOG_LEVELS);
  const echo = oneOf('icmp-echo', get('icmp-echo') ?? 'on', ['on', 'off'] as const);
  const proxyText = get('proxy') ?? CLI_DEFAULTS.proxy;
  let proxy: ProxyConfig;
  try {
    proxy = parseProxyUrl(proxyText);
  } catch (err) {
    // ProxyUrlError messages never echo credentials.
    throw new UsageError(`--proxy: ${(err as Error).message}`);
  }
  const duration = (key: string, fallback: number, min: number): number => {
    const v = get(key);
    if (v === undefined) return fallback;
    const ms = parseDuration(key, v);
    if (ms < min) throw new UsageError(`--${key} must be at least ${min}ms, got "${v}"`);
    return ms;
  };
  const size = (key: string): number | undefined => {
    const v = get(key);
    return v === undefined ? undefined : parseSize(key, v, 4096, 1 << 30);
  };
  const options: CliOptions = {
    device: get('device'),
    proxy,
    mtu: integerFlag('mtu', get('mtu'), 576, 65535),
    pcap: get('pcap'),
    loglevel,
    icmpEcho: echo === 'on',
    udpTimeoutMs: duration('udp-timeout', CLI_DEFAULTS.udpTimeoutMs, 1),
    tcpIdleTimeoutMs: duration('tcp-idle-timeout', CLI_DEFAULTS.tcpIdleTimeoutMs, 1),
    dialTimeoutMs: duration('dial-timeout', CLI_DEFAULTS.dialTimeoutMs, 1),
    socks5Spares:
      integerFlag('socks5-spares', get('socks5-spares'), 0, MAX_SOCKS5_SPARES) ?? DEFAULT_SOCKS5_SPARES,
    tcpAccept: oneOf('tcp-accept', get('tcp-accept') ?? CLI_DEFAULTS.tcpAccept, [
      'auto',
      'after-dial',
      'before-dial',
    ] as const),
    tcpSndbuf: size('tcp-sndbuf'),
    tcpRcvbuf: size('tcp-rcvbuf'),
    dnsOverTcp: oneOf('dns-over-tcp', get('dns-over-tcp') ?? CLI_DEFAULTS.dnsOverTcp, [
      'auto',
      'always',
      'never',
    ] as const),
    statsIntervalMs: duration('stats-interval', 0, 0),
    busyPoll: busyPoll(get('busy-poll')),
    offload: oneOf('offload', get('offload') ?? 'auto', ['auto', 'off'] as const),
    tunIo: oneOf('tun-io', get('tun-io') ?? 'auto', ['auto', 'uring', 'plain'] as const),
    multiQueue: integerFlag('multi-queue', get('multi-queue'), 1, 64) ?? 1,
    ...parseRouteFlags({ one: get, all: getAll, on: getBool }, (m) => new UsageError(m)),
    help,
    version,
  };
  if (!help && !version && options.device === undefined) {
    throw new UsageError('--device is required (for example --device tun0; see --help)');
  }
  if (options.autoRoute !== undefined && options.device?.startsWith('fd://')) {
    throw new UsageError('--auto-route needs a device name, not fd://');
  }
  if (options.multiQueue > 1) {
    if (options.pcap !== undefined) throw new UsageError('--pcap cannot be combined with --multi-queue');
    if (options.device?.startsWith('fd://')) {
      throw new UsageError('--multi-queue needs a device name, not fd://');
    }
  }
  return options;
}
