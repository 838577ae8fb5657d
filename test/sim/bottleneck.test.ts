/**
 * The seeded simulated link with a bottleneck: 1.25 MB/s (10 Mbit/s) each way behind a drop-tail
 * queue of 24 KB, under the bandwidth-delay product of its 20 ms round trip. Only congestion
 * control keeps the queue from overflowing: 100 MiB each way at once, byte-exact, FIN both ways,
 * and the throughput must stay near the bottleneck rate (CC converges instead of collapsing).
 */

import { describe, expect, it } from 'vitest';
import type { TcpConfig } from '../../src/stack/options.js';
import { expectReproducible, runAndCheck } from './expect.js';
import type { LinkImpairment } from './link.js';

const MIB = 1024 * 1024;
const RATE_BYTES_PER_MS = 1250;
const BOTTLENECK: LinkImpairment = { delayMs: 10, bytesPerMs: RATE_BYTES_PER_MS, queueBytes: 24_000 };

function options(cc: TcpConfig['congestionControl']) {
  return [{ tcp: { congestionControl: cc } }, { tcp: { congestionControl: cc } }] as [
    { tcp: Partial<TcpConfig> },
    { tcp: Partial<TcpConfig> },
  ];
}

describe('simulated link: bottleneck with a small queue', () => {
  for (const cc of ['cubic', 'newreno'] as const) {
    it(`moves 100 MiB each way at once with ${cc}, near the bottleneck rate`, () => {
      const r = runAndCheck(`bottleneck ${cc}`, {
        seed: 11,
        bytes: 100 * MIB,
        impair: [BOTTLENECK, BOTTLENECK],
        options: options(cc),
        maxMs: 3_600_000,
      });
      // The queue overflowed (CC was exercised) ...
      expect(r.link.queueDrops[0] + r.link.queueDrops[1]).toBeGreaterThan(0);
      for (let i = 0; i < 2; i++) {
        // ... yet each direction kept most of the rate: headers, the reverse flow's ACKs and the
        // sawtooth take the rest. A collapse (timeouts, window stuck small) falls far below.
        expect(r.directions[i]!.mbPerSec).toBeGreaterThan((0.7 * RATE_BYTES_PER_MS) / 1000);
        const s = r.stats[i]!;
        expect(s.tcpTimeouts).toBeLessThan(s.tcpFastRetransmits);
      }
    }, 240_000);
  }

  it('gives the same virtual times and counters from the same seed', () => {
    expectReproducible('bottleneck 8 MiB', {
      seed: 12,
      bytes: 8 * MIB,
      impair: [BOTTLENECK, BOTTLENECK],
      options: options('newreno'),
      maxMs: 3_600_000,
    });
  }, 60_000);
});
