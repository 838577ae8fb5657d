/**
 * One test site for TCP against the Linux kernel: a namespace whose kernel routes 198.18.5.0/24
 * and fd00:5::/64 into a TUN that our stack drives (optionally through a FaultDevice), the stack
 * serving the roles of tcp-server.mjs, and the kernel client tcp-client.mjs run inside.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type RuntimeOptions, StackRuntime } from '../../../src/runtime.js';
import type { Device } from '../../../src/tun/device.js';
import { FaultDevice, type FaultOptions } from '../../../src/tun/fault-device.js';
import { openTun, type ReadMode } from '../../../src/tun/linux-tun.js';
import type { Netns, Testbed } from '../../testbed/index.js';
import type { ServeRecord } from './tcp-server.mjs';

/** The .mjs programs' directory: this one, or the source tree's when this file runs compiled from dist/. */
const CLIENTS_DIR = existsSync(resolve(import.meta.dirname, 'tcp-client.mjs'))
  ? import.meta.dirname
  : resolve(import.meta.dirname, '../../../../test/integration/clients');
/** The kernel client program. */
export const CLIENT = resolve(CLIENTS_DIR, 'tcp-client.mjs');
/** The kernel server program (for kernel-to-kernel baselines); its exports serve the stack's side too. */
export const SERVER = resolve(CLIENTS_DIR, 'tcp-server.mjs');

/** tcp-server.mjs, loaded at run time so that this file also works compiled (the bench). */
export type ServerModule = typeof import('./tcp-server.mjs');

/** Loads tcp-server.mjs. */
export function loadServer(): Promise<ServerModule> {
  return import(pathToFileURL(SERVER).href) as Promise<ServerModule>;
}
/** An IPv4 address the stack impersonates. */
export const HOST4 = '198.18.5.9';
/** An IPv6 address the stack impersonates. */
export const HOST6 = 'fd00:5::9';
/** The ports the stack serves (roles of tcp-server.mjs); 9 refuses. */
export const Port = Object.freeze({ ECHO: 7, REFUSE: 9, SINK: 5001, SOURCE: 5002, SOURCE_AFTER_FIN: 5003 });

/** One kernel connection as tcp-client.mjs reports it. */
export interface ClientResult {
  /** The client's port (the stack's remote port). */
  port: number;
  sent: string;
  sentBytes: number;
  received: string;
  receivedBytes: number;
  ms: number;
}

/** Flags of tcp-client.mjs. */
export interface ClientFlags {
  conns?: number;
  extra?: number;
  seed?: number;
  /** The client's socket idle timeout. */
  timeout?: number;
  /** 0: do not hash (throughput benchmarks). */
  hash?: 0 | 1;
}

/** How KernelSite.create builds the site. */
export interface SiteOptions {
  /** Faults between the TUN and the stack (a FaultDevice), none when absent. */
  faults?: FaultOptions;
  /** The TUN's read mode (default 'drain'). */
  readMode?: ReadMode;
  /** Stack options. */
  runtime?: RuntimeOptions;
  /** Hash what the stack's side moves (default true); off for throughput benchmarks. */
  hash?: boolean;
  /** The kernel's TCP congestion control in the namespace; default: the host's (new namespaces inherit it). */
  kernelCc?: string;
  /**
   * The TUN's txqueuelen: the ring of packets the kernel queues for the stack to read, dropping
   * beyond it. Default 4096: the default 500 overflows at once when 200 connections send their
   * initial windows together (2000 segments), and the losses then stall connections on RTOs.
   */
  txQueueLen?: number;
}

/** The kernel's TCP congestion control in `ns` (a new namespace inherits the host's, e.g. cubic or bbr). */
export async function kernelCongestionControl(ns: Netns): Promise<string> {
  const r = await ns.exec('sysctl', ['-n', 'net.ipv4.tcp_congestion_control']);
  return r.stdout.trim();
}

/** A namespace with a TUN driven by our stack, which serves the tcp-server.mjs roles. */
export class KernelSite {
  private readonly records = new Map<number, ServeRecord>();
  private readonly waiters = new Map<number, (r: ServeRecord) => void>();

  private constructor(
    /** The client namespace. */
    readonly ns: Netns,
    /** The runtime driving the stack. */
    readonly runtime: StackRuntime,
    /** The fault injector between the TUN and the stack, when faults were asked for. */
    readonly faults: FaultDevice | undefined,
    { serve }: ServerModule,
    hash: boolean,
  ) {
    runtime.onTcpRequest((req) => {
      const port = req.localPort;
      if (port !== Port.ECHO && port !== Port.SINK && port !== Port.SOURCE && port !== Port.SOURCE_AFTER_FIN)
        return req.reject();
      serve(req.accept(), port, (r) => this.recorded(req.remotePort, r), { hash });
    });
    runtime.start();
  }

  /** Creates the namespace, the TUN (MTU 1500) and the runtime, with faults when asked. */
  static async create(bed: Testbed, label: string, opts: SiteOptions = {}): Promise<KernelSite> {
    const ns = await bed.netns(label);
    // Per namespace; outside the init namespace only tcp_allowed_congestion_control may be chosen.
    if (opts.kernelCc !== undefined)
      await ns.exec('sysctl', ['-qw', `net.ipv4.tcp_congestion_control=${opts.kernelCc}`]);
    const tun = await bed.tun(ns, {
      mtu: 1500,
      address: '198.18.0.1/30',
      address6: 'fd00::1/64',
      routes: ['198.18.5.0/24'],
      routes6: ['fd00:5::/64'],
    });
    await ns.ip(['link', 'set', 'dev', tun, 'txqueuelen', String(opts.txQueueLen ?? 4096)]);
    const inner = openTun({ name: tun, netns: ns.path, readMode: opts.readMode ?? 'drain' });
    const fault = opts.faults === undefined ? undefined : new FaultDevice(inner, opts.faults);
    const device: Device = fault ?? inner;
    const runtime = new StackRuntime(device, opts.runtime);
    return new KernelSite(ns, runtime, fault, await loadServer(), opts.hash ?? true);
  }

  /** Runs tcp-client.mjs in the namespace; resolves with its per-connection results. */
  async client(
    mode: string,
    host: string,
    port: number,
    bytes: number,
    flags: ClientFlags = {},
    timeoutMs = 120_000,
  ): Promise<ClientResult[]> {
    const args = Object.entries(flags).map(([k, v]) => `--${k}=${v}`);
    // Records of earlier runs could share a client port with this one.
    this.records.clear();
    const r = await this.ns.exec('node', [CLIENT, mode, host, String(port), String(bytes), ...args], {
      timeoutMs,
    });
    return JSON.parse(r.stdout) as ClientResult[];
  }

  /** What the stack's side of the connection from `remotePort` reported, once it is over. */
  served(remotePort: number, timeoutMs = 30_000): Promise<ServeRecord> {
    const r = this.records.get(remotePort);
    if (r !== undefined) {
      this.records.delete(remotePort);
      return Promise.resolve(r);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(remotePort);
        reject(new Error(`no server record for port ${remotePort} after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(remotePort, (rec) => {
        clearTimeout(timer);
        resolve(rec);
      });
    });
  }

  /** Resets every connection, closes the device. */
  close(): Promise<void> {
    return this.runtime.close();
  }

  private recorded(remotePort: number, r: ServeRecord): void {
    this.records.set(remotePort, r);
    const w = this.waiters.get(remotePort);
    this.waiters.delete(remotePort);
    w?.(r);
  }
}
