/**
 * Proxy URLs: `socks5://user:pass@host:port`, `socks4://user@host:port`, `socks4a://…`,
 * `http://user:pass@host:port`, `direct://`, `reject://`. IPv6 hosts are written in brackets.
 */
import { isIpv6Literal } from './address.js';
import { ProxyUrlError } from './errors.js';

/** The proxy protocols that need a host and port. */
export type ProxyScheme = 'socks5' | 'socks4' | 'socks4a' | 'http';

/** A proxy server with optional credentials. */
export interface ProxyServerConfig<K extends ProxyScheme = ProxyScheme> {
  readonly kind: K;
  /** IP literal (IPv6 without brackets) or domain name. */
  readonly host: string;
  readonly port: number;
  /** Percent-decoded user name (the SOCKS4 user id), if any. */
  readonly username?: string;
  /** Percent-decoded password, if any. */
  readonly password?: string;
}

/** A parsed upstream: a proxy server with optional credentials, or direct, or reject. */
export type ProxyConfig = ProxyServerConfig | { readonly kind: 'direct' } | { readonly kind: 'reject' };

/** Default ports: 1080 for SOCKS (RFC 1928 §3), 8080 for HTTP proxies. */
export const DEFAULT_PROXY_PORTS: Readonly<Record<ProxyScheme, number>> = {
  socks5: 1080,
  socks4: 1080,
  socks4a: 1080,
  http: 8080,
};

const SCHEMES = new Set<string>(['socks5', 'socks4', 'socks4a', 'http', 'direct', 'reject']);

/** Hides any password in a raw URL string so it can go into an error message. */
function redactRaw(url: string): string {
  return url.replace(/^([a-zA-Z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}

function decode(part: string, what: string, raw: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ProxyUrlError(`bad percent-encoding in the ${what} of proxy URL ${redactRaw(raw)}`);
  }
}

/** Parses a proxy URL; throws ProxyUrlError (code ERR_PROXY_URL) with a one-line reason. */
export function parseProxyUrl(url: string): ProxyConfig {
  const raw = url.trim();
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(raw) ?? /^(direct|reject)$/i.exec(raw);
  if (m === null) throw new ProxyUrlError(`proxy URL ${redactRaw(raw)} has no scheme://`);
  const scheme = m[1]!.toLowerCase();
  if (!SCHEMES.has(scheme)) {
    throw new ProxyUrlError(
      `unsupported proxy scheme "${scheme}" (use socks5, socks4, socks4a, http, direct or reject)`,
    );
  }
  let rest = m[2] ?? '';
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (scheme === 'direct' || scheme === 'reject') {
    if (rest !== '') throw new ProxyUrlError(`${scheme}:// takes no host, got ${redactRaw(raw)}`);
    return { kind: scheme };
  }
  if (rest.includes('/') || rest.includes('?') || rest.includes('#')) {
    throw new ProxyUrlError(`proxy URL ${redactRaw(raw)} must not have a path, query or fragment`);
  }
  const at = rest.lastIndexOf('@');
  const userinfo = at >= 0 ? rest.slice(0, at) : undefined;
  const hostport = at >= 0 ? rest.slice(at + 1) : rest;

  let host: string;
  let portText: string | undefined;
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) throw new ProxyUrlError(`unclosed "[" in the host of proxy URL ${redactRaw(raw)}`);
    host = hostport.slice(1, close);
    const after = hostport.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) {
      throw new ProxyUrlError(`unexpected text after "]" in proxy URL ${redactRaw(raw)}`);
    }
    if (after !== '') portText = after.slice(1);
    if (!isIpv6Literal(host)) {
      throw new ProxyUrlError(`bad IPv6 address [${host}] in proxy URL ${redactRaw(raw)}`);
    }
  } else {
    const colon = hostport.indexOf(':');
    if (colon >= 0 && hostport.indexOf(':', colon + 1) >= 0) {
      throw new ProxyUrlError(`IPv6 proxy hosts need brackets: ${redactRaw(raw)}`);
    }
    host = colon >= 0 ? hostport.slice(0, colon) : hostport;
    if (colon >= 0) portText = hostport.slice(colon + 1);
    if (host !== '' && !/^[a-zA-Z0-9._-]+$/.test(host)) {
      throw new ProxyUrlError(`bad host "${host}" in proxy URL ${redactRaw(raw)}`);
    }
  }
  if (host === '') throw new ProxyUrlError(`proxy URL ${redactRaw(raw)} has no host`);

  const kind = scheme as ProxyScheme;
  let port = DEFAULT_PROXY_PORTS[kind];
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new ProxyUrlError(`bad port "${portText}" in proxy URL ${redactRaw(raw)} (1-65535)`);
    }
    port = Number(portText);
  }

  if (userinfo === undefined) return { kind, host, port };
  const colon = userinfo.indexOf(':');
  const username = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo, 'user name', raw);
  if (colon < 0) return { kind, host, port, username };
  const password = decode(userinfo.slice(colon + 1), 'password', raw);
  return { kind, host, port, username, password };
}

/** Formats a config back as a URL for logs: the password is shown as `***`, never printed. */
export function redactProxyUrl(config: ProxyConfig): string {
  if (config.kind === 'direct' || config.kind === 'reject') return `${config.kind}://`;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let auth = '';
  if (config.username !== undefined) {
    auth = encodeURIComponent(config.username);
    if (config.password !== undefined) auth += ':***';
    auth += '@';
  }
  return `${config.kind}://${auth}${host}:${config.port}`;
}
