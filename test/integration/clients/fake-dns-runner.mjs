// The Tun2Socks engine with DNS, run inside the client namespace of the fake-DNS integration test:
//   node fake-dns-runner.mjs --tun=NAME --proxy=URL --dns=fake-ip|remote|direct [--hijack]
//                            [--upstream=HOST:PORT] [--ttl=S] [--max-names=N] [--loglevel=LEVEL]
// Opens the existing TUN NAME, starts the engine with the `dns` option, prints "ready" once up,
// prints {"stats":{...}} (engine.stats()) on SIGUSR1 and at exit, and exits 0 on SIGTERM/SIGINT.
// Uses the compiled library (dist/), like a user of the package would.
import { parseArgs } from 'node:util';

const dist = new URL('../../../dist/src/', import.meta.url);
const { Logger } = await import(new URL('log.js', dist).href);
const { Tun2Socks } = await import(new URL('tun2socks.js', dist).href);
const { openTun } = await import(new URL('tun/linux-tun.js', dist).href);

const { values } = parseArgs({
  options: {
    tun: { type: 'string' },
    proxy: { type: 'string' },
    dns: { type: 'string', default: 'fake-ip' },
    hijack: { type: 'boolean', default: false },
    upstream: { type: 'string' },
    ttl: { type: 'string' },
    'max-names': { type: 'string' },
    loglevel: { type: 'string', default: 'warn' },
  },
});
if (values.tun === undefined || values.proxy === undefined) {
  process.stderr.write('usage: fake-dns-runner.mjs --tun=NAME --proxy=URL [--dns=MODE] [...]\n');
  process.exit(2);
}

let upstream;
if (values.upstream !== undefined) {
  const at = values.upstream.lastIndexOf(':');
  upstream = {
    host: values.upstream.slice(0, at).replace(/^\[|\]$/g, ''),
    port: Number(values.upstream.slice(at + 1)),
  };
}
const engine = new Tun2Socks({
  device: openTun({ name: values.tun }),
  proxy: values.proxy,
  log: new Logger(values.loglevel),
  dialTimeoutMs: 3000,
  dns: {
    mode: values.dns,
    hijack: values.hijack,
    ...(upstream !== undefined ? { upstream } : {}),
    ...(values.ttl !== undefined ? { ttlSeconds: Number(values.ttl) } : {}),
    ...(values['max-names'] !== undefined ? { maxNames: Number(values['max-names']) } : {}),
  },
});
await engine.start();
process.stdout.write('ready\n');

function printStats() {
  process.stdout.write(`${JSON.stringify({ stats: engine.stats() })}\n`);
}
process.on('SIGUSR1', printStats);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  printStats();
  const force = setTimeout(() => process.exit(0), 2000);
  force.unref();
  engine.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
