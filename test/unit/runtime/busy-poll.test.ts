/** Busy polling: a window of loop turns after each packet, none without one, bounded and stoppable. */
import { describe, expect, it } from 'vitest';
import { BusyPoll, MAX_BUSY_POLL_MS } from '../../../src/busy-poll.js';
import { StackRuntime } from '../../../src/runtime.js';
import { seededRandom } from '../../../src/stack/random.js';
import { memoryPair } from '../../../src/tun/memory-device.js';

/** Resolves after `ms` of wall time (setTimeout, so spinning immediates keep running meanwhile). */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('BusyPoll', () => {
  it('keeps the loop turning for the window after the last touch, then lets it sleep', async () => {
    const busy = new BusyPoll(5);
    busy.touch();
    await sleep(2);
    const early = busy.turns;
    expect(early).toBeGreaterThan(0);
    busy.touch(); // extends the window from now
    await sleep(20);
    const after = busy.turns;
    expect(after).toBeGreaterThan(early);
    await sleep(20);
    // The window passed: no more turns.
    expect(busy.turns).toBe(after);
  });

  it('a zero window never spins; stop() ends a spin at once and for good', async () => {
    const off = new BusyPoll(0);
    off.touch();
    await sleep(5);
    expect(off.turns).toBe(0);
    const busy = new BusyPoll(MAX_BUSY_POLL_MS);
    busy.touch();
    await sleep(1);
    busy.stop();
    await sleep(1);
    const turns = busy.turns;
    busy.touch();
    await sleep(5);
    expect(busy.turns).toBe(turns);
  });

  it.each([-1, MAX_BUSY_POLL_MS + 1, Number.NaN])('rejects a window of %d ms', (ms) => {
    expect(() => new BusyPoll(ms)).toThrow(/busy-poll window must be from 0 to 10 ms/);
  });

  it('a runtime with busyPollMs spins after a packet comes in and after one goes out', async () => {
    const [a, b] = memoryPair();
    const client = new StackRuntime(a, { random: seededRandom(1) });
    const server = new StackRuntime(b, { random: seededRandom(2), busyPollMs: 3 });
    server.onTcpRequest((req) => req.accept());
    client.start();
    server.start();
    try {
      expect(server.busy.turns).toBe(0);
      client.connect({ address: '198.18.0.1', port: 40000 }, { address: '198.18.5.9', port: 80 });
      await sleep(10);
      // The SYN came in and the SYN-ACK went out: the server spun; the client (no window) did not.
      expect(server.busy.turns).toBeGreaterThan(0);
      expect(client.busy.turns).toBe(0);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
