/**
 * Memory per idle TCP connection, in memory (no TUN, no root): a client StackRuntime and a server
 * StackRuntime on one memoryPair(); N connections each echo one byte and are then held. Prints
 * rss, heapUsed and arrayBuffers per connection after a forced GC, and the bytes the server-side
 * core connections hold in their send/receive buffers.
 *
 * Modes: `core`: the server side accepts each connection as a TcpSocket and echoes it itself (per
 * connection: 2 TcpConnections + 2 TcpSockets). `relay`: the server side is a TcpRelay whose dialer
 * connects to an echo server in a child process (adds the relay record and an upstream net.Socket).
 *
 * Run after `npm run build`: node --expose-gc test/memory/idle-footprint.mjs [core|relay] [N]
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { createInterface } from 'node:readline';
import { memoryPair, StackRuntime, seededRandom, TcpRelay } from '../../dist/src/index.js';

const mode = process.argv[2] ?? 'core';
const count = Math.min(Number(process.argv[3] ?? 2000), 12_000);
const QUIET_MS = 1500;
const DEADLINE = performance.now() + 120_000;

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function settle() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await sleep(50);
  }
  return process.memoryUsage();
}

/** An echo server in a child process, so its sockets do not count here. */
async function childEcho() {
  const code =
    "const s=require('net').createServer(c=>{c.on('error',()=>{});c.pipe(c)});" +
    "s.listen(0,'127.0.0.1',()=>console.log(s.address().port));" +
    "process.stdin.on('end',()=>process.exit(0));process.stdin.resume();setTimeout(()=>process.exit(0),180000).unref()";
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
  return { port: Number(line), stop: () => child.stdin.end() };
}

const [a, b] = memoryPair();
const client = new StackRuntime(a, { random: seededRandom(1) });
const server = new StackRuntime(b, { random: seededRandom(2) });
const serverConns = [];
let relay;
let echo;
if (mode === 'relay') {
  echo = await childEcho();
  relay = new TcpRelay({
    dialer: {
      name: 'child-echo',
      dial: () =>
        new Promise((resolve, reject) => {
          const s = net.connect(echo.port, '127.0.0.1', () => resolve(s.setNoDelay(true)));
          s.once('error', reject);
        }),
    },
  });
  relay.attach(server);
  server.onTcpRequest((request) => {
    // Keep the core connection for buffer accounting, then let the relay handle it.
    serverConns.push(request.connection ?? request.c);
    relay.onRequest(request);
  });
} else {
  server.onTcpRequest((request) => {
    const socket = request.accept();
    serverConns.push(socket.connection);
    socket.on('error', () => {});
    socket.on('data', (d) => socket.write(d));
  });
}
client.start();
server.start();

const before = await settle();
const held = [];
let next = 0;
const open = async () => {
  while (next < count && performance.now() < DEADLINE) {
    const port = 20000 + next++;
    const s = client.connect({ address: '198.18.0.1', port }, { address: '198.18.5.9', port: 7 });
    s.on('error', () => {});
    await new Promise((resolve) => s.once('connect', resolve));
    s.write('x');
    await new Promise((resolve) => s.once('data', resolve));
    held.push(s);
  }
};
await Promise.all(Array.from({ length: 32 }, open));
await sleep(QUIET_MS);
const after = await settle();

let sendBytes = 0;
let recvBytes = 0;
for (const c of serverConns) {
  if (c === undefined) continue;
  sendBytes += c.sendBuffer.storageBytes;
  recvBytes += c.recvBuffer.storageBytes;
}
const n = held.length;
const kb = (x) => Math.round((x / n / 1024) * 100) / 100;
console.log(
  JSON.stringify({
    mode,
    held: n,
    kbPerConnection: {
      rss: kb(after.rss - before.rss),
      heapUsed: kb(after.heapUsed - before.heapUsed),
      arrayBuffers: kb(after.arrayBuffers - before.arrayBuffers),
    },
    serverBufferBytesPerConnection: {
      send: sendBytes / Math.max(1, serverConns.length),
      recv: recvBytes / Math.max(1, serverConns.length),
    },
  }),
);
relay?.close();
for (const s of held) s.destroy();
await client.close();
await server.close();
echo?.stop();
process.exit(0);
