/**
 * Typed errors of the upstream dialers. Callers branch on `code`, never on `message`; messages
 * name the destination but never a credential.
 */

/**
 * Why a dial failed:
 * - `ECONNREFUSED`: the destination (or the proxy on its behalf) refused the connection.
 * - `EHOSTUNREACH` / `ENETUNREACH`: the destination host or network is unreachable.
 * - `ETIMEDOUT`: the dial did not finish within `timeoutMs`.
 * - `EPROXYAUTH`: the proxy rejected our credentials or demands ones we do not have.
 * - `EPROXY`: the proxy is unreachable or spoke a protocol we could not follow.
 * - `EREJECTED`: the dialer is `reject://`.
 * - `EABORTED`: the caller's AbortSignal fired.
 */
export type DialErrorCode =
  | 'ECONNREFUSED'
  | 'EHOSTUNREACH'
  | 'ENETUNREACH'
  | 'ETIMEDOUT'
  | 'EPROXYAUTH'
  | 'EPROXY'
  | 'EREJECTED'
  | 'EABORTED';

/** A failed dial, with a stable `code`. */
export class DialError extends Error {
  /** The stable reason; see DialErrorCode. */
  readonly code: DialErrorCode;

  constructor(code: DialErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'DialError';
    this.code = code;
  }
}

/** A proxy URL that cannot be used; `code` is always `ERR_PROXY_URL`. */
export class ProxyUrlError extends Error {
  /** Always `ERR_PROXY_URL`. */
  readonly code = 'ERR_PROXY_URL';

  constructor(message: string) {
    super(message);
    this.name = 'ProxyUrlError';
  }
}

/** Maps a Node socket error code (from connect()) to a dial code, or undefined if unknown. */
export function socketErrorCode(err: unknown): DialErrorCode | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
    case 'ECONNRESET':
      return 'ECONNREFUSED';
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
      return 'EHOSTUNREACH';
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return 'ENETUNREACH';
    case 'ETIMEDOUT':
      return 'ETIMEDOUT';
    default:
      return undefined;
  }
}
