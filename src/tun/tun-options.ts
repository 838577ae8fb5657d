/**
 * The options of openTun() (linux-tun.ts): how a TUN device is opened, read and written.
 */
import type { TunError } from './errors.js';
import { libc } from './libc.js';
import type { OffloadMode } from './tun-open.js';

/**
 * How the device reads: 'drain' after a poll() on the thread pool, 'async-read' one async read()
 * per packet (the slow baseline), or 'uv-poll': drain when the event loop's own epoll reports the
 * fd readable (koffi's undocumented uv_poll_t binding), which keeps no thread-pool thread blocked
 * and saves the thread hand-off of each wake-up (measured: about 90 µs of main-thread time per
 * async poll() on this VM). 'auto' (the default) is 'uv-poll' when koffi offers it, else 'drain':
 * the undocumented binding is only a fast path, with the documented one as the tested fallback.
 */
export type ReadMode = 'auto' | 'drain' | 'async-read' | 'uv-poll';

/** The read mode 'auto' resolves to here: 'uv-poll' when koffi has its poll binding, else 'drain'. */
export function resolveReadMode(mode: ReadMode): Exclude<ReadMode, 'auto'> {
  if (mode !== 'auto') return mode;
  return libc().canWatchReadable() ? 'uv-poll' : 'drain';
}

/** Options of openTun(). Give `name` or `fd`, not both; neither creates a kernel-named `tunN`. */
export interface TunOptions {
  /** Interface to create, or attach to when it exists (e.g. made by `ip tuntap add mode tun`). */
  name?: string;
  /** An open TUN fd handed over by a parent process (`fd://3`); the device owns it from then on. */
  fd?: number;
  /** Sets the interface MTU (SIOCSIFMTU) when given; otherwise the current MTU is read. */
  mtu?: number;
  /** A network namespace path (`/var/run/netns/X`): the device is created/attached in it. */
  netns?: string;
  /** Default 'drain'. */
  readMode?: ReadMode;
  /** Checksum and TCP segmentation offload through IFF_VNET_HDR: 'auto' (default) or 'off'. */
  offload?: OffloadMode;
  /** Attach as one queue of a multi-queue TUN (IFF_MULTI_QUEUE; needs `name`). Default false. */
  multiQueue?: boolean;
  /** Most packets handed to the sink per drained batch before yielding to the loop. Default 256. */
  batch?: number;
  /**
   * How packets are read and written: 'uring' batches both through io_uring (a drain's reads and
   * a turn's writes, each with one io_uring_enter()), 'plain' calls read() and write() per packet,
   * 'auto' (the default) is 'uring' when the kernel allows io_uring, else 'plain'.
   */
  ioMode?: IoMode;
  /** Called once when reading stops on an unrecoverable error (e.g. the interface was deleted). */
  onError?: (err: TunError) => void;
}

/** How a TunDevice reads and writes: see TunOptions.ioMode. */
export type IoMode = 'auto' | 'uring' | 'plain';

/** Default `batch`: packets per drain before yielding to other I/O. */
export const DEFAULT_BATCH = 256;

/** Checks openTun()'s read mode, batch and I/O mode and fills their defaults ('auto' resolved for the read mode). */
export function checkTunOptions(opts: TunOptions): {
  readMode: Exclude<ReadMode, 'auto'>;
  batch: number;
  ioMode: IoMode;
} {
  const asked = opts.readMode ?? 'auto';
  if (asked !== 'auto' && asked !== 'drain' && asked !== 'async-read' && asked !== 'uv-poll')
    throw new TypeError(`readMode must be 'auto', 'drain', 'async-read' or 'uv-poll', not ${String(asked)}`);
  const batch = opts.batch ?? DEFAULT_BATCH;
  if (!Number.isInteger(batch) || batch < 1 || batch > 65536)
    throw new RangeError(`batch must be an integer in 1..65536, not ${batch}`);
  const ioMode = opts.ioMode ?? 'auto';
  if (ioMode !== 'auto' && ioMode !== 'uring' && ioMode !== 'plain')
    throw new TypeError(`ioMode must be 'auto', 'uring' or 'plain', not ${String(ioMode)}`);
  return { readMode: resolveReadMode(asked), batch, ioMode };
}
