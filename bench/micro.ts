/**
 * Micro-benchmarks of the hot functions, printed as figures and ratios (never assertions):
 * the Internet checksum (32-bit words vs a byte-wise reference), TCP segment parsing, and the
 * connection-table key lookup. Run: `node dist/bench/micro.js [--quick]` (--quick: a tenth of the
 * iterations, for smoke runs).
 */
import { performance } from 'node:perf_hooks';
import { tupleKey } from '../src/stack/tcp/tcp-layer.js';
import { checksum } from '../src/stack/wire/checksum.js';
import { TcpSegment } from '../src/stack/wire/tcp.js';
import { TcpOptions } from '../src/stack/wire/tcp-options.js';

function bytewise(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** A tenth of the iterations with --quick. */
const scale = process.argv.includes('--quick') ? 0.1 : 1;

function time(fullIterations: number, fn: () => void): number {
  const iterations = Math.max(1, Math.round(fullIterations * scale));
  for (let i = 0; i < Math.min(iterations, 1000); i++) fn();
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    runs.push((performance.now() - t0) / iterations);
  }
  runs.sort((a, b) => a - b);
  const ms = runs[2]!;
  return ms;
}

const results: Record<string, number> = {};
for (const size of [1500, 65536]) {
  const buf = new Uint8Array(size).map((_, i) => (i * 31) & 0xff);
  let sink = 0;
  const fast = time(20_000, () => {
    sink ^= checksum(buf);
  });
  const slow = time(2_000, () => {
    sink ^= bytewise(buf);
  });
  results[`checksum ${size} B GB/s`] = size / fast / 1e6;
  results[`byte-wise ${size} B GB/s`] = size / slow / 1e6;
  results[`checksum ${size} B speed-up`] = slow / fast;
  if (sink === 0.5) console.log(sink);
}

// A SYN with Linux's options: parse header + options.
const syn = Uint8Array.from(
  Buffer.from('9c4000500000000a0000000080028000000000000204058c0402080a0001e24000000000010303073f', 'hex'),
);
const seg = new Uint8Array(40);
seg.set(syn.subarray(0, 40));
seg[12] = 0xa0;
const opts = new TcpOptions();
let parsed = 0;
const parseMs = time(200_000, () => {
  const s = new TcpSegment(seg);
  if (s.check() === undefined && opts.parse(s.options) === undefined) parsed += s.srcPort;
});
results['TCP segment parse ns'] = parseMs * 1e6;

const table = new Map<string, number>();
const addrs: Uint8Array[] = [];
for (let i = 0; i < 10_000; i++) {
  const a = Uint8Array.of(198, 18, (i >> 8) & 0xff, i & 0xff);
  addrs.push(a);
  table.set(tupleKey(a, 40000 + (i % 1000), Uint8Array.of(198, 19, 0, 1), 443), i);
}
const dst = Uint8Array.of(198, 19, 0, 1);
let k = 0;
let found = 0;
const lookupMs = time(200_000, () => {
  const i = k++ % 10_000;
  if (table.get(tupleKey(addrs[i]!, 40000 + (i % 1000), dst, 443)) !== undefined) found++;
});
results['connection lookup (10k conns) ns'] = lookupMs * 1e6;

const width = Math.max(...Object.keys(results).map((s) => s.length));
for (const [name, v] of Object.entries(results)) console.log(`${name.padEnd(width)}  ${v.toFixed(2)}`);
console.log(JSON.stringify({ micro: results, parsed: parsed > 0, found }));
