import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CongestionControl,
  type CongestionControlName,
  createCongestionControl,
  initialWindow,
  MAX_WINDOW_BYTES,
} from '../../../src/stack/tcp/congestion/index.js';

const MSS = 1460;
const IW = 10 * MSS;

/**
 * One RTT of a cwnd-limited sender: the window at the start of the round is acknowledged in
 * `ackSize` chunks (the last one may be shorter) spread over the RTT; before each ACK the flight is a full cwnd, because the
 * sender refilled the window after the previous one. Returns the time at the end of the round.
 */
function ackRound(cc: CongestionControl, now: number, rttMs: number, ackSize = MSS): number {
  const window = cc.cwnd;
  const n = Math.ceil(window / ackSize);
  for (let i = 1; i <= n; i++) {
    const bytes = Math.min(ackSize, window - (i - 1) * ackSize);
    cc.onAck(bytes, now + (rttMs * i) / n, rttMs, cc.cwnd);
  }
  return now + rttMs;
}

/** Grows a fresh controller by single-segment ACKs until cwnd is exactly `segments` MSS. */
function grown(name: CongestionControlName, segments: number): CongestionControl {
  const cc = createCongestionControl(name, MSS, 0, { hystart: false });
  for (let i = 0; cc.cwnd < segments * MSS; i++) cc.onAck(MSS, i, 10, cc.cwnd);
  expect(cc.cwnd).toBe(segments * MSS);
  return cc;
}

const ALGORITHMS = [
  { name: 'newreno', beta: 0.5 },
  { name: 'cubic', beta: 0.7 },
] as const;

describe.each(ALGORITHMS)('$name congestion control (compliance)', ({ name, beta }) => {
  it('starts at the RFC 6928 initial window with an infinite ssthresh', () => {
    const cc = createCongestionControl(name, MSS, 0);
    expect(cc.name).toBe(name);
    expect(cc.cwnd).toBe(IW);
    expect(cc.ssthresh).toBe(Number.POSITIVE_INFINITY);
    expect(createCongestionControl(name, 536, 0).cwnd).toBe(5360);
    expect(createCongestionControl(name, 9000, 0).cwnd).toBe(18_000);
  });

  it('doubles the window every RTT in slow start (RFC 5681 §3.1)', () => {
    const cc = createCongestionControl(name, MSS, 0);
    let now = 0;
    const windows = [cc.cwnd];
    for (let round = 0; round < 5; round++) {
      now = ackRound(cc, now, 50);
      windows.push(cc.cwnd);
    }
    expect(windows).toEqual([10, 20, 40, 80, 160, 320].map((s) => s * MSS));
  });

  it('still doubles per RTT with delayed ACKs thanks to byte counting (RFC 3465 L = 2)', () => {
    const cc = createCongestionControl(name, MSS, 0);
    let now = 0;
    for (let round = 0; round < 3; round++) now = ackRound(cc, now, 50, 2 * MSS);
    expect(cc.cwnd).toBe(80 * MSS);
  });

  it('limits one ACK to 2 SMSS of slow-start growth (RFC 3465 §2.2)', () => {
    const cc = createCongestionControl(name, MSS, 0);
    cc.onAck(8 * MSS, 10, 10, cc.cwnd);
    expect(cc.cwnd).toBe(IW + 2 * MSS);
  });

  it(`sets ssthresh to ${beta} of FlightSize on a congestion event, and cwnd to it (RFC 6675 model)`, () => {
    const cc = grown(name, 100);
    cc.onCongestionEvent(1000, 100 * MSS);
    expect(cc.ssthresh).toBe(Math.floor(beta * 100 * MSS));
    expect(cc.cwnd).toBe(cc.ssthresh);
    cc.onRecoveryEnd(1100);
    expect(cc.cwnd).toBe(Math.floor(beta * 100 * MSS));
  });

  it('never sets ssthresh below 2 SMSS (RFC 5681 eq. 4, RFC 9438 §4.6)', () => {
    const cc = createCongestionControl(name, MSS, 0);
    cc.onCongestionEvent(0, 100);
    expect(cc.ssthresh).toBe(2 * MSS);
    expect(cc.cwnd).toBe(2 * MSS);
  });

  it('grows slowly in congestion avoidance: at least 1/2 and at most 3/2 SMSS per RTT here', () => {
    const cc = grown(name, 40);
    cc.onCongestionEvent(0, 40 * MSS);
    cc.onRecoveryEnd(10);
    let now = 10;
    for (let round = 0; round < 10; round++) {
      const before = cc.cwnd;
      now = ackRound(cc, now, 20);
      const growth = (cc.cwnd - before) / MSS;
      expect(growth).toBeGreaterThanOrEqual(0.5);
      expect(growth).toBeLessThanOrEqual(1.5);
    }
  });

  it(`collapses cwnd to 1 SMSS on a timeout and sets ssthresh to ${beta} of FlightSize (RFC 5681 §3.1)`, () => {
    const cc = grown(name, 60);
    cc.onRetransmitTimeout(1000, 60 * MSS);
    expect(cc.cwnd).toBe(MSS);
    expect(cc.ssthresh).toBe(Math.floor(beta * 60 * MSS));
  });

  it('keeps ssthresh on a repeated timeout of the same data (RFC 5681 §3.1, note to eq. 4)', () => {
    const cc = grown(name, 60);
    cc.onRetransmitTimeout(1000, 60 * MSS);
    const ssthresh = cc.ssthresh;
    cc.onRetransmitTimeout(3000, 60 * MSS);
    cc.onRetransmitTimeout(7000, MSS);
    expect(cc.ssthresh).toBe(ssthresh);
    expect(cc.cwnd).toBe(MSS);
    // New data acknowledged: the next timeout is a new loss.
    cc.onAck(MSS, 7100, 100, MSS);
    cc.onRetransmitTimeout(9000, 10 * MSS);
    expect(cc.ssthresh).toBe(Math.max(Math.floor(beta * 10 * MSS), 2 * MSS));
  });

  it('keeps the recovery ssthresh when a timeout strikes during fast recovery (Linux)', () => {
    const cc = grown(name, 60);
    cc.onCongestionEvent(1000, 60 * MSS);
    const ssthresh = cc.ssthresh;
    cc.onRetransmitTimeout(1500, 40 * MSS);
    expect(cc.ssthresh).toBe(ssthresh);
    expect(cc.cwnd).toBe(MSS);
  });

  it('ignores duplicate-ACK loss signals while recovering from a timeout', () => {
    const cc = grown(name, 60);
    cc.onRetransmitTimeout(1000, 60 * MSS);
    const ssthresh = cc.ssthresh;
    cc.onCongestionEvent(1100, 60 * MSS);
    expect(cc.cwnd).toBe(MSS);
    expect(cc.ssthresh).toBe(ssthresh);
  });

  it('slow-starts back to ssthresh after a timeout, then slows down', () => {
    const cc = grown(name, 64);
    cc.onRetransmitTimeout(1000, 64 * MSS);
    let now = 1000;
    let rounds = 0;
    while (cc.cwnd < cc.ssthresh && rounds < 20) {
      now = ackRound(cc, now, 20);
      rounds++;
    }
    expect(rounds).toBeLessThanOrEqual(Math.ceil(Math.log2((beta * 64) / 1)) + 1);
    const atThreshold = cc.cwnd;
    now = ackRound(cc, now, 20);
    expect(cc.cwnd).toBeLessThan(atThreshold * 1.5);
  });

  it('does not grow when application-limited (FlightSize < cwnd/2)', () => {
    const cc = createCongestionControl(name, MSS, 0);
    for (let i = 0; i < 50; i++) cc.onAck(MSS, i * 10, 10, 4 * MSS);
    expect(cc.cwnd).toBe(IW);
    const ca = grown(name, 40);
    ca.onCongestionEvent(0, 40 * MSS);
    ca.onRecoveryEnd(0);
    const before = ca.cwnd;
    for (let i = 0; i < 500; i++) ca.onAck(MSS, i * 10, 10, 5 * MSS);
    expect(ca.cwnd).toBe(before);
  });

  it('ends recovery when an ACK arrives outside it, then grows from ssthresh', () => {
    const cc = grown(name, 40);
    cc.onCongestionEvent(0, 40 * MSS);
    const ssthresh = cc.ssthresh;
    cc.onAck(MSS, 10, 10, cc.cwnd);
    expect(cc.cwnd).toBeGreaterThanOrEqual(ssthresh);
    expect(cc.cwnd).toBeLessThanOrEqual(ssthresh + MSS);
  });

  it('restarts from min(IW, cwnd) after idling and remembers 3/4 of the window (RFC 5681 §4.1, Linux)', () => {
    const cc = grown(name, 40);
    cc.onCongestionEvent(0, 40 * MSS);
    cc.onRecoveryEnd(0);
    const cwnd = cc.cwnd;
    cc.onIdleRestart(10_000);
    expect(cc.cwnd).toBe(IW);
    expect(cc.ssthresh).toBeGreaterThanOrEqual(Math.floor((cwnd * 3) / 4) - 1);
    const small = createCongestionControl(name, MSS, 0);
    small.onRetransmitTimeout(0, 4 * MSS);
    small.onIdleRestart(5000);
    expect(small.cwnd).toBe(MSS);
  });

  it('takes a new MSS: the initial window before any ACK, the same bytes afterwards', () => {
    const fresh = createCongestionControl(name, 536, 0);
    fresh.setMss(1460);
    expect(fresh.cwnd).toBe(IW);
    const cc = grown(name, 20);
    cc.setMss(1000);
    expect(cc.cwnd).toBe(20 * MSS);
    const tiny = createCongestionControl(name, MSS, 0);
    tiny.onRetransmitTimeout(0, 0);
    tiny.setMss(9000);
    expect(tiny.cwnd).toBe(9000);
    expect(tiny.ssthresh).toBeGreaterThanOrEqual(18_000);
    tiny.setMss(Number.NaN);
    tiny.setMss(0);
    tiny.setMss(-1);
    expect(tiny.cwnd).toBe(9000);
  });

  it('undoes a spurious reduction once', () => {
    const cc = grown(name, 50);
    cc.undo?.();
    expect(cc.cwnd).toBe(50 * MSS);
    cc.onCongestionEvent(0, 50 * MSS);
    cc.undo?.();
    expect(cc.cwnd).toBe(50 * MSS);
    expect(cc.ssthresh).toBe(Number.POSITIVE_INFINITY);
    const rto = grown(name, 50);
    rto.onRetransmitTimeout(0, 50 * MSS);
    rto.onRetransmitTimeout(1000, 50 * MSS);
    rto.undo?.();
    expect(rto.cwnd).toBe(50 * MSS);
    rto.onCongestionEvent(2000, 50 * MSS);
    const reduced = rto.cwnd;
    rto.onRecoveryEnd(2100);
    rto.undo?.();
    rto.undo?.();
    expect(rto.cwnd).toBe(50 * MSS);
    rto.onCongestionEvent(3000, 50 * MSS);
    expect(rto.cwnd).toBe(reduced);
  });

  it('ignores ACKs of nothing and nonsense inputs', () => {
    const cc = createCongestionControl(name, MSS, 0);
    cc.onAck(0, 1, 1, IW);
    cc.onAck(-MSS, 2, 1, IW);
    cc.onAck(Number.NaN, 3, 1, IW);
    expect(cc.cwnd).toBe(IW);
    cc.onAck(MSS, Number.NaN, Number.NaN, Number.NaN);
    cc.onCongestionEvent(Number.NaN, Number.NaN);
    expect(cc.cwnd).toBe(2 * MSS);
    expect(cc.ssthresh).toBe(2 * MSS);
  });

  it('keeps cwnd an integer of at least 1 SMSS, finite, under any event sequence', () => {
    const bytes = fc.oneof(
      fc.integer({ min: 0, max: 300_000 }),
      fc.constantFrom(Number.NaN, -1, Number.POSITIVE_INFINITY, 1e300, 2 ** 40),
    );
    const event = fc.oneof(
      { weight: 8, arbitrary: fc.record({ kind: fc.constant('ack' as const), bytes, flight: bytes }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('loss' as const), flight: bytes }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('end' as const) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('rto' as const), flight: bytes }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('idle' as const) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('undo' as const) }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('mss' as const),
          mss: fc.oneof(fc.integer({ min: 88, max: 9000 }), fc.constantFrom(Number.NaN, 0, -5)),
        }),
      },
    );
    const step = fc.record({
      event,
      dt: fc.oneof(fc.double({ min: 0, max: 5000, noNaN: true }), fc.constant(Number.NaN)),
      rtt: fc.option(fc.oneof(fc.double({ min: 0, max: 2000, noNaN: true }), fc.constant(Number.NaN))),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
        const cc = createCongestionControl(name, MSS, 0);
        let mss = MSS;
        let now = 0;
        for (const { event: e, dt, rtt } of steps) {
          if (!Number.isNaN(dt)) now += dt;
          const at = Number.isNaN(dt) ? Number.NaN : now;
          if (e.kind === 'ack') cc.onAck(e.bytes, at, rtt ?? undefined, e.flight);
          else if (e.kind === 'loss') cc.onCongestionEvent(at, e.flight);
          else if (e.kind === 'end') cc.onRecoveryEnd(at);
          else if (e.kind === 'rto') cc.onRetransmitTimeout(at, e.flight);
          else if (e.kind === 'idle') cc.onIdleRestart(at);
          else if (e.kind === 'undo') cc.undo?.();
          else {
            cc.setMss(e.mss);
            if (e.mss >= 1) mss = e.mss;
          }
          expect(Number.isInteger(cc.cwnd)).toBe(true);
          expect(cc.cwnd).toBeGreaterThanOrEqual(mss);
          expect(cc.cwnd).toBeLessThanOrEqual(MAX_WINDOW_BYTES);
          const s = cc.ssthresh;
          expect(s === Number.POSITIVE_INFINITY || (Number.isInteger(s) && s >= 2 * mss)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic: the same events give the same windows', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 20_000 })), {
          maxLength: 100,
        }),
        (events) => {
          const trace = () => {
            const cc = createCongestionControl(name, MSS, 0);
            const out: number[] = [];
            let now = 0;
            for (const [kind, n] of events) {
              now += n / 100;
              if (kind <= 2) cc.onAck(n, now, n / 500, cc.cwnd);
              else if (kind === 3) cc.onCongestionEvent(now, n * 10);
              else cc.onRecoveryEnd(now);
              out.push(cc.cwnd, cc.ssthresh);
            }
            return out;
          };
          expect(trace()).toEqual(trace());
        },
      ),
    );
  });
});

describe('initialWindow (RFC 6928 §2)', () => {
  it('is min(10*MSS, max(2*MSS, 14600))', () => {
    expect(initialWindow(536)).toBe(5360);
    expect(initialWindow(1460)).toBe(14_600);
    expect(initialWindow(1220)).toBe(12_200);
    expect(initialWindow(8960)).toBe(17_920);
  });
});

describe('NewReno specifics', () => {
  it('grows exactly 1 SMSS per RTT in congestion avoidance, with or without delayed ACKs (RFC 3465 §2.1)', () => {
    for (const ackSize of [MSS, 2 * MSS]) {
      const cc = grown('newreno', 40);
      cc.onCongestionEvent(0, 40 * MSS);
      cc.onRecoveryEnd(0);
      let now = 0;
      for (let round = 0; round < 10; round++) {
        const before = cc.cwnd;
        now = ackRound(cc, now, 20, ackSize);
        expect(cc.cwnd - before).toBe(MSS);
      }
    }
  });

  it('counts sub-MSS ACKs by bytes in congestion avoidance', () => {
    const cc = grown('newreno', 20);
    cc.onCongestionEvent(0, 20 * MSS);
    cc.onRecoveryEnd(0); // cwnd = 10 MSS
    for (let i = 0; i < 10 * 4 - 1; i++) cc.onAck(MSS / 4, i, 1, cc.cwnd);
    expect(cc.cwnd).toBe(10 * MSS);
    cc.onAck(MSS / 4, 100, 1, cc.cwnd);
    expect(cc.cwnd).toBe(11 * MSS);
  });

  it('stops slow start at ssthresh and counts the rest of the ACK toward congestion avoidance', () => {
    const cc = grown('newreno', 30);
    cc.onRetransmitTimeout(0, 30 * MSS); // ssthresh 15 MSS
    cc.onAck(MSS, 1, 1, MSS);
    for (let i = 0; i < 6; i++) cc.onAck(2 * MSS, 2 + i, 1, cc.cwnd);
    expect(cc.cwnd).toBe(14 * MSS);
    cc.onAck(2 * MSS, 10, 1, cc.cwnd);
    expect(cc.cwnd).toBe(15 * MSS);
  });
});
