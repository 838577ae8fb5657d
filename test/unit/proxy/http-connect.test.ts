import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildConnectRequest,
  ConnectResponseParser,
  createHttpDialer,
  DialError,
  MAX_CONNECT_RESPONSE_BYTES,
} from '../../../src/proxy/index.js';
import { type FakeServer, readBytes, startServer } from './fake-server.js';

const OK = 'HTTP/1.1 200 Connection established\r\nProxy-Agent: fake\r\n\r\n';

/** Feeds `text` cut at `cuts`; the tunnel bytes are `rest` plus whatever was not yet fed. */
function feedSplit(text: Uint8Array, cuts: number[]) {
  const p = new ConnectResponseParser();
  let prev = 0;
  for (const cut of [...cuts, text.length]) {
    const r = p.push(text.subarray(prev, cut));
    prev = cut;
    if (r?.kind === 'status') return { ...r, rest: Buffer.concat([r.rest, text.subarray(prev)]) };
    if (r !== undefined) return r;
  }
  return undefined;
}

describe('ConnectResponseParser', () => {
  it('parses a 200 with trailing tunnel bytes', () => {
    const r = new ConnectResponseParser().push(Buffer.from(`${OK}hello`));
    expect(r?.kind).toBe('status');
    if (r?.kind !== 'status') return;
    expect(r.status).toBe(200);
    expect(Buffer.from(r.rest).toString()).toBe('hello');
  });

  it('gives the same result wherever the bytes are cut (one and two cuts)', () => {
    const bytes = Buffer.from(`${OK}tail-bytes`);
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j += 7) {
        const r = feedSplit(bytes, [i, j]);
        expect(r?.kind).toBe('status');
        if (r?.kind !== 'status') return;
        expect(r.status).toBe(200);
        expect(Buffer.from(r.rest).toString()).toBe('tail-bytes');
      }
    }
  });

  it('waits for the blank line', () => {
    const bytes = Buffer.from(OK);
    for (let n = 0; n < bytes.length; n++) {
      expect(new ConnectResponseParser().push(bytes.subarray(0, n))).toBeUndefined();
    }
  });

  it('accepts bare LF line ends and HTTP/1.0', () => {
    const r = new ConnectResponseParser().push(Buffer.from('HTTP/1.0 200\n\nx'));
    expect(r).toMatchObject({ kind: 'status', status: 200 });
    if (r?.kind === 'status') expect(r.rest.length).toBe(1);
  });

  it('reports a bad status line', () => {
    for (const line of ['SSH-2.0-x\r\n\r\n', 'HTTP/2 200\r\n\r\n', 'HTTP/1.1 20\r\n\r\n', '\r\n\r\n']) {
      expect(new ConnectResponseParser().push(Buffer.from(line))).toEqual({
        kind: 'error',
        reason: 'http-bad-status-line',
      });
    }
  });

  it('bounds the header size', () => {
    const p = new ConnectResponseParser();
    expect(p.push(Buffer.from('HTTP/1.1 200 OK\r\n'))).toBeUndefined();
    const filler = Buffer.from(`X-Pad: ${'a'.repeat(1000)}\r\n`);
    let r: ReturnType<ConnectResponseParser['push']>;
    for (let i = 0; i < 20 && r === undefined; i++) r = p.push(filler);
    expect(r).toEqual({ kind: 'error', reason: 'http-header-too-large' });
    const huge = Buffer.from(`HTTP/1.1 200 OK\r\nX: ${'b'.repeat(MAX_CONNECT_RESPONSE_BYTES)}\r\n\r\n`);
    expect(new ConnectResponseParser().push(huge)).toEqual({
      kind: 'error',
      reason: 'http-header-too-large',
    });
  });

  it('never throws on random bytes in random pieces', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const p = new ConnectResponseParser(256);
        for (const c of chunks) if (p.push(c) !== undefined) break;
      }),
    );
  });
});

describe('buildConnectRequest', () => {
  it('writes the authority form and Basic credentials (RFC 7617 §2 example)', () => {
    expect(buildConnectRequest({ host: 'example.com', port: 443 })).toBe(
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    );
    expect(buildConnectRequest({ host: 'fd00::1', port: 80 }, 'Aladdin', 'open sesame')).toBe(
      'CONNECT [fd00::1]:80 HTTP/1.1\r\nHost: [fd00::1]:80\r\n' +
        'Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n',
    );
  });
});

describe('HTTP CONNECT dialer against a fake proxy', () => {
  let server: FakeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  /** A proxy that reads the request header, then writes `reply` in two pieces cut at `cut`. */
  async function proxyReplying(reply: Buffer, cut: number, seen?: string[]) {
    server = await startServer((socket) => {
      socket.setNoDelay(true);
      let req = '';
      socket.on('data', (c: Buffer) => {
        req += c.toString('latin1');
        if (!req.includes('\r\n\r\n')) return;
        seen?.push(req);
        socket.write(reply.subarray(0, cut));
        setTimeout(() => socket.write(reply.subarray(cut)), 1);
      });
    });
    return createHttpDialer({ kind: 'http', host: '127.0.0.1', port: server.port });
  }

  it('tunnels bytes that arrive with the header, wherever the reply is cut', async () => {
    const reply = Buffer.from(`${OK}early`);
    for (let cut = 0; cut <= reply.length; cut++) {
      const dialer = await proxyReplying(reply, cut);
      const socket = await dialer.dial({ host: 'dst.example', port: 80 }, { timeoutMs: 2000 });
      expect((await readBytes(socket, 5)).toString()).toBe('early');
      socket.destroy();
      await server?.close();
      server = undefined;
    }
  });

  it('keeps early tunnel bytes for a consumer that starts reading late', async () => {
    const dialer = await proxyReplying(Buffer.from(`${OK}late`), 10);
    const socket = await dialer.dial({ host: 'dst.example', port: 80 });
    await new Promise((r) => setTimeout(r, 50));
    expect((await readBytes(socket, 4)).toString()).toBe('late');
    socket.destroy();
  });

  it('sends credentials and maps 407 to EPROXYAUTH without leaking them', async () => {
    const seen: string[] = [];
    const reply = Buffer.from('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
    const base = await proxyReplying(reply, 3, seen);
    void base;
    const dialer = createHttpDialer({
      kind: 'http',
      host: '127.0.0.1',
      port: server!.port,
      username: 'u',
      password: 'sekrit',
    });
    const err = await dialer.dial({ host: '198.18.0.1', port: 22 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DialError);
    expect((err as DialError).code).toBe('EPROXYAUTH');
    expect((err as Error).message).not.toContain('sekrit');
    expect(seen[0]).toContain(`Proxy-Authorization: Basic ${Buffer.from('u:sekrit').toString('base64')}`);
  });

  for (const [status, code] of [
    [502, 'EHOSTUNREACH'],
    [503, 'EHOSTUNREACH'],
    [504, 'ETIMEDOUT'],
    [403, 'ECONNREFUSED'],
  ] as const) {
    it(`maps ${status} to ${code}`, async () => {
      const dialer = await proxyReplying(Buffer.from(`HTTP/1.1 ${status} x\r\n\r\n`), 5);
      await expect(dialer.dial({ host: 'h', port: 1 })).rejects.toMatchObject({ code });
    });
  }

  it('EPROXY when the proxy closes before replying or answers garbage', async () => {
    server = await startServer((socket) => socket.once('data', () => socket.end()));
    const dialer = createHttpDialer({ kind: 'http', host: '127.0.0.1', port: server.port });
    await expect(dialer.dial({ host: 'h', port: 1 })).rejects.toMatchObject({ code: 'EPROXY' });
    await server.close();
    const garbage = await proxyReplying(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'), 2);
    await expect(garbage.dial({ host: 'h', port: 1 })).rejects.toMatchObject({ code: 'EPROXY' });
  });

  it('ETIMEDOUT when the proxy never answers, and the socket is destroyed', async () => {
    server = await startServer((socket) => socket.resume());
    const dialer = createHttpDialer({ kind: 'http', host: '127.0.0.1', port: server.port });
    const t0 = performance.now();
    await expect(dialer.dial({ host: 'h', port: 1 }, { timeoutMs: 150 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
    });
    expect(performance.now() - t0).toBeLessThan(1000);
    for (let i = 0; i < 50 && server.sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.sockets.size).toBe(0);
  });
});
