/**
 * Classic pcap capture files (https://www.tcpdump.org/manpages/pcap-savefile.5.html; IETF draft
 * draft-ietf-opsawg-pcap): a 24-byte file header, then per packet a 16-byte record header and the
 * bytes. Written little-endian (the magic 0xa1b2c3d4 tells readers the order), microsecond
 * timestamps, LINKTYPE_RAW (101: each record is a bare IPv4 or IPv6 packet).
 *
 * Records go into a preallocated buffer that is written out asynchronously when it fills or every
 * `flushIntervalMs`; two buffers alternate, so memory stays bounded at 2 × `bufferBytes`: when the
 * disk falls behind, records are dropped and counted rather than queued without limit.
 */
import { closeSync, fsyncSync, openSync, write, writeSync } from 'node:fs';
import type { Device, DeviceOffload, DeviceStats, PacketSink } from './device.js';
import { NO_OFFLOAD } from './device.js';

/** The pcap magic number for microsecond timestamps. */
export const PCAP_MAGIC = 0xa1b2c3d4;
/** LINKTYPE_RAW: raw IPv4/IPv6 packets, no link header. */
export const LINKTYPE_RAW = 101;
/** The snapshot length written in the header: whole packets. */
export const PCAP_SNAPLEN = 65535;
/** Size of the file header. */
export const PCAP_FILE_HEADER_BYTES = 24;
/** Size of each record header. */
export const PCAP_RECORD_HEADER_BYTES = 16;

/** Options of a PcapWriter. */
export interface PcapWriterOptions {
  /** Bytes buffered before a write is issued; two such buffers at most. Default 1 MiB. */
  bufferBytes?: number;
  /** Longest time a record waits in the buffer, in ms. Default 100. */
  flushIntervalMs?: number;
  /** Microseconds since the Unix epoch; injectable for tests. Default: the wall clock at µs resolution. */
  nowUs?: () => number;
}

/** The 24-byte pcap file header (little-endian, version 2.4, snaplen 65535, LINKTYPE_RAW). */
export function pcapFileHeader(): Uint8Array {
  const b = new Uint8Array(PCAP_FILE_HEADER_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, PCAP_MAGIC, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setInt32(8, 0, true); // thiszone: timestamps are UTC
  v.setUint32(12, 0, true); // sigfigs
  v.setUint32(16, PCAP_SNAPLEN, true);
  v.setUint32(20, LINKTYPE_RAW, true);
  return b;
}

/** Writes the 16-byte record header at `o`: ts_sec, ts_usec, incl_len, orig_len (little-endian). */
export function writeRecordHeader(b: Uint8Array, o: number, tsUs: number, incl: number, orig: number): void {
  const sec = Math.floor(tsUs / 1e6);
  const usec = tsUs - sec * 1e6;
  putU32le(b, o, sec);
  putU32le(b, o + 4, usec);
  putU32le(b, o + 8, incl);
  putU32le(b, o + 12, orig);
}

function putU32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

/** Microseconds since the epoch from the monotonic clock anchored once to the wall clock. */
function wallClockUs(): () => number {
  const baseUs = Date.now() * 1000;
  const baseNs = process.hrtime.bigint();
  return () => baseUs + Math.floor(Number(process.hrtime.bigint() - baseNs) / 1000);
}

/** Appends packets to a pcap file with buffered, asynchronous, bounded writes. */
export class PcapWriter {
  /** The file written. */
  readonly path: string;
  /** Records written to the buffer. */
  records = 0;
  /** Records dropped because both buffers were full (the disk fell behind). */
  dropped = 0;
  /** The first write error, after which nothing more is written. */
  error: Error | undefined;

  #fd: number;
  readonly #nowUs: () => number;
  readonly #bufferBytes: number;
  #buf: Uint8Array;
  /** The other buffer, undefined while its write is in flight. */
  #spare: Uint8Array | undefined;
  #used = 0;
  #writing: Promise<void> | undefined;
  readonly #timer: NodeJS.Timeout;
  #closed: Promise<void> | undefined;

  /** Creates (truncates) `path` and writes the file header synchronously. */
  constructor(path: string, opts: PcapWriterOptions = {}) {
    this.path = path;
    this.#nowUs = opts.nowUs ?? wallClockUs();
    this.#bufferBytes = Math.max(opts.bufferBytes ?? 1 << 20, PCAP_RECORD_HEADER_BYTES + PCAP_SNAPLEN);
    this.#buf = new Uint8Array(this.#bufferBytes);
    this.#spare = new Uint8Array(this.#bufferBytes);
    this.#fd = openSync(path, 'w', 0o644);
    writeSync(this.#fd, pcapFileHeader());
    this.#timer = setInterval(() => this.flush(), opts.flushIntervalMs ?? 100);
    this.#timer.unref();
  }

  /** Appends one packet (copied; at most 65535 bytes kept) stamped now. */
  record(packet: Uint8Array): void {
    if (this.#closed !== undefined || this.error !== undefined) return;
    const incl = Math.min(packet.length, PCAP_SNAPLEN);
    const need = PCAP_RECORD_HEADER_BYTES + incl;
    if (this.#used + need > this.#bufferBytes) {
      this.flush();
      if (this.#used + need > this.#bufferBytes) {
        this.dropped++;
        return;
      }
    }
    writeRecordHeader(this.#buf, this.#used, this.#nowUs(), incl, packet.length);
    this.#buf.set(packet.subarray(0, incl), this.#used + PCAP_RECORD_HEADER_BYTES);
    this.#used += need;
    this.records++;
  }

  /** Starts writing the buffered records, if any and if the other buffer is free. */
  flush(): void {
    if (this.#used === 0 || this.#spare === undefined || this.#fd < 0) return;
    const full = this.#buf;
    const len = this.#used;
    this.#buf = this.#spare;
    this.#spare = undefined;
    this.#used = 0;
    this.#writing = new Promise((resolve) => {
      const writeFrom = (offset: number): void => {
        write(this.#fd, full, offset, len - offset, null, (err, n) => {
          if (err === null && offset + n < len) return writeFrom(offset + n);
          if (err !== null) this.error ??= err;
          this.#spare = full;
          this.#writing = undefined;
          resolve();
        });
      };
      writeFrom(0);
    });
  }

  /** Writes everything buffered and closes the file. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      await this.#writing;
      this.flush();
      await this.#writing;
      if (this.#fd >= 0) {
        try {
          fsyncSync(this.#fd);
        } catch {
          // Not every file system supports fsync (e.g. some FUSE mounts); the data is written.
        }
        closeSync(this.#fd);
        this.#fd = -1;
      }
    })();
    return this.#closed;
  }
}

/** A Device that records both directions of another device to a pcap file. */
export class PcapDevice implements Device {
  /** The capture. */
  readonly writer: PcapWriter;
  readonly #inner: Device;

  /** Wraps `inner`, capturing to `path` (created or truncated now). */
  constructor(inner: Device, path: string, opts: PcapWriterOptions = {}) {
    this.#inner = inner;
    this.writer = new PcapWriter(path, opts);
  }

  /** The wrapped device's name. */
  get name(): string {
    return this.#inner.name;
  }

  /**
   * No offload, whatever the wrapped device grants: the stack then sends plain packets, which the
   * capture records as they go out (the wrapped TUN still reads super-segments when it has TSO).
   */
  readonly offload: DeviceOffload = NO_OFFLOAD;

  /** The wrapped device's write mode. */
  get ioMode(): 'uring' | 'plain' | undefined {
    return this.#inner.ioMode;
  }

  /** The wrapped device's io note. */
  get ioNote(): string | undefined {
    return this.#inner.ioNote;
  }

  /** The wrapped device's MTU. */
  get mtu(): number {
    return this.#inner.mtu;
  }

  /** The wrapped device's counters. */
  get stats(): DeviceStats {
    return this.#inner.stats;
  }

  /** Starts the wrapped device, recording each received packet before the sink sees it. */
  start(sink: PacketSink): void {
    const writer = this.writer;
    this.#inner.start({
      receive(packet, rxFlags) {
        writer.record(packet);
        sink.receive(packet, rxFlags);
      },
      flush() {
        sink.flush();
      },
    });
  }

  /** Writes through the wrapped device, recording the packet when the device took it. */
  write(packet: Uint8Array): boolean {
    const ok = this.#inner.write(packet);
    if (ok) this.writer.record(packet);
    return ok;
  }

  /** Closes the wrapped device, then flushes and closes the capture. */
  async close(): Promise<void> {
    try {
      await this.#inner.close();
    } finally {
      await this.writer.close();
    }
  }
}
