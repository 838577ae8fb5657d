/**
 * The read side of a TunDevice (linux-tun.ts): waiting for packets, draining them, and the error
 * policy. The device keeps the fds, the writes and the close; it hands this reader the fds and the
 * frame format, and hears back when reading has stopped and nothing is in flight (`release`).
 *
 * Read modes:
 * - 'drain': a koffi async `poll()` on [tun fd, eventfd] waits on libuv's thread pool, so the event
 *   loop never blocks; when it returns the loop reads the non-blocking fd synchronously into one
 *   preallocated buffer until EAGAIN or `batch` packets, hands each packet to the sink as a view of
 *   that buffer, calls `flush()` once, and re-arms the poll (after a setImmediate when the budget
 *   ran out, so other I/O gets a turn). The eventfd wakes the poll on close. The blocked poll holds
 *   one of libuv's thread-pool threads (UV_THREADPOOL_SIZE, 4 by default, shared with fs,
 *   dns.lookup and crypto) for as long as the device reads: a process with several devices, or
 *   heavy fs/DNS use, should raise UV_THREADPOOL_SIZE before its first thread-pool use.
 * - 'uv-poll' (the default where koffi offers it): the same drain, woken by the event loop's own
 *   epoll watching the fd (koffi's uv_poll_t binding, which koffi still marks undocumented), so no
 *   thread is held and no cross-thread wake-up is paid.
 * - 'async-read': one koffi async `read()` per packet, kept for comparison.
 * With a read ring (tun-rings.ts) a drain submits several reads per system call instead of one
 * read() each; a ring that gives up leaves the drain on read().
 */
import { endianness } from 'node:os';
import type { DeviceStats, PacketSink } from './device.js';
import { TunError } from './errors.js';
import { Errno, errnoName, libc, POLLERR, POLLHUP, POLLIN, POLLNVAL, type PollWatch } from './libc.js';
import { FRAME_GSO, FRAME_UNDELIVERABLE, type TunFrame } from './tun-frame.js';
import type { ReadMode } from './tun-options.js';
import { type ReadRingOwner, TunReadRing } from './tun-rings.js';

/** The receive buffer: the largest IP packet plus room for the packet-info and virtio-net headers. */
const RX_BUFFER_BYTES = 65536 + 64;
/** Consecutive failed reads or polls after which reading is declared broken (no busy loop). */
const MAX_CONSECUTIVE_ERRORS = 64;
/** Host byte order, for the native structs (pollfd). */
const LITTLE = endianness() === 'LE';

/** What a TunReader needs of its device. */
export interface TunReaderHost {
  /** The interface name, for messages. */
  readonly name: string;
  /** The device's counters (the rx ones are the reader's to count). */
  readonly stats: DeviceStats;
  /** The read ring gave up for good, and why (reads go on with read()). */
  ringBroken(note: string): void;
  /** Reading was stopped and nothing is in flight any more: the fds may be closed now. */
  release(): void;
}

/** Reads one TUN fd into a PacketSink (see the module comment). */
export class TunReader {
  /** The error that stopped reading, if one did. */
  error: TunError | undefined;

  readonly #rxBuf = new Uint8Array(RX_BUFFER_BYTES);
  /** struct pollfd[2]: { int fd; short events; short revents } for the tun fd and the eventfd. */
  readonly #pollFds = new Uint8Array(16);
  readonly #pollView = new DataView(this.#pollFds.buffer);
  readonly #prefix: number;
  #sink: PacketSink | undefined;
  /** An async poll or read is running on the thread pool: the fds must stay open until it returns. */
  #inFlight = false;
  #immediate: NodeJS.Immediate | undefined;
  /** 'uv-poll': the loop's readiness watch on the fd. */
  #watch: PollWatch | undefined;
  #stopped = false;
  #errorRun = 0;
  /** Several reads per system call, when in use (see openRing). */
  #ring: TunReadRing | undefined;
  /** Inside #drain (packets being handed to the sink). */
  #draining = false;

  constructor(
    private readonly host: TunReaderHost,
    private readonly fd: number,
    private readonly eventFd: number,
    private readonly frame: TunFrame,
    /** The read strategy. */
    readonly mode: Exclude<ReadMode, 'auto'>,
    private readonly batch: number,
    private readonly onError: ((err: TunError) => void) | undefined,
  ) {
    this.#prefix = frame.prefix;
    this.#pollView.setInt32(0, fd, LITTLE);
    this.#pollView.setInt16(4, POLLIN, LITTLE);
    this.#pollView.setInt32(8, eventFd, LITTLE);
    this.#pollView.setInt16(12, POLLIN, LITTLE);
  }

  /** Drains read through an io_uring from now on (`maxPacket`: the largest packet a read returns); why not, when refused. */
  openRing(maxPacket: number, entries: number): string | undefined {
    const r = TunReadRing.open(
      this.fd,
      maxPacket,
      this.#prefix,
      this.batch,
      this.host.stats,
      this.#ringOwner,
      entries,
    );
    if (typeof r === 'string') return r;
    this.#ring = r;
    return undefined;
  }

  /** Reads go through the io_uring (several per system call) rather than one read() each. */
  get throughRing(): boolean {
    return this.#ring?.active === true;
  }

  /** Starts delivering received packets to `sink`. */
  start(sink: PacketSink): void {
    this.#sink = sink;
    if (this.mode === 'drain') this.#armPoll();
    else if (this.mode === 'uv-poll') this.#watch = libc().watchReadable(this.fd, this.#onReadable);
    else this.#readAsync();
  }

  /**
   * Stops reading for good. True when nothing is in flight, so the fds may close at once; else
   * host.release() is called when the poll or read in flight returns (it is woken through the
   * eventfd), or when the drain in progress (a close from a packet's handler) ends.
   */
  stop(): boolean {
    this.#stopped = true;
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    this.#unwatch();
    if (this.#inFlight) {
      const wake = new Uint8Array(8);
      new DataView(wake.buffer).setBigUint64(0, 1n, LITTLE);
      libc().write(this.eventFd, wake, 8);
    }
    return !this.#inFlight && !this.#draining;
  }

  /** Releases the read ring (after the submit in progress, if called from a packet). */
  closeRing(): void {
    this.#ring?.close();
    this.#ring = undefined;
  }

  /** Runs when the async call returns: false (and the host released) if stopped meanwhile. */
  #settle(): boolean {
    this.#inFlight = false;
    if (!this.#stopped) return true;
    this.host.release();
    return false;
  }

  #armPoll(): void {
    this.#inFlight = true;
    libc().pollAsync(this.#pollFds, 2, -1, this.#onPoll);
  }

  readonly #onPoll = (err: unknown, rc: number): void => {
    if (!this.#settle()) return;
    if (err != null) {
      this.#fatal(`poll failed: ${String(err)}`, undefined);
    } else if (rc < 0) {
      // EINTR (errno is not observable from an async call): try again, but never spin forever.
      if (++this.#errorRun >= MAX_CONSECUTIVE_ERRORS) this.#fatal('poll keeps failing', undefined);
      else this.#armPoll();
    } else {
      const revents = this.#pollView.getInt16(6, LITTLE);
      if ((revents & (POLLERR | POLLHUP | POLLNVAL)) !== 0)
        this.#fatal('the interface was deleted or its fd closed', undefined);
      else if ((revents & POLLIN) === 0) this.#armPoll();
      else if (this.mode === 'drain') this.#drain();
      else this.#readAsync();
    }
  };

  #unwatch(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }

  /** 'uv-poll': the fd is readable. Level-triggered, so an unfinished drain resumes next loop turn. */
  readonly #onReadable = (status: number): void => {
    if (this.#stopped || this.error !== undefined) return;
    if (status < 0) this.#fatal(`uv_poll failed (libuv status ${status})`, undefined);
    else this.#drain();
  };

  readonly #continueDrain = (): void => {
    this.#immediate = undefined;
    if (!this.#stopped) this.#drain();
  };

  /** Reads until EAGAIN or `batch` packets, then flushes and re-arms. */
  #drain(): void {
    const sink = this.#sink!;
    this.host.stats.rxWakeups++;
    this.#draining = true;
    let delivered = 0;
    let more: boolean;
    try {
      const ring = this.#ring;
      if (ring?.active === true) {
        const r = ring.drain(this.batch);
        delivered = ring.delivered;
        more = r !== 'empty';
        if (r !== 'empty' && r !== 'more') this.host.ringBroken(r);
      } else {
        // One read() per packet; every attempt counts against the budget, so a run of EINTRs
        // cannot spin here either.
        more = true;
        for (let i = 0; i < this.batch && !this.#stopped; i++) {
          const got = this.#readOnce(sink);
          if (got === 0) {
            more = false;
            break;
          }
          if (got > 0) delivered++;
        }
      }
    } finally {
      this.#draining = false;
    }
    if (delivered > 0) sink.flush();
    if (this.#stopped) this.host.release();
    else if (this.error !== undefined || this.#watch !== undefined) return;
    else if (more) this.#immediate = setImmediate(this.#continueDrain);
    else this.#armPoll();
  }

  /** The read ring's view of this reader: its packets and failures are handled as read()'s are. */
  readonly #ringOwner: ReadRingOwner = {
    packet: (buf, start, end) => {
      this.#errorRun = 0;
      this.#deliver(this.#sink!, buf, start, end);
    },
    emptyRead: () => this.#emptyRead(),
    readFailed: (errno) => this.#readFailed(errno),
    stopped: () => this.#stopped || this.error !== undefined,
  };

  /**
   * One synchronous read: delivers a packet and returns 1, returns 0 when there is nothing to read
   * (EAGAIN) or reading stopped, -1 after a counted, retryable error.
   */
  #readOnce(sink: PacketSink): number {
    const c = libc();
    const r = c.read(this.fd, this.#rxBuf, RX_BUFFER_BYTES);
    if (r > this.#prefix) {
      this.#errorRun = 0;
      this.#deliver(sink, this.#rxBuf, 0, r);
      return 1;
    }
    if (r >= 0) return this.#emptyRead();
    const errno = c.errno();
    if (errno === Errno.EAGAIN) return 0;
    if (errno === Errno.EINTR) return -1;
    return this.#readFailed(errno);
  }

  /** A 0-byte read or a bare packet-info header: nothing usable. Counted; 0 once reading stopped. */
  #emptyRead(): number {
    if (++this.#errorRun >= MAX_CONSECUTIVE_ERRORS) return this.#fatal('empty reads', undefined);
    this.host.stats.rxErrors++;
    return -1;
  }

  /** A read failed with `errno` (not EAGAIN/EINTR): counted, or reading stops (returns 0). */
  #readFailed(errno: number): number {
    if (
      errno === Errno.EBADFD ||
      errno === Errno.EBADF ||
      errno === Errno.EIO ||
      errno === Errno.EFAULT ||
      ++this.#errorRun >= MAX_CONSECUTIVE_ERRORS
    )
      return this.#fatal(`read failed with ${errnoName(errno)}`, errnoName(errno));
    this.host.stats.rxErrors++;
    return -1;
  }

  /** Hands the packet read into `buf[start, end)` (its prefix first) to the sink. */
  #deliver(sink: PacketSink, buf: Uint8Array, start: number, end: number): void {
    const stats = this.host.stats;
    const got = this.frame.receive(buf, start);
    if (got === FRAME_UNDELIVERABLE) {
      stats.rxErrors++;
      return;
    }
    if ((got & FRAME_GSO) !== 0) stats.rxGsoPackets++;
    const rxFlags = got & ~FRAME_GSO;
    const packetAt = start + this.#prefix;
    stats.rxPackets++;
    stats.rxBytes += end - packetAt;
    sink.receive(buf.subarray(packetAt, end), rxFlags);
  }

  /** 'async-read': one read() per packet on the thread pool; a poll when the queue is empty. */
  #readAsync(): void {
    this.#inFlight = true;
    libc().readAsync(this.fd, this.#rxBuf, RX_BUFFER_BYTES, this.#onReadAsync);
  }

  readonly #onReadAsync = (err: unknown, r: number): void => {
    if (!this.#settle()) return;
    if (err != null) return void this.#fatal(`read failed: ${String(err)}`, undefined);
    const sink = this.#sink!;
    if (r > this.#prefix) {
      this.#errorRun = 0;
      this.host.stats.rxWakeups++;
      this.#deliver(sink, this.#rxBuf, 0, r);
      sink.flush();
      if (this.#stopped) this.host.release();
      else this.#readAsync();
      return;
    }
    // errno is lost with an async call: a synchronous read learns it (or finds a packet after all).
    const got = this.#readOnce(sink);
    if (got === 1) sink.flush();
    if (this.#stopped) this.host.release();
    else if (this.error !== undefined) return;
    else if (got === 0) this.#armPoll();
    else this.#readAsync();
  };

  /** Stops reading for good: counts, records and reports the error. Returns 0 for #readOnce. */
  #fatal(why: string, errno: string | undefined): 0 {
    this.host.stats.rxErrors++;
    const err = new TunError('TUN_READ', `TUN ${this.host.name}: reading stopped: ${why}`, errno);
    // The fds stay open until close() (writes may still be attempted), but nothing reads any more.
    this.error = err;
    this.#unwatch();
    if (this.onError !== undefined) this.onError(err);
    else process.emitWarning(err);
    return 0;
  }
}
