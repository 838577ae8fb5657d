/** Types of tcp-server.mjs: the server roles shared by the stack and the kernel baseline. */
import type { Duplex } from 'node:stream';

/** What serve() reports for one connection once both directions ended (or it failed). */
export interface ServeRecord {
  /** The role (the local port). */
  port: number;
  /** The client's port. */
  remotePort: number | undefined;
  /** sha256 (hex) of the payload received (after a source's header). */
  received: string;
  receivedBytes: number;
  /** sha256 (hex) of what was sent. */
  sent: string;
  sentBytes: number;
  /** Bytes sent after the peer's FIN arrived. */
  sentAfterPeerEnd: number;
  /** Bytes received after our end() (our FIN). */
  receivedAfterOurEnd: number;
  /** The socket error code, when it failed. */
  error: string | undefined;
}

/** A socket serve() can drive: net.Socket or the stack's TcpSocket. */
export type ServeSocket = Duplex & { readonly remotePort?: number | undefined };

/** Bytes of the header a source reads first (seed u32 BE, bytes u32 BE). */
export const HEADER_BYTES: number;

/** A deterministic byte stream (xorshift32 words from a seed). */
export class Pattern {
  constructor(seed: number);
  /** The next `n` bytes. */
  take(n: number): Buffer;
}

/** The sha256 (hex) of the first `bytes` of pattern(seed). */
export function patternHash(seed: number, bytes: number): string;

/** The 8-byte source header. */
export function header(seed: number, bytes: number): Buffer;

/** Writes `bytes` of `pattern` with backpressure; false if the socket closed first. */
export function writePattern(
  socket: ServeSocket,
  pattern: Pattern,
  bytes: number,
  onChunk?: (chunk: Buffer) => void,
): Promise<boolean>;

/** Options of serve(). */
export interface ServeOptions {
  /** Hash what is sent and received (default true); false leaves the record's hashes empty. */
  hash?: boolean;
}

/** Serves one accepted connection in the role of `port`; `done(record)` once it is over. */
export function serve(
  socket: ServeSocket,
  port: number,
  done?: (record: ServeRecord) => void,
  options?: ServeOptions,
): void;
