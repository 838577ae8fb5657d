// A kernel TCP client run inside a test namespace:
//   node tcp-client.mjs <mode> <host> <port> <bytes> [--conns=N] [--extra=N] [--seed=N] [--timeout=MS] [--hash=0]
// Modes (the server roles are in tcp-server.mjs):
//   echo          send <bytes> of pattern(seed), FIN after sending, read the echo until EOF.
//   upload        send <bytes>, FIN, read until the server's FIN.
//   download      send the source header (seed, <bytes>), FIN, read until EOF.
//   client-first  header and <extra> bytes, FIN at once, then keep reading until EOF (the server
//                 keeps sending after our FIN).
//   server-first  header, read until the server's FIN without sending, then send <extra> bytes
//                 and FIN (we keep sending after the server's FIN).
//   idle          open <conns> connections (100 at a time), print {"ready":N}, hold them until
//                 stdin closes (or --timeout), then close them all.
// Connection i uses pattern(seed + i). Prints one JSON array: per connection the sha256 and byte
// counts of what was sent and received, our port, and milliseconds from connect() to close
// (--hash=0 leaves the hashes empty, sparing the CPU for throughput benchmarks).
import { createHash } from 'node:crypto';
import net from 'node:net';
import { header, Pattern, writePattern } from './tcp-server.mjs';

const [mode, host, portText, bytesText, ...flags] = process.argv.slice(2);
const opt = Object.fromEntries(
  flags.map((f) => {
    const m = /^--(\w+)=(\d+)$/.exec(f);
    if (m === null) throw new Error(`bad flag ${f}`);
    return [m[1], Number(m[2])];
  }),
);
const port = Number(portText);
const total = Number(bytesText);
const conns = opt.conns ?? 1;
const extra = opt.extra ?? 0;
const seed = opt.seed ?? 1;
const timeoutMs = opt.timeout ?? 120_000;
const hash = opt.hash !== 0;
const NO_HASH = { update() {}, digest: () => '' };

function once(i) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const sent = hash ? createHash('sha256') : NO_HASH;
    const received = hash ? createHash('sha256') : NO_HASH;
    const r = { port: 0, sent: '', sentBytes: 0, received: '', receivedBytes: 0, ms: 0 };
    const pattern = new Pattern(seed + i);
    const socket = net.connect({ host, port, allowHalfOpen: true });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('client timeout')));
    socket.on('error', reject);
    socket.on('data', (d) => {
      received.update(d);
      r.receivedBytes += d.length;
    });
    const countSent = (chunk) => {
      sent.update(chunk);
      r.sentBytes += chunk.length;
    };
    socket.on('end', async () => {
      if (mode === 'server-first') {
        if (!(await writePattern(socket, pattern, extra, countSent))) return;
      }
      socket.end();
    });
    socket.on('close', (hadError) => {
      if (hadError) return;
      r.ms = Number(process.hrtime.bigint() - started) / 1e6;
      r.sent = sent.digest('hex');
      r.received = received.digest('hex');
      resolve(r);
    });
    socket.on('connect', async () => {
      r.port = socket.localPort;
      switch (mode) {
        case 'echo':
        case 'upload':
          if (await writePattern(socket, pattern, total, countSent)) socket.end();
          return;
        case 'download':
          socket.end(header(seed + i, total));
          return;
        case 'client-first':
          socket.write(header(seed + i, total));
          if (await writePattern(socket, pattern, extra, countSent)) socket.end();
          return;
        case 'server-first':
          socket.write(header(seed + i, total));
          return;
        default:
          socket.destroy(new Error(`unknown mode ${mode}`));
      }
    });
  });
}

/** Opens `conns` connections and holds them open until stdin closes. */
async function idle() {
  const sockets = [];
  for (let i = 0; i < conns; i += 100) {
    const batch = Array.from(
      { length: Math.min(100, conns - i) },
      () =>
        new Promise((resolve, reject) => {
          const s = net.connect({ host, port, allowHalfOpen: true });
          s.on('error', reject);
          s.on('connect', () => resolve(s));
        }),
    );
    sockets.push(...(await Promise.all(batch)));
  }
  process.stdout.write(`${JSON.stringify({ ready: sockets.length })}\n`);
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    process.stdin.on('end', () => {
      clearTimeout(timer);
      resolve();
    });
    process.stdin.resume();
  });
  for (const s of sockets) s.destroy();
}

if (mode === 'idle') await idle();
else {
  const results = await Promise.all(Array.from({ length: conns }, (_, i) => once(i)));
  process.stdout.write(`${JSON.stringify(results)}\n`);
}
