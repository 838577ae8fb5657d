/**
 * A terminated TCP connection as a Node Duplex that behaves like net.Socket: addresses,
 * bytesRead/bytesWritten, setNoDelay, setKeepAlive, end() = FIN, destroy() = RST, a peer RST
 * surfaces as ECONNRESET. Backpressure is real both ways: a write's callback fires when the core
 * took the bytes into its send buffer, and a reader that stops reading stops the pull from the
 * core, whose receive buffer then fills and closes the advertised window.
 */
import { Duplex } from 'node:stream';
import type { TcpConnection } from './stack/tcp/connection.js';
import { TcpEvent } from './stack/tcp/state.js';
import { formatAddress } from './stack/wire/address.js';

/** What the socket needs from the runtime that drives its stack. */
export interface SocketDriver {
  /** Refreshes the core's clock before an owner call. */
  enter(): void;
  /** Schedules a flush of the core's output and event delivery soon (batched). */
  kick(): void;
}

/** The largest chunk pulled from the core per read. */
const READ_CHUNK = 256 * 1024;

/** An Error carrying a Node-style code, as net.Socket raises. */
export function socketError(code: string, syscall: string): NodeJS.ErrnoException {
  const err = new Error(`${syscall} ${code}`) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = syscall;
  err.errno = code === 'ECONNRESET' ? -104 : code === 'ETIMEDOUT' ? -110 : -103;
  return err;
}

/** One TCP connection terminated by the stack, as a stream. */
export class TcpSocket extends Duplex {
  /** The client's address (the source of its SYN). */
  readonly remoteAddress: string;
  /** The client's port. */
  readonly remotePort: number;
  /** 'IPv4' or 'IPv6'. */
  readonly remoteFamily: 'IPv4' | 'IPv6';
  /** The address the client connected to, which the stack impersonates. */
  readonly localAddress: string;
  /** The port the client connected to. */
  readonly localPort: number;
  private reading = false;
  private pendingChunk: Uint8Array | undefined;
  private pendingCallback: ((error?: Error | null) => void) | undefined;
  private readEnded = false;
  private written = 0;
  private read_ = 0;

  constructor(
    /** The core connection (exposed for diagnostics). */
    readonly connection: TcpConnection,
    private readonly driver: SocketDriver,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 64 * 1024 });
    connection.owner = this;
    this.remoteAddress = formatAddress(connection.remoteAddress);
    this.remotePort = connection.remotePort;
    this.remoteFamily = connection.remoteAddress.length === 4 ? 'IPv4' : 'IPv6';
    this.localAddress = formatAddress(connection.localAddress);
    this.localPort = connection.localPort;
  }

  /** Bytes handed to the reader. */
  get bytesRead(): number {
    return this.read_;
  }

  /** Bytes the core took from the writer. */
  get bytesWritten(): number {
    return this.written;
  }

  /** Disables Nagle's algorithm (true, the default argument) or enables it. */
  setNoDelay(noDelay = true): this {
    this.driver.enter();
    this.connection.setNoDelay(noDelay);
    this.driver.kick();
    return this;
  }

  /** Enables keepalive probes after `initialDelay` ms idle (0 keeps the configured idle time). */
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.driver.enter();
    this.connection.setKeepAlive(enable, initialDelay > 0 ? initialDelay : undefined);
    this.driver.kick();
    return this;
  }

  /** Set for an active open (`StackRuntime.connect`): 'connect' is emitted once established. */
  activeOpen = false;

  /** Delivers core events (called by the runtime after input returns). */
  onCoreEvents(bits: number): void {
    if ((bits & TcpEvent.ESTABLISHED) !== 0 && this.activeOpen) this.emit('connect');
    if ((bits & TcpEvent.WRITABLE) !== 0 && this.pendingChunk !== undefined) this.continueWrite();
    if ((bits & TcpEvent.READABLE) !== 0 && this.reading) this.pull();
    if ((bits & TcpEvent.CLOSED) !== 0) {
      const c = this.connection;
      c.owner = undefined;
      if (this.destroyed) return;
      if (c.error !== undefined) {
        this.destroy(socketError(c.error, 'read'));
        return;
      }
      // A clean close: let the reader see the end of data first.
      if (!this.readEnded && c.readEnded) this.pull();
      if (!this.readEnded || !this.writableFinished) this.destroy();
    }
  }

  /**
   * Gives back a chunk this socket emitted once the reader is done with it: its memory may then
   * carry later data (block-pool.ts). Optional, and only worth a callback for chunks that are
   * `recyclable`; at most once per chunk, which must not be read afterwards. The relay recycles
   * each chunk once the proxy's socket has taken it.
   */
  recycle(chunk: Uint8Array): void {
    this.connection.release(chunk);
  }

  /** `chunk`, emitted by this socket, is memory that `recycle` would let be reused. */
  recyclable(chunk: Uint8Array): boolean {
    return this.connection.releasable(chunk);
  }

  /**
   * Copies `bytes` straight into the connection's send buffer when nothing written earlier is
   * still queued (so the order holds); returns how many bytes it took, 0 when the caller must
   * use write() (queued writes, a full buffer, an ended or closed socket). For a writer whose
   * memory is reused as soon as this returns (the relay's tapped reads, read-tap.ts).
   */
  offer(bytes: Uint8Array): number {
    const c = this.connection;
    if (
      this.writableLength > 0 ||
      this.pendingChunk !== undefined ||
      this.writableCorked > 0 ||
      this.writableEnded ||
      this.destroyed ||
      c.state === 'CLOSED'
    )
      return 0;
    this.driver.enter();
    const n = c.write(bytes, false);
    this.written += n;
    this.driver.kick();
    return n;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const c = this.connection;
    if (c.state === 'CLOSED') {
      callback(socketError(c.error ?? 'EPIPE', 'write'));
      return;
    }
    this.driver.enter();
    const n = c.write(chunk, true);
    this.written += n;
    this.driver.kick();
    if (n === chunk.length) callback();
    else {
      this.pendingChunk = chunk.subarray(n);
      this.pendingCallback = callback;
    }
  }

  private continueWrite(): void {
    const chunk = this.pendingChunk!;
    this.driver.enter();
    const n = this.connection.write(chunk, true);
    this.written += n;
    this.driver.kick();
    if (n === chunk.length) {
      const cb = this.pendingCallback!;
      this.pendingChunk = undefined;
      this.pendingCallback = undefined;
      cb();
    } else if (n > 0) this.pendingChunk = chunk.subarray(n);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.driver.enter();
    this.connection.shutdown();
    this.driver.kick();
    callback();
  }

  override _read(): void {
    this.reading = true;
    this.pull();
  }

  private pull(): void {
    const c = this.connection;
    let took = false;
    this.driver.enter();
    while (this.reading) {
      const chunk = c.read(READ_CHUNK);
      if (chunk === undefined) {
        if (c.readEnded && !this.readEnded) {
          this.readEnded = true;
          this.reading = false;
          this.push(null);
        }
        break;
      }
      took = true;
      this.read_ += chunk.length;
      if (!this.push(chunk)) this.reading = false;
    }
    if (took) this.driver.kick();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const c = this.connection;
    const pending = this.pendingCallback;
    this.pendingChunk = undefined;
    this.pendingCallback = undefined;
    if (c.owner === this) c.owner = undefined;
    // destroy() on a live connection is an abort (RST); after a clean end both ways the core
    // finishes the close on its own (our FIN may still need retransmitting).
    const graceful = error === null && this.readEnded && this.writableFinished;
    if (c.state !== 'CLOSED' && !graceful) {
      this.driver.enter();
      c.abort();
      this.driver.kick();
    }
    pending?.(error ?? socketError('ECONNABORTED', 'write'));
    callback(error);
  }
}
