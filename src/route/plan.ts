/**
 * The auto-route plan: a pure function from the options and the observed routing state to the
 * `ip` commands that send all traffic into the TUN, each with the command that undoes it. Nothing
 * here runs a command, so the plan is tested without touching the system.
 *
 * Policy routing, as sing-box's auto_route does it, per family, at priorities P..P+5
 * (`--rule-priority`, default 9000) and table T (`--table`, default 2022):
 *
 *   P    fwmark M lookup main                  our own upstream sockets leave by the main table
 *   P+1  fwmark M unreachable                  ... and never reach the TUN, even with no main route
 *   P+2  to INCLUDE lookup T                   --include (and the fake-IP ranges) always into the TUN
 *   P+3  to EXCLUDE lookup main                loopback, link-local, multicast, the LAN, --exclude
 *   P+4  lookup main suppress_prefixlength 0   any more specific main route (LAN, VPN, docker) wins
 *   P+5  not fwmark M lookup T                 everything else into the TUN
 *
 * Table T holds one route per family: `default dev TUN`. The main table is never changed, so
 * `ip route` reads the same with tun2socks running (but for the TUN's own connected prefix) and
 * after it stops; undo deletes exactly the rules and routes added.
 */
import { type Cidr, parseCidr, prefixText, samePrefix } from './cidr.js';

/** A refused or failed auto-route: the CLI prints the message alone and exits 1. */
export class RouteError extends Error {
  /** Always `ERR_ROUTE`. */
  readonly code = 'ERR_ROUTE';
}

/** What the plan routes, from the flags. */
export interface RouteConfig {
  /** The TUN device's name. */
  readonly device: string;
  /** Addresses to give the TUN (`--address`); a family without one is not routed. */
  readonly addresses: readonly Cidr[];
  /** The policy-routing table (`--table`). */
  readonly table: number;
  /** The first of the six rule priorities used (`--rule-priority`). */
  readonly rulePriority: number;
  /** SO_MARK of tun2socks's own upstream sockets (`--fwmark`), never 0. */
  readonly fwmark: number;
  /** Prefixes always sent into the TUN, even when excluded (`--include`, fake-IP ranges). */
  readonly include: readonly Cidr[];
  /** Prefixes never sent into the TUN, on top of the defaults (`--exclude`). */
  readonly exclude: readonly Cidr[];
}

/** The prefixes excluded by default (besides the LAN): loopback, link-local, multicast, broadcast. */
export const DEFAULT_EXCLUDES: readonly string[] = Object.freeze([
  '127.0.0.0/8',
  '169.254.0.0/16',
  '224.0.0.0/4',
  '255.255.255.255/32',
  '::1/128',
  'fe80::/10',
  'ff00::/8',
]);

/** Number of rule priorities used from `rulePriority` on. */
export const RULE_PRIORITY_COUNT = 6;

/** A route as `ip -j route show` prints it (the fields the plan reads). */
export interface ObservedRoute {
  readonly family: 4 | 6;
  /** 'default' or a prefix `network/len` (a host route may lack `/len`). */
  readonly dst: string;
  readonly dev?: string;
  readonly gateway?: string;
  readonly protocol?: string;
  readonly scope?: string;
}

/** A rule as `ip -j rule show` prints it (the fields the plan reads). */
export interface ObservedRule {
  readonly family: 4 | 6;
  readonly priority: number;
  readonly not?: boolean;
  /** As printed, e.g. '0x2022' (with '/mask' when one was given). */
  readonly fwmark?: string;
  /** Destination prefix `network/len`. */
  readonly dst?: string;
  /** Source prefix `network/len` ('all' is left out). */
  readonly src?: string;
  /** 'main', 'local', a number as text. */
  readonly table?: string;
  /** 'unreachable', 'blackhole', 'prohibit', 'goto', 'nop'... when not a lookup. */
  readonly action?: string;
  readonly suppressPrefixLength?: number;
  /** Any other selector (iif, oif, uidrange, ipproto, ...): such a rule is never ours. */
  readonly other?: boolean;
}

/** The TUN device as `ip -j addr show` prints it. */
export interface ObservedDevice {
  readonly up: boolean;
  readonly addresses: readonly Cidr[];
}

/** The routing state the plan starts from. */
export interface ObservedState {
  /** Every route of the main table, both families. */
  readonly mainRoutes: readonly ObservedRoute[];
  /** Every rule, both families. */
  readonly rules: readonly ObservedRule[];
  /** Every route of table T, both families. */
  readonly tableRoutes: readonly ObservedRoute[];
  readonly device: ObservedDevice;
}

/** One command of a plan: `ip` argv, and the argv that undoes it (none for a deletion). */
export interface RouteStep {
  /** For logs, e.g. 'rule 9005 v4: everything else into the TUN'. */
  readonly what: string;
  readonly argv: readonly string[];
  readonly undo?: readonly string[];
}

/** The plan: stale leftovers of an earlier run to delete first, then the set-up steps. */
export interface RoutePlan {
  /** Deletions of our own rules/routes left by a run that could not clean up (kill -9). */
  readonly cleanup: readonly RouteStep[];
  readonly steps: readonly RouteStep[];
  /** The families routed into the TUN. */
  readonly families: readonly (4 | 6)[];
  /** The LAN prefixes excluded (connected prefixes of the default route's interfaces). */
  readonly lan: readonly Cidr[];
  /** Notes for the log (e.g. a family without a default route). */
  readonly warnings: readonly string[];
}

function fwmarkText(mark: number): string {
  return `0x${mark.toString(16)}`;
}

function famFlag(family: 4 | 6): string {
  return family === 4 ? '-4' : '-6';
}

/** Parses a printed prefix (`dst` of a route or rule), or undefined when it is 'default' or odd. */
function observedPrefix(text: string | undefined): Cidr | undefined {
  if (text === undefined || text === 'default') return undefined;
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

/** The rules of one family in priority order (the catch-all last), each with its exact `ip rule del`. */
function familyRules(config: RouteConfig, family: 4 | 6, excludes: readonly Cidr[]): RouteStep[] {
  const p = config.rulePriority;
  const mark = fwmarkText(config.fwmark);
  const table = String(config.table);
  const rule = (prio: number, args: string[], what: string): RouteStep => ({
    what: `rule ${prio} v${family}: ${what}`,
    argv: [famFlag(family), 'rule', 'add', 'pref', String(prio), ...args],
    undo: [famFlag(family), 'rule', 'del', 'pref', String(prio), ...args],
  });
  const out: RouteStep[] = [
    rule(p, ['fwmark', mark, 'lookup', 'main'], 'own upstream sockets by the main table'),
    rule(p + 1, ['fwmark', mark, 'unreachable'], 'own upstream sockets never into the TUN'),
  ];
  for (const c of config.include.filter((c) => c.family === family)) {
    out.push(rule(p + 2, ['to', prefixText(c), 'lookup', table], `include ${prefixText(c)}`));
  }
  for (const c of excludes.filter((c) => c.family === family)) {
    out.push(rule(p + 3, ['to', prefixText(c), 'lookup', 'main'], `exclude ${prefixText(c)}`));
  }
  out.push(
    rule(p + 4, ['lookup', 'main', 'suppress_prefixlength', '0'], 'more specific main routes win'),
    rule(p + 5, ['not', 'fwmark', mark, 'lookup', table], 'everything else into the TUN'),
  );
  return out;
}

/**
 * Whether `r` is one of the rules this plan makes (at its priority, in its shape), so a leftover
 * of an earlier run of ours: only such rules are deleted as stale, anything else is a conflict.
 */
export function isOwnRule(
  config: Pick<RouteConfig, 'rulePriority' | 'table' | 'fwmark'>,
  r: ObservedRule,
): boolean {
  const p = config.rulePriority;
  const table = String(config.table);
  const mark = fwmarkText(config.fwmark);
  if (r.other === true || r.src !== undefined) return false;
  const plain = r.not !== true && r.suppressPrefixLength === undefined && r.action === undefined;
  switch (r.priority - p) {
    case 0:
      return plain && r.fwmark === mark && r.dst === undefined && r.table === 'main';
    case 1:
      return r.not !== true && r.fwmark === mark && r.dst === undefined && r.action === 'unreachable';
    case 2:
      return plain && r.fwmark === undefined && r.dst !== undefined && r.table === table;
    case 3:
      return plain && r.fwmark === undefined && r.dst !== undefined && r.table === 'main';
    case 4:
      return (
        r.not !== true &&
        r.fwmark === undefined &&
        r.dst === undefined &&
        r.table === 'main' &&
        r.suppressPrefixLength === 0 &&
        r.action === undefined
      );
    case 5:
      return r.not === true && r.fwmark === mark && r.dst === undefined && r.table === table;
    default:
      return false;
  }
}

/** The `ip rule del` argv that deletes exactly `r`. */
export function ruleDeleteArgv(r: ObservedRule): string[] {
  const argv = [famFlag(r.family), 'rule', 'del', 'pref', String(r.priority)];
  if (r.not === true) argv.push('not');
  if (r.fwmark !== undefined) argv.push('fwmark', r.fwmark);
  if (r.dst !== undefined) argv.push('to', r.dst);
  if (r.action !== undefined) argv.push(r.action);
  else if (r.table !== undefined) argv.push('lookup', r.table);
  if (r.suppressPrefixLength !== undefined)
    argv.push('suppress_prefixlength', String(r.suppressPrefixLength));
  return argv;
}

function ruleText(r: ObservedRule): string {
  return ruleDeleteArgv(r).slice(5).join(' ');
}

/** The connected prefixes of the interfaces the default routes of `family` leave by. */
export function lanPrefixes(routes: readonly ObservedRoute[], family: 4 | 6): Cidr[] {
  const devs = new Set(
    routes.filter((r) => r.family === family && r.dst === 'default' && r.dev !== undefined).map((r) => r.dev),
  );
  const out: Cidr[] = [];
  for (const r of routes) {
    if (r.family !== family || r.protocol !== 'kernel' || r.dev === undefined || !devs.has(r.dev)) continue;
    if (family === 4 && r.scope !== 'link') continue;
    const c = observedPrefix(r.dst);
    if (c === undefined || out.some((o) => samePrefix(o, c))) continue;
    // IPv6 link-local (fe80::/64 per interface) is excluded as a whole already.
    if (family === 6 && c.network.startsWith('fe80:')) continue;
    out.push(c);
  }
  return out;
}

/**
 * Plans the auto-route set-up. Throws RouteError when the plan cannot be made safely: no default
 * route to bypass through, a rule priority or the table already used by someone else.
 */
export function planRoutes(config: RouteConfig, observed: ObservedState): RoutePlan {
  const p = config.rulePriority;
  const last = p + RULE_PRIORITY_COUNT - 1;
  const table = String(config.table);
  const cleanup: RouteStep[] = [];
  const warnings: string[] = [];

  for (const r of observed.rules) {
    const inRange = r.priority >= p && r.priority <= last;
    if (inRange && isOwnRule(config, r)) {
      cleanup.push({
        what: `stale rule ${r.priority} v${r.family}: ${ruleText(r)}`,
        argv: ruleDeleteArgv(r),
      });
    } else if (inRange) {
      throw new RouteError(
        `rule priority ${r.priority} is already used by "${ruleText(r)}" (IPv${r.family}); choose another --rule-priority (we use ${p}-${last})`,
      );
    } else if (r.table === table) {
      throw new RouteError(
        `table ${table} is already used by rule ${r.priority} "${ruleText(r)}" (IPv${r.family}); choose another --table`,
      );
    }
  }
  for (const r of observed.tableRoutes) {
    if (r.dev !== config.device) {
      throw new RouteError(
        `table ${table} already holds ${r.dst}${r.dev !== undefined ? ` dev ${r.dev}` : ''} (IPv${r.family}); choose another --table`,
      );
    }
    cleanup.push({
      what: `stale route v${r.family} ${r.dst} table ${table}`,
      argv: [famFlag(r.family), 'route', 'del', r.dst, 'dev', config.device, 'table', table],
    });
  }

  const wanted = ([4, 6] as const).filter((f) => config.addresses.some((a) => a.family === f));
  const withDefault = wanted.filter((f) =>
    observed.mainRoutes.some((r) => r.family === f && r.dst === 'default'),
  );
  if (withDefault.length === 0) {
    throw new RouteError(
      'no default route to bypass through: the main table needs a default route (IPv4 or IPv6) for the proxy connection',
    );
  }
  for (const f of wanted) {
    if (!withDefault.includes(f)) {
      warnings.push(
        `no IPv${f} default route: IPv${f} goes into the TUN, but the proxy is reached over the other family only`,
      );
    }
  }

  const lan = wanted.flatMap((f) => lanPrefixes(observed.mainRoutes, f));
  const excludes: Cidr[] = [];
  for (const c of [...DEFAULT_EXCLUDES.map((t) => parseCidr(t)), ...lan, ...config.exclude]) {
    if (config.include.some((i) => samePrefix(i, c)) || excludes.some((e) => samePrefix(e, c))) continue;
    excludes.push(c);
  }

  const steps: RouteStep[] = [];
  for (const a of config.addresses) {
    if (observed.device.addresses.some((d) => d.address === a.address && d.prefixLength === a.prefixLength))
      continue;
    const text = `${a.address}/${a.prefixLength}`;
    steps.push({
      what: `address ${text} on ${config.device}`,
      argv: [
        famFlag(a.family),
        'addr',
        'add',
        text,
        'dev',
        config.device,
        ...(a.family === 6 ? ['nodad'] : []),
      ],
      undo: [famFlag(a.family), 'addr', 'del', text, 'dev', config.device],
    });
  }
  if (!observed.device.up) {
    steps.push({
      what: `${config.device} up`,
      argv: ['link', 'set', 'dev', config.device, 'up'],
      undo: ['link', 'set', 'dev', config.device, 'down'],
    });
  }
  for (const f of wanted) {
    steps.push({
      what: `route v${f} default dev ${config.device} table ${table}`,
      argv: [famFlag(f), 'route', 'add', 'default', 'dev', config.device, 'table', table],
      undo: [famFlag(f), 'route', 'del', 'default', 'dev', config.device, 'table', table],
    });
  }
  for (const f of wanted) steps.push(...familyRules(config, f, excludes));
  return { cleanup, steps, families: wanted, lan, warnings };
}
