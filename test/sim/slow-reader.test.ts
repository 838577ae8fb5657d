/**
 * Flow control over the seeded simulated link: readers slower than the link (a paced application
 * reading every 10 ms) close the advertised window, so the sender must stop at the window,
 * probe it when it is zero, and resume on window updates, without losing or duplicating a byte.
 */

import { describe, expect, it } from 'vitest';
import { runAndCheck } from './expect.js';
import type { LinkImpairment } from './link.js';

const MIB = 1024 * 1024;

describe('simulated link: slow readers', () => {
  it('holds each direction to its reader pace over a clean link (window backpressure)', () => {
    const link: LinkImpairment = { delayMs: 10 };
    // The client reads 200 KB/s, the server 100 KB/s; the link could carry far more.
    const r = runAndCheck('slow readers, clean', {
      seed: 21,
      bytes: 4 * MIB,
      impair: [link, link],
      readBytesPerMs: [200, 100],
      maxMs: 600_000,
    });
    // client → server is read at 100 B/ms, server → client at 200 B/ms: the senders keep up.
    expect(r.directions[0].mbPerSec).toBeGreaterThan(0.09);
    expect(r.directions[0].mbPerSec).toBeLessThanOrEqual(0.1 + 1e-9);
    expect(r.directions[1].mbPerSec).toBeGreaterThan(0.18);
    expect(r.directions[1].mbPerSec).toBeLessThanOrEqual(0.2 + 1e-9);
    for (const s of r.stats) expect(s.tcpRetransmits).toBe(0);
  }, 60_000);

  it('delivers every byte to slow readers over a lossy, reordering link', () => {
    const link: LinkImpairment = { delayMs: 10, loss: 0.02, duplicate: 0.01, reorder: 0.25, reorderMs: 10 };
    runAndCheck('slow readers, lossy', {
      seed: 22,
      bytes: 4 * MIB,
      impair: [link, link],
      readBytesPerMs: [50, 100],
      maxMs: 3_600_000,
    });
  }, 60_000);
});
