/** Upstream dialers: SOCKS5, SOCKS4/4a, HTTP CONNECT, direct and reject, behind one interface. */

import type { Dialer } from './dialer.js';
import { createDirectDialer, createRejectDialer } from './direct.js';
import { createHttpDialer } from './http-connect.js';
import { createSocksDialer } from './socks.js';
import type { ProxyConfig } from './url.js';

export {
  DEFAULT_DIAL_TIMEOUT_MS,
  type Destination,
  DialCancel,
  type Dialer,
  type DialOptions,
  formatDestination,
} from './dialer.js';
export { createDirectDialer, createRejectDialer } from './direct.js';
export { DialError, type DialErrorCode, ProxyUrlError } from './errors.js';
export {
  buildConnectRequest,
  type ConnectResponse,
  ConnectResponseParser,
  createHttpDialer,
  httpStatusCode,
  MAX_CONNECT_RESPONSE_BYTES,
} from './http-connect.js';
export {
  createSocksDialer,
  type SocksDialerOptions,
  socks4ReplyCode,
  socks5ReplyCode,
  socksMessageCode,
} from './socks.js';
export { DEFAULT_SOCKS5_SPARES, DEFAULT_SPARE_TTL_MS, Socks5Spares } from './socks5-spares.js';
export {
  createSocks5UdpDialer,
  encodeSocks5UdpFrame,
  isUdpUnsupported,
  parseSocks5UdpFrame,
  type Socks5UdpFrame,
  UdpUnsupportedError,
} from './socks5-udp.js';
export {
  createDirectUdpDialer,
  createUdpDialer,
  type UdpAssociation,
  type UdpDialer,
  type UdpDropReason,
} from './udp.js';
export {
  DEFAULT_PROXY_PORTS,
  type ProxyConfig,
  type ProxyScheme,
  type ProxyServerConfig,
  parseProxyUrl,
  redactProxyUrl,
} from './url.js';

/** Options of createDialer. */
export interface CreateDialerOptions {
  /** SOCKS5: greeted connections kept ahead of the next dial (SocksDialerOptions.spares). */
  readonly socks5Spares?: number;
}

/** Builds the dialer for a parsed proxy URL. */
export function createDialer(config: ProxyConfig, opts: CreateDialerOptions = {}): Dialer {
  switch (config.kind) {
    case 'direct':
      return createDirectDialer();
    case 'reject':
      return createRejectDialer();
    case 'http':
      return createHttpDialer({ ...config, kind: 'http' });
    case 'socks5':
    case 'socks4':
    case 'socks4a':
      return createSocksDialer(
        { ...config, kind: config.kind },
        opts.socks5Spares !== undefined ? { spares: opts.socks5Spares } : {},
      );
  }
}
