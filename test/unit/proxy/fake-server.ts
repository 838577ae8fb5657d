/** Loopback TCP servers that play a proxy or a destination in the dialer unit tests. */
import * as net from 'node:net';

/** A listening server on 127.0.0.1 and a way to close it with all its connections. */
export interface FakeServer {
  readonly port: number;
  readonly sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1 that runs `onConnection` for each client. */
export async function startServer(onConnection: (socket: net.Socket) => void): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Resolves with the first `n` bytes received on `socket` (after the handshake). */
export function readBytes(socket: NodeJS.ReadableStream, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        socket.off('data', onData);
        resolve(Buffer.concat(chunks).subarray(0, n));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** A port on 127.0.0.1 with no listener (bound, then closed). */
export async function closedPort(): Promise<number> {
  const s = await startServer(() => {});
  await s.close();
  return s.port;
}

/**
 * A scripted SOCKS5 server (RFC 1928 §3-§6, RFC 1929 §2): checks `user:pass` when given, answers
 * every CONNECT with `rep`, then sends `early` and echoes. `seen` collects `<connection>:<message>`
 * (greeting, auth, request) as they arrive, connections numbered from 1.
 */
export function fakeSocks5(rep: number, auth?: { user: string; pass: string }, early = '', seen?: string[]) {
  let connections = 0;
  return (socket: net.Socket): void => {
    const id = ++connections;
    let buf = Buffer.alloc(0);
    let stage: 'greeting' | 'auth' | 'request' | 'open' = 'greeting';
    socket.on('data', (c: Buffer) => {
      if (stage === 'open') {
        socket.write(c);
        return;
      }
      buf = Buffer.concat([buf, c]);
      if (stage === 'greeting' && buf.length >= 2 && buf.length >= 2 + buf[1]!) {
        const methods = [...buf.subarray(2, 2 + buf[1]!)];
        buf = buf.subarray(2 + buf[1]!);
        seen?.push(`${id}:greeting`);
        const want = auth === undefined ? 0x00 : 0x02;
        if (!methods.includes(want)) {
          socket.end(Buffer.of(5, 0xff));
          return;
        }
        socket.write(Buffer.of(5, want));
        stage = auth === undefined ? 'request' : 'auth';
      }
      if (stage === 'auth' && buf.length >= 2) {
        const ulen = buf[1]!;
        const plen = buf[2 + ulen];
        if (plen === undefined || buf.length < 3 + ulen + plen) return;
        const user = buf.subarray(2, 2 + ulen).toString();
        const pass = buf.subarray(3 + ulen, 3 + ulen + plen).toString();
        buf = buf.subarray(3 + ulen + plen);
        seen?.push(`${id}:auth`);
        const ok = user === auth?.user && pass === auth.pass;
        socket.write(Buffer.of(1, ok ? 0 : 1));
        if (!ok) socket.end();
        stage = ok ? 'request' : 'open';
      }
      if (stage === 'request' && buf.length >= 5) {
        seen?.push(`${id}:request`);
        socket.write(Buffer.of(5, rep, 0, 1, 127, 0, 0, 1, 0x12, 0x34));
        if (rep !== 0) {
          socket.end();
          return;
        }
        stage = 'open';
        if (early !== '') socket.write(early);
      }
    });
  };
}
