#!/usr/bin/env node
/**
 * The `tun2socks` command: a thin shell over the library. Errors a person can act on are printed
 * as one line (exit 2 for bad usage, 1 for runtime failures), never as a stack trace.
 */
import { readFileSync } from 'node:fs';
import { HELP, parseCliArgs, UsageError } from './cli-args.js';
import { Logger } from './log.js';
import { StackRuntime } from './runtime.js';
import type { Device } from './tun/device.js';
import { TunError } from './tun/errors.js';
import { openTun } from './tun/linux-tun.js';
import { PcapDevice } from './tun/pcap.js';
import { parseDeviceSpec } from './tun/spec.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
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
  const runtime = new StackRuntime(device, { options: { icmpEcho: opts.icmpEcho } });
  runtime.start();
  log.info('tun2socks started', { device: device.name, mtu: device.mtu, pcap: opts.pcap ?? 'off' });

  const printStats = () => {
    process.stderr.write(
      `${JSON.stringify({ stack: runtime.stack.stats.snapshot(), device: device.stats })}\n`,
    );
  };
  process.on('SIGUSR1', printStats);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    const force = setTimeout(() => process.exit(0), 3000);
    force.unref();
    runtime.close().then(
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
