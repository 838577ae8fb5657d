/**
 * TCP throughput and memory against the Linux kernel through a real TUN.
 *
 * Throughput: one connection, kernel→stack (the kernel client uploads to the stack's sink) and
 * stack→kernel (the stack's source sends to the kernel client), clean and through a FaultDevice
 * (seeded loss, delay, reordering and duplication in both directions), next to kernel-to-kernel
 * baselines measured in the same run: the same client program (tcp-client.mjs) against the same
 * server roles run by the kernel (tcp-server.mjs) in a second namespace, reached
 *   - over a veth (the kernel's own path), and
 *   - through two TUNs whose packets this process relays (the same TUN reads and writes as the
 *     stack, without our TCP), clean or through the same FaultDevice faults as the stack. This is
 *     the faulted baseline: kernels without sch_netem cannot fault a veth.
 * Nothing is hashed (the tests check integrity); rates count payload bytes over the client's time
 * from connect() to close. The paths take turns; each figure is the median of --runs runs.
 *
 * Memory: --idle established connections that the kernel client opens and holds idle; the
 * process's RSS and V8 heap after a full GC, before and after, divided by the connection count.
 * It includes each connection's TcpSocket (a Node Duplex) and the sink's listeners.
 *
 * Everything lives in test namespaces (198.18.0.0/15 and fd00::/8 only), deleted on exit,
 * failure or Ctrl-C. Usage (root):
 *   node dist/bench/tcp-kernel.js [--mb 64] [--fault-mb 8] [--runs 3] [--idle 2000] [--seed 1]
 *     [--kernel-cc NAME]   (the kernel's congestion control in every namespace; default the host's,
 *                           which namespaces inherit; only net.ipv4.tcp_allowed_congestion_control)
 */
import { cpus, release } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Device } from '../src/tun/device.js';
import { FaultDevice, type FaultOptions, type FaultSpec } from '../src/tun/fault-device.js';
import { openTun } from '../src/tun/linux-tun.js';
import {
  CLIENT,
  type ClientResult,
  HOST4,
  KernelSite,
  kernelCongestionControl,
  Port,
  SERVER,
} from '../test/integration/clients/kernel-site.js';
import { canRunIntegration, type Netns, Testbed } from '../test/testbed/index.js';

interface Args {
  mb: number;
  faultMb: number;
  runs: number;
  idle: number;
  seed: number;
  /** The kernel's congestion control in every namespace, or undefined for the host's. */
  kernelCc: string | undefined;
}

const USAGE =
  'usage: tcp-kernel [--mb 64] [--fault-mb 8] [--runs 3] [--idle 2000] [--seed 1] [--kernel-cc reno|bbr|cubic]';

function parseArgs(argv: string[]): Args {
  const args: Args = { mb: 64, faultMb: 8, runs: 3, idle: 2000, seed: 1, kernelCc: undefined };
  const names: Record<string, 'mb' | 'faultMb' | 'runs' | 'idle' | 'seed'> = {
    mb: 'mb',
    'fault-mb': 'faultMb',
    runs: 'runs',
    idle: 'idle',
    seed: 'seed',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]?.replace(/^--/, '') ?? '';
    const text = argv[i + 1] ?? '';
    if (flag === 'kernel-cc' && /^[a-z0-9_]+$/.test(text)) {
      args.kernelCc = text;
      continue;
    }
    const key = names[flag];
    const value = Number(text);
    if (key === undefined || !Number.isInteger(value) || value < 0) throw new Error(USAGE);
    args[key] = value;
  }
  args.mb = Math.min(Math.max(args.mb, 1), 1024);
  args.faultMb = Math.min(args.faultMb, 256);
  args.runs = Math.min(Math.max(args.runs, 1), 15);
  args.idle = Math.min(args.idle, 20_000);
  return args;
}

/** The faults of the integration tests, applied to each direction. */
const FAULTS: FaultSpec = { loss: 0.02, delayMs: 10, reorder: 0.25, duplicate: 0.01 };
/** The kernel server's address on the veth. */
const KERNEL_VETH = '198.18.6.2';
/** The kernel server's address behind the clean relay. */
const KERNEL_RELAY = '198.18.8.2';
/** The kernel server's address behind the faulted relay. */
const KERNEL_RELAY_FAULTED = '198.18.10.2';
const MiB = 1024 * 1024;

type Direction = 'up' | 'down';

/** One transfer of `mb` MiB over one connection; returns Mbit/s of payload. */
async function transfer(
  ns: Netns,
  host: string,
  direction: Direction,
  mb: number,
  seed: number,
): Promise<number> {
  const mode = direction === 'up' ? 'upload' : 'download';
  const port = direction === 'up' ? Port.SINK : Port.SOURCE;
  const bytes = mb * MiB;
  const r = await ns.exec(
    'node',
    [CLIENT, mode, host, String(port), String(bytes), `--seed=${seed}`, '--hash=0', '--timeout=300000'],
    { timeoutMs: 1_800_000 },
  );
  const [result] = JSON.parse(r.stdout) as ClientResult[];
  const moved = direction === 'up' ? result!.sentBytes : result!.receivedBytes;
  if (moved !== bytes) throw new Error(`${mode} to ${host} moved ${moved} of ${bytes} bytes`);
  return (bytes * 8) / (result!.ms * 1000);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A path to measure: the client's namespace and the server's address. */
interface Path {
  ns: Netns;
  host: string;
}

/** Median Mbit/s of each path, the paths taking turns run by run. */
async function compare(args: Args, paths: Path[], direction: Direction, mb: number): Promise<number[]> {
  const rates = paths.map((): number[] => []);
  for (let i = 0; i < args.runs; i++)
    for (const [j, p] of paths.entries())
      rates[j]!.push(await transfer(p.ns, p.host, direction, mb, args.seed + i));
  return rates.map(median);
}

/** Relays every packet between two devices, as a wire would (the kernels at both ends do TCP). */
function relay(a: Device, b: Device): void {
  a.start({ receive: (p) => void b.write(p), flush: () => {} });
  b.start({ receive: (p) => void a.write(p), flush: () => {} });
}

/** Two TUNs, in the client and server namespaces, relayed by this process (through `faults` when given). */
async function relayedTuns(
  bed: Testbed,
  client: Netns,
  server: Netns,
  subnet: number,
  faults?: FaultOptions,
): Promise<Device[]> {
  // Client side 198.18.<subnet>.1/30, server side 198.18.<subnet+1>.2/30, each routing the other.
  const a = await bed.tun(client, {
    address: `198.18.${subnet}.1/30`,
    routes: [`198.18.${subnet + 1}.0/30`],
  });
  const b = await bed.tun(server, {
    address: `198.18.${subnet + 1}.2/30`,
    routes: [`198.18.${subnet}.0/30`],
  });
  for (const [ns, name] of [
    [client, a],
    [server, b],
  ] as const)
    await ns.ip(['link', 'set', 'dev', name, 'txqueuelen', '4096']);
  // 'uv-poll' keeps these off libuv's thread pool, whose 4 threads the stacks' 'drain' polls share.
  const tunA = openTun({ name: a, netns: client.path, readMode: 'uv-poll' });
  const tunB = openTun({ name: b, netns: server.path, readMode: 'uv-poll' });
  const side: Device = faults === undefined ? tunA : new FaultDevice(tunA, faults);
  relay(side, tunB);
  return [side, tunB];
}

/** A full GC (exposing gc when node was started without --expose-gc). */
function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing !== undefined) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

async function settledMemory(gc: () => void): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
  return process.memoryUsage();
}

/** Opens `n` idle connections to the stack's sink and measures the memory each costs. */
async function idleMemory(site: KernelSite, n: number): Promise<string> {
  const gc = gcFunction();
  const before = await settledMemory(gc);
  const child = site.ns.spawn(
    'node',
    [CLIENT, 'idle', HOST4, String(Port.SINK), '0', `--conns=${n}`, '--timeout=600000'],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('idle client: not ready after 120 s')), 120_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('"ready"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`idle client exited (${code}) before it was ready`));
      });
    });
    // The last handshakes complete and the delayed ACKs fire.
    await new Promise((r) => setTimeout(r, 1000));
    const open = site.runtime.stack.tcp.size;
    const after = await settledMemory(gc);
    const per = (k: keyof NodeJS.MemoryUsage) => ((after[k] - before[k]) / open / 1024).toFixed(2);
    return (
      `${open} idle established connections; per connection: RSS ${per('rss')} KiB, ` +
      `V8 heap used ${per('heapUsed')} KiB, external ${per('external')} KiB ` +
      `(array buffers ${per('arrayBuffers')} KiB)`
    );
  } finally {
    child.stdin!.end();
    await new Promise((r) => {
      if (child.exitCode !== null) r(undefined);
      else child.once('exit', r);
    });
  }
}

function row(cells: (string | number)[]): string {
  const widths = [8, 13, 4, 11, 11, 7, 13, 7];
  return cells.map((c, i) => String(c).padStart(widths[i]!)).join('  ');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!canRunIntegration()) throw new Error('tcp-kernel: needs root, /dev/net/tun and iproute2');
  const bed = await Testbed.create('bench');
  try {
    const kernelCc = args.kernelCc;
    const clean = await KernelSite.create(bed, 'clean', { hash: false, kernelCc });
    const faulted = await KernelSite.create(bed, 'fault', {
      hash: false,
      kernelCc,
      faults: { seed: args.seed, rx: FAULTS, tx: FAULTS },
    });
    // The kernel baselines: a client namespace and a server namespace, over a veth and over relays.
    const kc = await bed.netns('kc');
    const ks = await bed.netns('ks');
    if (kernelCc !== undefined)
      for (const ns of [kc, ks])
        await ns.exec('sysctl', ['-qw', `net.ipv4.tcp_congestion_control=${kernelCc}`]);
    await bed.veth(kc, ks, { a: '198.18.6.1/30', b: `${KERNEL_VETH}/30` });
    const devices = [
      ...(await relayedTuns(bed, kc, ks, 7)),
      ...(await relayedTuns(bed, kc, ks, 9, { seed: args.seed, rx: FAULTS, tx: FAULTS })),
    ];
    ks.spawn('node', [SERVER, '--nohash', '0.0.0.0', String(Port.SINK), String(Port.SOURCE)], {
      stdio: 'ignore',
    });
    await ks.waitForTcpPort(Port.SOURCE, 10_000);

    console.log(
      `tcp-kernel: ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, Linux ${release()}, node ${process.version}, ` +
        `kernel congestion control ${await kernelCongestionControl(kc)}, stack ${clean.runtime.stack.tcp.config.congestionControl}`,
    );
    console.log(
      `one connection, median of ${args.runs}; faulted rows: ${JSON.stringify(FAULTS)} each way through ` +
        'a FaultDevice (between the TUN and the stack, or in the relay between the two kernels)',
    );
    console.log(row(['path', 'direction', 'MiB', 'stack Mb/s', 'veth Mb/s', 'ratio', 'relay Mb/s', 'ratio']));
    const directions = [
      ['up', 'kernel→stack'],
      ['down', 'stack→kernel'],
    ] as const;
    for (const [dir, label] of directions) {
      const [stack, veth, relayed] = await compare(
        args,
        [
          { ns: clean.ns, host: HOST4 },
          { ns: kc, host: KERNEL_VETH },
          { ns: kc, host: KERNEL_RELAY },
        ],
        dir,
        args.mb,
      );
      console.log(
        row([
          'clean',
          label,
          args.mb,
          stack!.toFixed(1),
          veth!.toFixed(1),
          (stack! / veth!).toFixed(2),
          relayed!.toFixed(1),
          (stack! / relayed!).toFixed(2),
        ]),
      );
    }
    if (args.faultMb > 0) {
      for (const [dir, label] of directions) {
        const [stack, relayed] = await compare(
          args,
          [
            { ns: faulted.ns, host: HOST4 },
            { ns: kc, host: KERNEL_RELAY_FAULTED },
          ],
          dir,
          args.faultMb,
        );
        console.log(
          row([
            'faulted',
            label,
            args.faultMb,
            stack!.toFixed(2),
            '-',
            '-',
            relayed!.toFixed(2),
            (stack! / relayed!).toFixed(2),
          ]),
        );
      }
    }
    for (const d of devices) await d.close();
    await faulted.close();
    if (args.idle > 0) console.log(await idleMemory(clean, args.idle));
    await clean.close();
  } finally {
    await bed.destroy();
  }
}

await main();
