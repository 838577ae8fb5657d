/**
 * Reads of upstream sockets without a new buffer per read.
 *
 * Node reads a socket into a freshly allocated ArrayBuffer of up to 64 KiB per read. On a
 * download through the relay that is hundreds of MB/s of short-lived external memory, and V8
 * answers it with back-to-back mark-compact collections (measured: about 25 per second on one
 * stream through danted) and glibc with page faults. Sockets dialed by tcpConnect therefore read
 * through net's documented `onread` option into one shared scratch buffer (per thread), and a
 * ReadTap decides where each read goes:
 * - by default (stream mode) it pushes a copy into the socket's own readable side, so handshakes
 *   and any ordinary reader ('data', 'readable', pipe) see a normal socket;
 * - once a sink is attached (the relay, after the handshake), each read is handed to the sink,
 *   which must copy what it keeps before it returns (the relay copies into the TCP send buffer,
 *   whose blocks are pooled) and returns false to stop reading until the socket is resumed.
 * Sharing one scratch buffer is safe because a read's callback runs before the next read of any
 * socket on the thread, and nothing keeps a view of the scratch past its callback. An idle socket
 * holds no buffer at all.
 */
import type * as net from 'node:net';

/** Bytes per read (Node's own read size). */
export const SCRATCH_BYTES = 64 * 1024;

/** The scratch buffer every tapped socket of this thread reads into. */
let scratch: Buffer | undefined;

const TAP = Symbol('readTap');

/** Where a tapped socket's reads go once a sink is attached; false stops reading (backpressure). */
export type ReadSink<T> = (this: T, bytes: Uint8Array) => boolean;

/** A tapped socket. */
type Tapped = net.Socket & { [TAP]?: ReadTap };

/** The read routing of one tapped socket (see the module comment). */
export class ReadTap {
  #socket: net.Socket | undefined;
  #sink: ReadSink<unknown> | undefined;
  #sinkThis: unknown;

  /** The `onread` option to create a socket with (net.connect, new net.Socket). */
  readonly onread: { buffer: Buffer; callback: (n: number, buf: Buffer) => boolean };

  constructor() {
    scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
    this.onread = { buffer: scratch, callback: (n, buf) => this.#read(n, buf) };
  }

  /** Ties the tap to the socket created with its `onread`. */
  bind(socket: net.Socket): net.Socket {
    this.#socket = socket;
    (socket as Tapped)[TAP] = this;
    return socket;
  }

  /** Sends every later read to `sink` (called with `self` as `this`) instead of the socket. */
  attach<T>(sink: ReadSink<T>, self: T): void {
    this.#sink = sink as ReadSink<unknown>;
    this.#sinkThis = self;
  }

  #read(n: number, buf: Buffer): boolean {
    const bytes = buf.subarray(0, n);
    if (this.#sink !== undefined) return this.#sink.call(this.#sinkThis, bytes);
    return this.#socket?.push(Buffer.from(bytes)) ?? false;
  }
}

/** The tap of a socket dialed with one, if it was. */
export function readTapOf(socket: net.Socket): ReadTap | undefined {
  return (socket as Tapped)[TAP];
}
