/**
 * Command-line parsing for `tun2socks`: flags named as in the most used tun2socks, strict (an
 * unknown flag or a bad value is a one-line error, exit code 2).
 */
import { parseArgs } from 'node:util';
import { LOG_LEVELS, type LogLevel } from './log.js';

/** A bad flag or value: the CLI prints the message alone and exits with code 2. */
export class UsageError extends Error {
  /** Stable error code. */
  readonly code = 'ERR_USAGE';
}

/** The parsed command line. */
export interface CliOptions {
  readonly device: string | undefined;
  readonly mtu: number | undefined;
  readonly pcap: string | undefined;
  readonly loglevel: LogLevel;
  readonly icmpEcho: boolean;
  readonly help: boolean;
  readonly version: boolean;
}

/** The text of `--help`. */
export const HELP = `Usage: tun2socks --device <tun0|tun://tun0|fd://N> [options]

Options:
  --device SPEC        TUN device to create or attach (tun0, tun://tun0), or fd://N handed over by a parent
  --mtu N              set the device MTU (default: the device's own)
  --pcap FILE          write every packet in and out to FILE (pcap, LINKTYPE_RAW)
  --loglevel LEVEL     debug | info | warn | error | silent (default: info)
  --icmp-echo on|off   answer ping for every address (default: on)
  --version            print the version and exit
  --help               print this help and exit

Signals: SIGUSR1 prints the counters; SIGINT/SIGTERM close the device and exit.
`;

function integerFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be from ${min} to ${max}, got ${n}`);
  return n;
}

/** Parses argv (without node and script); throws UsageError on any problem. */
export function parseCliArgs(argv: readonly string[]): CliOptions {
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof OPTIONS; strict: true; allowPositionals: false }>
  >;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} (see --help)`);
  }
  const v = parsed.values;
  const loglevel = v.loglevel ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(loglevel)) {
    throw new UsageError(`--loglevel must be one of ${LOG_LEVELS.join(', ')}, got "${loglevel}"`);
  }
  const echo = v['icmp-echo'] ?? 'on';
  if (echo !== 'on' && echo !== 'off') throw new UsageError(`--icmp-echo must be on or off, got "${echo}"`);
  const options: CliOptions = {
    device: v.device,
    mtu: integerFlag('mtu', v.mtu, 576, 65535),
    pcap: v.pcap,
    loglevel: loglevel as LogLevel,
    icmpEcho: echo === 'on',
    help: v.help ?? false,
    version: v.version ?? false,
  };
  if (!options.help && !options.version && options.device === undefined) {
    throw new UsageError('--device is required (for example --device tun0; see --help)');
  }
  return options;
}

const OPTIONS = {
  device: { type: 'string' },
  mtu: { type: 'string' },
  pcap: { type: 'string' },
  loglevel: { type: 'string' },
  'icmp-echo': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;
