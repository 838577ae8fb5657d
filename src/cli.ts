#!/usr/bin/env node
/**
 * The `tun2socks` command: a thin shell over the library (`Tun2Socks`). Errors a person can act
 * on are printed as one line (exit 2 for bad usage, 1 for runtime failures), never as a stack
 * trace; failures of single connections are logged and never end the process.
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { type CliOptions, HELP, parseCliArgs, UsageError } from './cli-args.js';
import { countersOf, engineOptions, ioText, openDevice, sumCounters } from './cli-engine.js';
import { Logger } from './log.js';
import type { FromQueueWorker, QueueWorkerData, ToQueueWorker } from './queue-worker.js';
import { prepareRoute, undoOnExit } from './route/cli-route.js';
import { RouteError } from './route/plan.js';
import { TunError } from './tun/errors.js';
import { Tun2Socks } from './tun2socks.js';

/** How long a stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 3000;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function main(argv: readonly string[]): Promise<void> {
  const parsed = parseCliArgs(argv);
  if (parsed.help) {
    process.stdout.write(HELP);
    return;
  }
  if (parsed.version) {
    process.stdout.write(`tun2socks ${version()}\n`);
    return;
  }
  const log = new Logger(parsed.loglevel);
  // Signals during start-up are held and acted on once everything is up, so a stop right after
  // start still undoes the routes (the default action would kill the process half-way).
  let held: string | undefined;
  let onSignal = (signal: string): void => {
    held ??= signal;
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  // --auto-route: leftovers of an earlier run removed, conflicts refused and the plan made before
  // the device opens; the routes go in once the engine reads it.
  const { opts, route } = await prepareRoute(parsed, log);
  const node = opts.multiQueue > 1 ? await startQueues(opts, log) : await startSingle(opts, log);
  if (route !== undefined) {
    try {
      route.up();
    } catch (err) {
      await node.close();
      throw err;
    }
    undoOnExit(route, log);
    // A closed terminal must not leave the machine routed into a dead TUN either.
    process.on('SIGHUP', () => onSignal('SIGHUP'));
    log.info('auto-route set up', {
      table: opts.autoRoute?.table,
      families: route.plan.families.join('+'),
      lan: route.plan.lan.map((c) => `${c.network}/${c.prefixLength}`).join(' ') || 'none',
    });
  }
  log.info('tun2socks started', {
    device: node.name,
    mtu: node.mtu,
    proxy: node.upstream,
    offload: node.offload,
    io: node.io,
    queues: opts.multiQueue,
    pcap: opts.pcap ?? 'off',
  });

  const printStats = (): Promise<void> =>
    node.stats().then(
      (s) => {
        process.stderr.write(`stats ${JSON.stringify(s)}\n`);
      },
      (err: unknown) => log.warn(`stats failed: ${(err as Error).message}`),
    );
  process.on('SIGUSR1', printStats);
  if (opts.statsIntervalMs > 0) setInterval(printStats, opts.statsIntervalMs).unref();

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    // Routes and rules first, so traffic leaves directly rather than into a closing device.
    route?.down();
    const force = setTimeout(() => {
      log.warn(`stop took over ${STOP_DEADLINE_MS} ms; exiting anyway`);
      process.exit(0);
    }, STOP_DEADLINE_MS);
    force.unref();
    // At debug, the counters as they stand at the stop (before the queues are gone).
    const last = log.enabled('debug') ? printStats() : Promise.resolve();
    last
      .then(() => node.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error(`close failed: ${(err as Error).message}`);
          process.exit(1);
        },
      );
  };
  onSignal = stop;
  if (held !== undefined) stop(held);
}

/** What main() drives: one engine in this thread, or one per queue in worker threads. */
interface Running {
  readonly name: string;
  readonly mtu: number;
  readonly upstream: string;
  readonly offload: string;
  /** How the TUN is read and written ('uring' or 'plain'). */
  readonly io: string;
  stats(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

function offloadText(offload: unknown): string {
  const o = offload as { tso?: boolean; csum?: boolean } | undefined;
  return o?.tso === true ? 'tso+csum' : o?.csum === true ? 'csum' : 'off';
}

async function startSingle(opts: CliOptions, log: Logger): Promise<Running> {
  const device = openDevice(opts);
  const engine = new Tun2Socks(engineOptions(opts, device, log));
  await engine.start();
  return {
    name: device.name,
    mtu: device.mtu,
    upstream: engine.upstream,
    offload: offloadText((device as { offload?: unknown }).offload),
    io: ioText(device),
    stats: async () => countersOf(engine.stats()),
    close: () => engine.close(),
  };
}

/** Starts one worker per queue; resolves once all attached, rejects with the first failure. */
async function startQueues(opts: CliOptions, log: Logger): Promise<Running> {
  const workerUrl = new URL('./queue-worker.js', import.meta.url);
  const workers = Array.from({ length: opts.multiQueue }, (_, queue) => {
    const data: QueueWorkerData = { opts, queue };
    return new Worker(workerUrl, { workerData: data });
  });
  const next = (w: Worker, type: FromQueueWorker['type']): Promise<FromQueueWorker> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: FromQueueWorker) => {
        if (m.type === type || m.type === 'error') {
          w.off('message', onMessage);
          w.off('error', reject);
          if (m.type === 'error') reject(new WorkerFailure(m.message));
          else resolve(m);
        }
      };
      w.on('message', onMessage);
      w.once('error', reject);
    });
  let ready: FromQueueWorker[];
  try {
    ready = await Promise.all(workers.map((w) => next(w, 'ready')));
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  }
  for (const w of workers) {
    w.on('error', (err) => log.error(`queue worker failed: ${err.message}`));
  }
  const first = ready[0] as Extract<FromQueueWorker, { type: 'ready' }>;
  return {
    name: first.name,
    mtu: first.mtu,
    upstream: first.upstream,
    offload: offloadText(first.offload),
    io: first.io,
    stats: async () => {
      const all = await Promise.all(
        workers.map((w) => {
          const reply = next(w, 'stats');
          w.postMessage({ type: 'stats' } satisfies ToQueueWorker);
          return reply;
        }),
      );
      const total: Record<string, unknown> = { queues: workers.length };
      for (const m of all) if (m.type === 'stats') sumCounters(total, m.stats);
      total.perQueue = all.map((m) => (m.type === 'stats' ? (m.stats.tcp as { total: number }).total : 0));
      return total;
    },
    close: async () => {
      await Promise.all(
        workers.map((w) => {
          const done = new Promise<void>((resolve) => w.once('exit', () => resolve()));
          w.postMessage({ type: 'close' } satisfies ToQueueWorker);
          return done;
        }),
      );
    },
  };
}

/** A queue worker could not start (its message is the TunError or option error it hit). */
class WorkerFailure extends Error {}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`tun2socks: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof TunError || err instanceof WorkerFailure || err instanceof RouteError) {
    process.stderr.write(`tun2socks: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`tun2socks: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
