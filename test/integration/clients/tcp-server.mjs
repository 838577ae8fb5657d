// The server side of the TCP transfer tests, shared by the stack (its TcpSocket) and the kernel
// (net.Socket, for the kernel-to-kernel baseline): `serve(socket, port, done)` plays the role
// `port` names. Run as a program, it is a kernel server:
// `node tcp-server.mjs [--nohash] <host> <port>...` listens (allowHalfOpen) and prints "ready"
// once bound; --nohash skips the sha256 of what it moves (for throughput benchmarks).
//
// Roles (the first 8 bytes a source reads are a header: seed u32 BE, bytes u32 BE):
//   7     echo: pipes the input back and ends after the peer's FIN.
//   5001  sink: hashes everything, ends after the peer's FIN.
//   5002  source: sends `bytes` of pattern(seed), then FIN at once; keeps reading until the
//         peer's FIN (the "server ends first, client keeps sending" half-close).
//   5003  source that half waits: sends the first half, waits for the peer's FIN, then sends the
//         second half and FIN (the "client ends first, server keeps sending" half-close).
// `done` receives one record per connection once both directions ended (or it failed).
import { createHash } from 'node:crypto';
import net from 'node:net';

/** Bytes of the header a source reads first. */
export const HEADER_BYTES = 8;
/** Bytes per generated chunk. */
const CHUNK = 64 * 1024;

/** A deterministic byte stream: xorshift32 words from `seed`, the same on every machine. */
export class Pattern {
  #state;
  #block = Buffer.alloc(CHUNK);
  #pos = CHUNK;

  constructor(seed) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }

  /** The next `n` bytes (a fresh Buffer the caller may keep). */
  take(n) {
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      if (this.#pos === CHUNK) this.#refill();
      const k = Math.min(n - done, CHUNK - this.#pos);
      this.#block.copy(out, done, this.#pos, this.#pos + k);
      this.#pos += k;
      done += k;
    }
    return out;
  }

  #refill() {
    const words = new Uint32Array(this.#block.buffer, this.#block.byteOffset, CHUNK / 4);
    let x = this.#state;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    this.#state = x >>> 0;
    this.#pos = 0;
  }
}

/** The sha256 (hex) of the first `bytes` of pattern(seed). */
export function patternHash(seed, bytes) {
  const h = createHash('sha256');
  const p = new Pattern(seed);
  for (let left = bytes; left > 0; left -= CHUNK) h.update(p.take(Math.min(left, CHUNK)));
  return h.digest('hex');
}

/** The 8-byte source header. */
export function header(seed, bytes) {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt32BE(seed >>> 0, 0);
  b.writeUInt32BE(bytes, 4);
  return b;
}

/** Writes `bytes` of `pattern` with backpressure; false if the socket closed first. */
export async function writePattern(socket, pattern, bytes, onChunk) {
  for (let left = bytes; left > 0; ) {
    if (socket.destroyed || socket.writableEnded) return false;
    const chunk = pattern.take(Math.min(left, CHUNK));
    left -= chunk.length;
    onChunk?.(chunk);
    if (!socket.write(chunk)) {
      const ok = await new Promise((resolve) => {
        const drain = () => done(true);
        const close = () => done(false);
        function done(v) {
          socket.off('drain', drain);
          socket.off('close', close);
          resolve(v);
        }
        socket.on('drain', drain);
        socket.on('close', close);
      });
      if (!ok) return false;
    }
  }
  return true;
}

/** A stand-in for a hash when hashing is off. */
const NO_HASH = { update() {}, digest: () => '' };

/**
 * Serves one accepted connection in the role of `port`; `done(record)` once it is over. With
 * `{ hash: false }` the record's hashes are empty (no CPU spent hashing).
 */
export function serve(socket, port, done, options = {}) {
  const hash = options.hash ?? true;
  const received = hash ? createHash('sha256') : NO_HASH;
  const sent = hash ? createHash('sha256') : NO_HASH;
  const record = {
    port,
    remotePort: socket.remotePort,
    received: '',
    receivedBytes: 0,
    sent: '',
    sentBytes: 0,
    /** Bytes we sent after the peer's FIN reached us. */
    sentAfterPeerEnd: 0,
    /** Bytes we received after our FIN went out (end() called). */
    receivedAfterOurEnd: 0,
    error: undefined,
  };
  let peerEnded = false;
  let weEnded = false;
  let reported = false;
  let onPeerEnd;
  const report = () => {
    if (reported) return;
    reported = true;
    record.received = received.digest('hex');
    record.sent = sent.digest('hex');
    done?.(record);
  };
  const countSent = (chunk) => {
    sent.update(chunk);
    record.sentBytes += chunk.length;
    if (peerEnded) record.sentAfterPeerEnd += chunk.length;
  };
  const end = () => {
    weEnded = true;
    socket.end();
  };
  socket.on('error', (err) => {
    record.error = err.code ?? err.message;
    report();
  });
  socket.on('close', report);

  let head = Buffer.alloc(0);
  const needsHeader = port === 5002 || port === 5003;
  const take = (d) => {
    received.update(d);
    record.receivedBytes += d.length;
    if (weEnded) record.receivedAfterOurEnd += d.length;
  };
  socket.on('data', (d) => {
    if (port === 7) {
      take(d);
      countSent(d);
      if (!socket.write(d)) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
      return;
    }
    if (needsHeader && head !== undefined) {
      head = Buffer.concat([head, d]);
      if (head.length < HEADER_BYTES) return;
      const seed = head.readUInt32BE(0);
      const bytes = head.readUInt32BE(4);
      const rest = head.subarray(HEADER_BYTES);
      head = undefined;
      if (rest.length > 0) take(rest);
      void source(seed, bytes);
      return;
    }
    take(d);
  });
  socket.on('end', () => {
    peerEnded = true;
    if (port === 7 || port === 5001) end();
    onPeerEnd?.();
  });

  async function source(seed, bytes) {
    const pattern = new Pattern(seed);
    if (port === 5002) {
      if (await writePattern(socket, pattern, bytes, countSent)) end();
      return;
    }
    const first = Math.floor(bytes / 2);
    if (!(await writePattern(socket, pattern, first, countSent))) return;
    if (!peerEnded) await new Promise((resolve) => (onPeerEnd = resolve));
    if (await writePattern(socket, pattern, bytes - first, countSent)) end();
  }
}

/** Runs kernel servers for `ports` on `host`; prints "ready" once all listen. */
async function main() {
  const args = process.argv.slice(2);
  const hash = args[0] !== '--nohash';
  const [host, ...ports] = hash ? args : args.slice(1);
  await Promise.all(
    ports.map(
      (p) =>
        new Promise((resolve, reject) => {
          const port = Number(p);
          const server = net.createServer({ allowHalfOpen: true }, (socket) =>
            serve(socket, port, undefined, { hash }),
          );
          server.on('error', reject);
          server.listen({ host, port, backlog: 4096 }, resolve);
        }),
    ),
  );
  process.stdout.write('ready\n');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
