import { describe, expect, it } from 'vitest';
import {
  CUBIC_ALPHA,
  CUBIC_BETA,
  CUBIC_C,
  Cubic,
  type CubicOptions,
  createCongestionControl,
  cubicK,
  HyStartPlusPlus,
  wCubic,
} from '../../../src/stack/tcp/congestion/index.js';

const MSS = 1460;

/**
 * A cwnd-limited ACK clock for `seconds`: each RTT acknowledges the window at its start in
 * single-segment ACKs spread over the RTT, each seeing a full cwnd in flight. Calls `probe` at the
 * end of every RTT. Returns the end time.
 */
function run(cc: Cubic, from: number, seconds: number, rttMs: number, probe?: (now: number) => void): number {
  let now = from;
  const end = from + seconds * 1000;
  while (now < end) {
    const n = Math.max(1, Math.floor(cc.cwnd / MSS));
    for (let i = 1; i <= n; i++) cc.onAck(MSS, now + (rttMs * i) / n, rttMs, cc.cwnd);
    now += rttMs;
    probe?.(now);
  }
  return now;
}

/** A CUBIC grown to exactly `segments` by single-segment ACKs (HyStart++ off), with its min RTT known. */
function cubicAt(segments: number, rttMs: number, options: Partial<CubicOptions> = {}): Cubic {
  const cc = new Cubic(MSS, 0, { hystart: false, ...options });
  for (let i = 0; cc.cwnd < segments * MSS; i++) cc.onAck(MSS, i / 1000, rttMs, cc.cwnd);
  expect(cc.cwnd).toBe(segments * MSS);
  return cc;
}

/** cwnd in segments. */
const seg = (cc: Cubic) => cc.cwnd / MSS;

describe('CUBIC constants and equations (RFC 9438 §4.1-§4.3)', () => {
  it('uses C = 0.4, beta = 0.7 and alpha = 3(1 - beta)/(1 + beta)', () => {
    expect(CUBIC_C).toBe(0.4);
    expect(CUBIC_BETA).toBe(0.7);
    expect(CUBIC_ALPHA).toBeCloseTo(0.9 / 1.7, 12);
  });

  it('computes K = cbrt((W_max - cwnd_epoch) / C) (§4.2 Figure 2)', () => {
    // W_max 100 reduced by beta: K = cbrt(30 / 0.4) = cbrt(75).
    expect(cubicK(100, 70)).toBeCloseTo(4.2172, 4);
    // RFC 8312's K = cbrt(W_max * (1 - beta) / C) is the same curve after a loss.
    expect(cubicK(1000, 700)).toBeCloseTo(Math.cbrt(750), 12);
    expect(cubicK(1000, 700)).toBeCloseTo(9.0856, 4);
    expect(cubicK(10, 10)).toBe(0);
  });

  it('has W_cubic(0) = cwnd_epoch and W_cubic(K) = W_max (§4.2 Figure 1)', () => {
    const k = cubicK(100, 70);
    expect(wCubic(0, k, 100)).toBeCloseTo(70, 9);
    expect(wCubic(k, k, 100)).toBe(100);
    expect(wCubic(k + 1, k, 100)).toBeCloseTo(100.4, 9);
    expect(wCubic(k - 1, k, 100)).toBeCloseTo(99.6, 9);
  });
});

describe('CUBIC window growth', () => {
  it('returns to W_max around t = K, then grows convexly (§4.4, §4.5)', () => {
    // RTT 200 ms keeps W_est (alpha segments per RTT) below the curve for the whole run.
    const cc = cubicAt(100, 200);
    cc.onCongestionEvent(0, 100 * MSS);
    expect(cc.wMax).toBe(100);
    expect(seg(cc)).toBe(70);
    cc.onRecoveryEnd(0);
    const k = cubicK(100, 70);
    const samples: Array<{ t: number; w: number }> = [];
    run(cc, 0, 10, 200, (now) => samples.push({ t: now / 1000, w: cc.cwnd / MSS }));
    expect(cc.wEst).toBeLessThan(100);
    expect(cc.k).toBeCloseTo(k, 9);
    const at = (t: number) => samples.find((s) => s.t >= t)!.w;
    // Concave: fast at first, flattening toward the plateau.
    expect(at(1) - at(0.1)).toBeGreaterThan(at(k) - at(k - 0.9));
    expect(at(k)).toBeGreaterThan(97);
    expect(at(k)).toBeLessThan(103);
    // Convex: the growth per second increases after K.
    const g1 = at(k + 2) - at(k + 1);
    const g2 = at(k + 3) - at(k + 2);
    const g3 = at(k + 4) - at(k + 3);
    expect(g2).toBeGreaterThan(g1);
    expect(g3).toBeGreaterThan(g2);
    // And follows the curve (one RTT ahead) within a few segments.
    for (const t of [2, 4, 6]) expect(Math.abs(at(t) - wCubic(t, k, 100))).toBeLessThan(4);
  });

  it('is Reno-friendly at small RTT: W_est dominates and grows alpha per RTT (§4.3)', () => {
    const cc = cubicAt(20, 1);
    cc.onCongestionEvent(0, 20 * MSS);
    cc.onRecoveryEnd(0);
    expect(seg(cc)).toBe(14);
    let rounds = 0;
    run(cc, 0, 0.008, 1, () => rounds++);
    // 8 RTTs of 1 ms: W_cubic barely moved, W_est gained ~8 * alpha segments.
    expect(rounds).toBe(8);
    expect(cc.wEst).toBeGreaterThan(14 + 8 * CUBIC_ALPHA - 0.5);
    expect(cc.wEst).toBeLessThan(14 + 8 * CUBIC_ALPHA + 0.5);
    expect(wCubic(0.008, cc.k, 20)).toBeLessThan(14.1);
    expect(cc.cwnd / MSS).toBeCloseTo(cc.wEst, 2);
  });

  it('switches alpha to 1 once W_est reaches cwnd_prior (§4.3)', () => {
    const cc = cubicAt(20, 1);
    cc.onCongestionEvent(0, 20 * MSS);
    cc.onRecoveryEnd(0);
    let now = run(cc, 0, 0.02, 1);
    expect(cc.wEst).toBeGreaterThanOrEqual(cc.cwndPrior);
    const before = seg(cc);
    now = run(cc, now, 0.005, 1);
    expect(seg(cc) - before).toBeGreaterThan(4.5);
    expect(seg(cc) - before).toBeLessThan(5.5);
  });

  it('bounds the target to 1.5 cwnd per RTT (§4.2)', () => {
    // A long app-limited-free run far above W_max: the convex curve would explode.
    const cc = cubicAt(10, 1000);
    cc.onCongestionEvent(0, 10 * MSS);
    cc.onRecoveryEnd(0);
    let prev = seg(cc);
    run(cc, 0, 20, 1000, () => {
      expect(seg(cc)).toBeLessThanOrEqual(prev * 1.5 + 1e-9);
      prev = seg(cc);
    });
  });

  it('does not count application-limited time in t (§5.8)', () => {
    const a = cubicAt(100, 50);
    const b = cubicAt(100, 50);
    for (const cc of [a, b]) {
      cc.onCongestionEvent(0, 100 * MSS);
      cc.onRecoveryEnd(0);
    }
    const ta = run(a, 0, 2, 50);
    let tb = run(b, 0, 2, 50);
    const w = b.cwnd;
    // Three seconds of ACKs with little in flight: no growth, and the curve stands still.
    for (let i = 0; i < 60; i++) {
      tb += 50;
      b.onAck(MSS, tb, 50, 2 * MSS);
    }
    expect(b.cwnd).toBe(w);
    run(a, ta, 2, 50);
    run(b, tb, 2, 50);
    expect(Math.abs(b.cwnd - a.cwnd) / MSS).toBeLessThan(1);
  });
});

describe('CUBIC decrease, fast convergence, timeout and undo', () => {
  it('saves cwnd_prior and cuts ssthresh and cwnd to 0.7 of FlightSize (§4.6)', () => {
    const cc = cubicAt(80, 10);
    cc.onCongestionEvent(0, 60 * MSS);
    expect(cc.cwndPrior).toBe(80);
    expect(cc.ssthresh).toBe(Math.floor(0.7 * 60 * MSS));
    expect(cc.cwnd).toBe(cc.ssthresh);
  });

  it('lowers W_max with fast convergence when a loss comes below the last W_max (§4.7)', () => {
    const cc = cubicAt(100, 10);
    cc.onCongestionEvent(0, 100 * MSS);
    expect(cc.wMax).toBe(100);
    cc.onRecoveryEnd(10);
    cc.onCongestionEvent(20, 70 * MSS);
    expect(cc.wMax).toBeCloseTo((70 * (1 + CUBIC_BETA)) / 2, 9);
    const off = cubicAt(100, 10, { fastConvergence: false });
    off.onCongestionEvent(0, 100 * MSS);
    off.onRecoveryEnd(10);
    off.onCongestionEvent(20, 70 * MSS);
    expect(off.wMax).toBe(70);
  });

  it('takes W_max = cwnd when the loss comes above the last W_max', () => {
    const cc = cubicAt(40, 10);
    cc.onCongestionEvent(0, 40 * MSS);
    cc.onRecoveryEnd(0);
    run(cc, 0, 8, 100);
    const w = seg(cc);
    expect(w).toBeGreaterThan(40);
    cc.onCongestionEvent(9000, cc.cwnd);
    expect(cc.wMax).toBeCloseTo(w, 2);
  });

  it('restarts with K = 0 and W_max = cwnd_epoch after a timeout (§4.8)', () => {
    const cc = cubicAt(64, 10);
    cc.onRetransmitTimeout(0, 64 * MSS);
    expect(cc.cwnd).toBe(MSS);
    expect(cc.ssthresh).toBe(65_408); // 0.7 * 64 * 1460
    expect(cc.wMax).toBeUndefined();
    let now = 0;
    while (cc.cwnd < cc.ssthresh) now = run(cc, now, 0.01, 10);
    // The round that reached ssthresh began the epoch at cwnd_epoch = ssthresh.
    expect(cc.k).toBe(0);
    expect(cc.wMax).toBeCloseTo(0.7 * 64, 9);
    expect(cc.wEst).toBeGreaterThanOrEqual(0.7 * 64);
  });

  it('restores cwnd, ssthresh, W_max, K and the epoch on undo (§4.9)', () => {
    const cc = cubicAt(100, 100);
    cc.onCongestionEvent(0, 100 * MSS);
    cc.onRecoveryEnd(0);
    let now = run(cc, 0, 2, 100);
    const saved = { cwnd: cc.cwnd, ssthresh: cc.ssthresh, wMax: cc.wMax, k: cc.k, wEst: cc.wEst };
    cc.onCongestionEvent(now, cc.cwnd);
    expect(cc.cwnd).toBeLessThan(saved.cwnd);
    cc.undo();
    expect({ cwnd: cc.cwnd, ssthresh: cc.ssthresh, wMax: cc.wMax, k: cc.k, wEst: cc.wEst }).toEqual(saved);
    // The epoch continues where it was: growth resumes along the same curve.
    now = run(cc, now, 0.5, 100);
    expect(cc.k).toBe(saved.k);
    expect(cc.cwnd).toBeGreaterThan(saved.cwnd);
  });

  it('keeps the current values when cwnd is already above the saved one (§4.9)', () => {
    const cc = cubicAt(30, 10);
    cc.onCongestionEvent(0, 30 * MSS);
    cc.onRecoveryEnd(0);
    run(cc, 0, 20, 100);
    const cwnd = cc.cwnd;
    expect(cwnd).toBeGreaterThan(30 * MSS);
    cc.undo();
    expect(cc.cwnd).toBe(cwnd);
  });
});

/**
 * Slow start with HyStart++: one RTT per entry of `rtts`, every ACK carrying that RTT as its
 * sample (timestamps). Returns the window (segments) and HyStart++ phase after each round.
 */
function slowStart(cc: Cubic, rtts: number[], sample = true): Array<{ w: number; phase: string }> {
  const out: Array<{ w: number; phase: string }> = [];
  let now = 0;
  for (const rtt of rtts) {
    const n = Math.floor(cc.cwnd / MSS);
    for (let i = 1; i <= n; i++) cc.onAck(MSS, now + (rtt * i) / n, sample ? rtt : undefined, cc.cwnd);
    now += rtt;
    out.push({ w: seg(cc), phase: cc.hystartPhase ?? 'off' });
  }
  return out;
}

describe('HyStart++ (RFC 9406) in CUBIC', () => {
  it('keeps doubling while the RTT is steady', () => {
    const cc = new Cubic(MSS, 0);
    const rounds = slowStart(cc, [20, 20, 20, 20, 20, 20]);
    expect(rounds.map((r) => r.w)).toEqual([20, 40, 80, 160, 320, 640]);
    expect(rounds.every((r) => r.phase === 'slow-start')).toBe(true);
  });

  it('enters CSS on an RTT rise of max(4 ms, lastRoundMinRTT/8), grows 1/4 as fast, then leaves slow start', () => {
    const cc = new Cubic(MSS, 0);
    const rounds = slowStart(cc, [20, 20, 20, 30, 30, 30, 30, 30, 30]);
    expect(rounds[2]).toEqual({ w: 80, phase: 'slow-start' });
    // Round 4: the 8th sample of 30 ms triggers CSS; its first 7 ACKs still doubled.
    expect(rounds[3]!.phase).toBe('css');
    const afterEntry = rounds[3]!.w;
    expect(afterEntry).toBeCloseTo(80 + 7 + (80 - 7) / 4, 9);
    // A CSS round grows by a quarter of the window.
    expect(rounds[4]!.w).toBeCloseTo(afterEntry * 1.25, 0);
    // Five CSS rounds later slow start is over: ssthresh = cwnd.
    // The first ACK of the sixth round after entry ends slow start with ssthresh = cwnd.
    const done = rounds.findIndex((r) => r.phase === 'done');
    expect(done).toBe(8);
    expect(rounds.slice(3, 8).every((r) => r.phase === 'css')).toBe(true);
    const exitWindow = rounds[7]!.w * MSS;
    expect(Math.abs(cc.ssthresh - exitWindow)).toBeLessThan(1);
    expect(Math.abs(cc.cwndPrior * MSS - exitWindow)).toBeLessThan(1);
    // The rest of that round was congestion avoidance: K = 0, W_max = cwnd_epoch (RFC 9438 §4.10).
    expect(cc.k).toBe(0);
    expect(Math.abs(cc.wMax! * MSS - exitWindow)).toBeLessThan(1);
    expect(cc.cwnd).toBeGreaterThan(cc.ssthresh);
  });

  it('ignores jitter below the 4 ms floor', () => {
    const cc = new Cubic(MSS, 0);
    const rounds = slowStart(cc, [20, 23.9, 20, 23.9, 23.9]);
    expect(rounds.every((r) => r.phase === 'slow-start')).toBe(true);
  });

  it('caps the threshold at 16 ms on long paths', () => {
    const below = slowStart(new Cubic(MSS, 0), [200, 200, 215.9]);
    expect(below[2]!.phase).toBe('slow-start');
    const at = slowStart(new Cubic(MSS, 0), [200, 200, 216]);
    expect(at[2]!.phase).toBe('css');
  });

  it('scales the threshold as lastRoundMinRTT / 8 in between', () => {
    expect(slowStart(new Cubic(MSS, 0), [80, 80, 89.9])[2]!.phase).toBe('slow-start');
    expect(slowStart(new Cubic(MSS, 0), [80, 80, 90])[2]!.phase).toBe('css');
  });

  it('resumes slow start when the RTT falls back below the CSS baseline', () => {
    const cc = new Cubic(MSS, 0);
    const rounds = slowStart(cc, [20, 20, 30, 30, 19, 19]);
    expect(rounds[2]!.phase).toBe('css');
    expect(rounds[3]!.phase).toBe('css');
    expect(rounds[4]!.phase).toBe('slow-start');
    // Back to slow start: one segment per ACK.
    expect(rounds[5]!.w - rounds[4]!.w).toBeCloseTo(Math.floor(rounds[4]!.w), 9);
  });

  it('never triggers without 8 RTT samples per round', () => {
    const cc = new Cubic(MSS, 0);
    const rounds = slowStart(cc, [20, 20, 60, 60, 60], false);
    expect(rounds.every((r) => r.phase === 'slow-start')).toBe(true);
    expect(rounds[4]!.w).toBe(320);
  });

  it('is for the initial slow start only: loss or a timeout turns it off', () => {
    const cc = new Cubic(MSS, 0);
    slowStart(cc, [20, 20]);
    cc.onCongestionEvent(100, cc.cwnd);
    expect(cc.hystartPhase).toBe('done');
    const rto = new Cubic(MSS, 0);
    rto.onRetransmitTimeout(0, 10 * MSS);
    expect(rto.hystartPhase).toBe('done');
    // Plain slow start after the timeout, whatever the delay does.
    const rounds = slowStart(rto, [20, 20, 60]);
    expect(rounds.map((r) => r.w).slice(0, 2)).toEqual([2, 4]);
    expect(rounds[2]!.w).toBeGreaterThanOrEqual(7); // ssthresh 0.7 * 10 segments, then CA
    expect(rounds[2]!.w).toBeLessThan(7.5);
  });

  it('forgets its rounds after an idle restart', () => {
    const cc = new Cubic(MSS, 0);
    slowStart(cc, [20, 20]);
    cc.onIdleRestart(60_000);
    expect(cc.cwnd).toBe(10 * MSS);
    // The first round after idling has no "last round": a higher RTT now is no signal.
    const rounds = slowStart(cc, [40, 40]);
    expect(rounds.map((r) => r.phase)).toEqual(['slow-start', 'slow-start']);
  });

  it('can be switched off', () => {
    const cc = new Cubic(MSS, 0, { hystart: false });
    expect(cc.hystartPhase).toBeUndefined();
    const rounds = slowStart(cc, [20, 20, 60, 60]);
    expect(rounds.map((r) => r.w)).toEqual([20, 40, 80, 160]);
  });

  it('measures rounds in acknowledged bytes: a round ends once its flight is acknowledged', () => {
    const hs = new HyStartPlusPlus();
    // Round 1 starts with 10 segments left in flight after the first ACK.
    expect(hs.onAck(MSS, 20, 10 * MSS)).toBe('slow-start');
    for (let i = 0; i < 10; i++) hs.onAck(MSS, 20, 10 * MSS);
    // Round 2 (started by the ACK past 11 segments): 8 samples at +5 ms.
    for (let i = 0; i < 7; i++) expect(hs.onAck(MSS, 25, 20 * MSS)).toBe('slow-start');
    expect(hs.onAck(MSS, 25, 20 * MSS)).toBe('css');
  });
});

describe('CUBIC regression: ssthresh after an MSS change', () => {
  it('keeps ssthresh at least 2 SMSS when HyStart++ ends slow start after the MSS grew', () => {
    const cc = createCongestionControl('cubic', 1460, 0);
    cc.onRetransmitTimeout(Number.NaN, Number.NaN);
    cc.undo?.();
    cc.setMss(7301);
    cc.onAck(1, Number.NaN, undefined, Number.NaN);
    expect(cc.ssthresh === Number.POSITIVE_INFINITY || cc.ssthresh >= 2 * 7301).toBe(true);
  });
});
