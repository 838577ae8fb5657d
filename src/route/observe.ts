/**
 * Reads the routing state through iproute2's JSON output (`ip -j`): the main table, the rules,
 * our table and the TUN's addresses. The parsers are pure (tested on captured output); `observe`
 * runs the commands through an IpRunner.
 */
import { execFileSync } from 'node:child_process';
import { type Cidr, parseCidr } from './cidr.js';
import type { ObservedDevice, ObservedRoute, ObservedRule, ObservedState } from './plan.js';

/** The result of one `ip` command. */
export interface IpResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `ip` with an argv (never a shell string). */
export type IpRunner = (argv: readonly string[]) => IpResult;

/** How long one `ip` command may take. */
const IP_TIMEOUT_MS = 10_000;

/** The IpRunner of the real system: `ip` from PATH (or /sbin, /usr/sbin), synchronous, bounded in time. */
export const systemIp: IpRunner = (argv) => {
  try {
    const stdout = execFileSync('ip', [...argv], {
      encoding: 'utf8',
      timeout: IP_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
    });
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status?: number | null; stdout?: string; stderr?: string; message: string };
    return { code: e.status ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
};

function jsonArray(text: string): Record<string, unknown>[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const v = JSON.parse(trimmed) as unknown;
  return Array.isArray(v) ? (v as Record<string, unknown>[]) : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Parses `ip -j -4|-6 route show table X`. */
export function parseRoutes(json: string, family: 4 | 6): ObservedRoute[] {
  return jsonArray(json).map((r) => {
    const route: { -readonly [K in keyof ObservedRoute]: ObservedRoute[K] } = {
      family,
      dst: str(r.dst) ?? 'default',
    };
    if (str(r.dev) !== undefined) route.dev = str(r.dev);
    if (str(r.gateway) !== undefined) route.gateway = str(r.gateway);
    if (str(r.protocol) !== undefined) route.protocol = str(r.protocol);
    if (str(r.scope) !== undefined) route.scope = str(r.scope);
    return route;
  });
}

/** The keys of a rule we understand; any other selector makes a rule foreign. */
const RULE_KEYS = new Set([
  'priority',
  'not',
  'src',
  'srclen',
  'dst',
  'dstlen',
  'fwmark',
  'table',
  'action',
  'suppress_prefixlen',
  'flags',
  'protocol',
]);

/** Parses `ip -j -4|-6 rule show`. */
export function parseRules(json: string, family: 4 | 6): ObservedRule[] {
  return jsonArray(json).map((r) => {
    const rule: { -readonly [K in keyof ObservedRule]: ObservedRule[K] } = {
      family,
      priority: typeof r.priority === 'number' ? r.priority : -1,
    };
    if ('not' in r) rule.not = true;
    if (str(r.fwmark) !== undefined) rule.fwmark = str(r.fwmark);
    if (str(r.dst) !== undefined) {
      rule.dst = typeof r.dstlen === 'number' ? `${r.dst as string}/${r.dstlen}` : (r.dst as string);
    }
    if (str(r.src) !== undefined && r.src !== 'all') {
      rule.src = typeof r.srclen === 'number' ? `${r.src as string}/${r.srclen}` : (r.src as string);
    }
    if (str(r.table) !== undefined) rule.table = str(r.table);
    if (str(r.action) !== undefined) rule.action = str(r.action);
    if (typeof r.suppress_prefixlen === 'number') rule.suppressPrefixLength = r.suppress_prefixlen;
    if (Object.keys(r).some((k) => !RULE_KEYS.has(k))) rule.other = true;
    return rule;
  });
}

/** Parses `ip -j addr show dev NAME`: up flag and addresses (link-local ones left out). */
export function parseDevice(json: string): ObservedDevice {
  const link = jsonArray(json)[0];
  if (link === undefined) return { up: false, addresses: [] };
  const flags = Array.isArray(link.flags) ? (link.flags as unknown[]) : [];
  const addresses: Cidr[] = [];
  for (const a of Array.isArray(link.addr_info) ? (link.addr_info as Record<string, unknown>[]) : []) {
    if (typeof a.local !== 'string' || typeof a.prefixlen !== 'number' || a.scope === 'link') continue;
    addresses.push(parseCidr(`${a.local}/${a.prefixlen}`));
  }
  return { up: flags.includes('UP'), addresses };
}

/** Runs `argv`, returning stdout, or throws with `ip`'s own message. */
function must(ip: IpRunner, argv: readonly string[]): string {
  const r = ip(argv);
  if (r.code !== 0) throw new Error(`ip ${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** `ip route show table T`, empty when the table does not exist yet. */
function tableRoutes(ip: IpRunner, family: 4 | 6, table: number): ObservedRoute[] {
  const r = ip([family === 4 ? '-4' : '-6', '-j', 'route', 'show', 'table', String(table)]);
  if (r.code !== 0) return [];
  return parseRoutes(r.stdout, family);
}

/** Reads the state planRoutes() starts from (the device may not exist yet). */
export function observe(ip: IpRunner, deviceName: string, table: number): ObservedState {
  const mainRoutes: ObservedRoute[] = [];
  const rules: ObservedRule[] = [];
  const inTable: ObservedRoute[] = [];
  for (const f of [4, 6] as const) {
    const flag = f === 4 ? '-4' : '-6';
    mainRoutes.push(...parseRoutes(must(ip, [flag, '-j', 'route', 'show', 'table', 'main']), f));
    // IPv6 may be disabled on this kernel: then it has no rules to read.
    const ruleOut = ip([flag, '-j', 'rule', 'show']);
    if (ruleOut.code === 0) rules.push(...parseRules(ruleOut.stdout, f));
    else if (f === 4) throw new Error(`ip -4 -j rule show: ${ruleOut.stderr.trim()}`);
    inTable.push(...tableRoutes(ip, f, table));
  }
  // A device that does not exist yet (created when tun2socks opens it) is down with no address.
  const link = ip(['-j', 'addr', 'show', 'dev', deviceName]);
  const device = link.code === 0 ? parseDevice(link.stdout) : { up: false, addresses: [] };
  return { mainRoutes, rules, tableRoutes: inTable, device };
}
