/**
 * A Linux TUN device (Documentation/networking/tuntap.rst) driven through koffi.
 *
 * Reading ('uv-poll' where koffi offers it, else 'drain'; or 'async-read') is TunReader's
 * (tun-reader.ts): it waits for the fd to become readable without blocking the event loop, reads
 * until EAGAIN or `batch` packets, hands each packet to the sink as a view of its buffer and calls
 * `flush()` once per drain.
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
import type { TxMeta } from '../stack/transport.js';
import type { Device, DeviceOffload, DeviceStats, PacketSink } from './device.js';
import { newDeviceStats } from './device.js';
import { TunError } from './errors.js';
import { Errno, libc } from './libc.js';
import { TunFrame } from './tun-frame.js';
import { openTunHandle, type TunHandle } from './tun-open.js';
import { checkTunOptions, type ReadMode, type TunOptions } from './tun-options.js';
import { TunReader } from './tun-reader.js';
import { TunWriteRing } from './tun-rings.js';
import { DEFAULT_URING_ENTRIES } from './uring.js';
import { VnetGso } from './vnet.js';

export {
  DEFAULT_BATCH,
  type IoMode,
  type ReadMode,
  resolveReadMode,
  type TunOptions,
} from './tun-options.js';

/** The largest IP packet. */
const MAX_PACKET = 65535;

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
  /** Counters. */
  readonly stats: DeviceStats = newDeviceStats();

  #fd: number;
  #eventFd: number;
  /** What goes before each packet on the fd (struct tun_pi, the virtio-net header). */
  readonly #frame: TunFrame;
  /** Bytes of that prefix. */
  readonly #prefix: number;
  readonly #reader: TunReader;
  #txBuf: Uint8Array | undefined;
  #started = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  /** Batched writes through io_uring, when in use (see useUring). */
  #writeRing: TunWriteRing | undefined;
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
    const host = {
      name: this.name,
      stats: this.stats,
      ringBroken: (note: string) => {
        this.ioNote = note;
      },
      release: () => this.#release(),
    };
    this.#reader = new TunReader(host, handle.fd, handle.eventFd, this.#frame, readMode, batch, onError);
  }

  /** The read strategy. */
  get readMode(): Exclude<ReadMode, 'auto'> {
    return this.#reader.mode;
  }

  /** The error that stopped reading, if one did. */
  get readError(): TunError | undefined {
    return this.#reader.error;
  }

  /** How packets are read and written: 'uring' (batched) or 'plain' (one system call each). */
  get ioMode(): 'uring' | 'plain' {
    return this.#writeRing?.active === true ? 'uring' : 'plain';
  }

  /** Reads go through the io_uring (several per system call) rather than one read() each. */
  get readsThroughUring(): boolean {
    return this.#reader.throughRing;
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
    const why = this.#reader.openRing(maxPacket, entries);
    if (why !== undefined) this.ioNote = `reads: ${why}`;
    return undefined;
  }

  /** The TUN file descriptor (-1 once closed), e.g. to hand over to a child process. */
  get fd(): number {
    return this.#fd;
  }

  /** Starts delivering received packets to `sink`. */
  start(sink: PacketSink): void {
    if (this.#started) throw new Error(`TUN ${this.name} is already started`);
    if (this.#closing) throw new Error(`TUN ${this.name} is closed`);
    this.#started = true;
    this.#reader.start(sink);
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
    // (A close() from a packet's handler inside a drain: the reader releases when the drain ends.)
    if (this.#reader.stop()) this.#release();
    return this.#closed;
  }

  /** Closes the fds and resolves close(); runs once nothing is in flight. Idempotent. */
  #release(): void {
    const c = libc();
    this.#writeRing?.close();
    this.#writeRing = undefined;
    this.#reader.closeRing();
    if (this.#fd >= 0) c.close(this.#fd);
    if (this.#eventFd >= 0) c.close(this.#eventFd);
    this.#fd = -1;
    this.#eventFd = -1;
    this.#resolveClosed?.();
  }
}
