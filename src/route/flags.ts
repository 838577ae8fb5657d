/**
 * The flags of issue 6 (auto-route, loop avoidance, DNS), parsed from the values the command
 * line and the config file give: one-line UsageError-style messages through `usage()`, and the
 * documented defaults in one place.
 */
import { isIP } from 'node:net';
import { type Cidr, CidrError, parseCidr } from './cidr.js';
import { RULE_PRIORITY_COUNT } from './plan.js';

/** Defaults of the routing and DNS flags. */
export const ROUTE_DEFAULTS = Object.freeze({
  /** --address: the TUN's addresses (198.18.0.0/15 benchmark range; a ULA /126). */
  addresses: Object.freeze(['198.18.0.1/30', 'fdfe:dcba:9876::1/126']),
  table: 2022,
  rulePriority: 9000,
  fwmark: 0x2022,
  /** --dns-address: where the stack answers DNS (inside the --address prefixes). */
  dnsAddresses: Object.freeze(['198.18.0.2', 'fdfe:dcba:9876::2']),
  /** --fake-ip-range. */
  fakeIpRanges: Object.freeze(['198.19.0.0/16', 'fdfe:dcba:9877::/64']),
});

/** `--dns`: how DNS is handled. */
export type DnsMode = 'fake-ip' | 'remote' | 'direct';

/** The parsed --auto-route flags (present only with --auto-route). */
export interface AutoRouteFlags {
  readonly addresses: readonly Cidr[];
  readonly table: number;
  readonly rulePriority: number;
  readonly include: readonly Cidr[];
  readonly exclude: readonly Cidr[];
  readonly setDns: boolean;
  readonly preUp: string | undefined;
  readonly postUp: string | undefined;
  readonly preDown: string | undefined;
}

/** The parsed DNS flags (the engine option `Tun2SocksOptions.dns`, DNS helper's). */
export interface DnsFlags {
  readonly mode: DnsMode;
  readonly hijack: boolean;
  readonly addresses: readonly string[];
  readonly fakeRanges: readonly string[];
  /** --dns-upstream; undefined: the first nameserver of resolv.conf at start-up. */
  readonly upstream: { readonly host: string; readonly port: number } | undefined;
}

/** Upstream socket options from --fwmark / --interface. */
export interface UpstreamFlags {
  /** SO_MARK; 0: none. Default 0x2022 with --auto-route, else 0. */
  readonly fwmark: number;
  readonly bindInterface: string | undefined;
}

/** Everything of issue 6 in the parsed command line. */
export interface RouteCliFlags {
  /** undefined without --auto-route. */
  readonly autoRoute: AutoRouteFlags | undefined;
  readonly upstreamSocket: UpstreamFlags;
  readonly dns: DnsFlags;
}

/** parseArgs option descriptors of the issue-6 flags. */
export const ROUTE_OPTIONS = {
  'auto-route': { type: 'boolean' },
  address: { type: 'string', multiple: true },
  table: { type: 'string' },
  'rule-priority': { type: 'string' },
  fwmark: { type: 'string' },
  interface: { type: 'string' },
  exclude: { type: 'string', multiple: true },
  include: { type: 'string', multiple: true },
  'tun-pre-up': { type: 'string' },
  'tun-post-up': { type: 'string' },
  'tun-pre-down': { type: 'string' },
  'set-dns': { type: 'boolean' },
  dns: { type: 'string' },
  'dns-hijack': { type: 'boolean' },
  'dns-address': { type: 'string', multiple: true },
  'fake-ip-range': { type: 'string', multiple: true },
  'dns-upstream': { type: 'string' },
} as const;

/** The --help lines of the issue-6 flags. */
export const ROUTE_HELP = `
Routing the whole machine (or namespace) through the proxy:
  --auto-route           give the TUN its addresses, bring it up and route all IPv4 and IPv6 into it
                         (policy routing: a table and rules, see README); undone on exit
  --address CIDR         TUN address, repeatable (default: 198.18.0.1/30 and fdfe:dcba:9876::1/126)
  --table N              routing table for the TUN routes (default: 2022)
  --rule-priority N      first of the six rule priorities used, N..N+5 (default: 9000)
  --fwmark N             SO_MARK of tun2socks's own upstream sockets, routed around the TUN
                         (default: 0x2022 with --auto-route, else none)
  --interface NAME       bind upstream sockets to this interface (SO_BINDTODEVICE)
  --exclude CIDR         never route this prefix into the TUN (repeatable); loopback, link-local,
                         multicast and the LAN are excluded by default
  --include CIDR         always route this prefix into the TUN, even when excluded (repeatable)
  --tun-pre-up CMD       run CMD (/bin/sh -c, TUN2SOCKS_DEVICE set) before the TUN is configured
  --tun-post-up CMD      run CMD after the routes are set up
  --tun-pre-down CMD     run CMD before the routes are removed
  --set-dns              point resolv.conf at the stack's DNS address; restored on exit
DNS:
  --dns MODE             fake-ip | remote | direct (default: fake-ip with --auto-route, else direct)
  --dns-hijack           answer every query to port 53, whatever the address
  --dns-address ADDR     the stack's DNS address, repeatable (default: 198.18.0.2 and fdfe:dcba:9876::2)
  --fake-ip-range CIDR   fake-IP pool, repeatable (default: 198.19.0.0/16 and fdfe:dcba:9877::/64)
  --dns-upstream H[:P]   resolver behind the proxy for forwarded queries
                         (default: the first nameserver of resolv.conf at start-up)
`;

/** Reads flag values: `one` the last string, `all` every value of a repeatable flag, `on` a boolean. */
export interface FlagSource {
  one(key: string): string | undefined;
  all(key: string): readonly string[] | undefined;
  on(key: string): boolean;
}

function cidr(name: string, text: string, usage: (m: string) => Error): Cidr {
  try {
    return parseCidr(text);
  } catch (err) {
    if (err instanceof CidrError) throw usage(`--${name}: ${err.message}`);
    throw err;
  }
}

function whole(
  name: string,
  text: string | undefined,
  min: number,
  max: number,
  usage: (m: string) => Error,
) {
  if (text === undefined) return undefined;
  const n = /^0x[0-9a-f]+$/i.test(text)
    ? Number.parseInt(text, 16)
    : /^\d+$/.test(text)
      ? Number(text)
      : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usage(`--${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

/** Parses `HOST[:PORT]`, `[V6]:PORT` or a bare IPv6 address; port 53 by default. */
export function parseHostPort(
  name: string,
  text: string,
  usage: (m: string) => Error,
): { host: string; port: number } {
  let host = text;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket !== null) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (isIP(text) !== 6) {
    const m = /^([^:]+)(?::(\d+))?$/.exec(text);
    if (m === null) throw usage(`--${name} must be HOST[:PORT] (IPv6 in brackets), got "${text}"`);
    host = m[1]!;
    if (m[2] !== undefined) port = Number(m[2]);
  }
  if (!(port >= 1 && port <= 65535)) throw usage(`--${name}: port must be 1 to 65535, got "${text}"`);
  return { host, port };
}

/** Parses the issue-6 flags; `usage(message)` builds the error to throw (UsageError). */
export function parseRouteFlags(src: FlagSource, usage: (message: string) => Error): RouteCliFlags {
  const autoRoute = src.on('auto-route');
  const modeText = src.one('dns') ?? (autoRoute ? 'fake-ip' : 'direct');
  if (!['fake-ip', 'remote', 'direct'].includes(modeText)) {
    throw usage(`--dns must be one of fake-ip, remote, direct, got "${modeText}"`);
  }
  const mode = modeText as DnsMode;
  const dnsAddresses = [...(src.all('dns-address') ?? ROUTE_DEFAULTS.dnsAddresses)];
  for (const a of dnsAddresses) {
    if (isIP(a) === 0) throw usage(`--dns-address must be an IPv4 or IPv6 address, got "${a}"`);
  }
  const fakeRanges = (src.all('fake-ip-range') ?? ROUTE_DEFAULTS.fakeIpRanges).map((t) =>
    cidr('fake-ip-range', t, usage),
  );
  for (const family of [4, 6]) {
    // The fake-IP pool takes one range per family.
    if (fakeRanges.filter((c) => c.family === family).length > 1) {
      throw usage(`--fake-ip-range takes at most one IPv${family} range`);
    }
  }
  const upstreamText = src.one('dns-upstream');
  const dns: DnsFlags = {
    mode,
    hijack: src.on('dns-hijack'),
    addresses: dnsAddresses,
    fakeRanges: fakeRanges.map((c) => `${c.network}/${c.prefixLength}`),
    upstream: upstreamText === undefined ? undefined : parseHostPort('dns-upstream', upstreamText, usage),
  };
  const fwmark =
    whole('fwmark', src.one('fwmark'), 1, 0xffffffff, usage) ?? (autoRoute ? ROUTE_DEFAULTS.fwmark : 0);
  const bindInterface = src.one('interface');
  if (bindInterface !== undefined && !/^[^\s/:]{1,15}$/.test(bindInterface)) {
    throw usage(
      `--interface must be an interface name (at most 15 bytes, no / or :), got "${bindInterface}"`,
    );
  }
  const upstreamSocket: UpstreamFlags = { fwmark, bindInterface };

  const routeOnly = [
    'address',
    'table',
    'rule-priority',
    'exclude',
    'include',
    'tun-pre-up',
    'tun-post-up',
    'tun-pre-down',
    'set-dns',
  ];
  if (!autoRoute) {
    const used = routeOnly.find((k) =>
      k === 'set-dns' ? src.on(k) : (src.one(k) ?? src.all(k)) !== undefined,
    );
    if (used !== undefined) throw usage(`--${used} needs --auto-route`);
    return { autoRoute: undefined, upstreamSocket, dns };
  }
  const addresses = (src.all('address') ?? ROUTE_DEFAULTS.addresses).map((t) => cidr('address', t, usage));
  for (const a of addresses) {
    if (a.address === a.network && a.prefixLength < (a.family === 4 ? 31 : 127)) {
      throw usage(
        `--address needs a host address with its prefix (like 198.18.0.1/30), got "${a.address}/${a.prefixLength}"`,
      );
    }
  }
  const setDns = src.on('set-dns');
  if (setDns && mode === 'direct') throw usage('--set-dns needs --dns fake-ip or --dns remote');
  const include = (src.all('include') ?? []).map((t) => cidr('include', t, usage));
  // Fake addresses always go into the TUN, whatever an exclude or a LAN route says.
  if (mode === 'fake-ip') include.push(...fakeRanges);
  return {
    autoRoute: {
      addresses,
      table: whole('table', src.one('table'), 1, 0x7fffffff, usage) ?? ROUTE_DEFAULTS.table,
      rulePriority:
        whole('rule-priority', src.one('rule-priority'), 1, 32765 - RULE_PRIORITY_COUNT, usage) ??
        ROUTE_DEFAULTS.rulePriority,
      include,
      exclude: (src.all('exclude') ?? []).map((t) => cidr('exclude', t, usage)),
      setDns,
      preUp: src.one('tun-pre-up'),
      postUp: src.one('tun-post-up'),
      preDown: src.one('tun-pre-down'),
    },
    upstreamSocket,
    dns,
  };
}
