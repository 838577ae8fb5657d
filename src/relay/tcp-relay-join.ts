/**
 * How the TCP relay joins a connection's two sockets: the record of a relayed connection, set on
 * both sockets, and the listeners shared by every connection (an EventEmitter calls a listener
 * with `this` = the emitter), rather than a dozen closures per connection.
 */
import type * as net from 'node:net';
import { readTapOf } from '../proxy/read-tap.js';
import type { TcpRequest } from '../runtime.js';
import type { TcpSocket } from '../tcp-socket.js';

/** One connection being relayed. */
export interface Relayed {
  readonly tcp: TcpSocket;
  readonly upstream: net.Socket;
  readonly client: string;
  readonly dst: string;
  readonly openedAt: number;
  /** Last time the byte counters moved (sweep clock). */
  activeAt: number;
  /** Sum of the byte counters at the last sweep. */
  activity: number;
  /** The client sent its FIN. */
  clientEnded: boolean;
  /** The upstream sent its FIN. */
  upstreamEnded: boolean;
  /** Sockets not yet closed (2, then 1, then 0: finished). */
  pipes: number;
  /** Why it ends; the first cause wins. */
  reason: string | undefined;
}

/**
 * The record of a connection, set on both of its sockets: the per-connection listeners are then
 * shared functions (an EventEmitter calls a listener with `this` = the emitter) rather than a
 * dozen closures per connection (pipe() alone allocates ten per direction), which matters with
 * thousands of idle connections held.
 */
export const RELAYED = Symbol('relayed');

/** A socket joined by the relay. */
export type Joined = (TcpSocket | net.Socket) & { [RELAYED]?: Relayed };

/** On a connection accepted before its dial completed: its request, whose onAbandon stops the dial. */
export const DIALING = Symbol('dialing');

/** A connection accepted before its dial completed. */
export type Early = TcpSocket & { [DIALING]?: TcpRequest };

/** 'close' of a connection accepted before its dial completed: the client left, stop the dial. */
export function onEarlyClose(this: Early): void {
  this[DIALING]?.onAbandon?.();
}

/** The other socket of `socket`'s connection. */
function peerOf(c: Relayed, socket: Joined): TcpSocket | net.Socket {
  return socket === c.tcp ? c.upstream : c.tcp;
}

/**
 * 'data': forward to the other side; pause when it pushes back (what pipe() does). A client chunk
 * that is a view of a pooled receive block is recycled once the proxy's socket has taken it (its
 * write callback), so a busy upload reuses its blocks instead of allocating new ones.
 */
function onData(this: Joined, chunk: Buffer): void {
  const c = this[RELAYED]!;
  const dst = peerOf(c, this);
  if (dst.destroyed) return;
  const tcp = c.tcp;
  const taken =
    this === tcp && tcp.recyclable(chunk) ? dst.write(chunk, () => tcp.recycle(chunk)) : dst.write(chunk);
  if (!taken) this.pause();
}

/**
 * A read of a tapped upstream (read-tap.ts), in memory reused once this returns: copied straight
 * into the client's send buffer; what does not fit is queued through write() (a copy), whose
 * backpressure stops the reads until the client side drains, as with onData.
 */
function onUpstreamRead(this: Relayed, bytes: Uint8Array): boolean {
  const tcp = this.tcp;
  if (tcp.destroyed) return true;
  const n = tcp.offer(bytes);
  if (n === bytes.length) return true;
  return tcp.write(Buffer.from(bytes.subarray(n)));
}

/** 'drain': the other side took what was queued; resume it. */
function onDrain(this: Joined): void {
  const c = this[RELAYED]!;
  peerOf(c, this).resume();
}

/** 'end' (a FIN): end the other side's writing (half-close travels as end()). */
function onEnd(this: Joined): void {
  const c = this[RELAYED]!;
  if (this === c.tcp) c.clientEnded = true;
  else c.upstreamEnded = true;
  const dst = peerOf(c, this);
  if (!dst.destroyed) dst.end();
}

/** 'error' on the client side: the first error names the cause; reset the upstream at once. */
function onClientError(this: Joined, err: unknown): void {
  const c = this[RELAYED]!;
  c.reason ??= `client-${errorCode(err)}`;
  reset(c.upstream);
}

/** 'error' on the upstream: the first error names the cause; reset the client at once. */
function onUpstreamError(this: Joined, err: unknown): void {
  const c = this[RELAYED]!;
  c.reason ??= `upstream-${errorCode(err)}`;
  if (!c.tcp.destroyed) c.tcp.destroy();
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

export function ignore(): void {}

/** Resets a socket (RST) when it can, else destroys it (a test double or wrapped stream). */
export function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

/** Pipes `c`'s sockets into each other; `onClose` hears both sockets' 'close'. */
export function join(c: Relayed, onClose: (this: Joined) => void): void {
  // Each direction is piped by hand with shared listeners (see RELAYED): 'data' writes to the
  // other side and a false write() pauses the source until that side's 'drain' (backpressure);
  // 'end' ends the other side (FIN ↔ FIN). The first error names the cause and resets the other
  // side at once (a client RST becomes an upstream RST, an upstream RST a client RST), and the
  // connection is over once both sockets have closed. Not pipeline(): it allocates an
  // AbortController per stream (~150 µs per connection in a profile); not pipe(): ten closures
  // and two once() wrappers per direction, kept for as long as the connection lives.
  const { tcp, upstream } = c;
  const joinedTcp = tcp as Joined;
  const joinedUpstream = upstream as Joined;
  joinedTcp[RELAYED] = c;
  joinedUpstream[RELAYED] = c;
  tcp.on('error', onClientError);
  upstream.on('error', onUpstreamError);
  tcp.on('end', onEnd);
  upstream.on('end', onEnd);
  tcp.on('close', onClose);
  upstream.on('close', onClose);
  tcp.on('drain', onDrain);
  upstream.on('drain', onDrain);
  tcp.on('data', onData);
  const tap = readTapOf(upstream);
  if (tap === undefined) {
    upstream.on('data', onData);
    return;
  }
  // A tapped upstream: bytes that came after the handshake and before this join wait in the
  // socket's own buffer; later reads go straight to the client's send buffer.
  for (
    let chunk = upstream.read() as Buffer | null;
    chunk !== null;
    chunk = upstream.read() as Buffer | null
  ) {
    tcp.write(chunk);
  }
  tap.attach(onUpstreamRead, c);
  if (tcp.writableNeedDrain) upstream.pause();
  else upstream.resume();
}
