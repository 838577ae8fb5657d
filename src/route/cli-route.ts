/**
 * The command's side of --auto-route: before the engine starts, clean up after an earlier run,
 * check and plan, settle the defaults that depend on the machine (the DNS upstream from
 * resolv.conf, the proxy's address); after it starts, apply; and make sure the undo runs on every
 * way out (signals are the caller's, plus 'exit' and uncaught errors here).
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { CliOptions } from '../cli-args.js';
import type { Logger } from '../log.js';
import { parseDeviceSpec } from '../tun/spec.js';
import { AutoRoute } from './auto-route.js';
import { RouteError } from './plan.js';
import { nameservers } from './resolv.js';

/**
 * The default --dns-upstream: the first nameserver of /etc/resolv.conf that the proxy can reach
 * (not a loopback stub like systemd-resolved's 127.0.0.53, not the stack's own DNS address).
 */
export function defaultDnsUpstream(
  opts: CliOptions,
  log: Logger,
  read: () => string = () => readFileSync('/etc/resolv.conf', 'utf8'),
): { host: string; port: number } | undefined {
  let text: string;
  try {
    text = read();
  } catch {
    return undefined;
  }
  const usable = nameservers(text).filter(
    (a) => !a.startsWith('127.') && a !== '::1' && !opts.dns.addresses.includes(a),
  );
  if (usable[0] === undefined) {
    log.warn('resolv.conf has no nameserver the proxy could reach; give --dns-upstream');
    return undefined;
  }
  return { host: usable[0], port: 53 };
}

/**
 * Before the engine starts: with --auto-route, AutoRoute.prepare() (privileges, leftovers of an
 * earlier run, conflicts, the plan) and the proxy's name resolved once, while the system resolver
 * is still the original one; the DNS upstream default read after any leftover resolv.conf is
 * restored. Returns the options to start the engine with.
 */
export async function prepareRoute(
  opts: CliOptions,
  log: Logger,
): Promise<{ opts: CliOptions; route: AutoRoute | undefined }> {
  let route: AutoRoute | undefined;
  const a = opts.autoRoute;
  if (a !== undefined) {
    const spec = parseDeviceSpec(opts.device!);
    if (!('name' in spec)) throw new RouteError('--auto-route needs a device name, not fd://');
    route = AutoRoute.prepare(spec.name, {
      addresses: a.addresses,
      table: a.table,
      rulePriority: a.rulePriority,
      fwmark: opts.upstreamSocket.fwmark,
      include: a.include,
      exclude: a.exclude,
      ...(a.setDns ? { setDns: opts.dns.addresses } : {}),
      ...(a.preUp !== undefined ? { preUp: a.preUp } : {}),
      ...(a.postUp !== undefined ? { postUp: a.postUp } : {}),
      ...(a.preDown !== undefined ? { preDown: a.preDown } : {}),
      log,
    });
  }
  let next = opts;
  if (opts.dns.mode !== 'direct' && opts.dns.upstream === undefined) {
    const upstream = defaultDnsUpstream(opts, log);
    if (upstream !== undefined) next = { ...next, dns: { ...next.dns, upstream } };
  }
  const proxy = next.proxy;
  if (route !== undefined && proxy.kind !== 'direct' && proxy.kind !== 'reject' && isIP(proxy.host) === 0) {
    // Once resolv.conf points at the stack, the proxy's name would resolve to a fake address.
    try {
      const { address } = await lookup(proxy.host);
      log.info('proxy name resolved once for --auto-route', { name: proxy.host, address });
      next = { ...next, proxy: { ...proxy, host: address } };
    } catch (err) {
      throw new RouteError(`cannot resolve the proxy's name ${proxy.host}: ${(err as Error).message}`);
    }
  }
  return { opts: next, route };
}

/**
 * Makes sure `route` is undone however the process ends: a process 'exit' handler (undo is
 * synchronous), and uncaught exceptions / unhandled rejections print the error, undo and exit 1.
 */
export function undoOnExit(route: AutoRoute, log: Logger): void {
  process.on('exit', () => route.down());
  const fatal = (err: unknown): void => {
    log.error(`fatal: ${(err as Error)?.stack ?? String(err)}`);
    route.down();
    process.exit(1);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}
