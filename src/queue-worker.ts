/**
 * One queue of `tun2socks --multi-queue N`: a worker thread that attaches to the multi-queue TUN,
 * runs its own stack and relays for the flows the kernel steers to its queue, and answers the main
 * thread's 'stats' and 'close' messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { CliOptions } from './cli-args.js';
import { countersOf, engineOptions, ioText, openDevice } from './cli-engine.js';
import { Logger } from './log.js';
import { Tun2Socks } from './tun2socks.js';

/** What the main thread hands each worker. */
export interface QueueWorkerData {
  readonly opts: CliOptions;
  readonly queue: number;
}

/** Messages from the main thread. */
export type ToQueueWorker = { readonly type: 'stats' } | { readonly type: 'close' };

/** Messages to the main thread. */
export type FromQueueWorker =
  | {
      readonly type: 'ready';
      readonly name: string;
      readonly mtu: number;
      readonly offload: unknown;
      readonly io: string;
      readonly upstream: string;
    }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'stats'; readonly stats: Record<string, unknown> }
  | { readonly type: 'closed' };

async function run(port: NonNullable<typeof parentPort>, data: QueueWorkerData): Promise<void> {
  const post = (m: FromQueueWorker) => port.postMessage(m);
  const log = new Logger(data.opts.loglevel, (line) =>
    process.stderr.write(line.replace(/ /, ` q${data.queue} `)),
  );
  let engine: Tun2Socks;
  try {
    const device = openDevice(data.opts);
    engine = new Tun2Socks(engineOptions(data.opts, device, log));
    await engine.start();
    const offload = (device as { offload?: unknown }).offload;
    const io = ioText(device);
    post({ type: 'ready', name: device.name, mtu: device.mtu, offload, io, upstream: engine.upstream });
  } catch (err) {
    post({ type: 'error', message: (err as Error).message });
    return;
  }
  port.on('message', (m: ToQueueWorker) => {
    if (m.type === 'stats') {
      post({ type: 'stats', stats: countersOf(engine.stats()) });
    } else if (m.type === 'close') {
      void engine.close().finally(() => {
        post({ type: 'closed' });
        port.close();
      });
    }
  });
}

if (parentPort !== null) void run(parentPort, workerData as QueueWorkerData);
