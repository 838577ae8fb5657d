#!/usr/bin/env node
/**
 * The `tun2socks` command: a thin shell over the library (`Tun2Socks`). Errors a person can act
 * on are printed as one line (exit 2 for bad usage, 1 for runtime failures), never as a stack
 * trace; failures of single connections are logged and never end the process.
 */
import { readFileSync } from 'node:fs';
import { type CliOptions, HELP, parseCliArgs, UsageError } from './cli-args.js';
import { Logger } from './log.js';
import { DEFAULT_TCP_CONFIG, type TcpConfig } from './stack/options.js';
import type { Device } from './tun/device.js';
import { TunError } from './tun/errors.js';
import { openTun } from './tun/linux-tun.js';
import { PcapDevice } from './tun/pcap.js';
import { parseDeviceSpec } from './tun/spec.js';
import { Tun2Socks } from './tun2socks.js';

/** How long a stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 3000;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

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

async function main(argv: readonly string[]): Promise<void> {
  const opts = parseCliArgs(argv);
  if (opts.help) {
    process.stdout.write(HELP);
    return;
  }
  if (opts.version) {
    process.stdout.write(`tun2socks ${version()}\n`);
    return;
  }
  const log = new Logger(opts.loglevel);
  const spec = parseDeviceSpec(opts.device!);
  let device: Device = openTun({ ...spec, ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}) });
  if (opts.pcap !== undefined) device = new PcapDevice(device, opts.pcap);
  const engine = new Tun2Socks({
    device,
    proxy: opts.proxy,
    log,
    dialTimeoutMs: opts.dialTimeoutMs,
    tcpIdleTimeoutMs: opts.tcpIdleTimeoutMs,
    dnsOverTcp: opts.dnsOverTcp,
    runtime: {
      options: {
        icmpEcho: opts.icmpEcho,
        udp: { idleTimeoutMs: opts.udpTimeoutMs },
        tcp: tcpBuffers(opts),
      },
    },
  });
  await engine.start();
  log.info('tun2socks started', {
    device: device.name,
    mtu: device.mtu,
    proxy: engine.upstream,
    pcap: opts.pcap ?? 'off',
  });

  const printStats = () => {
    const s = engine.stats();
    const line = {
      tcp: s.tcp,
      udp: s.udp,
      drops: s.stack.drops,
      stack: { ...s.stack, drops: undefined },
      device: s.device,
    };
    process.stderr.write(`stats ${JSON.stringify(line)}\n`);
  };
  process.on('SIGUSR1', printStats);
  if (opts.statsIntervalMs > 0) setInterval(printStats, opts.statsIntervalMs).unref();

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    const force = setTimeout(() => {
      log.warn(`stop took over ${STOP_DEADLINE_MS} ms; exiting anyway`);
      process.exit(0);
    }, STOP_DEADLINE_MS);
    force.unref();
    engine.close().then(
      () => {
        if (log.enabled('debug')) printStats();
        process.exit(0);
      },
      (err: unknown) => {
        log.error(`close failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`tun2socks: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof TunError) {
    process.stderr.write(`tun2socks: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`tun2socks: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
