/**
 * HTTP CONNECT tunnels (RFC 9110 §9.3.6) with Basic proxy authentication (RFC 7617,
 * Proxy-Authorization per RFC 9110 §11.7.2), written directly over net.Socket.
 */
import type * as net from 'node:net';
import { type DialContext, proxyErrorCode, runDial, tcpConnect } from './dial.js';
import type { Destination, Dialer, DialOptions } from './dialer.js';
import { formatDestination } from './dialer.js';
import { DialError, type DialErrorCode } from './errors.js';
import type { ProxyServerConfig } from './url.js';

/** Largest response header we buffer before giving up (EPROXY). */
export const MAX_CONNECT_RESPONSE_BYTES = 16 * 1024;

/** The outcome of a CONNECT response: a status, or a protocol error; `rest` follows the header. */
export type ConnectResponse =
  | { readonly kind: 'status'; readonly status: number; readonly rest: Uint8Array }
  | { readonly kind: 'error'; readonly reason: 'http-header-too-large' | 'http-bad-status-line' };

/** Builds the CONNECT request for `dst`, with Basic credentials when given. */
export function buildConnectRequest(dst: Destination, username?: string, password?: string): string {
  const authority = formatDestination(dst);
  let req = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (username !== undefined) {
    const token = Buffer.from(`${username}:${password ?? ''}`, 'utf8').toString('base64');
    req += `Proxy-Authorization: Basic ${token}\r\n`;
  }
  return `${req}\r\n`;
}

/**
 * Accumulates response bytes until the blank line that ends the header (RFC 9112 §2.1; a bare
 * LF is accepted as a line end, RFC 9112 §2.2), bounded by `maxBytes`.
 */
export class ConnectResponseParser {
  private buf: Uint8Array = new Uint8Array(0);

  constructor(private readonly maxBytes = MAX_CONNECT_RESPONSE_BYTES) {}

  /** Feeds a chunk; returns the outcome once the header is complete, else undefined. */
  push(chunk: Uint8Array): ConnectResponse | undefined {
    const prev = this.buf.length;
    const joined = new Uint8Array(prev + chunk.length);
    joined.set(this.buf, 0);
    joined.set(chunk, prev);
    this.buf = joined;
    // Resume the search a few bytes back so a terminator split across chunks is found.
    const end = findHeaderEnd(joined, Math.max(0, prev - 3));
    if (end < 0) {
      return joined.length > this.maxBytes ? { kind: 'error', reason: 'http-header-too-large' } : undefined;
    }
    if (end > this.maxBytes) return { kind: 'error', reason: 'http-header-too-large' };
    const status = parseStatusLine(joined);
    if (status === undefined) return { kind: 'error', reason: 'http-bad-status-line' };
    return { kind: 'status', status, rest: joined.subarray(end) };
  }
}

/** Index just past the header's final empty line, or -1 if not there yet. */
function findHeaderEnd(b: Uint8Array, from: number): number {
  for (let i = from; i < b.length; i++) {
    if (b[i] !== 0x0a) continue;
    if (b[i + 1] === 0x0a) return i + 2;
    if (b[i + 1] === 0x0d && b[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** `HTTP/1.x SSS reason` (RFC 9112 §4): the status code, or undefined if malformed. */
function parseStatusLine(b: Uint8Array): number | undefined {
  let eol = b.indexOf(0x0a);
  if (eol < 0) return undefined;
  if (eol > 0 && b[eol - 1] === 0x0d) eol--;
  const line = Buffer.from(b.buffer, b.byteOffset, eol).toString('latin1');
  const m = /^HTTP\/1\.[01] ([0-9]{3})(?: .*)?$/.exec(line);
  return m === null ? undefined : Number(m[1]);
}

/**
 * A non-2xx CONNECT status to a dial code: 407 → EPROXYAUTH; 502 (bad gateway) and 503 →
 * EHOSTUNREACH; 504 (gateway timeout) → ETIMEDOUT; any other → ECONNREFUSED.
 */
export function httpStatusCode(status: number): DialErrorCode {
  switch (status) {
    case 407:
      return 'EPROXYAUTH';
    case 502:
    case 503:
      return 'EHOSTUNREACH';
    case 504:
      return 'ETIMEDOUT';
    default:
      return 'ECONNREFUSED';
  }
}

type HttpConfig = ProxyServerConfig<'http'>;

async function handshake(ctx: DialContext, config: HttpConfig, dst: Destination): Promise<net.Socket> {
  const what = formatDestination(dst);
  const socket = await tcpConnect(ctx, config.host, config.port, proxyErrorCode, 'proxy unreachable');
  if (ctx.settled) return socket;
  return new Promise<net.Socket>((resolve, reject) => {
    const parser = new ConnectResponseParser();
    const done = (): void => {
      socket.off('readable', onReadable);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    // 'readable' + read() rather than 'data': once the listener goes the stream is back in its
    // initial state, so the caller's first 'data' listener or pipe() starts the flow.
    const onReadable = (): void => {
      for (
        let chunk = socket.read() as Buffer | null;
        chunk !== null;
        chunk = socket.read() as Buffer | null
      ) {
        const res = parser.push(chunk);
        if (res === undefined) continue;
        done();
        if (res.kind === 'error') {
          reject(new DialError('EPROXY', `http CONNECT to ${what}: ${res.reason}`));
        } else if (res.status < 200 || res.status > 299) {
          reject(new DialError(httpStatusCode(res.status), `http CONNECT to ${what}: status ${res.status}`));
        } else {
          // Bytes the server sent after the header belong to the tunnel.
          if (res.rest.length > 0) socket.unshift(Buffer.from(res.rest));
          resolve(socket);
        }
        return;
      }
    };
    const onError = (err: Error): void => {
      done();
      reject(new DialError('EPROXY', `http CONNECT to ${what}: ${err.message}`, { cause: err }));
    };
    const onClose = (): void => {
      done();
      reject(new DialError('EPROXY', `http CONNECT to ${what}: proxy closed before replying`));
    };
    socket.on('readable', onReadable);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.write(buildConnectRequest(dst, config.username, config.password));
  });
}

/** A dialer that tunnels through an HTTP proxy with CONNECT. */
export function createHttpDialer(config: HttpConfig): Dialer {
  return {
    name: 'http',
    cancellable: true,
    dial(dst: Destination, opts?: DialOptions): Promise<net.Socket> {
      return runDial(opts, formatDestination(dst), (ctx) => handshake(ctx, config, dst));
    },
  };
}
