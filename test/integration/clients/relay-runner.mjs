// A tiny tun2socks for the relay integration test, run inside the client namespace:
//   node relay-runner.mjs --tun=NAME --proxy=URL [--dial-timeout=MS] [--loglevel=LEVEL]
// Opens the existing TUN NAME, relays every TCP connection through the proxy URL, prints "ready"
// once up, and on SIGTERM/SIGINT closes the relay and the runtime and exits 0. The real CLI will
// replace it. Uses the compiled library (dist/), like a user of the package would.
import { parseArgs } from 'node:util';

const dist = new URL('../../../dist/src/', import.meta.url);
const { Logger } = await import(new URL('log.js', dist).href);
const { createDialer, parseProxyUrl } = await import(new URL('proxy/index.js', dist).href);
const { TcpRelay } = await import(new URL('relay/tcp-relay.js', dist).href);
const { StackRuntime } = await import(new URL('runtime.js', dist).href);
const { openTun } = await import(new URL('tun/linux-tun.js', dist).href);

const { values } = parseArgs({
  options: {
    tun: { type: 'string' },
    proxy: { type: 'string' },
    'dial-timeout': { type: 'string', default: '5000' },
    loglevel: { type: 'string', default: 'warn' },
  },
});
if (values.tun === undefined || values.proxy === undefined) {
  process.stderr.write(
    'usage: relay-runner.mjs --tun=NAME --proxy=URL [--dial-timeout=MS] [--loglevel=LEVEL]\n',
  );
  process.exit(2);
}

const log = new Logger(values.loglevel);
const config = parseProxyUrl(values.proxy);
const device = openTun({ name: values.tun });
const runtime = new StackRuntime(device);
const relay = new TcpRelay({
  dialer: createDialer(config),
  log,
  dialTimeoutMs: Number(values['dial-timeout']),
  ...(config.kind === 'direct' || config.kind === 'reject'
    ? {}
    : { loopGuard: [{ host: config.host, port: config.port }] }),
});
relay.attach(runtime);
runtime.start();
process.stdout.write('ready\n');

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  relay.close();
  const force = setTimeout(() => process.exit(0), 2000);
  force.unref();
  runtime.close().then(
    () => {
      const { tcpBlocksTaken, tcpBlocksReused } = runtime.stack.stats;
      process.stderr.write(
        `${JSON.stringify({ relay: relay.stats, blocks: { tcpBlocksTaken, tcpBlocksReused } })}\n`,
      );
      process.exit(0);
    },
    () => process.exit(1),
  );
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
