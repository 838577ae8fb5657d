// A kernel TCP client run inside a test namespace: `node tcp-client.mjs <mode> <host> <port> <bytes> [conns]`.
// Modes: echo (send bytes, read them back, half-close after sending), upload (send bytes, then
// half-close and wait for the server's close), download (half-close at once and read until EOF).
// Prints one JSON line: sha256 of what was sent and received, bytes, milliseconds.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

const [mode, host, portText, bytesText, connsText] = process.argv.slice(2);
const port = Number(portText);
const total = Number(bytesText);
const conns = Number(connsText ?? '1');

function once() {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let receivedBytes = 0;
    const socket = net.connect({ host, port });
    socket.setTimeout(60_000, () => socket.destroy(new Error('client timeout')));
    socket.on('error', reject);
    socket.on('data', (d) => {
      received.update(d);
      receivedBytes += d.length;
    });
    socket.on('end', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({ sent: sent.digest('hex'), received: received.digest('hex'), receivedBytes, ms });
      socket.end();
    });
    socket.on('connect', async () => {
      if (mode === 'download') {
        socket.end();
        return;
      }
      let left = total;
      while (left > 0) {
        const chunk = randomBytes(Math.min(left, 65536));
        left -= chunk.length;
        sent.update(chunk);
        if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
      }
      socket.end();
    });
  });
}

const results = await Promise.all(Array.from({ length: conns }, () => once()));
process.stdout.write(`${JSON.stringify(results)}\n`);
