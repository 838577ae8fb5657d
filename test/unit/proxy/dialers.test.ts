import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createDialer, DialCancel, DialError, type Dialer, parseProxyUrl } from '../../../src/proxy/index.js';
import { closedPort, fakeSocks5, readBytes, serverSet } from './fake-server.js';

const { serve, closeAll } = serverSet();
afterEach(closeAll);

async function dialError(dialer: Dialer, host: string, port: number, timeoutMs = 2000): Promise<DialError> {
  const err = await dialer.dial({ host, port }, { timeoutMs }).then(
    (s) => {
      s.destroy();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DialError);
  return err as DialError;
}

describe('direct and reject dialers', () => {
  it('direct connects with Nagle off and carries bytes', async () => {
    const echo = await serve((s) => s.pipe(s));
    const socket = await createDialer(parseProxyUrl('direct://')).dial({
      host: '127.0.0.1',
      port: echo.port,
    });
    socket.write('ping');
    expect((await readBytes(socket, 4)).toString()).toBe('ping');
    socket.destroy();
  });

  it('direct maps a refused port to ECONNREFUSED', async () => {
    const err = await dialError(createDialer({ kind: 'direct' }), '127.0.0.1', await closedPort());
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('reject always fails with EREJECTED', async () => {
    const dialer = createDialer(parseProxyUrl('reject://'));
    expect(dialer.name).toBe('reject');
    expect((await dialError(dialer, '198.18.0.1', 80)).code).toBe('EREJECTED');
  });

  it('honours an AbortSignal, already aborted or fired mid-dial', async () => {
    const silent = await serve((s) => s.resume());
    const dialer = createDialer(parseProxyUrl(`http://127.0.0.1:${silent.port}`));
    await expect(dialer.dial({ host: 'h', port: 1 }, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'EABORTED',
    });
    const ac = new AbortController();
    const p = dialer.dial({ host: 'h', port: 1 }, { signal: ac.signal, timeoutMs: 5000 });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: 'EABORTED' });
    for (let i = 0; i < 50 && silent.sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(silent.sockets.size).toBe(0);
  });

  it('honours a DialCancel the same way, and every dialer that dials says so', async () => {
    const silent = await serve((s) => s.resume());
    for (const url of [`http://127.0.0.1:${silent.port}`, `socks5://127.0.0.1:${silent.port}`]) {
      // No SOCKS5 spares: a spare would stay open to the silent server, awaiting its greeting.
      const dialer = createDialer(parseProxyUrl(url), { socks5Spares: 0 });
      expect(dialer.cancellable).toBe(true);
      const done = new DialCancel();
      done.abort();
      await expect(dialer.dial({ host: 'h', port: 1 }, { cancel: done })).rejects.toMatchObject({
        code: 'EABORTED',
      });
      const cancel = new DialCancel();
      const p = dialer.dial({ host: 'h', port: 1 }, { cancel, timeoutMs: 5000 });
      setTimeout(() => cancel.abort(), 50);
      await expect(p).rejects.toMatchObject({ code: 'EABORTED' });
      for (let i = 0; i < 50 && silent.sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(silent.sockets.size).toBe(0);
    }
    expect(createDialer(parseProxyUrl('direct://')).cancellable).toBe(true);
  });

  it('DialCancel calls its one listener once; a later listen() replaces an earlier one', () => {
    const cancel = new DialCancel();
    const calls: string[] = [];
    cancel.listen(() => calls.push('first'));
    cancel.listen(() => calls.push('second'));
    expect(cancel.aborted).toBe(false);
    cancel.abort();
    cancel.abort();
    expect(cancel.aborted).toBe(true);
    expect(calls).toEqual(['second']);
    const cleared = new DialCancel();
    cleared.listen(() => calls.push('cleared'));
    cleared.listen(undefined);
    cleared.abort();
    expect(calls).toEqual(['second']);
  });
});

describe('SOCKS dialers against a scripted SOCKS5 server', () => {
  it('connects, delivers early bytes and echoes', async () => {
    const proxy = await serve(fakeSocks5(0, undefined, 'hi!'));
    const dialer = createDialer(parseProxyUrl(`socks5://127.0.0.1:${proxy.port}`));
    const socket = await dialer.dial({ host: 'dst.example', port: 443 });
    expect((await readBytes(socket, 3)).toString()).toBe('hi!');
    socket.write('echo');
    expect((await readBytes(socket, 4)).toString()).toBe('echo');
    socket.destroy();
  });

  it('keeps early bytes for a consumer that starts reading late, or at once, or by pipe()', async () => {
    const proxy = await serve(fakeSocks5(0, undefined, 'late'));
    const dialer = createDialer(parseProxyUrl(`socks5://127.0.0.1:${proxy.port}`));
    for (const delayMs of [0, 50]) {
      const socket = await dialer.dial({ host: 'dst.example', port: 443 });
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      expect((await readBytes(socket, 4)).toString()).toBe('late');
      socket.destroy();
    }
    const socket = await dialer.dial({ host: 'dst.example', port: 443 });
    await new Promise((r) => setTimeout(r, 20));
    const sink = new PassThrough();
    socket.pipe(sink);
    expect((await readBytes(sink, 4)).toString()).toBe('late');
    socket.destroy();
  });

  it('authenticates with RFC 1929 credentials; a wrong password is EPROXYAUTH without leaking it', async () => {
    const proxy = await serve(fakeSocks5(0, { user: 'u', pass: 'right' }));
    const good = createDialer(parseProxyUrl(`socks5://u:right@127.0.0.1:${proxy.port}`));
    (await good.dial({ host: '198.18.0.1', port: 7 })).destroy();
    const bad = createDialer(parseProxyUrl(`socks5://u:wrong-secret@127.0.0.1:${proxy.port}`));
    const err = await dialError(bad, '198.18.0.1', 7);
    expect(err.code).toBe('EPROXYAUTH');
    expect(err.message).not.toContain('wrong-secret');
    const none = createDialer(parseProxyUrl(`socks5://127.0.0.1:${proxy.port}`));
    expect((await dialError(none, '198.18.0.1', 7)).code).toBe('EPROXYAUTH');
  });

  for (const [rep, code] of [
    [1, 'EPROXY'],
    [2, 'ECONNREFUSED'],
    [3, 'ENETUNREACH'],
    [4, 'EHOSTUNREACH'],
    [5, 'ECONNREFUSED'],
    [6, 'ETIMEDOUT'],
    [7, 'EPROXY'],
    [8, 'EPROXY'],
  ] as const) {
    it(`maps reply ${rep} to ${code}`, async () => {
      const proxy = await serve(fakeSocks5(rep));
      const dialer = createDialer(parseProxyUrl(`socks5://127.0.0.1:${proxy.port}`));
      expect((await dialError(dialer, '198.18.0.1', 80)).code).toBe(code);
    });
  }

  it('a SOCKS4 rejection (91) is ECONNREFUSED; socks4 refuses IPv6 destinations', async () => {
    const proxy = await serve((s) => s.once('data', () => s.end(Buffer.of(0, 0x5b, 0, 0, 0, 0, 0, 0))));
    const dialer = createDialer(parseProxyUrl(`socks4a://127.0.0.1:${proxy.port}`));
    expect((await dialError(dialer, 'dst.example', 80)).code).toBe('ECONNREFUSED');
    const v4 = createDialer(parseProxyUrl(`socks4://127.0.0.1:${proxy.port}`));
    expect((await dialError(v4, 'fd00::1', 80)).code).toBe('EPROXY');
  });

  it('a proxy that is down is EPROXY, for every proxy kind', async () => {
    const port = await closedPort();
    for (const scheme of ['socks5', 'socks4', 'socks4a', 'http']) {
      const dialer = createDialer(parseProxyUrl(`${scheme}://127.0.0.1:${port}`));
      expect(dialer.name).toBe(scheme);
      expect((await dialError(dialer, '198.18.0.1', 80)).code).toBe('EPROXY');
    }
  });

  it('a silent SOCKS proxy times out with ETIMEDOUT and the socket is closed', async () => {
    const proxy = await serve((s) => s.resume());
    // No spare connection: the proxy must be left with none of ours.
    const dialer = createDialer(parseProxyUrl(`socks5://127.0.0.1:${proxy.port}`), { socks5Spares: 0 });
    const t0 = performance.now();
    expect((await dialError(dialer, '198.18.0.1', 80, 150)).code).toBe('ETIMEDOUT');
    expect(performance.now() - t0).toBeLessThan(1000);
    for (let i = 0; i < 50 && proxy.sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(proxy.sockets.size).toBe(0);
  });
});
