/**
 * Spare SOCKS5 connections: opened and greeted only after a dial, taken by the next dial (which
 * then sends its CONNECT at once), dropped when the proxy closes them or they expire, never left
 * behind by close(), and a dead spare never fails a dial.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createDialer, parseProxyUrl } from '../../../src/proxy/index.js';
import { Socks5Spares } from '../../../src/proxy/socks5-spares.js';
import { fakeSocks5, readBytes, serverSet } from './fake-server.js';

const { serve, closeAll } = serverSet();
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await closeAll();
});

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`${what} not met in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Time for our side to read what the fake proxy answered (a loopback round trip, many times over). */
const settle = () => new Promise((r) => setTimeout(r, 100));

describe('SOCKS5 spare connections', () => {
  it('none before the first dial; the next dial sends only its CONNECT on a connection greeted before', async () => {
    const seen: string[] = [];
    const proxy = await serve(fakeSocks5(0, { user: 'u', pass: 'p' }, '', seen));
    const dialer = createDialer(parseProxyUrl(`socks5://u:p@127.0.0.1:${proxy.port}`));
    closers.push(() => dialer.close?.());
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.sockets.size).toBe(0);

    const first = await dialer.dial({ host: '198.18.0.1', port: 7 });
    // The first dial did the whole handshake; a spare (connection 2) was greeted meanwhile.
    await waitFor(() => seen.includes('2:auth'), 'the spare greeted');
    await settle(); // the server saw it; let our side read the answer
    expect(seen.filter((s) => s.startsWith('1:'))).toEqual(['1:greeting', '1:auth', '1:request']);
    expect(seen.filter((s) => s.startsWith('2:'))).toEqual(['2:greeting', '2:auth']);

    const second = await dialer.dial({ host: '198.18.0.2', port: 7 });
    expect(seen.filter((s) => s.startsWith('2:'))).toEqual(['2:greeting', '2:auth', '2:request']);
    // The tunnel works on the spare.
    second.write('echo');
    expect((await readBytes(second, 4)).toString()).toBe('echo');
    // And a new spare replaces it; the dialer counts them (engine stats: `dialer`).
    await waitFor(() => seen.includes('3:auth'), 'the next spare');
    await settle();
    expect(dialer.stats?.()).toEqual({ sparesReady: 1, sparesTaken: 1, sparesOpened: 2, sparesDropped: 0 });
    first.destroy();
    second.destroy();
  });

  it('a spare the proxy closed is dropped; one that dies unnoticed makes the dial start afresh', async () => {
    const seen: string[] = [];
    const script = fakeSocks5(0, undefined, '', seen);
    let killNextRequest = false;
    const proxy = await serve((socket) => {
      // Play a proxy that dropped an idle connection just as our CONNECT (10 bytes for an IPv4
      // destination; a greeting is 3) arrived: no reply.
      socket.on('data', (c: Buffer) => {
        if (killNextRequest && c.length >= 10) {
          killNextRequest = false;
          socket.destroy();
        }
      });
      script(socket);
    });
    const spares = new Socks5Spares({ host: '127.0.0.1', port: proxy.port }, 1);
    closers.push(() => spares.close());
    expect(spares.take()).toBeUndefined();
    await waitFor(() => spares.size === 1, 'a spare');
    // The proxy closes it: dropped at once.
    for (const s of proxy.sockets) s.destroy();
    await waitFor(() => spares.size === 0, 'the closed spare dropped');
    expect(spares.stats.dropped).toBe(1);

    const dialer = createDialer(parseProxyUrl(`socks5://127.0.0.1:${proxy.port}`));
    closers.push(() => dialer.close?.());
    (await dialer.dial({ host: '198.18.0.1', port: 7 })).destroy();
    // Greetings: the spare dropped above, the dial's own, and the dialer's spare.
    await waitFor(() => seen.filter((s) => s.endsWith(':greeting')).length === 3, 'the dialer spare');
    await settle();
    killNextRequest = true;
    const socket = await dialer.dial({ host: '198.18.0.2', port: 7 });
    // The spare's CONNECT died with it; a fresh connection (greeting 4 or later, next to the
    // new spare's) carried the dial.
    expect(killNextRequest).toBe(false);
    expect(seen.filter((x) => x.endsWith(':greeting')).length).toBeGreaterThanOrEqual(4);
    socket.write('ok');
    expect((await readBytes(socket, 2)).toString()).toBe('ok');
    socket.destroy();
  });

  it('an unused spare expires; none is opened again while no dial comes', async () => {
    const proxy = await serve(fakeSocks5(0));
    const spares = new Socks5Spares({ host: '127.0.0.1', port: proxy.port }, 1, 100);
    closers.push(() => spares.close());
    spares.take();
    await waitFor(() => spares.size === 1, 'a spare');
    await waitFor(() => spares.size === 0, 'the spare expired', 2000);
    await new Promise((r) => setTimeout(r, 150));
    expect(spares.stats).toMatchObject({ opened: 1, dropped: 1, taken: 0 });
    await waitFor(() => proxy.sockets.size === 0, 'the proxy to see it closed');
  });

  it('close() destroys the spares and stops opening; count 0 never opens one', async () => {
    const proxy = await serve(fakeSocks5(0));
    const spares = new Socks5Spares({ host: '127.0.0.1', port: proxy.port }, 2);
    spares.take();
    await waitFor(() => spares.size === 2, 'two spares');
    spares.close();
    expect(spares.size).toBe(0);
    expect(spares.take()).toBeUndefined();
    await waitFor(() => proxy.sockets.size === 0, 'the proxy to see them closed');
    const none = new Socks5Spares({ host: '127.0.0.1', port: proxy.port }, 0);
    expect(none.take()).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.sockets.size).toBe(0);
    expect(() => new Socks5Spares({ host: '127.0.0.1', port: 1 }, 17)).toThrow(/from 0 to 16/);
  });

  it('a proxy that refuses our credentials: spares fail quietly, the dial reports EPROXYAUTH', async () => {
    const proxy = await serve(fakeSocks5(0, { user: 'u', pass: 'right' }));
    const dialer = createDialer(parseProxyUrl(`socks5://u:wrong@127.0.0.1:${proxy.port}`));
    closers.push(() => dialer.close?.());
    for (let i = 0; i < 3; i++)
      await expect(dialer.dial({ host: '198.18.0.1', port: 7 }, { timeoutMs: 2000 })).rejects.toMatchObject({
        code: 'EPROXYAUTH',
      });
  });
});
