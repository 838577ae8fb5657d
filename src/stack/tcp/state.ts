/**
 * TCP connection states (RFC 9293 §3.3.2), the events a connection reports to its owner, and the
 * errors that end a connection.
 */

/**
 * RFC 9293 states, plus SYN-PENDING: a SYN was received and the application has not yet decided to
 * accept it (no SYN-ACK sent yet; smoltcp's pause_synack). SYN-SENT serves active opens (tests and
 * simulations drive our stack against itself).
 */
export type TcpState =
  | 'SYN-SENT'
  | 'SYN-PENDING'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT'
  | 'CLOSED';

/** Event bits a connection accumulates for its owner, delivered after input returns. */
export const TcpEvent = Object.freeze({
  /** A SYN arrived: accept() or reject() the connection. */
  SYN: 1,
  /** The three-way handshake completed. */
  ESTABLISHED: 2,
  /** Data (or the peer's FIN) can be read. */
  READABLE: 4,
  /** Send-buffer space was freed. */
  WRITABLE: 8,
  /** The connection is gone; `error` says why when it did not close cleanly. */
  CLOSED: 16,
});

/** Why a connection ended abnormally, named as Node's net.Socket errors. */
export type TcpErrorCode = 'ECONNRESET' | 'ETIMEDOUT' | 'ECONNABORTED' | 'ECONNREFUSED';

/** True in the states where both sides have exchanged SYNs (RFC 9293 §3.5: synchronized states). */
export function isSynchronized(state: TcpState): boolean {
  return state !== 'SYN-PENDING' && state !== 'SYN-RECEIVED' && state !== 'SYN-SENT' && state !== 'CLOSED';
}

/** True in the states where we may still receive data (the peer has not sent FIN). */
export function canReceive(state: TcpState): boolean {
  return (
    state === 'ESTABLISHED' || state === 'FIN-WAIT-1' || state === 'FIN-WAIT-2' || state === 'SYN-RECEIVED'
  );
}

/** A timer that is not armed. */
export const NEVER = Number.POSITIVE_INFINITY;
