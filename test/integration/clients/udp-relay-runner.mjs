// A tiny tun2socks for UDP, run inside the client namespace of the UDP relay integration test:
//   node udp-relay-runner.mjs --tun=NAME --proxy=URL [--dial-timeout=MS] [--udp-idle-ms=MS]
//                             [--dns-over-tcp=auto|always|never] [--loglevel=LEVEL]
// Opens the existing TUN NAME, relays every UDP flow through the proxy URL (UDP ASSOCIATE for
// socks5, DNS over TCP when the proxy has no UDP), prints "ready" once up, prints
// {"stats":{...}} (the UdpRelay counters) on SIGUSR1 and at exit, and exits 0 on SIGTERM/SIGINT.
// Uses the compiled library (dist/), like a user of the package would.
import { parseArgs } from 'node:util';

const dist = new URL('../../../dist/src/', import.meta.url);
const { Logger } = await import(new URL('log.js', dist).href);
const { createDialer, parseProxyUrl } = await import(new URL('proxy/index.js', dist).href);
const { createUdpDialer } = await import(new URL('proxy/udp.js', dist).href);
const { UdpRelay } = await import(new URL('relay/udp-relay.js', dist).href);
const { StackRuntime } = await import(new URL('runtime.js', dist).href);
const { openTun } = await import(new URL('tun/linux-tun.js', dist).href);

const { values } = parseArgs({
  options: {
    tun: { type: 'string' },
    proxy: { type: 'string' },
    'dial-timeout': { type: 'string', default: '3000' },
    'udp-idle-ms': { type: 'string', default: '60000' },
    'dns-over-tcp': { type: 'string', default: 'auto' },
    loglevel: { type: 'string', default: 'warn' },
  },
});
if (values.tun === undefined || values.proxy === undefined) {
  process.stderr.write('usage: udp-relay-runner.mjs --tun=NAME --proxy=URL [--udp-idle-ms=MS] [...]\n');
  process.exit(2);
}

const log = new Logger(values.loglevel);
const config = parseProxyUrl(values.proxy);
const device = openTun({ name: values.tun });
const runtime = new StackRuntime(device, {
  options: { udp: { idleTimeoutMs: Number(values['udp-idle-ms']) } },
});
const relay = new UdpRelay({
  udpDialer: createUdpDialer(config),
  dialer: createDialer(config),
  dnsOverTcp: values['dns-over-tcp'],
  log,
  dialTimeoutMs: Number(values['dial-timeout']),
  ...(config.kind === 'direct' || config.kind === 'reject'
    ? {}
    : { loopGuard: [{ host: config.host, port: config.port }] }),
});
relay.attach(runtime);
runtime.start();
process.stdout.write('ready\n');

function printStats() {
  process.stdout.write(`${JSON.stringify({ stats: relay.stats })}\n`);
}
process.on('SIGUSR1', printStats);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  printStats();
  relay.close();
  const force = setTimeout(() => process.exit(0), 2000);
  force.unref();
  runtime.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
