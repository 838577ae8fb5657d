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
