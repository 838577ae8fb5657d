/** Busy polling: a window of loop turns after each packet, none without one, bounded and stoppable. */
import { describe, expect, it } from 'vitest';
import {
  AUTO_PERIOD_MS,
  AUTO_WASTE_SHARE,
  AUTO_WINDOW_MS,
  BusyPoll,
  MAX_BUSY_POLL_MS,
} from '../../../src/busy-poll.js';
import { StackRuntime } from '../../../src/runtime.js';
import { seededRandom } from '../../../src/stack/random.js';
import { memoryPair } from '../../../src/tun/memory-device.js';

/** Resolves after `ms` of wall time (setTimeout, so spinning immediates keep running meanwhile). */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves after a few turns of the event loop (the spin checks the clock once per turn). */
const turns = async (n = 3) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** Lone packets (each spin runs out its whole window) that use up one period's waste budget. */
const SPARSE_BUDGET = Math.ceil((AUTO_WASTE_SHARE * AUTO_PERIOD_MS) / AUTO_WINDOW_MS);

/** An 'auto' BusyPoll on a clock the test moves. */
function autoOnClock(): { busy: BusyPoll; clock: { t: number } } {
  const clock = { t: 1000 };
  return { busy: new BusyPoll('auto', () => clock.t), clock };
}

/** One packet followed by silence: the spin runs out its window with nothing. */
async function lonePacket(busy: BusyPoll, clock: { t: number }): Promise<void> {
  busy.touch();
  await turns();
  clock.t += AUTO_WINDOW_MS;
  await turns();
}

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
    expect(() => new BusyPoll(ms)).toThrow(/busy-poll window must be 'auto' or from 0 to 10 ms/);
  });

  it("'auto': sparse packets waste at most the period's share, then the loop sleeps until the next period", async () => {
    const { busy, clock } = autoOnClock();
    for (let i = 0; i < SPARSE_BUDGET; i++) await lonePacket(busy, clock);
    expect(busy.stats.idleSpins).toBe(SPARSE_BUDGET);
    expect(busy.stats.capped).toBe(1);
    // Over budget: a packet no longer starts a spin.
    const spun = busy.turns;
    busy.touch();
    await turns();
    expect(busy.turns).toBe(spun);
    expect(busy.stats.idleSpins).toBe(SPARSE_BUDGET);
    // The next period starts with a fresh budget.
    clock.t += AUTO_PERIOD_MS;
    await lonePacket(busy, clock);
    expect(busy.turns).toBeGreaterThan(spun);
    expect(busy.stats.idleSpins).toBe(SPARSE_BUDGET + 1);
  });

  it("'auto': spinning that ends with a packet buys room for the odd longer gap", async () => {
    const { busy, clock } = autoOnClock();
    // Dense traffic: 400 packets 100 µs apart, every gap spun through (40 ms of useful spinning).
    busy.touch();
    for (let i = 0; i < 400; i++) {
      await turns(1);
      clock.t += 0.1;
      busy.touch();
    }
    expect(busy.stats.idleSpins).toBe(0);
    // Twice the sparse budget of lone packets: still spinning, thanks to the useful spinning.
    for (let i = 0; i < 2 * SPARSE_BUDGET; i++) await lonePacket(busy, clock);
    expect(busy.stats.idleSpins).toBe(2 * SPARSE_BUDGET);
    expect(busy.stats.capped).toBe(0);
  });

  it("'auto' leaves an idle loop alone and ends a spin one window after the last packet", async () => {
    const { busy, clock } = autoOnClock();
    await turns();
    expect(busy.turns).toBe(0);
    busy.touch();
    await turns();
    expect(busy.turns).toBeGreaterThan(0);
    clock.t += AUTO_WINDOW_MS / 2;
    busy.touch(); // extends the window
    clock.t += AUTO_WINDOW_MS * 0.75;
    await turns();
    expect(busy.stats.idleSpins).toBe(0);
    clock.t += AUTO_WINDOW_MS;
    await turns();
    expect(busy.stats.idleSpins).toBe(1);
    const spun = busy.turns;
    await turns();
    expect(busy.turns).toBe(spun);
  });

  it("a runtime spins after a packet comes in and after one goes out; 'auto' by default", async () => {
    const [a, b] = memoryPair();
    const client = new StackRuntime(a, { random: seededRandom(1), busyPoll: 0 });
    const server = new StackRuntime(b, { random: seededRandom(2), busyPoll: 3 });
    const byDefault = new StackRuntime(memoryPair()[0], { random: seededRandom(3) });
    expect([byDefault.busy.windowMs, byDefault.busy.wasteBudgetMs]).toEqual([
      AUTO_WINDOW_MS,
      AUTO_WASTE_SHARE * AUTO_PERIOD_MS,
    ]);
    server.onTcpRequest((req) => req.accept());
    client.start();
    server.start();
    try {
      expect(server.busy.turns).toBe(0);
      client.connect({ address: '198.18.0.1', port: 40000 }, { address: '198.18.5.9', port: 80 });
      await sleep(10);
      // The SYN came in and the SYN-ACK went out: the server spun; the client (off) did not.
      expect(server.busy.turns).toBeGreaterThan(0);
      expect(client.busy.turns).toBe(0);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
