/**
 * `--auto-route`: sets up the plan of plan.ts with iproute2 and undoes it exactly. Every undo
 * command is written to the state file before its command runs, so whatever happens (SIGTERM, a
 * fatal error, kill -9) either this process or the next start on the same device removes what
 * was added. Everything here is synchronous (execFileSync, bounded in time) so that undo also
 * works from a process 'exit' handler.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { Cidr } from './cidr.js';
import { type IpRunner, observe, systemIp } from './observe.js';
import { planRoutes, RouteError, type RoutePlan, RULE_PRIORITY_COUNT } from './plan.js';
import { type ResolvFs, renderResolvConf, resolvConfPath, systemResolvFs } from './resolv.js';
import {
  currentNetns,
  DEFAULT_STATE_DIR,
  listStates,
  ownerAlive,
  type RouteState,
  readState,
  removeState,
  statePath,
  writeState,
} from './state.js';

/** How long a --tun-pre-up / --tun-post-up / --tun-pre-down command may run. */
export const HOOK_TIMEOUT_MS = 30_000;

/** Linux capability number of CAP_NET_ADMIN (linux/capability.h). */
const CAP_NET_ADMIN = 12;

/** Options of an auto-route set-up. */
export interface AutoRouteOptions {
  readonly addresses: readonly Cidr[];
  readonly table: number;
  readonly rulePriority: number;
  readonly fwmark: number;
  readonly include: readonly Cidr[];
  readonly exclude: readonly Cidr[];
  /** --set-dns: the nameservers to write (the stack's DNS addresses); undefined: leave DNS alone. */
  readonly setDns?: readonly string[];
  /** Shell commands (`/bin/sh -c`) run before the TUN gets its addresses, after set-up, before undo. */
  readonly preUp?: string;
  readonly postUp?: string;
  readonly preDown?: string;
  /** Directory of the state file (default /run/tun2socks). */
  readonly stateDir?: string;
  readonly log?: Logger;
  /** Runs `ip` (tests inject a fake). */
  readonly ip?: IpRunner;
  /** File-system reads for the resolv.conf location (tests inject a fake). */
  readonly resolvFs?: ResolvFs;
  /** Skip the CAP_NET_ADMIN check (tests with a fake `ip`). */
  readonly skipPrivilegeCheck?: boolean;
  /** The netns inode to record (tests); default: this process's. */
  readonly netns?: number;
  /** Whether a state file's writer still runs (tests); default: ownerAlive(). */
  readonly ownerAlive?: (pid: number) => boolean;
}

/** True when this process has CAP_NET_ADMIN in its effective set (/proc/self/status CapEff). */
export function hasNetAdmin(status: string = readFileSync('/proc/self/status', 'utf8')): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (m === null) return false;
  return (BigInt(`0x${m[1]}`) & (1n << BigInt(CAP_NET_ADMIN))) !== 0n;
}

/** Runs a user hook through /bin/sh -c with TUN2SOCKS_DEVICE set; throws RouteError on failure. */
export function runHook(name: string, command: string, device: string): void {
  try {
    execFileSync('/bin/sh', ['-c', command], {
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: HOOK_TIMEOUT_MS,
      env: { ...process.env, TUN2SOCKS_DEVICE: device },
    });
  } catch (err) {
    const e = err as { status?: number | null; signal?: string | null };
    const how = e.signal ? `was killed by ${e.signal}` : `exited with ${e.status ?? 'an error'}`;
    throw new RouteError(`--${name} "${command}" ${how}`);
  }
}

/** Replays the undo list of a state file in reverse and restores its resolv.conf; returns failures. */
export function replayUndo(state: RouteState, ip: IpRunner, log?: Logger): number {
  let failed = 0;
  for (const argv of [...state.undo].reverse()) {
    const r = ip(argv);
    // A device that vanished takes its addresses and routes with it: "Cannot find device" is fine.
    if (r.code !== 0) {
      failed++;
      log?.debug(`undo: ip ${argv.join(' ')}: ${r.stderr.trim()}`);
    }
  }
  if (state.resolv !== undefined) {
    let now: string | undefined;
    try {
      now = readFileSync(state.resolv.path, 'utf8');
    } catch {
      now = undefined;
    }
    if (now === state.resolv.written) writeFileSync(state.resolv.path, state.resolv.original);
    else log?.warn(`${state.resolv.path} changed since --set-dns wrote it; left as it is`);
  }
  return failed;
}

/** An auto-route for one device: prepare() checks and plans, up() applies, down() undoes. */
export class AutoRoute {
  private readonly ip: IpRunner;
  private readonly path: string;
  private readonly netns: number;
  private undo: string[][] = [];
  private resolv: RouteState['resolv'];
  private applied = false;
  private finished = false;

  private constructor(
    /** The TUN device routed into. */
    readonly device: string,
    private readonly options: AutoRouteOptions,
    /** The plan up() applies. */
    readonly plan: RoutePlan,
    /** resolv.conf --set-dns writes, when set. */
    readonly resolvPath: string | undefined,
  ) {
    this.ip = options.ip ?? systemIp;
    this.path = statePath(options.stateDir ?? DEFAULT_STATE_DIR, device);
    this.netns = options.netns ?? currentNetns();
  }

  /**
   * Checks privileges, refuses to share a device, table or priorities with a tun2socks still
   * running (its state file names them), removes what a run killed earlier on this device left
   * behind (its state file, then any rule of ours still at our priorities), reads the routing
   * state and plans.
   * Throws RouteError with a one-line message when it cannot proceed safely.
   */
  static prepare(device: string, options: AutoRouteOptions): AutoRoute {
    const ip = options.ip ?? systemIp;
    const log = options.log;
    if (options.skipPrivilegeCheck !== true && !hasNetAdmin()) {
      throw new RouteError('--auto-route needs CAP_NET_ADMIN (run as root)');
    }
    const resolvPath =
      options.setDns !== undefined ? resolvConfPath(options.resolvFs ?? systemResolvFs) : undefined;
    const path = statePath(options.stateDir ?? DEFAULT_STATE_DIR, device);
    const netns = options.netns ?? currentNetns();
    const alive = options.ownerAlive ?? ownerAlive;
    for (const other of listStates(options.stateDir ?? DEFAULT_STATE_DIR)) {
      const o = other.state;
      if (o.netns !== netns || !alive(o.pid)) continue;
      // A running tun2socks: its rules look like ours, so they must not be taken for leftovers.
      if (o.device === device) {
        throw new RouteError(`tun2socks pid ${o.pid} is already routing into ${device}`);
      }
      const overlap =
        Math.abs(o.rulePriority - options.rulePriority) < RULE_PRIORITY_COUNT || o.table === options.table;
      if (overlap) {
        throw new RouteError(
          `tun2socks pid ${o.pid} (device ${o.device}) uses table ${o.table} and rule priorities ${o.rulePriority}-${o.rulePriority + RULE_PRIORITY_COUNT - 1}; choose another --table and --rule-priority`,
        );
      }
    }
    const stale = readState(path);
    if (stale !== undefined) {
      if (stale.netns !== netns) {
        throw new RouteError(
          `${path} was left by a run in another network namespace; delete it if that run is gone`,
        );
      }
      const failed = replayUndo(stale, ip, log);
      removeState(path);
      log?.info('removed what an earlier run left behind', {
        pid: stale.pid,
        commands: stale.undo.length,
        failed,
      });
    }
    let observed: ReturnType<typeof observe>;
    try {
      observed = observe(ip, device, options.table);
    } catch (err) {
      throw new RouteError(`cannot read the routing state: ${(err as Error).message}`);
    }
    const plan = planRoutes(
      {
        device,
        addresses: options.addresses,
        table: options.table,
        rulePriority: options.rulePriority,
        fwmark: options.fwmark,
        include: options.include,
        exclude: options.exclude,
      },
      observed,
    );
    for (const step of plan.cleanup) {
      const r = ip(step.argv);
      log?.info(`deleted ${step.what}`, r.code === 0 ? {} : { error: r.stderr.trim() });
    }
    for (const w of plan.warnings) log?.warn(w);
    return new AutoRoute(device, options, plan, resolvPath);
  }

  /** What is set up now, and how to undo it. */
  private currentState(): RouteState {
    const o = this.options;
    return {
      version: 1,
      device: this.device,
      pid: process.pid,
      netns: this.netns,
      table: o.table,
      rulePriority: o.rulePriority,
      fwmark: o.fwmark,
      undo: this.undo,
      ...(this.resolv !== undefined ? { resolv: this.resolv } : {}),
    };
  }

  private save(): void {
    writeState(this.path, this.currentState());
  }

  /**
   * Runs --tun-pre-up, the plan (recording each undo first), --set-dns and --tun-post-up. On any
   * failure everything done so far is undone and a RouteError thrown.
   */
  up(): void {
    if (this.applied) return;
    this.applied = true;
    const o = this.options;
    try {
      this.save();
      if (o.preUp !== undefined) runHook('tun-pre-up', o.preUp, this.device);
      for (const step of this.plan.steps) {
        if (step.undo !== undefined) {
          this.undo.push([...step.undo]);
          this.save();
        }
        const r = this.ip(step.argv);
        if (r.code !== 0) {
          throw new RouteError(`ip ${step.argv.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
        }
        o.log?.debug(`auto-route: ${step.what}`);
      }
      if (o.setDns !== undefined && this.resolvPath !== undefined) this.setDns(this.resolvPath, o.setDns);
      if (o.postUp !== undefined) runHook('tun-post-up', o.postUp, this.device);
    } catch (err) {
      this.down();
      throw err instanceof RouteError ? err : new RouteError(`auto-route failed: ${(err as Error).message}`);
    }
  }

  private setDns(path: string, addresses: readonly string[]): void {
    const original = readFileSync(path, 'utf8');
    const written = renderResolvConf(addresses);
    this.resolv = { path, original, written };
    this.save();
    // In place (truncate, same inode): a bind-mounted /etc/netns/NAME/resolv.conf stays mounted.
    writeFileSync(path, written);
    this.options.log?.info('resolv.conf points at the stack', { path, nameservers: addresses.join(' ') });
  }

  /**
   * Runs --tun-pre-down, then undoes everything in reverse (rules, routes, addresses, resolv.conf)
   * and deletes the state file. Synchronous and idempotent: safe from signal and exit handlers.
   */
  down(): void {
    if (this.finished || !this.applied) return;
    this.finished = true;
    const o = this.options;
    if (o.preDown !== undefined) {
      try {
        runHook('tun-pre-down', o.preDown, this.device);
      } catch (err) {
        o.log?.warn((err as Error).message);
      }
    }
    replayUndo(this.currentState(), this.ip, o.log);
    removeState(this.path);
    o.log?.info('auto-route removed', { device: this.device, commands: this.undo.length });
  }
}
