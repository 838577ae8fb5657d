import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StackOptionError } from '../../../src/stack/options.js';
import { DEFAULT_RTT_OPTIONS, RttEstimator } from '../../../src/stack/tcp/rtt.js';

/** Options with the RFC 6298 §2.4 floor out of the way, so the raw formula shows. */
const RAW = { minRtoMs: 1, maxRtoMs: 1_000_000, clockGranularityMs: 1 };

describe('RttEstimator (RFC 6298)', () => {
  it('starts at the initial RTO with no SRTT (§2.1)', () => {
    const r = new RttEstimator();
    expect(r.srttMs).toBeUndefined();
    expect(r.rttvarMs).toBe(0);
    expect(r.minRttMs).toBe(Number.POSITIVE_INFINITY);
    expect(r.rtoMs).toBe(1000);
    expect(r.backoffs).toBe(0);
    expect(DEFAULT_RTT_OPTIONS).toEqual({
      initialRtoMs: 1000,
      minRtoMs: 200,
      maxRtoMs: 120_000,
      clockGranularityMs: 1,
    });
  });

  it('takes the first sample as SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR) (§2.2)', () => {
    const r = new RttEstimator(RAW);
    r.sample(100);
    expect(r.srttMs).toBe(100);
    expect(r.rttvarMs).toBe(50);
    expect(r.rtoMs).toBe(100 + 4 * 50);
  });

  it('updates RTTVAR with the old SRTT, then SRTT, with alpha 1/8 and beta 1/4 (§2.3)', () => {
    const r = new RttEstimator(RAW);
    r.sample(100);
    r.sample(200);
    // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
    expect(r.rttvarMs).toBe(62.5);
    expect(r.srttMs).toBe(112.5);
    expect(r.rtoMs).toBe(112.5 + 4 * 62.5);
    r.sample(112.5);
    // RTTVAR = 3/4 * 62.5 + 0; SRTT unchanged.
    expect(r.rttvarMs).toBe(46.875);
    expect(r.srttMs).toBe(112.5);
  });

  it('uses the clock granularity when 4*RTTVAR is smaller (§2.2)', () => {
    const r = new RttEstimator({ ...RAW, clockGranularityMs: 10 });
    r.sample(1);
    expect(r.rtoMs).toBe(1 + 10);
    for (let i = 0; i < 200; i++) r.sample(40);
    // RTTVAR has decayed to ~0: RTO = SRTT + G.
    expect(r.srttMs).toBeCloseTo(40, 6);
    expect(r.rtoMs).toBeCloseTo(50, 6);
  });

  it('clamps the RTO to the minimum and the maximum (§2.4, §2.5)', () => {
    const r = new RttEstimator();
    r.sample(0.3); // a loopback RTT
    expect(r.rtoMs).toBe(200);
    const far = new RttEstimator();
    far.sample(100_000); // 100 s + 4 * 50 s
    expect(far.rtoMs).toBe(120_000);
    const tight = new RttEstimator({ minRtoMs: 1000, maxRtoMs: 60_000 });
    tight.sample(10);
    expect(tight.rtoMs).toBe(1000);
  });

  it('doubles the RTO on each backoff up to the maximum (§5.5)', () => {
    const r = new RttEstimator();
    r.sample(500); // RTO = 500 + 4 * 250 = 1500
    expect(r.rtoMs).toBe(1500);
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      r.backoff();
      seen.push(r.rtoMs);
    }
    expect(seen).toEqual([3000, 6000, 12_000, 24_000, 48_000, 96_000, 120_000, 120_000, 120_000, 120_000]);
    expect(r.backoffs).toBe(10);
    for (let i = 0; i < 5000; i++) r.backoff();
    expect(r.rtoMs).toBe(120_000);
  });

  it('backs off the initial RTO before any sample', () => {
    const r = new RttEstimator();
    r.backoff();
    r.backoff();
    expect(r.rtoMs).toBe(4000);
  });

  it('resets the backoff on a new sample and recomputes the RTO from it', () => {
    const r = new RttEstimator();
    r.sample(100); // 300
    r.backoff();
    r.backoff();
    expect(r.rtoMs).toBe(1200);
    r.sample(100);
    expect(r.backoffs).toBe(0);
    // RTTVAR = 3/4 * 50 = 37.5: RTO = 100 + 150.
    expect(r.rtoMs).toBe(250);
  });

  it('goes to 3 s when data starts after a timed-out SYN without a measurement (§5.7)', () => {
    const r = new RttEstimator();
    r.backoff();
    expect(r.rtoMs).toBe(2000);
    r.resetForData();
    expect(r.rtoMs).toBe(3000);
    expect(r.backoffs).toBe(0);
    // With a larger initial RTO that one stands.
    const slow = new RttEstimator({ initialRtoMs: 5000 });
    slow.backoff();
    slow.resetForData();
    expect(slow.rtoMs).toBe(5000);
  });

  it('keeps a measured RTO when data starts (§5.7 applies only without a measurement)', () => {
    const r = new RttEstimator();
    r.sample(20);
    r.resetForData();
    expect(r.rtoMs).toBe(200);
  });

  it('scales alpha and beta by the expected samples per RTT (RFC 7323 Appendix G)', () => {
    const one = new RttEstimator(RAW);
    const many = new RttEstimator(RAW);
    one.sample(100);
    many.sample(100);
    one.sample(200);
    many.sample(200, 4);
    // beta/4 = 1/16, alpha/4 = 1/32.
    expect(many.rttvarMs).toBe((15 / 16) * 50 + (1 / 16) * 100);
    expect(many.srttMs).toBe((31 / 32) * 100 + (1 / 32) * 200);
    // Four scaled samples of one RTT move SRTT about as far as one unscaled sample.
    for (let i = 0; i < 3; i++) many.sample(200, 4);
    expect(Math.abs(many.srttMs! - one.srttMs!)).toBeLessThan(1.5);
    // Nonsense counts fall back to 1.
    const bad = new RttEstimator(RAW);
    bad.sample(100);
    bad.sample(200, Number.NaN);
    expect(bad.srttMs).toBe(112.5);
  });

  it('tracks the lowest sample', () => {
    const r = new RttEstimator();
    for (const s of [50, 20, 80, 30]) r.sample(s);
    expect(r.minRttMs).toBe(20);
  });

  it('ignores non-finite and negative samples', () => {
    const r = new RttEstimator();
    r.sample(Number.NaN);
    r.sample(-5);
    r.sample(Number.POSITIVE_INFINITY);
    expect(r.srttMs).toBeUndefined();
    expect(r.rtoMs).toBe(1000);
    r.sample(0);
    expect(r.srttMs).toBe(0);
    expect(r.minRttMs).toBe(0);
  });

  it('rejects impossible options at construction', () => {
    expect(() => new RttEstimator({ minRtoMs: Number.NaN })).toThrow(StackOptionError);
    expect(() => new RttEstimator({ minRtoMs: 500, maxRtoMs: 100 })).toThrow(StackOptionError);
    expect(() => new RttEstimator({ initialRtoMs: -1 })).toThrow(StackOptionError);
    expect(() => new RttEstimator({ clockGranularityMs: Number.POSITIVE_INFINITY })).toThrow(
      StackOptionError,
    );
  });

  it('keeps the RTO finite and within bounds under any sequence of samples and backoffs', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.double({ min: -10, max: 1e7 }),
            fc.constant(Number.NaN),
            fc.constant('backoff' as const),
            fc.constant('reset' as const),
          ),
          { maxLength: 200 },
        ),
        (steps) => {
          const r = new RttEstimator();
          for (const s of steps) {
            if (s === 'backoff') r.backoff();
            else if (s === 'reset') r.resetForData();
            else r.sample(s, 3);
            expect(r.rtoMs).toBeGreaterThanOrEqual(200);
            expect(r.rtoMs).toBeLessThanOrEqual(120_000);
            expect(Number.isFinite(r.rttvarMs)).toBe(true);
          }
        },
      ),
    );
  });
});
