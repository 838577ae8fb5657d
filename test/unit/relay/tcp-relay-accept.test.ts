/**
 * When the relay sends the SYN-ACK relative to its dial (TcpAcceptMode): 'after-dial' waits for
 * the dial, 'before-dial' accepts at once and dials while the client sends, 'auto' (the default)
 * accepts at once only a destination whose last dial succeeded. Over the in-memory bed of
 * tcp-bed.ts; the dialer is slowed so that "before" and "after" the dial are hundreds of ms apart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Dialer } from '../../../src/proxy/dialer.js';
import { DialError } from '../../../src/proxy/errors.js';
import { KnownGood } from '../../../src/relay/tcp-relay-policy.js';
import {
  bed,
  closed,
  echoServer,
  failingDialer,
  localDialer,
  readToEnd,
  runCleanups,
  waitFor,
} from './tcp-bed.js';

afterEach(runCleanups);

/** Milliseconds `connect` takes to reach ESTABLISHED (or CLOSED). */
async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await f();
  return [v, performance.now() - t0];
}

/** A dialer whose dial to port 81 succeeds through `ok` and to any other port fails after `ms`. */
function switchingDialer(ok: Dialer, ms: number): Dialer & { signals: AbortSignal[] } {
  const signals: AbortSignal[] = [];
  return {
    name: 'switching',
    signals,
    dial(dst, opts) {
      signals.push(opts!.signal!);
      if (dst.port === 81) return ok.dial(dst, opts);
      return new Promise((_resolve, reject) => {
        const t = setTimeout(() => reject(new DialError('ECONNREFUSED', 'refused upstream')), ms);
        opts!.signal!.addEventListener('abort', () => {
          clearTimeout(t);
          reject(new DialError('EABORTED', 'dial aborted'));
        });
      });
    },
  };
}

describe('TcpRelay accept modes', () => {
  it("'auto': a destination never dialed waits for its dial; once it dialed fine, the next SYN is accepted at once", async () => {
    const echo = await echoServer();
    const dialer = localDialer(echo.port, 300);
    const b = bed({ dialer });
    const [first, firstMs] = await timed(() => b.connect(80));
    expect(first.connection.state).toBe('ESTABLISHED');
    expect(firstMs).toBeGreaterThanOrEqual(280);

    const [second, secondMs] = await timed(() => b.connect(80));
    expect(second.connection.state).toBe('ESTABLISHED');
    expect(secondMs).toBeLessThan(250);
    // What the client sends while the dial runs waits in the connection and then flows.
    const got = readToEnd(second);
    second.end('sent before the upstream existed');
    expect((await got).toString()).toBe('sent before the upstream existed');
    await closed(second);
    expect(dialer.dialed).toHaveLength(2);
    first.destroy();
    await waitFor(() => b.relay.stats.open === 0, 5000, 'relay to forget');
    expect(b.relay.stats).toMatchObject({ total: 2, failed: {} });

    // Another port of the same host is another destination: it waits again.
    const [, otherMs] = await timed(() => b.connect(8080));
    expect(otherMs).toBeGreaterThanOrEqual(280);
  });

  it("'after-dial' never accepts before the dial, even a destination that dialed fine", async () => {
    const echo = await echoServer();
    const b = bed({ dialer: localDialer(echo.port, 300), accept: 'after-dial' });
    for (let i = 0; i < 2; i++) {
      const [s, ms] = await timed(() => b.connect(80));
      expect(s.connection.state).toBe('ESTABLISHED');
      expect(ms).toBeGreaterThanOrEqual(280);
      s.destroy();
    }
  });

  it("'before-dial': a failed dial resets the accepted connection, counted, one warn line with answer=reset", async () => {
    const b = bed({ dialer: failingDialer('ECONNREFUSED'), accept: 'before-dial' });
    const s = await b.connect(443);
    await closed(s);
    // Accepted, then reset (a refusal would be ECONNREFUSED: an RST answering the SYN).
    expect(s.connection.state).toBe('CLOSED');
    expect(s.connection.error).toBe('ECONNRESET');
    expect(b.relay.stats).toMatchObject({ open: 0, total: 0, failed: { ECONNREFUSED: 1 } });
    const warn = b.logs.filter((l) => l.includes('WARN'));
    expect(warn).toHaveLength(1);
    expect(warn[0]).toMatch(
      /tcp dial failed client=198\.18\.0\.1:\d+ dst=198\.18\.5\.9:443 code=ECONNREFUSED ms=\d+ answer=reset/,
    );
  });

  it("'auto': a known-good destination whose dial now fails is reset once, then refused like a new one", async () => {
    const echo = await echoServer();
    const ok = localDialer(echo.port);
    let failing = false;
    const dialer: Dialer = {
      name: 'flaky',
      dial: (dst, opts) =>
        failing ? Promise.reject(new DialError('ECONNREFUSED', 'refused upstream')) : ok.dial(dst, opts),
    };
    const b = bed({ dialer });
    const good = await b.connect(80);
    good.destroy();
    failing = true;
    const accepted = await b.connect(80);
    await closed(accepted);
    expect(accepted.connection.error).toBe('ECONNRESET');
    const refused = await b.connect(80);
    expect(refused.connection.state).toBe('CLOSED');
    expect(refused.connection.error).toBe('ECONNREFUSED');
    expect(b.relay.stats.failed).toEqual({ ECONNREFUSED: 2 });
  });

  it('a client that resets its early-accepted connection stops the dial at once', async () => {
    const echo = await echoServer();
    const dialer = switchingDialer(localDialer(echo.port), 60_000);
    const b = bed({ dialer, accept: 'before-dial' });
    const s = await b.connect(443);
    expect(s.connection.state).toBe('ESTABLISHED');
    await waitFor(() => dialer.signals.length === 1, 3000, 'the dial');
    const t0 = performance.now();
    s.destroy();
    await waitFor(() => dialer.signals[0]!.aborted, 3000, 'the dial aborted');
    expect(performance.now() - t0).toBeLessThan(1000);
    await waitFor(() => b.relay.stats.failed.EABORTED === 1, 3000, 'the abort counted');
    expect(b.logs.some((l) => l.includes('client gave up'))).toBe(true);
  });

  it('the signal of a completed dial is left alone when its client closes later', async () => {
    const echo = await echoServer();
    const dialer = switchingDialer(localDialer(echo.port), 60_000);
    const b = bed({ dialer, accept: 'before-dial' });
    const s = await b.connect(81);
    const got = readToEnd(s);
    s.end('abc');
    expect((await got).toString()).toBe('abc');
    await closed(s);
    expect(dialer.signals[0]!.aborted).toBe(false);
    await waitFor(() => b.relay.stats.open === 0, 5000, 'relay to forget');
    expect(b.relay.stats).toMatchObject({ total: 1, failed: {} });
  });

  it('close() resets the connections accepted before their dial', async () => {
    const echo = await echoServer();
    const dialer = switchingDialer(localDialer(echo.port), 60_000);
    const b = bed({ dialer, accept: 'before-dial' });
    const s = await b.connect(443);
    await waitFor(() => dialer.signals.length === 1, 3000, 'the dial');
    b.relay.close();
    await closed(s);
    expect(s.connection.error).toBe('ECONNRESET');
    expect(dialer.signals[0]!.aborted).toBe(true);
  });

  it('failed dials after early accepts leave nothing behind: no waiting socket, no open connection', async () => {
    const b = bed({ dialer: failingDialer('ETIMEDOUT'), accept: 'before-dial' });
    for (let i = 0; i < 5; i++) await closed(await b.connect(443));
    expect(b.relay.stats).toMatchObject({ open: 0, failed: { ETIMEDOUT: 5 } });
    expect((b.relay as unknown as { accepting: Set<unknown> }).accepting.size).toBe(0);
    b.client.enter();
    expect([...b.relayRuntime.stack.tcp.connections()].filter((c) => c.state !== 'CLOSED')).toHaveLength(0);
  });
});

describe('KnownGood', () => {
  it('remembers a success for the TTL, forgets on failure, and holds at most max entries', () => {
    const k = new KnownGood(3, 1000);
    expect(k.has('a:1', 0)).toBe(false);
    k.succeeded('a:1', 0);
    expect(k.has('a:1', 999)).toBe(true);
    expect(k.has('a:1', 1000)).toBe(false);
    k.succeeded('a:1', 500);
    expect(k.has('a:1', 1400)).toBe(true);
    k.failed('a:1');
    expect(k.has('a:1', 600)).toBe(false);
    for (const key of ['b:1', 'c:1', 'd:1']) k.succeeded(key, 10);
    k.succeeded('b:1', 20);
    k.succeeded('e:1', 30);
    // The least recently succeeded (c:1) went first; b:1 was refreshed.
    expect(k.size).toBe(3);
    expect(['b:1', 'c:1', 'd:1', 'e:1'].map((key) => k.has(key, 40))).toEqual([true, false, true, true]);
  });
});
