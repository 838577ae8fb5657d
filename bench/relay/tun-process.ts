/**
 * One `tun2socks` command under test in the client namespace: started exactly as a user runs it
 * (`node dist/src/cli.js --device tun://NAME --proxy URL --mtu N [--offload MODE] [--multi-queue N]
 * [--tcp-accept MODE] [--busy-poll DUR] [--tun-io MODE]`), its TUN given an
 * address and one /32 route (its lane's server address), its memory read from /proc, stopped with
 * SIGTERM. The fd limit is raised first so it can hold 10,000 relayed connections.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { checkCidr4, waitFor } from '../../test/testbed/index.js';
import { type BenchSite, CLI, serverForLane, WITH_FDS } from './site.js';

/** How tun2socks is configured for one lane. */
export interface TunConfig {
  /** What the table calls it, e.g. `mtu 1500`. */
  label: string;
  /** The TUN MTU (`--mtu`). */
  mtu: number;
  /** `--offload auto|off`, only passed when set (older builds have no such flag). */
  offload?: 'auto' | 'off';
  /** `--multi-queue N` (worker threads, one TUN queue and stack each), only passed when set. */
  multiQueue?: number;
  /** `--tcp-accept MODE`, only passed when set. */
  tcpAccept?: 'auto' | 'after-dial' | 'before-dial';
  /** `--busy-poll DUR` (e.g. `200us`), only passed when set. */
  busyPoll?: string;
  /** `--tun-io MODE`, only passed when set. */
  tunIo?: 'auto' | 'uring' | 'plain';
}

/** How long a stop waits for the exit after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5000;

/** A running tun2socks with its lane's TUN routed. */
export class TunProcess {
  private stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    /** The configuration it runs. */
    readonly config: TunConfig,
    /** The server address routed into its TUN. */
    readonly target: string,
  ) {
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8192);
    });
  }

  /** Starts tun2socks for `lane` through `proxyUrl` and routes serverForLane(lane) into its TUN. */
  static async start(
    site: BenchSite,
    lane: number,
    config: TunConfig,
    proxyUrl: string,
  ): Promise<TunProcess> {
    const name = site.ifname(`b${lane}`);
    const args = [
      '--device',
      `tun://${name}`,
      '--proxy',
      proxyUrl,
      '--mtu',
      String(config.mtu),
      '--loglevel',
      'info',
    ];
    if (config.offload !== undefined) args.push('--offload', config.offload);
    if (config.multiQueue !== undefined) args.push('--multi-queue', String(config.multiQueue));
    if (config.tcpAccept !== undefined) args.push('--tcp-accept', config.tcpAccept);
    if (config.busyPoll !== undefined) args.push('--busy-poll', config.busyPoll);
    if (config.tunIo !== undefined) args.push('--tun-io', config.tunIo);
    // `ip netns exec` and then sh exec in place: the child's pid is node's.
    const child = site.client.spawn('sh', ['-c', WITH_FDS, 'sh', 'node', CLI, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const proc = new TunProcess(child, config, serverForLane(lane));
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`tun2socks exited: ${proc.stderr}`);
        return proc.stderr.includes('tun2socks started');
      },
      15_000,
      `tun2socks (${config.label}) to start`,
    );
    await site.client.ip(['addr', 'add', checkCidr4(`198.18.${40 + lane}.1/24`), 'dev', name]);
    await site.client.ip(['link', 'set', name, 'up']);
    await site.client.ip(['route', 'add', checkCidr4(`${proc.target}/32`, 'route'), 'dev', name]);
    return proc;
  }

  /** The process id (node's own). */
  get pid(): number {
    return this.child.pid!;
  }

  /** CPU time used so far (user + system, all threads) in seconds, from /proc/PID/stat. */
  async cpuSeconds(): Promise<number> {
    const text = await readFile(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state; utime, stime are 14, 15.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** A `/proc/PID/status` field in kB (VmRSS, VmHWM). */
  async statusKb(field: 'VmRSS' | 'VmHWM'): Promise<number> {
    const text = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    if (m === null) throw new Error(`no ${field} in /proc/${this.pid}/status`);
    return Number(m[1]);
  }

  /** The last of what it wrote on stderr (for failure messages). */
  get log(): string {
    return this.stderr;
  }

  /** SIGTERM, then SIGKILL if it has not exited within STOP_GRACE_MS. */
  async stop(): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    process.kill(this.pid, 'SIGTERM');
    const t = setTimeout(() => {
      if (c.exitCode === null && c.signalCode === null) process.kill(this.pid, 'SIGKILL');
    }, STOP_GRACE_MS);
    await gone;
    clearTimeout(t);
  }
}
