/** The direct dialer (plain TCP to the destination) and the reject dialer (always fails). */
import type * as net from 'node:net';
import { destinationErrorCode, runDial, tcpConnect } from './dial.js';
import type { Destination, Dialer, DialOptions } from './dialer.js';
import { formatDestination } from './dialer.js';
import { DialError } from './errors.js';

/** A dialer that connects straight to the destination. */
export function createDirectDialer(): Dialer {
  return {
    name: 'direct',
    cancellable: true,
    dial(dst: Destination, opts?: DialOptions): Promise<net.Socket> {
      const what = formatDestination(dst);
      return runDial(opts, what, (ctx) => tcpConnect(ctx, dst.host, dst.port, destinationErrorCode, what));
    },
  };
}

/** A dialer that refuses every destination with EREJECTED. */
export function createRejectDialer(): Dialer {
  return {
    name: 'reject',
    dial(dst: Destination): Promise<net.Socket> {
      return Promise.reject(new DialError('EREJECTED', `${formatDestination(dst)} rejected by policy`));
    },
  };
}
