/**
 * The seeded simulated link without impairments: 100 MiB each way at once over one connection,
 * byte-exact, FIN both ways, and not a single retransmission.
 */

import { describe, expect, it } from 'vitest';
import { expectReproducible, runAndCheck } from './expect.js';
import type { LinkImpairment } from './link.js';

const MIB = 1024 * 1024;
/** 10 ms round trip, no rate limit, nothing lost. */
const CLEAN: LinkImpairment = { delayMs: 5 };

describe('simulated link: clean', () => {
  it('moves 100 MiB each way at once (CUBIC client, NewReno server) without a retransmission', () => {
    const r = runAndCheck('clean', {
      seed: 1,
      bytes: 100 * MIB,
      impair: [CLEAN, CLEAN],
      options: [{ tcp: { congestionControl: 'cubic' } }, { tcp: { congestionControl: 'newreno' } }],
      maxMs: 600_000,
    });
    for (const s of r.stats) {
      expect(s.tcpRetransmits).toBe(0);
      expect(s.tcpTimeouts).toBe(0);
      expect(s.totalDrops()).toBe(0);
    }
  }, 180_000);

  it('gives the same virtual times and counters from the same seed', () => {
    expectReproducible('clean 8 MiB', { seed: 2, bytes: 8 * MIB, impair: [CLEAN, CLEAN], maxMs: 600_000 });
  }, 60_000);
});
