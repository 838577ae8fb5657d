/**
 * A Linux TUN device (Documentation/networking/tuntap.rst) driven through koffi.
 *
 * Reading ('drain', the default): a koffi async `poll()` on [tun fd, eventfd] waits on libuv's
 * thread pool, so the event loop never blocks; when it returns the loop reads the non-blocking fd
 * synchronously into one preallocated buffer until EAGAIN or `batch` packets, hands each packet to
 * the sink as a view of that buffer, calls `flush()` once, and re-arms the poll (after a
 * setImmediate when the budget ran out, so other I/O gets a turn). The eventfd wakes the poll on
 * close(). 'async-read' issues one koffi async `read()` per packet instead, kept for comparison.
 *
 * The blocked poll holds one of libuv's thread-pool threads (UV_THREADPOOL_SIZE, 4 by default,
 * shared with fs, dns.lookup and crypto) for as long as the device reads: a process with several
 * devices, or heavy fs/DNS use, should raise UV_THREADPOOL_SIZE before its first thread-pool use.
 * 'uv-poll' avoids this by watching the fd from the event loop's own epoll instead (through koffi's
 * uv_poll_t binding, which koffi still marks undocumented); the drain itself is the same.
 *
 * With io_uring (ioMode 'auto' where the kernel allows it, or 'uring'; uring.ts) a drain submits
 * several reads at once, each into its own slot of an arena (RWF_NOWAIT: the first empty read ends
 * the drain), and writes are copied into a second arena and submitted together when the turn's
 * synchronous work is done (a microtask), or earlier when the ring fills; a lone packet, and any
 * packet over 4 KB (a TSO super-segment: the copy would cost more than the call), is written with
 * write() after whatever was queued. What this saves is one system call per packet, which on a VM
 * (1 µs for a null syscall on the paravirtualized test host) was most of the cost of a no-offload
 * stream; the tighter bursts of writes also wake the receiving application less often. 'plain'
 * (the fallback) reads and writes one packet per system call. Either way a full device queue
 * (EAGAIN/ENOBUFS) drops a written packet, counted.
 *
 * Offload ('auto', the default): the fd is attached with IFF_VNET_HDR and TUNSETOFFLOAD(TUN_F_CSUM |
 * TUN_F_TSO4 | TUN_F_TSO6), so every packet either way carries a 10-byte virtio_net_hdr (vnet.ts).
 * Read: NEEDS_CSUM or DATA_VALID become RxFlags.CHECKSUM_VERIFIED (a NEEDS_CSUM packet's checksum
 * field holds only the pseudo-header sum, so it must never be verified), and a TCP super-segment
 * (up to 64 KB) goes to the sink as one packet. Write: the header comes from the stack's TxMeta
 * (GSO and NEEDS_CSUM as asked, all zeroes for a plain packet), written into the packet's headroom
 * when the stack left some (`TxMeta.headroom` >= `txHeadroom`), else the packet is copied behind it.
 */
import { endianness } from 'node:os';
import type { TxMeta } from '../stack/transport.js';
import type { Device, DeviceOffload, DeviceStats, PacketSink } from './device.js';
import { newDeviceStats } from './device.js';
import { TunError } from './errors.js';
import { Errno, errnoName, libc, POLLERR, POLLHUP, POLLIN, POLLNVAL, type PollWatch } from './libc.js';
import { FRAME_GSO, FRAME_UNDELIVERABLE, TunFrame } from './tun-frame.js';
import { openTunHandle, type TunHandle } from './tun-open.js';
import { checkTunOptions, type ReadMode, type TunOptions } from './tun-options.js';
import { type ReadRingOwner, TunReadRing, TunWriteRing } from './tun-rings.js';
import { DEFAULT_URING_ENTRIES } from './uring.js';
import { VnetGso } from './vnet.js';

export {
  DEFAULT_BATCH,
  type IoMode,
  type ReadMode,
  resolveReadMode,
  type TunOptions,
} from './tun-options.js';

/** The receive buffer: the largest IP packet plus room for the packet-info and virtio-net headers. */
const RX_BUFFER_BYTES = 65536 + 64;
/** The largest IP packet. */
const MAX_PACKET = 65535;
/** Consecutive failed reads or polls after which reading is declared broken (no busy loop). */
const MAX_CONSECUTIVE_ERRORS = 64;
/** Host byte order, for the native structs (pollfd, the eventfd counter). */
const LITTLE = endianness() === 'LE';

/** Opens (creates or attaches) a TUN device; throws a TunError with one actionable line on failure. */
export function openTun(opts: TunOptions = {}): TunDevice {
  const { readMode, batch, ioMode } = checkTunOptions(opts);
  const dev = new TunDevice(openTunHandle(opts), readMode, batch, opts.onError);
  if (ioMode !== 'plain') {
    const why = dev.useUring();
    if (why !== undefined && ioMode === 'uring') {
      void dev.close();
      throw new TunError('TUN_UNSUPPORTED', `TUN ${dev.name}: ioMode 'uring': ${why}`, undefined);
    }
  }
  return dev;
}

/** A TUN device opened by openTun(): the Device over a non-blocking /dev/net/tun fd. */
export class TunDevice implements Device {
  /** The interface name (the kernel's, e.g. `tun0`). */
  readonly name: string;
  /** The interface MTU read at open time. */
  readonly mtu: number;
  /** The TUN flags (IFF_*) the fd is attached with. */
  readonly flags: number;
  /** What the kernel granted: a virtio-net header, TSO, checksum offload. */
  readonly offload: DeviceOffload;
  /** Why offload is less than asked for, when it is (e.g. `TUNSETOFFLOAD ... refused (EINVAL)`). */
  readonly offloadNote: string | undefined;
  /** Bytes written in front of each packet (the virtio-net header and packet info): see Device.txHeadroom. */
  readonly txHeadroom: number;
  /** The read strategy. */
  readonly readMode: Exclude<ReadMode, 'auto'>;
  /** Counters. */
  readonly stats: DeviceStats = newDeviceStats();
  /** The error that stopped reading, if one did. */
  readError: TunError | undefined;

  #fd: number;
  #eventFd: number;
  /** What goes before each packet on the fd (struct tun_pi, the virtio-net header). */
  readonly #frame: TunFrame;
  /** Bytes of that prefix. */
  readonly #prefix: number;
  readonly #batch: number;
  readonly #onError: ((err: TunError) => void) | undefined;
  readonly #rxBuf = new Uint8Array(RX_BUFFER_BYTES);
  #txBuf: Uint8Array | undefined;
  /** struct pollfd[2]: { int fd; short events; short revents } for the tun fd and the eventfd. */
  readonly #pollFds = new Uint8Array(16);
  readonly #pollView = new DataView(this.#pollFds.buffer);
  readonly #wake = new Uint8Array(8);
  #sink: PacketSink | undefined;
  /** An async poll or read is running on the thread pool: fds must stay open until it returns. */
  #inFlight = false;
  #immediate: NodeJS.Immediate | undefined;
  /** 'uv-poll': the loop's readiness watch on the fd. */
  #watch: PollWatch | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  #errorRun = 0;
  /** Batched writes and reads through io_uring, when in use (see useUring). */
  #writeRing: TunWriteRing | undefined;
  #readRing: TunReadRing | undefined;
  /** Inside #drain (packets being handed to the sink). */
  #draining = false;
  /** Why io_uring is not used when it was wanted (e.g. `io_uring_setup refused (EPERM)`). */
  ioNote: string | undefined;

  /** Wraps an opened handle; use openTun(). */
  constructor(
    handle: TunHandle,
    readMode: Exclude<ReadMode, 'auto'>,
    batch: number,
    onError?: (err: TunError) => void,
  ) {
    this.name = handle.name;
    this.mtu = handle.mtu;
    this.flags = handle.flags;
    this.offload = Object.freeze({ ...handle.offload });
    this.offloadNote = handle.offloadNote;
    this.#fd = handle.fd;
    this.#eventFd = handle.eventFd;
    this.#frame = new TunFrame(handle.flags, handle.offload.vnetHdr, handle.offload.csum);
    this.#prefix = this.#frame.prefix;
    this.txHeadroom = this.#prefix;
    this.readMode = readMode;
    this.#batch = batch;
    this.#onError = onError;
    new DataView(this.#wake.buffer).setBigUint64(0, 1n, LITTLE);
    this.#pollView.setInt32(0, handle.fd, LITTLE);
    this.#pollView.setInt16(4, POLLIN, LITTLE);
    this.#pollView.setInt32(8, handle.eventFd, LITTLE);
    this.#pollView.setInt16(12, POLLIN, LITTLE);
  }

  /** How packets are read and written: 'uring' (batched) or 'plain' (one system call each). */
  get ioMode(): 'uring' | 'plain' {
    return this.#writeRing?.active === true ? 'uring' : 'plain';
  }

  /** Reads go through the io_uring (several per system call) rather than one read() each. */
  get readsThroughUring(): boolean {
    return this.#readRing?.active === true;
  }

  /**
   * Switches reads and writes to io_uring batches (`entries`: the most packets per submit);
   * returns why not when the kernel refuses (the device stays on read() and write()). Called by
   * openTun() unless ioMode is 'plain'.
   */
  useUring(entries = DEFAULT_URING_ENTRIES): string | undefined {
    if (this.#writeRing !== undefined) return undefined;
    const broken = (note: string): void => {
      this.ioNote = note;
    };
    const w = TunWriteRing.open(this.#fd, this.stats, this.#prefix, broken, entries);
    if (typeof w === 'string') {
      this.ioNote = w;
      return w;
    }
    this.#writeRing = w;
    // The largest packet a read can return: a TSO super-segment, else the MTU (at least 1500).
    const maxPacket = this.offload.tso ? MAX_PACKET : Math.max(this.mtu, 1500);
    const r = TunReadRing.open(
      this.#fd,
      maxPacket,
      this.#prefix,
      this.#batch,
      this.stats,
      this.#ringOwner,
      entries,
    );
    if (typeof r === 'string') this.ioNote = `reads: ${r}`;
    else this.#readRing = r;
    return undefined;
  }

  /** The TUN file descriptor (-1 once closed), e.g. to hand over to a child process. */
  get fd(): number {
    return this.#fd;
  }

  /** Starts delivering received packets to `sink`. */
  start(sink: PacketSink): void {
    if (this.#sink !== undefined) throw new Error(`TUN ${this.name} is already started`);
    if (this.#closing) throw new Error(`TUN ${this.name} is closed`);
    this.#sink = sink;
    if (this.readMode === 'drain') this.#armPoll();
    else if (this.readMode === 'uv-poll') this.#watch = libc().watchReadable(this.#fd, this.#onReadable);
    else this.#readAsync();
  }

  /**
   * Writes one IP packet synchronously; false when dropped (EAGAIN/ENOBUFS) or failed, counted
   * either way. With a virtio-net header, `meta` says what offload the packet asks for (the stack
   * asks only for what `offload` grants) and whether the header may go into its headroom.
   */
  write(packet: Uint8Array, meta?: TxMeta): boolean {
    const stats = this.stats;
    const prefix = this.#prefix;
    if (this.#fd < 0 || packet.length === 0 || packet.length > MAX_PACKET) {
      stats.txErrors++;
      return false;
    }
    const gso =
      this.#frame.vnetAt >= 0 && meta !== undefined && meta.gsoType !== VnetGso.NONE && this.offload.tso;
    const ring = this.#writeRing;
    if (ring !== undefined) {
      const slot = ring.slot(packet.length + prefix);
      if (slot !== undefined) {
        slot.set(packet, prefix);
        if (prefix !== 0) this.#frame.writePrefix(slot, packet, meta);
        ring.commit(slot.length, gso);
        return true;
      }
      // Written directly: what was queued goes first, in order.
      ring.flush();
    }
    let buf = packet;
    let len = packet.length;
    if (prefix !== 0) {
      len += prefix;
      if (meta !== undefined && meta.headroom >= prefix && packet.byteOffset >= prefix) {
        // The stack left room: the headers go right in front of the packet, no copy.
        buf = new Uint8Array(packet.buffer, packet.byteOffset - prefix, len);
      } else {
        buf = this.#txBuf ??= new Uint8Array(MAX_PACKET + prefix);
        buf.set(packet, prefix);
      }
      this.#frame.writePrefix(buf, packet, meta);
    }
    const c = libc();
    const n = c.write(this.#fd, buf, len);
    if (n === len) {
      stats.txPackets++;
      stats.txBytes += packet.length;
      if (gso) stats.txGsoPackets++;
      return true;
    }
    const errno = n < 0 ? c.errno() : 0;
    if (errno === Errno.EAGAIN || errno === Errno.ENOBUFS) stats.txDropped++;
    else stats.txErrors++;
    return false;
  }

  /** Stops reading, wakes and waits for the in-flight poll/read, then closes the fds. Idempotent. */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closing = true;
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    this.#unwatch();
    if (this.#inFlight) libc().write(this.#eventFd, this.#wake, 8);
    else if (!this.#draining) this.#release();
    // (A close() from a packet's handler inside a drain: the drain releases when it ends.)
    return this.#closed;
  }

  /** Closes the fds and resolves close(); runs once nothing is in flight. Idempotent. */
  #release(): void {
    const c = libc();
    this.#writeRing?.close();
    this.#writeRing = undefined;
    this.#readRing?.close();
    this.#readRing = undefined;
    if (this.#fd >= 0) c.close(this.#fd);
    if (this.#eventFd >= 0) c.close(this.#eventFd);
    this.#fd = -1;
    this.#eventFd = -1;
    this.#resolveClosed?.();
  }

  /** Runs when the async call returns: false (and the fds released) if closing meanwhile. */
  #settle(): boolean {
    this.#inFlight = false;
    if (!this.#closing) return true;
    this.#release();
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
      else if (this.readMode === 'drain') this.#drain();
      else this.#readAsync();
    }
  };

  #unwatch(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }

  /** 'uv-poll': the fd is readable. Level-triggered, so an unfinished drain resumes next loop turn. */
  readonly #onReadable = (status: number): void => {
    if (this.#closing || this.readError !== undefined) return;
    if (status < 0) this.#fatal(`uv_poll failed (libuv status ${status})`, undefined);
    else this.#drain();
  };

  readonly #continueDrain = (): void => {
    this.#immediate = undefined;
    if (!this.#closing) this.#drain();
  };

  /** Reads until EAGAIN or `batch` packets, then flushes and re-arms. */
  #drain(): void {
    const sink = this.#sink!;
    this.stats.rxWakeups++;
    this.#draining = true;
    let delivered = 0;
    let more: boolean;
    try {
      const ring = this.#readRing;
      if (ring?.active === true) {
        const r = ring.drain(this.#batch);
        delivered = ring.delivered;
        more = r !== 'empty';
        if (r !== 'empty' && r !== 'more') this.ioNote = r;
      } else {
        // One read() per packet; every attempt counts against the budget, so a run of EINTRs
        // cannot spin here either.
        more = true;
        for (let i = 0; i < this.#batch && !this.#closing; i++) {
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
    if (this.#closing) this.#release();
    else if (this.readError !== undefined || this.#watch !== undefined) return;
    else if (more) this.#immediate = setImmediate(this.#continueDrain);
    else this.#armPoll();
  }

  /** The read ring's view of this device: its packets and failures are handled as read()'s are. */
  readonly #ringOwner: ReadRingOwner = {
    packet: (buf, start, end) => {
      this.#errorRun = 0;
      this.#deliver(this.#sink!, buf, start, end);
    },
    emptyRead: () => this.#emptyRead(),
    readFailed: (errno) => this.#readFailed(errno),
    stopped: () => this.#closing || this.readError !== undefined,
  };

  /**
   * One synchronous read: delivers a packet and returns 1, returns 0 when there is nothing to read
   * (EAGAIN) or reading stopped, -1 after a counted, retryable error.
   */
  #readOnce(sink: PacketSink): number {
    const c = libc();
    const r = c.read(this.#fd, this.#rxBuf, RX_BUFFER_BYTES);
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
    this.stats.rxErrors++;
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
    this.stats.rxErrors++;
    return -1;
  }

  /** Hands the packet read into `buf[start, end)` (its prefix first) to the sink. */
  #deliver(sink: PacketSink, buf: Uint8Array, start: number, end: number): void {
    const stats = this.stats;
    const got = this.#frame.receive(buf, start);
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
    libc().readAsync(this.#fd, this.#rxBuf, RX_BUFFER_BYTES, this.#onReadAsync);
  }

  readonly #onReadAsync = (err: unknown, r: number): void => {
    if (!this.#settle()) return;
    if (err != null) return void this.#fatal(`read failed: ${String(err)}`, undefined);
    const sink = this.#sink!;
    if (r > this.#prefix) {
      this.#errorRun = 0;
      this.stats.rxWakeups++;
      this.#deliver(sink, this.#rxBuf, 0, r);
      sink.flush();
      if (this.#closing) this.#release();
      else this.#readAsync();
      return;
    }
    // errno is lost with an async call: a synchronous read learns it (or finds a packet after all).
    const got = this.#readOnce(sink);
    if (got === 1) sink.flush();
    if (this.#closing) this.#release();
    else if (this.readError !== undefined) return;
    else if (got === 0) this.#armPoll();
    else this.#readAsync();
  };

  /** Stops reading for good: counts, records and reports the error. Returns 0 for #readOnce. */
  #fatal(why: string, errno: string | undefined): 0 {
    this.stats.rxErrors++;
    const err = new TunError('TUN_READ', `TUN ${this.name}: reading stopped: ${why}`, errno);
    // The fds stay open until close() (writes may still be attempted), but nothing reads any more.
    this.readError = err;
    this.#unwatch();
    if (this.#onError !== undefined) this.#onError(err);
    else process.emitWarning(err);
    return 0;
  }
}
