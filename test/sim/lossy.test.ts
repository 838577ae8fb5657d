/**
 * The seeded simulated link with 2% loss, 1% duplication, 25% of packets held back by 10 ms
 * (reordering), and a 10 ms delay each way: 100 MiB each way at once, byte-exact, FIN both ways,
 * with CUBIC and with NewReno.
 */

import { describe, expect, it } from 'vitest';
import type { TcpConfig } from '../../src/stack/options.js';
import { expectReproducible, runAndCheck } from './expect.js';
import type { LinkImpairment } from './link.js';

const MIB = 1024 * 1024;
const LOSSY: LinkImpairment = { delayMs: 10, loss: 0.02, duplicate: 0.01, reorder: 0.25, reorderMs: 10 };

function options(cc: TcpConfig['congestionControl']) {
  return [{ tcp: { congestionControl: cc } }, { tcp: { congestionControl: cc } }] as [
    { tcp: Partial<TcpConfig> },
    { tcp: Partial<TcpConfig> },
  ];
}

describe('simulated link: loss, duplication, reordering', () => {
  for (const cc of ['cubic', 'newreno'] as const) {
    it(`moves 100 MiB each way at once with ${cc}, byte-exact`, () => {
      const r = runAndCheck(`lossy ${cc}`, {
        seed: 7,
        bytes: 100 * MIB,
        impair: [LOSSY, LOSSY],
        options: options(cc),
        maxMs: 7_200_000,
      });
      for (let i = 0; i < 2; i++) {
        // Losses were repaired mostly by fast retransmit, not by timeouts.
        const s = r.stats[i]!;
        expect(s.tcpFastRetransmits).toBeGreaterThan(0);
        expect(s.tcpTimeouts).toBeLessThan(s.tcpFastRetransmits);
      }
    }, 240_000);
  }

  it('moves 8 MiB each way over IPv6 (fd00::/8), byte-exact', () => {
    runAndCheck('lossy IPv6 8 MiB', {
      seed: 9,
      bytes: 8 * MIB,
      impair: [LOSSY, LOSSY],
      options: options('cubic'),
      maxMs: 3_600_000,
      ipv6: true,
    });
  }, 60_000);

  it('moves 16 MiB one way to a server that half-closed at once, and back', () => {
    // The server sends nothing and its FIN first: the client keeps sending in CLOSE-WAIT.
    runAndCheck('lossy one way 16 MiB', {
      seed: 10,
      bytes: 16 * MIB,
      bytesBack: 0,
      impair: [LOSSY, LOSSY],
      options: options('newreno'),
      maxMs: 3_600_000,
    });
    // The other way round: the client half-closes at once and only reads.
    runAndCheck('lossy other way 16 MiB', {
      seed: 10,
      bytes: 0,
      bytesBack: 16 * MIB,
      impair: [LOSSY, LOSSY],
      options: options('cubic'),
      maxMs: 3_600_000,
    });
  }, 60_000);

  it('gives the same virtual times and counters from the same seed', () => {
    expectReproducible('lossy 8 MiB', {
      seed: 8,
      bytes: 8 * MIB,
      impair: [LOSSY, LOSSY],
      options: options('cubic'),
      maxMs: 3_600_000,
    });
  }, 60_000);
});
