/**
 * The integration test bed: network namespaces joined by veth pairs, persistent TUN devices and
 * processes inside them, all named uniquely per process and torn down even when a test fails or
 * the process is interrupted. Addresses and routes are confined to 198.18.0.0/15 and fd00::/8,
 * and nothing is ever configured in the machine's own namespace.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register, runSyncQuiet, sweepStale, unregister } from './cleanup.js';
import { type ExecOptions, type ExecResult, findExecutable, ipPath, run } from './exec.js';
import { checkCidr4, checkCidr6, checkIfname, checkMtu } from './guard.js';
import { ifnameFor, netnsName, nextCounter } from './names.js';

export { sweepStale } from './cleanup.js';
export type { ExecOptions, ExecResult } from './exec.js';
export { checkCidr4, checkCidr6, checkIfname } from './guard.js';

/** How long destroy() lets spawned processes react to SIGTERM before SIGKILL. */
const TERM_GRACE_MS = 1000;

/** A process spawned in a namespace; `group` when it leads its own process group (detached). */
interface Spawned {
  child: ChildProcess;
  group: boolean;
}

function running(s: Spawned): boolean {
  return s.child.pid !== undefined && s.child.exitCode === null && s.child.signalCode === null;
}

/** Sends `signal` to a spawned process (its whole group when it leads one) unless it has exited. */
function signalSpawned(s: Spawned, signal: NodeJS.Signals): void {
  if (!running(s)) return;
  try {
    process.kill(s.group ? -s.child.pid! : s.child.pid!, signal);
  } catch {
    // Exited between the check and the kill (ESRCH).
  }
}

/** Resolves once `s` has exited or `ms` has passed. */
function exited(s: Spawned, ms: number): Promise<void> {
  if (!running(s)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      s.child.off('exit', done);
      resolve();
    }
    s.child.once('exit', done);
  });
}

/** Pids listed by `ip netns pids` output, without this process and its parent (never ours to kill). */
function foreignPids(stdout: string): number[] {
  return stdout
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 1 && pid !== process.pid && pid !== process.ppid);
}

/** Sends SIGKILL to each pid, ignoring those already gone. */
function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already exited.
    }
  }
}

/** A network namespace created by a Testbed. */
export class Netns {
  /** The path `ip netns` binds the namespace to. */
  readonly path: string;

  /** @internal Use Testbed.netns(). */
  constructor(
    /** The namespace name, `t2s-<pid>-<counter>-<tag>-<label>`. */
    readonly name: string,
    /** The label it was created with. */
    readonly label: string,
    private readonly track: (s: Spawned) => void,
  ) {
    this.path = `/var/run/netns/${name}`;
  }

  /** Runs a command inside the namespace (`ip netns exec`); rejects on non-zero exit unless allowFail. */
  exec(cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult> {
    return run(ipPath(), ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Runs `sh -c <script>` inside the namespace. */
  sh(script: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.exec('sh', ['-c', script], opts);
  }

  /** Runs `ip -n <name> <args>`: iproute2 acting on this namespace. */
  ip(args: string[], opts?: ExecOptions): Promise<ExecResult> {
    return run(ipPath(), ['-n', this.name, ...args], opts);
  }

  /**
   * Starts a long-running process inside the namespace; it is killed by Testbed.destroy(). It
   * leads its own process group (`detached` defaults to true) so its children die with it.
   */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess {
    const options: SpawnOptions = { detached: true, ...opts };
    // `ip netns exec` execs the command in place, so the child's pid is the command's own.
    const child = spawn(ipPath(), ['netns', 'exec', this.name, cmd, ...args], options);
    this.track({ child, group: options.detached === true });
    return child;
  }

  /** Resolves once a TCP socket listens on `port` in the namespace (polls `ss -ltn`). */
  waitForTcpPort(port: number, timeoutMs: number): Promise<void> {
    return this.waitForListener('-Hltn', 'TCP', port, timeoutMs);
  }

  /** Resolves once a UDP socket is bound to `port` in the namespace (polls `ss -lun`). */
  waitForUdpPort(port: number, timeoutMs: number): Promise<void> {
    return this.waitForListener('-Hlun', 'UDP', port, timeoutMs);
  }

  private async waitForListener(
    flags: string,
    proto: string,
    port: number,
    timeoutMs: number,
  ): Promise<void> {
    await waitFor(
      async () => {
        const r = await this.exec('ss', [flags, `sport = :${port}`], { allowFail: true });
        return r.code === 0 && r.stdout.trim() !== '';
      },
      timeoutMs,
      `a ${proto} listener on port ${port} in ${this.name}`,
    );
  }
}

/** Options of Testbed.veth(): addresses (CIDR) for each end. */
export interface TestbedVethOptions {
  a?: string;
  b?: string;
  a6?: string;
  b6?: string;
}

/** Options of Testbed.tun(): name, MTU, addresses (CIDR) and routes into the device. */
export interface TestbedTunOptions {
  name?: string;
  mtu?: number;
  address?: string;
  address6?: string;
  routes?: string[];
  routes6?: string[];
}

/** A set of namespaces, links, processes and temp dirs that one destroy() removes. */
export class Testbed {
  private readonly namespaces: Netns[] = [];
  private readonly spawned: Spawned[] = [];
  private readonly dirs: string[] = [];
  private destroyed = false;
  private destroying: Promise<void> | undefined;

  private constructor(
    /** The tag given to create(), part of every namespace name. */
    readonly tag: string,
  ) {}

  /** A new test bed whose names are unique to this process and call (tag appears in names). */
  static async create(tag: string): Promise<Testbed> {
    const bed = new Testbed(tag);
    register(bed);
    await sweepStale();
    return bed;
  }

  private ensureLive(): void {
    if (this.destroyed) throw new Error(`testbed ${this.tag}: already destroyed`);
  }

  private ensureOwn(ns: Netns): void {
    if (!this.namespaces.includes(ns))
      throw new Error(`testbed ${this.tag}: ${ns.name} is not one of its namespaces`);
  }

  /** Creates a namespace with loopback up and IPv6 duplicate address detection off. */
  async netns(label: string): Promise<Netns> {
    this.ensureLive();
    const ns = new Netns(netnsName(process.pid, nextCounter(), this.tag, label), label, (s) =>
      this.spawned.push(s),
    );
    // Recorded before it exists, so a failure half-way is still cleaned up.
    this.namespaces.push(ns);
    await run(ipPath(), ['netns', 'add', ns.name]);
    await ns.ip(['link', 'set', 'lo', 'up']);
    // Addresses usable at once (RFC 4862 §5.4 DAD would hold them tentative); allowed to fail on
    // a kernel without IPv6, where only IPv4 tests can run.
    for (const scope of ['all', 'default'])
      await ns.exec('sysctl', ['-qw', `net.ipv6.conf.${scope}.accept_dad=0`], { allowFail: true });
    return ns;
  }

  /** A unique interface name of at most 15 bytes (IFNAMSIZ-1). */
  ifname(label: string): string {
    return ifnameFor(process.pid, nextCounter(), label);
  }

  /** A veth pair between two namespaces with optional addresses (CIDR), links up. */
  async veth(a: Netns, b: Netns, opts: TestbedVethOptions = {}): Promise<{ aIf: string; bIf: string }> {
    // Every argument is checked before the first command runs.
    this.ensureLive();
    this.ensureOwn(a);
    this.ensureOwn(b);
    const v4 = { a: opts.a, b: opts.b };
    const v6 = { a: opts.a6, b: opts.b6 };
    if (v4.a !== undefined) checkCidr4(v4.a);
    if (v4.b !== undefined) checkCidr4(v4.b);
    if (v6.a !== undefined) checkCidr6(v6.a);
    if (v6.b !== undefined) checkCidr6(v6.b);
    const aIf = this.ifname(`v${a.label}`);
    const bIf = this.ifname(`v${b.label}`);
    // Created straight inside the namespaces: nothing ever appears in the root namespace.
    await a.ip(['link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
    for (const [ns, ifname, addr, addr6] of [
      [a, aIf, v4.a, v6.a],
      [b, bIf, v4.b, v6.b],
    ] as const) {
      if (addr !== undefined) await ns.ip(['addr', 'add', addr, 'dev', ifname]);
      if (addr6 !== undefined) await ns.ip(['addr', 'add', addr6, 'dev', ifname, 'nodad']);
      await ns.ip(['link', 'set', ifname, 'up']);
    }
    return { aIf, bIf };
  }

  /** A persistent TUN (`ip tuntap add mode tun`) in `ns`, optionally with MTU, addresses and routes, up. */
  async tun(ns: Netns, opts: TestbedTunOptions = {}): Promise<string> {
    this.ensureLive();
    this.ensureOwn(ns);
    const name = checkIfname(opts.name ?? this.ifname('tun'));
    if (opts.mtu !== undefined) checkMtu(opts.mtu);
    if (opts.address !== undefined) checkCidr4(opts.address);
    if (opts.address6 !== undefined) checkCidr6(opts.address6);
    for (const r of opts.routes ?? []) checkCidr4(r, 'IPv4 route');
    for (const r of opts.routes6 ?? []) checkCidr6(r, 'IPv6 route');
    await ns.ip(['tuntap', 'add', 'dev', name, 'mode', 'tun']);
    if (opts.mtu !== undefined) await ns.ip(['link', 'set', 'dev', name, 'mtu', String(opts.mtu)]);
    if (opts.address !== undefined) await ns.ip(['addr', 'add', opts.address, 'dev', name]);
    if (opts.address6 !== undefined) await ns.ip(['addr', 'add', opts.address6, 'dev', name, 'nodad']);
    await ns.ip(['link', 'set', 'dev', name, 'up']);
    for (const r of opts.routes ?? []) await ns.ip(['route', 'add', r, 'dev', name]);
    for (const r of opts.routes6 ?? []) await ns.ip(['-6', 'route', 'add', r, 'dev', name]);
    return name;
  }

  /** A temp directory removed by destroy(). */
  async tmpdir(): Promise<string> {
    this.ensureLive();
    const dir = await mkdtemp(join(tmpdir(), `t2s-${process.pid}-${nextCounter()}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** Kills every spawned process (SIGTERM, then SIGKILL), deletes every namespace (and with it its links), removes temp dirs. Idempotent. */
  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    this.destroyed = true;
    const errors: string[] = [];
    const live = this.spawned.filter(running);
    for (const s of live) signalSpawned(s, 'SIGTERM');
    await Promise.all(live.map((s) => exited(s, TERM_GRACE_MS)));
    for (const s of live) signalSpawned(s, 'SIGKILL');
    await Promise.all(live.map((s) => exited(s, TERM_GRACE_MS)));
    for (const ns of [...this.namespaces].reverse()) {
      if (!existsSync(ns.path)) continue;
      // Whatever still runs inside (a spawned process's orphans) would keep the namespace alive.
      const pids = await run(ipPath(), ['netns', 'pids', ns.name], { allowFail: true });
      killAll(foreignPids(pids.stdout));
      const del = await run(ipPath(), ['netns', 'del', ns.name], { allowFail: true });
      if (del.code !== 0 && existsSync(ns.path)) errors.push(`ip netns del ${ns.name}: ${del.stderr.trim()}`);
    }
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
    unregister(this);
    if (errors.length > 0) throw new Error(`testbed ${this.tag}: teardown incomplete: ${errors.join('; ')}`);
  }

  /** @internal The synchronous teardown run from `exit`/signal handlers: SIGKILL, delete, remove. */
  destroySync(): void {
    this.destroyed = true;
    for (const s of this.spawned) signalSpawned(s, 'SIGKILL');
    const ip = ipPath();
    for (const ns of [...this.namespaces].reverse()) {
      if (!existsSync(ns.path)) continue;
      killAll(foreignPids(runSyncQuiet(ip, ['netns', 'pids', ns.name])));
      runSyncQuiet(ip, ['netns', 'del', ns.name]);
    }
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
    unregister(this);
  }
}

/** Whether the CI environment variable is set (to anything but empty, 0 or false). */
function underCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/** True when root and /dev/net/tun exist; under CI (env CI set) it throws instead of returning false, so integration tests never skip there. */
export function canRunIntegration(): boolean {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (uid 0)');
  if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun (modprobe tun)');
  if (findExecutable('ip') === undefined) missing.push('iproute2 `ip` (apt-get install iproute2)');
  if (missing.length === 0) return true;
  if (underCi())
    throw new Error(
      `integration tests need ${missing.join(', ')}; CI is set, so they must run rather than skip`,
    );
  return false;
}

/** Polls `fn` until it returns truthy or `timeoutMs` passes (then rejects with `what`). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let delayMs = 10;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      const cause =
        lastError === undefined ? '' : ` (last error: ${(lastError as Error).message ?? lastError})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(delayMs, left)));
    delayMs = Math.min(delayMs * 2, 200);
  }
}
