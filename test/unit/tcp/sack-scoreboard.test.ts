import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StackOptionError } from '../../../src/stack/options.js';
import { DUP_THRESH, SackScoreboard } from '../../../src/stack/tcp/sack-scoreboard.js';
import { seqAdd } from '../../../src/stack/wire/seq.js';

/** SACK blocks as the option parser hands them over. */
function blocks(...pairs: [number, number][]): { count: number; left: Uint32Array; right: Uint32Array } {
  const left = new Uint32Array(4);
  const right = new Uint32Array(4);
  pairs.forEach(([l, r], i) => {
    left[i] = l >>> 0;
    right[i] = r >>> 0;
  });
  return { count: pairs.length, left, right };
}

const MSS = 1000;

// Every trace runs twice: from 0 and across the 2^32 wrap (offset 5000 lands on sequence 0).
describe.each([
  ['from 0', 0],
  ['across 2^32', 2 ** 32 - 5000],
])('SackScoreboard traces (%s): 10 segments of 1000 bytes at 1000..11000', (_name, base) => {
  const at = (x: number) => seqAdd(base, x);
  const una = at(1000);
  const nxt = at(11000);
  const ack = (sb: SackScoreboard, ...pairs: [number, number][]) => {
    const b = blocks(...pairs.map(([l, r]): [number, number] => [at(l), at(r)]));
    return sb.update(una, nxt, b.count, b.left, b.right);
  };

  it('one loss: the third duplicate ACK makes the first segment lost (more than 2 MSS above)', () => {
    const sb = new SackScoreboard();
    expect(ack(sb, [2000, 3000])).toBe(1000);
    expect(sb.isLost(una, MSS)).toBe(false);
    expect(ack(sb, [2000, 4000])).toBe(1000);
    expect(sb.isLost(una, MSS)).toBe(false); // exactly (DupThresh - 1) * SMSS: not more than
    expect(ack(sb, [2000, 5000])).toBe(1000);
    expect(sb.isLost(una, MSS)).toBe(true);
    expect(ack(sb, [2000, 5000])).toBe(0); // nothing new
    expect(sb.sackedBytes).toBe(3000);
    expect(sb.ranges).toBe(1);
    expect(sb.highSacked(una)).toBe(at(5000));
    expect(sb.isSacked(at(1999))).toBe(false);
    expect(sb.isSacked(at(2000))).toBe(true);
    expect(sb.isSacked(at(4999))).toBe(true);
    expect(sb.isSacked(at(5000))).toBe(false);
    expect(sb.isLost(at(2500), MSS)).toBe(false); // SACKed bytes are never lost
  });

  it('SetPipe: lost holes leave the pipe, retransmitted bytes come back', () => {
    const sb = new SackScoreboard();
    ack(sb, [2000, 5000]);
    // Hole [1000,2000) is lost; [5000,11000) is in flight.
    expect(sb.pipe(una, nxt, una, MSS)).toBe(6000);
    expect(sb.pipe(una, nxt, at(2000), MSS)).toBe(7000);
    // Before any loss criterion holds, every un-SACKed byte counts.
    const early = new SackScoreboard();
    ack(early, [2000, 3000]);
    expect(early.pipe(una, nxt, una, MSS)).toBe(9000);
  });

  it('IsLost counts DupThresh discontiguous SACKed ranges above the sequence', () => {
    const sb = new SackScoreboard();
    ack(sb, [2000, 3000], [4000, 5000], [6000, 7000]);
    expect(sb.ranges).toBe(3);
    expect(sb.isLost(una, MSS)).toBe(true); // 3 ranges above
    expect(sb.isLost(at(3000), MSS)).toBe(false); // 2 ranges, 2000 bytes
    expect(sb.isLost(at(5000), MSS)).toBe(false);
    expect(sb.isLost(at(7000), MSS)).toBe(false); // nothing above
    // With small segments the range count decides alone: 3 ranges of 100 bytes.
    const small = new SackScoreboard();
    ack(small, [1100, 1200], [1300, 1400], [1500, 1600]);
    expect(small.isLost(una, MSS)).toBe(true);
    expect(small.isLost(at(1200), MSS)).toBe(false);
    // SetPipe drops only the hole below all three: 10000 - 300 SACKed - 100 lost.
    expect(small.pipe(una, nxt, una, MSS)).toBe(9600);
    expect(DUP_THRESH).toBe(3);
  });

  it('SetPipe with discontiguous losses', () => {
    const sb = new SackScoreboard();
    ack(sb, [2000, 3000], [4000, 5000], [6000, 7000]);
    // [1000,2000) lost; [3000,4000), [5000,6000), [7000,11000) in flight.
    expect(sb.pipe(una, nxt, una, MSS)).toBe(6000);
    expect(sb.pipe(una, nxt, at(2000), MSS)).toBe(7000);
    // A rule 3 retransmission of [3000,4000) counts that hole twice.
    expect(sb.pipe(una, nxt, at(4000), MSS)).toBe(8000);
  });

  it('NextSeg rule 1 comes before new data (rule 2)', () => {
    const sb = new SackScoreboard();
    ack(sb, [2000, 5000]);
    expect(sb.nextSeg(una, nxt, una, MSS, true, true)).toBe('retransmit');
    expect([sb.nextSegRule, sb.nextSegSeq, sb.nextSegLen]).toEqual([1, una, 1000]);
  });

  it('NextSeg rule 2 sends new data once the lost hole was retransmitted', () => {
    const sb = new SackScoreboard();
    ack(sb, [2000, 5000]);
    expect(sb.nextSeg(una, nxt, at(2000), MSS, true, true)).toBe('new');
    expect([sb.nextSegRule, sb.nextSegSeq, sb.nextSegLen]).toEqual([2, nxt, MSS]);
  });

  it('NextSeg rule 3 retransmits a not-yet-lost hole below the highest SACK when no new data', () => {
    const sb = new SackScoreboard();
    ack(sb, [2000, 3000], [4000, 5000], [6000, 7000]);
    expect(sb.nextSeg(una, nxt, at(2000), MSS, true, false)).toBe('new'); // rule 2 first
    expect(sb.nextSeg(una, nxt, at(2000), MSS, false, false)).toBe('retransmit');
    expect([sb.nextSegRule, sb.nextSegSeq, sb.nextSegLen]).toEqual([3, at(3000), 1000]);
    expect(sb.nextSeg(una, nxt, at(4000), MSS, false, false)).toBe('retransmit');
    expect([sb.nextSegRule, sb.nextSegSeq]).toEqual([3, at(5000)]);
  });

  it('NextSeg rule 4 is a rescue of the highest un-SACKed segment, only when allowed', () => {
    const sb = new SackScoreboard();
    ack(sb, [2000, 3000], [4000, 5000], [6000, 7000]);
    // Every hole below the highest SACK was retransmitted: only the tail is left.
    expect(sb.nextSeg(una, nxt, at(6000), MSS, false, false)).toBe('none');
    expect(sb.nextSegRule).toBe(0);
    expect(sb.nextSeg(una, nxt, at(6000), MSS, false, true)).toBe('retransmit');
    expect([sb.nextSegRule, sb.nextSegSeq, sb.nextSegLen]).toEqual([4, at(10000), 1000]);
    // A tail SACKed up to SND.NXT: the rescue ends where the top range starts.
    const top = new SackScoreboard();
    ack(top, [2000, 11000]);
    expect(top.nextSeg(una, nxt, at(2000), 400, false, true)).toBe('retransmit');
    expect([top.nextSegRule, top.nextSegSeq, top.nextSegLen]).toEqual([4, at(1600), 400]);
    // No SACK at all (a lost tail): rescue the last segment.
    const none = new SackScoreboard();
    expect(none.nextSeg(una, nxt, una, MSS, false, true)).toBe('retransmit');
    expect([none.nextSegRule, none.nextSegSeq, none.nextSegLen]).toEqual([4, at(10000), 1000]);
    // Nothing outstanding: nothing to rescue.
    expect(none.nextSeg(nxt, nxt, nxt, MSS, false, true)).toBe('none');
  });

  it('NextSeg never resends SACKed bytes: a short hole gives a short segment', () => {
    const sb = new SackScoreboard();
    ack(sb, [1300, 5000]);
    expect(sb.nextSeg(una, nxt, una, MSS, false, false)).toBe('retransmit');
    expect([sb.nextSegRule, sb.nextSegSeq, sb.nextSegLen]).toEqual([1, una, 300]);
    // HighRxt inside the hole: the rest of the hole.
    expect(sb.nextSeg(una, nxt, at(1200), MSS, false, false)).toBe('retransmit');
    expect([sb.nextSegSeq, sb.nextSegLen]).toEqual([at(1200), 100]);
  });

  it('ignores invalid blocks and clips one straddling SND.UNA', () => {
    const sb = new SackScoreboard();
    expect(ack(sb, [3000, 2000])).toBe(0); // reversed
    expect(ack(sb, [3000, 3000])).toBe(0); // empty
    expect(ack(sb, [500, 1000])).toBe(0); // at or below SND.UNA: a D-SACK
    expect(sb.lastUpdateDsack).toBe(true);
    expect(ack(sb, [9000, 12000])).toBe(0); // beyond SND.NXT
    expect(sb.lastUpdateDsack).toBe(false);
    expect(sb.ranges).toBe(0);
    expect(ack(sb, [500, 1500])).toBe(500);
    expect(sb.isSacked(una)).toBe(true);
    expect(sb.isSacked(at(999))).toBe(false);
    // Valid blocks in the same option as invalid ones still count.
    expect(ack(sb, [8000, 7000], [3000, 4000], [10000, 11000])).toBe(2000);
    expect(sb.sackedBytes).toBe(2500);
  });

  it('recognises a D-SACK inside the second block (RFC 2883 §4)', () => {
    const sb = new SackScoreboard();
    expect(ack(sb, [3000, 3500], [3000, 4000])).toBe(1000);
    expect(sb.lastUpdateDsack).toBe(true);
    expect(ack(sb, [5000, 6000], [3000, 4000])).toBe(1000);
    expect(sb.lastUpdateDsack).toBe(false);
  });

  it('merges blocks in any order and forgets what the cumulative ACK covers', () => {
    const sb = new SackScoreboard();
    expect(ack(sb, [6000, 7000], [2000, 3000], [4000, 5000])).toBe(3000);
    expect(ack(sb, [2500, 6500])).toBe(2000);
    expect(sb.ranges).toBe(1);
    expect(sb.sackedBytes).toBe(5000);
    // SND.UNA moves into the range: only the part above it stays SACKed.
    const b = blocks([at(2000), at(7000)]);
    expect(sb.update(at(4000), nxt, b.count, b.left, b.right)).toBe(0);
    expect(sb.sackedBytes).toBe(3000);
    expect(sb.isSacked(at(3999))).toBe(false);
    expect(sb.update(at(8000), nxt, 0, b.left, b.right)).toBe(0);
    expect(sb.sackedBytes).toBe(0);
    expect(sb.highSacked(at(8000))).toBe(at(8000));
  });

  it('reset() forgets everything', () => {
    const sb = new SackScoreboard();
    ack(sb, [2000, 5000]);
    sb.reset();
    expect(sb.sackedBytes).toBe(0);
    expect(sb.ranges).toBe(0);
    expect(sb.isLost(una, MSS)).toBe(false);
    expect(sb.pipe(una, nxt, una, MSS)).toBe(10000);
  });
});

describe('SackScoreboard bounds', () => {
  it('tracks at most maxBlocks ranges; extra discontiguous blocks are not recorded', () => {
    const sb = new SackScoreboard(4);
    const b = blocks([100, 110], [200, 210], [300, 310], [400, 410]);
    expect(sb.update(0, 10000, b.count, b.left, b.right)).toBe(40);
    const extra = blocks([500, 510]);
    expect(sb.update(0, 10000, extra.count, extra.left, extra.right)).toBe(0);
    expect(sb.ranges).toBe(4);
    // Merging into a held range needs no slot; bridging frees one.
    const grow = blocks([405, 450], [110, 200]);
    expect(sb.update(0, 10000, grow.count, grow.left, grow.right)).toBe(130);
    expect(sb.ranges).toBe(3);
    expect(sb.update(0, 10000, extra.count, extra.left, extra.right)).toBe(10);
    expect(sb.sackedBytes).toBe(180);
  });

  it('rejects a bad bound at construction', () => {
    expect(() => new SackScoreboard(0)).toThrow(StackOptionError);
    expect(() => new SackScoreboard(1.5)).toThrow(StackOptionError);
    expect(new SackScoreboard().ranges).toBe(0);
  });
});

/** RFC 6675 §4's definitions applied byte by byte over a bitmap: the reference model. */
class NaiveBoard {
  readonly sacked: boolean[];
  constructor(size: number) {
    this.sacked = new Array<boolean>(size).fill(false);
  }
  update(u: number, x: number, pairs: [number, number][]): void {
    for (const [l, r] of pairs) {
      if (l >= r || r <= u || r > x) continue;
      for (let o = Math.max(l, u); o < r; o++) this.sacked[o] = true;
    }
  }
  sackedBytes(u: number): number {
    return this.sacked.filter((s, o) => s && o >= u).length;
  }
  isLost(o: number, mss: number): boolean {
    if (this.sacked[o]) return false;
    let runs = 0;
    let bytes = 0;
    for (let k = o + 1; k < this.sacked.length; k++) {
      if (!this.sacked[k]) continue;
      bytes++;
      if (!this.sacked[k - 1]) runs++;
    }
    return runs >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss;
  }
  pipe(u: number, x: number, hr: number, mss: number): number {
    let pipe = 0;
    for (let o = u; o < x; o++) {
      if (this.sacked[o]) continue;
      if (!this.isLost(o, mss)) pipe++;
      if (o < hr) pipe++;
    }
    return pipe;
  }
  nextSeg(
    u: number,
    x: number,
    hr: number,
    mss: number,
    newData: boolean,
    rescue: boolean,
  ): [string, number, number, number] {
    let high = u;
    for (let o = u; o < x; o++) if (this.sacked[o]) high = o + 1;
    let s = -1;
    for (let o = Math.max(hr, u); o < high; o++) {
      if (!this.sacked[o]) {
        s = o;
        break;
      }
    }
    const holeLen = (from: number) => {
      let e = from;
      while (e < x && e - from < mss && !this.sacked[e]) e++;
      return e - from;
    };
    if (s >= 0 && this.isLost(s, mss)) return ['retransmit', 1, s, holeLen(s)];
    if (newData) return ['new', 2, x, mss];
    if (s >= 0) return ['retransmit', 3, s, holeLen(s)];
    let h = -1;
    for (let o = x - 1; o >= u; o--) {
      if (!this.sacked[o]) {
        h = o;
        break;
      }
    }
    if (rescue && h >= 0) {
      let start = h;
      while (start > u && h + 1 - start < mss && !this.sacked[start - 1]) start--;
      return ['retransmit', 4, start, h + 1 - start];
    }
    return ['none', 0, 0, 0];
  }
}

describe('SackScoreboard property', () => {
  it('agrees with a byte-by-byte model of RFC 6675 §4 over random ACK sequences', () => {
    const SIZE = 300;
    const step = fc.record({
      una: fc.nat(20),
      nxt: fc.nat(40),
      // Blocks as (left, length): mostly short, so many small discontiguous ranges arise;
      // lengths of zero or below make invalid blocks.
      pairs: fc
        .array(fc.tuple(fc.integer({ min: -20, max: SIZE }), fc.integer({ min: -3, max: 40 })), {
          maxLength: 4,
        })
        .map((ps) => ps.map(([l, n]): [number, number] => [l, l + n])),
      hr: fc.nat(SIZE),
      mss: fc.integer({ min: 1, max: 60 }),
      newData: fc.boolean(),
      rescue: fc.boolean(),
    });
    const rulesSeen = new Set<number>();
    fc.assert(
      fc.property(
        fc.oneof(fc.nat(0xffffffff), fc.integer({ min: 0xffffff00, max: 0xffffffff })),
        fc.array(step, { minLength: 1, maxLength: 12 }),
        (base, steps) => {
          const at = (o: number) => seqAdd(base, o);
          const sb = new SackScoreboard(1024);
          const model = new NaiveBoard(SIZE);
          let u = 0;
          let x = 150;
          for (const st of steps) {
            // SND.UNA and SND.NXT only move forward, SND.UNA never past SND.NXT.
            x = Math.min(SIZE, x + st.nxt);
            u = Math.min(x, u + st.una);
            const b = blocks(...st.pairs.map(([l, r]): [number, number] => [at(l), at(r)]));
            const before = model.sackedBytes(u);
            model.update(u, x, st.pairs);
            expect(sb.update(at(u), at(x), b.count, b.left, b.right)).toBe(model.sackedBytes(u) - before);
            expect(sb.sackedBytes).toBe(model.sackedBytes(u));
            let ok = true;
            for (let o = u; o < x; o++) {
              ok &&= sb.isSacked(at(o)) === model.sacked[o];
              ok &&= sb.isLost(at(o), st.mss) === model.isLost(o, st.mss);
            }
            expect(ok).toBe(true);
            const hr = u + (st.hr % (x - u + 1));
            expect(sb.pipe(at(u), at(x), at(hr), st.mss)).toBe(model.pipe(u, x, hr, st.mss));
            const kind = sb.nextSeg(at(u), at(x), at(hr), st.mss, st.newData, st.rescue);
            const [mKind, mRule, mSeq, mLen] = model.nextSeg(u, x, hr, st.mss, st.newData, st.rescue);
            expect([kind, sb.nextSegRule]).toEqual([mKind, mRule]);
            rulesSeen.add(mRule);
            if (kind !== 'none') expect([sb.nextSegSeq, sb.nextSegLen]).toEqual([at(mSeq), mLen]);
          }
        },
      ),
      { numRuns: 400 },
    );
    // The runs reached every outcome of NextSeg(), so the comparison covered all four rules.
    expect([...rulesSeen].sort()).toEqual([0, 1, 2, 3, 4]);
  });
});
