/**
 * The benchmark's servers, run as one program in the server namespace (`node
 * dist/bench/relay/servers.js ADDR...`): a TCP echo that holds connections, a TCP one-shot that
 * answers one request and closes first (both on every address), and a UDP echo bound to each
 * address given, so that a reply leaves from the address the request went to (a socket bound to
 * 0.0.0.0 would answer from the outgoing interface's address, which SOCKS relays drop). Prints `ready` once all three listen and
 * exits on SIGTERM (or after MAX_LIFETIME_MS, so a lost parent never leaves it running).
 */
import { createSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { ECHO_PORT, ONE_SHOT_PORT, REQUEST_BYTES, UDP_ECHO_PORT } from './protocol.js';

/** The server exits by itself after this long. */
const MAX_LIFETIME_MS = 30 * 60 * 1000;
/** The listen backlog: the connection-rate and idle tests open connections quickly. */
const BACKLOG = 4096;

const udpHosts = process.argv.slice(2);
const host = '0.0.0.0';
let listening = 0;
function up(): void {
  if (++listening === 2 + udpHosts.length) process.stdout.write('ready\n');
}

function quiet(s: Socket): void {
  s.on('error', () => s.destroy());
  s.setNoDelay(true);
}

createServer((s) => {
  quiet(s);
  s.pipe(s);
}).listen({ port: ECHO_PORT, host, backlog: BACKLOG }, up);

createServer((s) => {
  quiet(s);
  let got = 0;
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => {
    if (got >= REQUEST_BYTES) return;
    parts.push(d);
    got += d.length;
    if (got >= REQUEST_BYTES) s.end(Buffer.concat(parts).subarray(0, REQUEST_BYTES));
  });
  s.on('end', () => s.end());
}).listen({ port: ONE_SHOT_PORT, host, backlog: BACKLOG }, up);

for (const address of udpHosts) {
  const udp = createSocket('udp4');
  udp.on('message', (m, r) => udp.send(m, r.port, r.address));
  udp.on('error', () => {});
  udp.bind(UDP_ECHO_PORT, address, up);
}

process.on('SIGTERM', () => process.exit(0));
setTimeout(() => process.exit(0), MAX_LIFETIME_MS).unref();
