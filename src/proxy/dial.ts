/**
 * The shared dial harness: one deadline and one AbortSignal per dial, every socket opened during
 * the dial destroyed on failure, and exactly one settlement.
 */
import { lookup } from 'node:dns/promises';
import * as net from 'node:net';
import { DEFAULT_DIAL_TIMEOUT_MS, type DialOptions } from './dialer.js';
import { DialError, type DialErrorCode, socketErrorCode } from './errors.js';
import { ReadTap } from './read-tap.js';
import { openTcpSocket, type UpstreamSocketOptions, upstreamSocketOptions } from './socket-options.js';

function ignore(): void {}

/** What a protocol step sees while a dial runs. */
export interface DialContext {
  /** Milliseconds left before the deadline (at least 1). */
  remainingMs(): number;
  /** Registers a socket to destroy if the dial fails; returns it. */
  track<T extends net.Socket>(socket: T): T;
  /** True once the dial has failed or been aborted: steps should stop. */
  readonly settled: boolean;
}

/**
 * Runs `attempt` under the timeout and the abort (AbortSignal or DialCancel) of `opts`. On success
 * the socket gets Nagle off; on any failure every tracked socket is destroyed and the error
 * becomes a DialError.
 */
export function runDial(
  opts: DialOptions | undefined,
  what: string,
  attempt: (ctx: DialContext) => Promise<net.Socket>,
): Promise<net.Socket> {
  const timeoutMs = opts?.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  const signal = opts?.signal;
  const cancel = opts?.cancel;
  const sockets: net.Socket[] = [];
  const start = performance.now();
  let settled = false;

  return new Promise<net.Socket>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      cancel?.listen(undefined);
    };
    const fail = (err: DialError): void => {
      if (settled) return;
      settled = true;
      cleanup();
      for (const s of sockets) s.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(new DialError('EABORTED', `dial to ${what} aborted`));
    const timer = setTimeout(
      () => fail(new DialError('ETIMEDOUT', `dial to ${what} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    if (signal?.aborted === true || cancel?.aborted === true) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    cancel?.listen(onAbort);

    const ctx: DialContext = {
      remainingMs: () => Math.max(1, Math.ceil(timeoutMs - (performance.now() - start))),
      track: (socket) => {
        sockets.push(socket);
        // Until the dial settles, late errors on a tracked socket must not go unhandled.
        socket.on('error', ignore);
        if (settled) socket.destroy();
        return socket;
      },
      get settled() {
        return settled;
      },
    };
    attempt(ctx).then(
      (socket) => {
        if (settled) {
          socket.destroy();
          return;
        }
        settled = true;
        cleanup();
        for (const s of sockets) s.off('error', ignore);
        socket.setNoDelay(true);
        resolve(socket);
      },
      (err: unknown) => {
        fail(
          err instanceof DialError
            ? err
            : new DialError('EPROXY', `dial to ${what} failed: ${String(err)}`, { cause: err }),
        );
      },
    );
  });
}

/**
 * Opens a TCP connection to host:port under the dial's context. Connect errors map through
 * `mapError` (e.g. a refused proxy is EPROXY, a refused destination ECONNREFUSED). With upstream
 * socket options set (setUpstreamSocketOptions: --fwmark, --interface) the socket carries them
 * from before its SYN. The socket reads through a ReadTap (read-tap.ts): a normal socket until
 * the relay attaches a sink.
 */
export function tcpConnect(
  ctx: DialContext,
  host: string,
  port: number,
  mapError: (err: unknown) => DialErrorCode,
  what: string,
): Promise<net.Socket> {
  const options = upstreamSocketOptions();
  if (options !== undefined) return optionedConnect(ctx, host, port, options, mapError, what);
  const tap = new ReadTap();
  return settleConnect(ctx.track(tap.bind(net.connect({ host, port, onread: tap.onread }))), mapError, what);
}

/** Resolves with `socket` once connected, or rejects with a DialError through `mapError`. */
function settleConnect(
  socket: net.Socket,
  mapError: (err: unknown) => DialErrorCode,
  what: string,
): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.off('connect', onConnect);
      reject(new DialError(mapError(err), `${what}: ${err.message}`, { cause: err }));
    };
    const onConnect = (): void => {
      socket.off('error', onError);
      resolve(socket);
    };
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}

/**
 * tcpConnect with SO_MARK / SO_BINDTODEVICE set before connect (see socket-options.ts): the
 * socket's family must be known before it exists, so a name is resolved first (first address,
 * in the resolver's order).
 */
async function optionedConnect(
  ctx: DialContext,
  host: string,
  port: number,
  options: UpstreamSocketOptions,
  mapError: (err: unknown) => DialErrorCode,
  what: string,
): Promise<net.Socket> {
  let address = host;
  if (net.isIP(host) === 0) {
    try {
      address = (await lookup(host)).address;
    } catch (err) {
      throw new DialError(mapError(err), `${what}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (ctx.settled) throw new DialError('EABORTED', `${what}: dial already settled`);
  let socket: net.Socket;
  try {
    const tap = new ReadTap();
    socket = ctx.track(tap.bind(openTcpSocket(net.isIPv6(address) ? 6 : 4, options, tap.onread)));
  } catch (err) {
    throw new DialError(mapError(err), `${what}: ${(err as Error).message}`, { cause: err });
  }
  const connected = settleConnect(socket, mapError, what);
  socket.connect({ host: address, port });
  return connected;
}

/** Maps a destination connect error (direct dialer). */
export function destinationErrorCode(err: unknown): DialErrorCode {
  return socketErrorCode(err) ?? 'EHOSTUNREACH';
}

/** Maps a proxy connect error: any failure to reach the proxy is EPROXY. */
export function proxyErrorCode(_err: unknown): DialErrorCode {
  return 'EPROXY';
}
