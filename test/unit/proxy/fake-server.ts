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

/**
 * The servers of one test file: `serve` starts one, `closeAll` (for afterEach) closes every one
 * started since the last call.
 */
export function serverSet(): {
  serve(onConnection: (socket: net.Socket) => void): Promise<FakeServer>;
  closeAll(): Promise<void>;
} {
  let servers: FakeServer[] = [];
  return {
    async serve(onConnection) {
      const s = await startServer(onConnection);
      servers.push(s);
      return s;
    },
    async closeAll() {
      const list = servers;
      servers = [];
      await Promise.all(list.map((s) => s.close()));
    },
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
 * The server side of a SOCKS5 greeting and RFC 1929 login, for fake proxies: `push` the bytes
 * received; it answers on `socket` (refusals end it) and returns the bytes after the greeting
 * once it is done, 'more' while it waits, 'refused' after a refusal. `onStep` hears 'greeting'
 * and 'auth' as they arrive.
 */
export class Socks5GreetingServer {
  private buf: Buffer = Buffer.alloc(0);
  private stage: 'greeting' | 'auth' | 'done' = 'greeting';

  constructor(
    private readonly socket: net.Socket,
    private readonly auth?: { user: string; pass: string },
    private readonly onStep?: (step: 'greeting' | 'auth') => void,
  ) {}

  push(c: Buffer): Buffer | 'more' | 'refused' {
    let buf = Buffer.concat([this.buf, c]);
    if (this.stage === 'greeting') {
      if (buf.length < 2 || buf.length < 2 + buf[1]!) return this.wait(buf);
      const methods = [...buf.subarray(2, 2 + buf[1]!)];
      buf = buf.subarray(2 + buf[1]!);
      this.onStep?.('greeting');
      const want = this.auth === undefined ? 0x00 : 0x02;
      if (!methods.includes(want)) {
        this.socket.end(Buffer.of(5, 0xff));
        return 'refused';
      }
      this.socket.write(Buffer.of(5, want));
      this.stage = this.auth === undefined ? 'done' : 'auth';
    }
    if (this.stage === 'auth') {
      const ulen = buf[1];
      const plen = ulen === undefined ? undefined : buf[2 + ulen];
      if (ulen === undefined || plen === undefined || buf.length < 3 + ulen + plen) return this.wait(buf);
      const user = buf.subarray(2, 2 + ulen).toString();
      const pass = buf.subarray(3 + ulen, 3 + ulen + plen).toString();
      buf = buf.subarray(3 + ulen + plen);
      this.onStep?.('auth');
      const ok = user === this.auth?.user && pass === this.auth.pass;
      this.socket.write(Buffer.of(1, ok ? 0 : 1));
      if (!ok) {
        this.socket.end();
        return 'refused';
      }
      this.stage = 'done';
    }
    this.buf = Buffer.alloc(0);
    return buf;
  }

  private wait(buf: Buffer): 'more' {
    this.buf = buf;
    return 'more';
  }
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
    const greeting = new Socks5GreetingServer(socket, auth, (step) => seen?.push(`${id}:${step}`));
    let buf: Buffer = Buffer.alloc(0);
    let stage: 'greeting' | 'request' | 'open' | 'refused' = 'greeting';
    socket.on('data', (c: Buffer) => {
      if (stage === 'open') {
        socket.write(c);
        return;
      }
      if (stage === 'refused') return;
      if (stage === 'greeting') {
        const rest = greeting.push(c);
        if (rest === 'more') return;
        if (rest === 'refused') {
          stage = 'refused';
          return;
        }
        stage = 'request';
        buf = rest;
      } else {
        buf = Buffer.concat([buf, c]);
      }
      if (buf.length >= 5) {
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
