/**
 * Assertions shared by the simulated-link scenarios: byte-exact both ways, FIN both ways and a
 * clean CLOSED on both sides, no IP fragmentation, and the same seed giving the same run.
 */

import { expect } from 'vitest';
import { describeTransfer, runTransfer, type TransferOptions, type TransferResult } from './traffic.js';

/** Every byte arrived intact both ways, both sides read the peer's FIN and closed without error. */
export function expectDelivered(r: TransferResult, o: TransferOptions): void {
  const [up, down] = r.directions;
  expect(up.bytes).toBe(o.bytes);
  expect(down.bytes).toBe(o.bytesBack ?? o.bytes);
  expect(up.intact).toBe(true);
  expect(down.intact).toBe(true);
  expect(r.closedCleanly).toBe(true);
  for (const s of r.stats) {
    // Segments fit the MTU even with SACK blocks (RFC 9293 §3.7.1).
    expect(s.datagramsFragmented).toBe(0);
    expect(s.tcpOpen).toBe(0);
  }
}

/** What must be identical between two runs from the same seed. */
export function fingerprint(r: TransferResult): Record<string, unknown> {
  const [c, s] = r.stats;
  return {
    finishMs: r.finishMs,
    readDoneMs: r.directions.map((d) => d.ms),
    steps: r.steps,
    retransmits: [c.tcpRetransmits, s.tcpRetransmits],
    fastRetransmits: [c.tcpFastRetransmits, s.tcpFastRetransmits],
    timeouts: [c.tcpTimeouts, s.tcpTimeouts],
    segmentsSent: [c.tcpSegmentsSent, s.tcpSegmentsSent],
    link: r.link,
  };
}

/** Runs `o` twice: both runs deliver everything, and their virtual times and counters match. */
export function expectReproducible(name: string, o: TransferOptions): void {
  const a = runTransfer(o);
  const b = runTransfer(o);
  console.log(describeTransfer(`${name} (run 1 of 2)`, a));
  expectDelivered(a, o);
  expectDelivered(b, o);
  expect(fingerprint(b)).toEqual(fingerprint(a));
}

/** Runs `o` once, logs the figures, and checks delivery; returns the result for more checks. */
export function runAndCheck(name: string, o: TransferOptions): TransferResult {
  const r = runTransfer(o);
  console.log(describeTransfer(name, r));
  expectDelivered(r, o);
  return r;
}
