/**
 * The relay with an upstream that reads through a ReadTap (read-tap.ts), as every socket the
 * dialers open with tcpConnect does: bytes that came before the join and a download with a
 * client that stops reading for a while (the tap's backpressure). Half-close over a tapped
 * upstream is in tcp-relay.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readTapOf } from '../../../src/proxy/read-tap.js';
import { pattern } from '../stack/packets.js';
import {
  bed,
  closed,
  localServer,
  readBytes,
  readToEnd,
  runCleanups,
  sleep,
  tappedDialer,
  waitFor,
} from './tcp-bed.js';

afterEach(runCleanups);

describe('TcpRelay over a tapped upstream', () => {
  it('bytes the server sent before the join reach the client first, then the rest flows', async () => {
    const srv = await localServer((s) => {
      s.write('banner\n');
      s.on('data', (d) => s.write(d));
    });
    const b = bed({ dialer: tappedDialer(srv.port) });
    const s = await b.connect(80);
    expect((await readBytes(s, 7)).toString()).toBe('banner\n');
    s.resume();
    const echoed = readBytes(s, 5);
    s.write('hello');
    expect((await echoed).toString()).toBe('hello');
    await waitFor(() => srv.sockets.length === 1);
  });

  it('a 4 MiB download arrives byte-exact through a client that stops reading for a while', async () => {
    const data = Buffer.from(pattern(4 * 1024 * 1024));
    const srv = await localServer((s) => s.end(data));
    const dialer = tappedDialer(srv.port);
    const b = bed({ dialer });
    const s = await b.connect(80);
    s.pause();
    await sleep(200); // the client's window and the relay's send buffer fill; the tap stops reading
    const upstream = dialer.sockets[0];
    expect(upstream !== undefined && readTapOf(upstream) !== undefined).toBe(true);
    // It read some (the byte counters the idle sweep watches move) and then stopped.
    expect(upstream!.bytesRead).toBeGreaterThan(0);
    expect(upstream!.bytesRead).toBeLessThan(data.length);
    const reading = readToEnd(s);
    s.resume();
    const got = await reading;
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
    s.end();
    await closed(s);
    // The relay's send buffer copied into pooled blocks and got them back as the client acked.
    const stats = b.relayRuntime.stack.stats;
    expect(stats.tcpBlocksReused).toBeGreaterThan(0);
  });
});
