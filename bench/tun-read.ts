/**
 * TUN read-path benchmark: packets/s read with 'drain' (poll on the thread pool, then synchronous
 * reads until EAGAIN) versus 'async-read' (one koffi async read() per packet), and 'uv-poll' (the
 * same drain, woken by the event loop's epoll instead of a thread-pool poll).
 *
 * In a private network namespace (198.18.0.0/15 only) a TUN gets 198.18.0.1/15; a separate node
 * process in the namespace blasts small UDP datagrams at 198.18.200.1, which the kernel routes
 * into the TUN. The reader counts packets between the first and the last one it sees. Each mode
 * runs several times, alternating, and the median is reported. The namespace is deleted even on
 * failure or Ctrl-C.
 *
 * A second measure takes the sender out of the picture: the sender first fills a deep TUN queue
 * (txqueuelen raised to hold `backlog` packets) while nobody reads, then the reader starts and
 * the time to read the whole backlog is measured, with the CPU to itself.
 *
 * Usage (root): node dist/bench/tun-read.js [--runs 5] [--seconds 2] [--batch 256] [--payload 16]
 *   [--senders 1] [--backlog 50000]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { openTun, type ReadMode } from '../src/tun/linux-tun.js';

interface Args {
  runs: number;
  seconds: number;
  batch: number;
  payload: number;
  senders: number;
  backlog: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 5, seconds: 2, batch: 256, payload: 16, senders: 1, backlog: 50_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '') as keyof Args | undefined;
    const value = Number(argv[i + 1]);
    if (key === undefined || !(key in args) || !Number.isFinite(value) || value <= 0)
      throw new Error(
        'usage: tun-read [--runs N] [--seconds S] [--batch B] [--payload BYTES] [--senders N] [--backlog N]',
      );
    args[key] = value;
  }
  args.runs = Math.min(Math.floor(args.runs), 21);
  args.seconds = Math.min(args.seconds, 30);
  args.senders = Math.min(Math.floor(args.senders), 8);
  args.backlog = Math.min(Math.ceil(args.backlog / 256) * 256, 1_000_000);
  return args;
}

const NS = `t2s-bench-${process.pid}`;
const NS_PATH = `/var/run/netns/${NS}`;
const TUN_ADDR = '198.18.0.1/15';
const TARGET = '198.18.200.1';
const MAX_PACKETS_PER_SENDER = 20_000_000;
let tunCounter = 0;
const children = new Set<ChildProcess>();

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

function cleanupSync(): void {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (existsSync(NS_PATH)) {
    try {
      ip(['netns', 'del', NS]);
    } catch (err) {
      console.error(`tun-read: could not delete namespace ${NS}: ${(err as Error).message}`);
    }
  }
}

/**
 * The sender: a node process in the namespace sending `payload`-byte datagrams for `seconds`. It
 * keeps at most ~1k sends queued in libuv and waits for the queue to empty before closing, so
 * `sent` counts datagrams the kernel accepted, none cancelled by close().
 */
const SENDER = `
const dgram = require('node:dgram');
const [seconds, payload, max] = process.argv.slice(1).map(Number);
const s = dgram.createSocket('udp4');
s.on('error', () => {});
const msg = Buffer.alloc(payload, 0x61);
const end = Date.now() + seconds * 1000;
let sent = 0;
const finish = () => {
  if (s.getSendQueueCount() > 0 && Date.now() < end + 5000) return setTimeout(finish, 5);
  const unsent = s.getSendQueueCount();
  s.close(() => process.stdout.write(JSON.stringify({ sent: sent - unsent })));
};
s.connect(9, '${TARGET}', () => {
  const burst = () => {
    if (s.getSendQueueCount() < 1024) {
      for (let i = 0; i < 256; i++) s.send(msg);
      sent += 256;
    }
    if (Date.now() < end && sent < max) setImmediate(burst);
    else finish();
  };
  burst();
});
`;

/** The kernel's view of the TUN: packets it queued to the reader, and dropped because the queue was full. */
function kernelTx(name: string): { packets: number; dropped: number } {
  const out = execFileSync('ip', ['-n', NS, '-s', '-j', 'link', 'show', 'dev', name], { timeout: 10_000 });
  const [link] = JSON.parse(out.toString()) as { stats64: { tx: { packets: number; dropped: number } } }[];
  return { packets: link!.stats64.tx.packets, dropped: link!.stats64.tx.dropped };
}

function runSender(seconds: number, payload: number, max = MAX_PACKETS_PER_SENDER): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      ['netns', 'exec', NS, process.execPath, '-e', SENDER, String(seconds), String(payload), String(max)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      if (code !== 0) reject(new Error(`sender exited with ${code}: ${err.trim()}`));
      else resolve((JSON.parse(out) as { sent: number }).sent);
    });
  });
}

interface RunResult {
  pps: number;
  received: number;
  /** Datagrams the sender's kernel accepted. */
  sent: number;
  /** Packets the TUN dropped because its queue to the reader was full. */
  tunDropped: number;
  meanBatch: number;
  /** Process CPU time (all threads: loop + thread pool) per packet read, in µs. */
  cpuUsPerPacket: number;
}

async function runOnce(mode: ReadMode, args: Args): Promise<RunResult> {
  const name = `t2sb${process.pid % 100000}x${tunCounter++}`;
  const tun = openTun({ name, netns: NS_PATH, readMode: mode, batch: args.batch });
  try {
    ip(['-n', NS, 'addr', 'add', TUN_ADDR, 'dev', name]);
    ip(['-n', NS, 'link', 'set', name, 'up']);
    const before = kernelTx(name);
    let received = 0;
    let first = 0;
    let last = 0;
    let checksum = 0;
    tun.start({
      receive(packet) {
        const now = performance.now();
        if (received === 0) first = now;
        last = now;
        received++;
        checksum ^= packet[packet.length - 1]!;
      },
      flush() {},
    });
    const cpu0 = process.cpuUsage();
    const senders = Array.from({ length: args.senders }, () => runSender(args.seconds, args.payload));
    const sent = (await Promise.all(senders)).reduce((a, b) => a + b, 0);
    await new Promise((r) => setTimeout(r, 200)); // let the reader drain the device queue
    const cpu = process.cpuUsage(cpu0);
    const after = kernelTx(name);
    const wakeups = tun.stats.rxWakeups;
    if (checksum < 0) console.log(checksum); // keeps the read of the packet observable
    const seconds = (last - first) / 1000;
    return {
      pps: seconds > 0 ? (received - 1) / seconds : 0,
      received,
      sent,
      tunDropped: after.dropped - before.dropped,
      meanBatch: received / Math.max(1, wakeups),
      cpuUsPerPacket: (cpu.user + cpu.system) / Math.max(1, received),
    };
  } finally {
    await tun.close();
  }
}

/** Fills the TUN queue with `backlog` packets while nobody reads, then times reading them all. */
async function runBacklog(
  mode: ReadMode,
  args: Args,
): Promise<{ pps: number; queued: number; cpuUsPerPacket: number }> {
  const name = `t2sb${process.pid % 100000}x${tunCounter++}`;
  const tun = openTun({ name, netns: NS_PATH, readMode: mode, batch: args.batch });
  try {
    ip(['-n', NS, 'link', 'set', name, 'txqueuelen', String(args.backlog + 1024)]);
    ip(['-n', NS, 'addr', 'add', TUN_ADDR, 'dev', name]);
    ip(['-n', NS, 'link', 'set', name, 'up']);
    const before = kernelTx(name);
    const sent = await runSender(30, args.payload, args.backlog);
    // The kernel counts TUN tx packets when they are read; what is queued is what was not dropped.
    const queued = sent - (kernelTx(name).dropped - before.dropped);
    let received = 0;
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let t1 = t0;
    tun.start({
      receive(packet) {
        // Count only the sender's datagrams (IPv4, UDP), not e.g. IPv6 router solicitations.
        if (packet[0] !== 0x45 || packet[9] !== 17) return;
        if (++received === queued) {
          t1 = performance.now();
          done();
        }
      },
      flush() {},
    });
    const timeout = setTimeout(done, 30_000);
    await finished;
    clearTimeout(timeout);
    const cpu = process.cpuUsage(cpu0);
    if (received < queued) throw new Error(`backlog: read ${received} of ${queued} queued packets in 30 s`);
    return {
      pps: queued / ((t1 - t0) / 1000),
      queued,
      cpuUsPerPacket: (cpu.user + cpu.system) / queued,
    };
  } finally {
    await tun.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0 || !existsSync('/dev/net/tun')) {
    console.error('tun-read: needs root and /dev/net/tun');
    process.exitCode = 1;
    return;
  }
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      cleanupSync();
      process.exit(130);
    });
  ip(['netns', 'add', NS]);
  ip(['-n', NS, 'link', 'set', 'lo', 'up']);
  try {
    console.log(
      `tun-read: node ${process.version}, linux ${release()}, ${cpus().length} CPUs, ` +
        `${args.runs} runs × ${args.seconds} s, ${args.senders} sender(s), UDP payload ${args.payload} B ` +
        `(IPv4 packet ${args.payload + 28} B), batch ${args.batch}`,
    );
    const modes: ReadMode[] = ['drain', 'async-read', 'uv-poll'];
    /** The modes in a different order each run, so drift in the machine's load spreads evenly. */
    const rotated = (run: number): ReadMode[] => modes.map((_, i) => modes[(i + run) % modes.length]!);
    const results = new Map<ReadMode, RunResult[]>(modes.map((m) => [m, []]));
    for (let run = 0; run < args.runs; run++) {
      for (const mode of rotated(run)) {
        const r = await runOnce(mode, args);
        results.get(mode)!.push(r);
        console.log(
          `  run ${run + 1} ${mode.padEnd(10)} ${fmt(r.pps).padStart(9)} pkt/s  read ${fmt(r.received)} of ` +
            `${fmt(r.sent)} sent (TUN queue dropped ${fmt(r.tunDropped)}), mean batch ${r.meanBatch.toFixed(1)}, ` +
            `${r.cpuUsPerPacket.toFixed(2)} µs CPU/pkt`,
        );
      }
    }
    console.log('');
    console.log(
      '| mode       | median pkt/s | min pkt/s | max pkt/s | read/sent | mean batch | CPU µs/pkt |',
    );
    console.log(
      '|------------|-------------:|----------:|----------:|----------:|-----------:|-----------:|',
    );
    const medians = new Map<ReadMode, number>();
    for (const mode of modes) {
      const rs = results.get(mode)!;
      const pps = rs.map((r) => r.pps);
      medians.set(mode, median(pps));
      const delivered = rs.reduce((a, r) => a + r.received, 0) / rs.reduce((a, r) => a + r.sent, 0);
      const cells = [
        mode.padEnd(10),
        fmt(median(pps)).padStart(12),
        fmt(Math.min(...pps)).padStart(9),
        fmt(Math.max(...pps)).padStart(9),
        `${(delivered * 100).toFixed(1)} %`.padStart(9),
        median(rs.map((r) => r.meanBatch))
          .toFixed(1)
          .padStart(10),
        median(rs.map((r) => r.cpuUsPerPacket))
          .toFixed(2)
          .padStart(10),
      ];
      console.log(`| ${cells.join(' | ')} |`);
    }
    console.log('');
    const ratio = (m: Map<ReadMode, number>, a: ReadMode, b: ReadMode): string =>
      `${a} / ${b} = ${(m.get(a)! / m.get(b)!).toFixed(2)}×`;
    console.log(
      `live sender: ${ratio(medians, 'drain', 'async-read')}, ${ratio(medians, 'uv-poll', 'drain')}`,
    );
    console.log('');
    const backlog = new Map<ReadMode, { pps: number; cpuUsPerPacket: number }[]>(modes.map((m) => [m, []]));
    for (let run = 0; run < args.runs; run++) {
      for (const mode of rotated(run)) {
        const r = await runBacklog(mode, args);
        backlog.get(mode)!.push(r);
        console.log(
          `  backlog run ${run + 1} ${mode.padEnd(10)} ${fmt(r.pps).padStart(9)} pkt/s  (${fmt(r.queued)} queued), ` +
            `${r.cpuUsPerPacket.toFixed(2)} µs CPU/pkt`,
        );
      }
    }
    console.log('');
    console.log(`| backlog of ${fmt(args.backlog)} | median pkt/s | min pkt/s | max pkt/s | CPU µs/pkt |`);
    console.log('|------------|-------------:|----------:|----------:|-----------:|');
    for (const mode of modes) {
      const pps = backlog.get(mode)!.map((r) => r.pps);
      const cells = [
        mode.padEnd(10),
        fmt(median(pps)).padStart(12),
        fmt(Math.min(...pps)).padStart(9),
        fmt(Math.max(...pps)).padStart(9),
        median(backlog.get(mode)!.map((r) => r.cpuUsPerPacket))
          .toFixed(2)
          .padStart(10),
      ];
      console.log(`| ${cells.join(' | ')} |`);
    }
    const backlogMedians = new Map(modes.map((m) => [m, median(backlog.get(m)!.map((r) => r.pps))]));
    console.log('');
    console.log(
      `backlog, reader alone: ${ratio(backlogMedians, 'drain', 'async-read')}, ${ratio(backlogMedians, 'uv-poll', 'drain')}`,
    );
  } finally {
    cleanupSync();
  }
}

main().catch((err: unknown) => {
  cleanupSync();
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
