/**
 * The TCP relay over an in-memory bed (tcp-bed.ts): a client stack connects to a relay stack that
 * dials through a fake Dialer to a local 127.0.0.1 server or fails with DialError codes.
 */
import type * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DialCancel, type Dialer, type DialOptions } from '../../../src/proxy/dialer.js';
import { DialError, type DialErrorCode } from '../../../src/proxy/errors.js';
import { canonicalHost, LoopGuard, refusalFor } from '../../../src/relay/tcp-relay.js';
import type { TcpSocket } from '../../../src/tcp-socket.js';
import { CLIENT4, CLIENT6, pattern, REMOTE4, REMOTE6 } from '../stack/packets.js';
import {
  bed,
  closed,
  echoServer,
  failingDialer,
  localDialer,
  localServer,
  readBytes,
  readToEnd,
  runCleanups,
  sleep,
  tappedDialer,
  waitFor,
} from './tcp-bed.js';

afterEach(runCleanups);

describe('refusal mapping', () => {
  it('maps every DialError code to what the client sees', () => {
    const table: Record<DialErrorCode | 'loop', string> = {
      ECONNREFUSED: 'rst',
      EHOSTUNREACH: 'host-unreachable',
      ENETUNREACH: 'net-unreachable',
      ETIMEDOUT: 'rst',
      EPROXYAUTH: 'rst',
      EPROXY: 'rst',
      EREJECTED: 'rst',
      EABORTED: 'rst',
      loop: 'rst',
    };
    for (const [code, want] of Object.entries(table)) expect(refusalFor(code), code).toBe(want);
  });

  it('canonicalises hosts for the loop guard', () => {
    expect(canonicalHost('[FD00:0:0::1]')).toBe('fd00::1');
    expect(canonicalHost('::ffff:198.18.7.1')).toBe('198.18.7.1');
    expect(canonicalHost('198.18.7.1')).toBe('198.18.7.1');
    expect(canonicalHost('Proxy.Example')).toBe('proxy.example');
    const g = new LoopGuard([
      { host: '198.18.7.1', port: 1080 },
      { host: 'fd00:7:0::1', port: 1080 },
    ]);
    expect(g.matches({ host: '198.18.7.1', port: 1080 })).toBe(true);
    expect(g.matches({ host: '198.18.7.1', port: 1081 })).toBe(false);
    expect(g.matches({ host: 'fd00:7::1', port: 1080 })).toBe(true);
    expect(new LoopGuard().matches({ host: '198.18.7.1', port: 1080 })).toBe(false);
  });
});

describe('TcpRelay', () => {
  it('relays data both ways over IPv4 and IPv6, then closes cleanly', async () => {
    const echo = await echoServer();
    const dialer = localDialer(echo.port);
    const b = bed({ dialer });
    for (const ipv6 of [false, true]) {
      const s = await b.connect(80, { ipv6 });
      expect(s.connection.state).toBe('ESTABLISHED');
      const data = pattern(300_000);
      const got = readToEnd(s);
      s.end(data);
      expect((await got).equals(Buffer.from(data))).toBe(true);
      await closed(s);
    }
    expect(dialer.dialed).toEqual([
      { host: '198.18.5.9', port: 80 },
      { host: 'fd00:5::9', port: 80 },
    ]);
    await waitFor(() => b.relay.stats.open === 0, 5000, 'relay to forget');
    const st = b.relay.stats;
    expect(st).toMatchObject({ open: 0, total: 2, bytesUp: 600_000, bytesDown: 600_000, failed: {} });
    expect(b.logs.filter((l) => l.includes('tcp open'))).toHaveLength(2);
    const closes = b.logs.filter((l) => l.includes('tcp close'));
    expect(closes).toHaveLength(2);
    expect(closes[0]).toMatch(
      /client=198\.18\.0\.1:\d+ dst=198\.18\.5\.9:80 up=300000 down=300000 ms=\d+ reason=done/,
    );
    expect(closes[1]).toContain('dst=[fd00:5::9]:80');
  });

  it('dials at SYN time and accepts only after the dial succeeded', async () => {
    const echo = await echoServer();
    const dialer = localDialer(echo.port, 300);
    const b = bed({ dialer });
    const t0 = performance.now();
    const s = await b.connect(80);
    expect(s.connection.state).toBe('ESTABLISHED');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
    s.destroy();
  });

  it.each(['ECONNREFUSED', 'ETIMEDOUT', 'EPROXY', 'EPROXYAUTH', 'EREJECTED'] as const)(
    'a dial failing with %s refuses the client with RST and is counted',
    async (code) => {
      const b = bed({ dialer: failingDialer(code) });
      const s = await b.connect(443);
      expect(s.connection.state).toBe('CLOSED');
      expect(s.connection.error).toBe('ECONNREFUSED');
      expect(b.relay.stats).toMatchObject({ open: 0, total: 0, failed: { [code]: 1 } });
      const warn = b.logs.filter((l) => l.includes('WARN'));
      expect(warn).toHaveLength(1);
      expect(warn[0]).toMatch(
        new RegExp(
          `tcp dial failed client=198\\.18\\.0\\.1:\\d+ dst=198\\.18\\.5\\.9:443 code=${code} ms=\\d+ answer=rst`,
        ),
      );
    },
  );

  it.each([
    ['EHOSTUNREACH', 'host-unreachable', false],
    ['ENETUNREACH', 'net-unreachable', false],
    ['EHOSTUNREACH', 'host-unreachable', true],
  ] as const)(
    'a dial failing with %s answers the SYN with ICMP %s (IPv6: %s), not RST',
    async (code, answer, ipv6) => {
      const b = bed({ dialer: failingDialer(code) }, { client: { tcp: { initialRtoMs: 5000 } } });
      b.client.enter();
      b.client.stack.tcp.connect(
        ipv6 ? CLIENT6 : CLIENT4,
        42000,
        ipv6 ? REMOTE6 : REMOTE4,
        443,
        b.client.now(),
      );
      b.client.schedule();
      const relayStats = b.relayRuntime.stack.stats;
      await waitFor(() => relayStats.icmpErrorsSent === 1, 3000, 'the ICMP error');
      expect(relayStats.tcpResetsSent).toBe(0);
      expect(b.relay.stats.failed).toEqual({ [code]: 1 });
      expect(b.logs.filter((l) => l.includes('WARN'))[0]).toContain(`code=${code}`);
      expect(b.logs.filter((l) => l.includes('WARN'))[0]).toContain(`answer=${answer}`);
    },
  );

  it('a dialer that throws or rejects with a foreign error counts as EPROXY and never throws', async () => {
    const b = bed({
      dialer: {
        name: 'broken',
        dial: (dst) => {
          if (dst.port === 1) throw new Error('sync boom');
          return Promise.reject(new Error('async boom'));
        },
      },
    });
    const s1 = await b.connect(1);
    const s2 = await b.connect(2);
    expect(s1.connection.error).toBe('ECONNREFUSED');
    expect(s2.connection.error).toBe('ECONNREFUSED');
    expect(b.relay.stats.failed).toEqual({ EPROXY: 2 });
  });

  it('destroys the upstream socket when the client gave up before the dial completed', async () => {
    const echo = await echoServer();
    const dialer = localDialer(echo.port, 400);
    // The relay's stack drops a SYN whose decision takes longer than 100 ms.
    const b = bed(
      { dialer },
      { relay: { tcp: { synDecisionTimeoutMs: 100 } }, client: { tcp: { initialRtoMs: 5000 } } },
    );
    b.client.enter();
    const c = b.client.stack.tcp.connect(CLIENT4, 41000, REMOTE4, 80, b.client.now());
    b.client.schedule();
    await waitFor(() => dialer.sockets.length === 1, 3000, 'dial');
    const upstream = dialer.sockets[0]!;
    await waitFor(() => upstream.destroyed, 3000, 'upstream destroyed');
    expect(c?.state).toBe('SYN-SENT');
    expect(b.relay.stats).toMatchObject({ open: 0, total: 0 });
    expect(b.logs.some((l) => l.includes('client gave up'))).toBe(true);
  });

  // A dialer that says it is cancellable gets a DialCancel, any other an AbortSignal; either way
  // the dial stops as soon as the client gives up on its SYN.
  it.each([
    { cancellable: false, port: 41001 },
    { cancellable: true, port: 41002 },
  ])(
    'aborts the dial as soon as the client gives up on its SYN (cancellable: $cancellable)',
    async ({ cancellable, port }) => {
      const seen: DialOptions[] = [];
      const aborted = (o: DialOptions): boolean => (cancellable ? o.cancel!.aborted : o.signal!.aborted);
      const dialer: Dialer = {
        name: 'slow',
        cancellable,
        dial: (_dst, opts) =>
          new Promise((_resolve, reject) => {
            seen.push(opts!);
            const abort = (): void => reject(new DialError('EABORTED', 'dial aborted'));
            if (cancellable) opts!.cancel!.listen(abort);
            else opts!.signal!.addEventListener('abort', abort);
          }),
      };
      const b = bed(
        { dialer },
        { relay: { tcp: { synDecisionTimeoutMs: 100 } }, client: { tcp: { initialRtoMs: 5000 } } },
      );
      b.client.enter();
      b.client.stack.tcp.connect(CLIENT4, port, REMOTE4, 80, b.client.now());
      b.client.schedule();
      await waitFor(() => seen.length === 1, 3000, 'dial');
      expect(seen[0]!.cancel instanceof DialCancel).toBe(cancellable);
      expect(seen[0]!.signal instanceof AbortSignal).toBe(!cancellable);
      const t0 = performance.now();
      await waitFor(() => aborted(seen[0]!), 3000, 'the dial aborted');
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(b.relay.stats.failed).toEqual({ EABORTED: 1 });
    },
  );

  it('half-close, client first: the client ends and still receives what the upstream sends after', async () => {
    const srv = await localServer(() => {});
    const b = bed({ dialer: localDialer(srv.port) });
    const s = await b.connect(80);
    await waitFor(() => srv.sockets.length === 1);
    const up = srv.sockets[0]!;
    const upGot = readToEnd(up);
    s.end('request');
    expect((await upGot).toString()).toBe('request');
    // The upstream still writes after the client's FIN, then ends.
    const back = readToEnd(s);
    up.write('part one, ');
    await sleep(50);
    up.end('part two');
    expect((await back).toString()).toBe('part one, part two');
    await closed(s);
    expect(s.connection.error).toBeUndefined();
  });

  for (const [kind, dialerFor] of [
    ['plain', localDialer],
    ['tapped (read-tap.ts)', tappedDialer],
  ] as const)
    it(`half-close, upstream first, ${kind} upstream: the upstream ends and still receives what the client sends after`, async () => {
      const srv = await localServer(() => {});
      const b = bed({ dialer: dialerFor(srv.port) });
      const s = await b.connect(80);
      await waitFor(() => srv.sockets.length === 1);
      const up = srv.sockets[0]!;
      const clientGot = readToEnd(s);
      const upGot = readToEnd(up);
      up.end('banner');
      expect((await clientGot).toString()).toBe('banner');
      // The dialer's net.Socket would close both ways here without allowHalfOpen.
      s.write('still ');
      await sleep(50);
      s.end('talking');
      expect((await upGot).toString()).toBe('still talking');
      await closed(s);
      expect(s.connection.error).toBeUndefined();
      await waitFor(() => b.relay.stats.open === 0);
    });

  it('an upstream RST resets the client', async () => {
    const srv = await localServer(() => {});
    const b = bed({ dialer: localDialer(srv.port) });
    const s = await b.connect(80);
    await waitFor(() => srv.sockets.length === 1);
    const errored = new Promise<NodeJS.ErrnoException>((r) => s.once('error', r));
    srv.sockets[0]!.resetAndDestroy();
    expect((await errored).code).toBe('ECONNRESET');
    expect(s.connection.error).toBe('ECONNRESET');
    await waitFor(() => b.relay.stats.open === 0);
    expect(b.logs.find((l) => l.includes('tcp close'))).toContain('reason=upstream-ECONNRESET');
  });

  it('a client RST resets the upstream socket', async () => {
    const srv = await localServer(() => {});
    const b = bed({ dialer: localDialer(srv.port) });
    const s = await b.connect(80);
    await waitFor(() => srv.sockets.length === 1);
    const up = srv.sockets[0]!;
    const errored = new Promise<NodeJS.ErrnoException>((r) => up.once('error', r));
    s.destroy();
    expect((await errored).code).toBe('ECONNRESET');
    await waitFor(() => b.relay.stats.open === 0);
    expect(b.logs.find((l) => l.includes('tcp close'))).toContain('reason=client-ECONNRESET');
  });

  it('an idle connection is reset on both sides after idleTimeoutMs; traffic keeps it alive', async () => {
    const srv = await localServer(() => {});
    const b = bed({ dialer: localDialer(srv.port), idleTimeoutMs: 300 });
    const s = await b.connect(80);
    await waitFor(() => srv.sockets.length === 1);
    const up = srv.sockets[0]!;
    up.on('data', () => {});
    // Activity every 100 ms for 600 ms: twice the timeout, still open.
    for (let i = 0; i < 6; i++) {
      s.write('x');
      await sleep(100);
    }
    expect(s.connection.state).toBe('ESTABLISHED');
    // Live counters include the open connection.
    expect(b.relay.stats).toMatchObject({ open: 1, total: 1, bytesUp: 6, bytesDown: 0 });
    const t0 = performance.now();
    const clientReset = new Promise<NodeJS.ErrnoException>((r) => s.once('error', r));
    await closed(up);
    expect((await clientReset).code).toBe('ECONNRESET');
    const waited = performance.now() - t0;
    // The last byte moved ~100 ms before t0.
    expect(waited).toBeGreaterThanOrEqual(150);
    expect(waited).toBeLessThan(1500);
    await waitFor(() => b.relay.stats.open === 0);
    expect(b.logs.find((l) => l.includes('tcp close'))).toContain('reason=idle-timeout');
  });

  it('a half-closed connection is closed after halfClosedTimeoutMs without traffic', async () => {
    const srv = await localServer(() => {});
    const b = bed({ dialer: localDialer(srv.port), idleTimeoutMs: 60_000, halfClosedTimeoutMs: 300 });
    const s = await b.connect(80);
    await waitFor(() => srv.sockets.length === 1);
    const up = srv.sockets[0]!;
    up.on('data', () => {});
    s.end();
    const t0 = performance.now();
    await waitFor(() => b.relay.stats.open === 0);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThan(1500);
    expect(b.logs.find((l) => l.includes('tcp close'))).toContain('reason=half-closed-timeout');
    // Both sides were reset: the client at once, the upstream on its next write (it has read our FIN
    // and is not reading any more, so only a write notices the RST).
    await waitFor(() => s.connection.state === 'CLOSED', 2000, 'the client reset');
    expect(s.connection.error).toBe('ECONNRESET');
    const upClosed = closed(up);
    up.write('anyone?');
    await upClosed;
  });

  it('refuses the proxy itself (loop guard) with RST and one warn line', async () => {
    const echo = await echoServer();
    const dialer = localDialer(echo.port);
    const b = bed({ dialer, loopGuard: [{ host: '198.18.5.9', port: 1080 }] });
    const s = await b.connect(1080);
    expect(s.connection.error).toBe('ECONNREFUSED');
    expect(dialer.dialed).toEqual([]);
    expect(b.relay.stats.failed).toEqual({ loop: 1 });
    const warn = b.logs.filter((l) => l.includes('WARN'));
    expect(warn).toHaveLength(1);
    expect(warn[0]).toContain('routing loop: 198.18.5.9:1080');
    // Another port of the same host is relayed.
    const ok = await b.connect(1081);
    expect(ok.connection.state).toBe('ESTABLISHED');
    ok.destroy();
  });

  it('backpressure: an upstream that stops reading closes the client window; bytes held stay bounded', async () => {
    const srv = await localServer((s) => s.pause());
    const b = bed({ dialer: localDialer(srv.port) });
    const s = await b.connect(80);
    await waitFor(() => srv.sockets.length === 1);
    const total = 16 * 1024 * 1024;
    let taken = false;
    s.write(pattern(total), () => {
      taken = true;
    });
    // Wait until the client's writes stall: the bytes the client's core took stop growing.
    let last = -1;
    for (let i = 0; i < 100 && s.bytesWritten !== last; i++) {
      last = s.bytesWritten;
      await sleep(100);
    }
    expect(taken).toBe(false);
    expect(s.bytesWritten).toBeLessThan(total);
    await waitFor(() => s.connection.sndWnd < 1500, 5000, 'the client window to close');
    // What the relay holds: the core's receive buffer, the TcpSocket's readable buffer and the
    // upstream socket's pending writes.
    const conn = [...b.relayRuntime.stack.tcp.connections()][0]!;
    const relayed = conn.owner as TcpSocket;
    const upstream = (b.relay as unknown as { conns: Set<{ upstream: net.Socket }> }).conns.values().next()
      .value!.upstream;
    const held = conn.readableLength + relayed.readableLength + upstream.writableLength;
    // About 850 KiB here: a receive buffer auto-tuned to ~512 KiB, the socket's 256 KiB high-water mark.
    expect(held).toBeLessThan(2 * 1024 * 1024);
    // The reader resumes: everything flows through.
    const up = srv.sockets[0]!;
    const got = readBytes(up, total);
    up.resume();
    expect((await got).length).toBe(total);
    expect(taken).toBe(true);
    s.destroy();
  }, 30_000);

  it('close() aborts dials in flight and destroys every relayed connection', async () => {
    const srv = await localServer(() => {});
    const slow = localDialer(srv.port, 500);
    const b = bed({ dialer: slow });
    const fast = bed({ dialer: localDialer(srv.port) });
    const s = await fast.connect(80);
    await waitFor(() => srv.sockets.length === 1);
    const clientReset = new Promise<NodeJS.ErrnoException>((r) => s.once('error', r));
    fast.relay.close();
    await closed(srv.sockets[0]!);
    expect((await clientReset).code).toBe('ECONNRESET');
    expect(fast.relay.stats.open).toBe(0);
    // A SYN after close() is refused.
    const late = await fast.connect(80);
    expect(late.connection.error).toBe('ECONNREFUSED');
    // The slow relay closes while a dial waits (a fake dialer ignores the signal; the client is refused).
    const pending = b.connect(80);
    await sleep(50);
    b.relay.close();
    const refused = await pending;
    expect(refused.connection.state).toBe('CLOSED');
  });
});
