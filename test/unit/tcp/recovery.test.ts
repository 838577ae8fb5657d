/**
 * Loss recovery and the send window as packet traces: the RFC 6928 initial window, the peer's
 * window as a hard limit, fast retransmit on three duplicate ACKs with NewReno partial ACKs
 * (RFC 5681 §3.2, RFC 6582), SACK-based recovery (RFC 6675: IsLost, pipe, NextSeg), and the window
 * reduction of each congestion controller.
 */
import { describe, expect, it } from 'vitest';
import type { StackOptions } from '../../../src/stack/options.js';
import { pattern } from '../stack/packets.js';
import { type Segment, type SynSpec, TcpPeer } from './harness.js';

/** An established connection (MSS 1000 unless given); data from the stack starts at `una`. */
function open(stack: StackOptions = {}, syn: SynSpec = { mss: 1000 }): { p: TcpPeer; una: number } {
  const p = TcpPeer.create({ stack });
  const iss = p.handshake(syn);
  return { p, una: (iss + 1) >>> 0 };
}

/** Writes `segments` full segments of 1000 bytes and expects them all on the wire at once. */
function sendSegments(p: TcpPeer, una: number, segments: number): void {
  p.appWrite(pattern(segments * 1000));
  for (let i = 0; i < segments; i++) p.expectSegment({ seq: una + i * 1000, len: 1000 });
  p.expectNoSegment();
}

/** The sequence numbers of `segs`, relative to `una`, in units of 1000-byte segments. */
function segNumbers(segs: Segment[], una: number): number[] {
  return segs.map((s) => ((s.seq - una) >>> 0) / 1000);
}

describe('initial window and the peer window', () => {
  it('sends 10 segments before the first ACK (RFC 6928 IW10)', () => {
    const { p, una } = open({}, { mss: 1460 });
    p.appWrite(pattern(60_000));
    const burst = p.segments();
    expect(burst).toHaveLength(10);
    burst.forEach((s, i) => {
      expect(s.seq).toBe((una + i * 1460) >>> 0);
      expect(s.payload.length).toBe(1460);
    });
    p.advance(10);
    p.expectNoSegment();
  });

  it('caps the initial window at 14600 bytes for small segments (RFC 6928 §2)', () => {
    const { p } = open({}, { mss: 536 });
    p.appWrite(pattern(60_000));
    const burst = p.segments();
    expect(burst).toHaveLength(10); // min(10*536, max(2*536, 14600)) = 5360
    expect(burst.reduce((n, s) => n + s.payload.length, 0)).toBe(5360);
  });

  it('never sends beyond the peer window, and follows its right edge', () => {
    const { p, una } = open({}, { mss: 1000, window: 2500 });
    p.appWrite(pattern(10_000));
    p.expectSegment({ seq: una, len: 1000 });
    p.expectSegment({ seq: una + 1000, len: 1000 });
    // 500 bytes would fit, but sender SWS avoidance (RFC 9293 §3.8.6.2.1) waits for a full
    // segment or half the largest window the peer offered (1250).
    p.expectNoSegment();
    p.send({ ack: una + 1000, window: 2500 });
    // The right edge moved by 1000: one more full segment.
    p.expectSegment({ seq: una + 2000, len: 1000 });
    p.expectNoSegment();
    p.send({ ack: una + 3000, window: 1000 });
    p.expectSegment({ seq: una + 3000, len: 1000 });
    p.expectNoSegment();
    p.send({ ack: una + 3000, window: 1500 });
    p.expectNoSegment(); // 500 bytes of room: still below a full segment or half the window
  });

  it('scales the peer window by its shift (RFC 7323 §2.3)', () => {
    const { p, una } = open({}, { mss: 1000, wscale: 2, window: 1000 });
    p.appWrite(pattern(10_000));
    // The SYN's window is unscaled; the handshake ACK's 1000 << 2 = 4000 bytes.
    expect(p.segments()).toHaveLength(4);
    p.send({ ack: una + 4000, window: 500 }); // 2000 bytes
    expect(segNumbers(p.segments(), una)).toEqual([4, 5]);
  });
});

describe('fast retransmit and NewReno recovery (no SACK)', () => {
  it('retransmits SND.UNA on the third duplicate ACK, then each hole on partial ACKs', () => {
    const { p, una } = open({ tcp: { congestionControl: 'newreno' } });
    sendSegments(p, una, 5);
    p.advance(5);
    p.send({ ack: una });
    p.send({ ack: una });
    p.expectNoSegment();
    p.send({ ack: una });
    p.expectSegment({ seq: una, len: 1000 });
    p.expectNoSegment();
    expect(p.stack.stats.tcpFastRetransmits).toBe(1);
    expect(p.conn!.inRecovery).toBe(true);
    // RFC 5681 eq. 4: ssthresh = FlightSize / 2; cwnd = ssthresh (RFC 6675-style, no inflation).
    expect(p.conn!.cc.ssthresh).toBe(2500);
    expect(p.conn!.cc.cwnd).toBe(2500);
    p.send({ ack: una }); // more duplicates change nothing
    p.expectNoSegment();

    // Partial ACK (below the recovery point): RFC 6582 §3.2 step 5 resends the next hole.
    p.send({ ack: una + 3000 });
    p.expectSegment({ seq: una + 3000, len: 1000 });
    p.expectNoSegment();
    expect(p.conn!.inRecovery).toBe(true);

    // Full ACK ends recovery with cwnd = ssthresh.
    p.send({ ack: una + 5000 });
    expect(p.conn!.inRecovery).toBe(false);
    expect(p.conn!.cc.cwnd).toBe(2500);
    p.expectNoSegment();
    expect(p.stack.stats.tcpTimeouts).toBe(0);
  });

  it('does not count ACKs that carry data or change the window as duplicates (RFC 5681 §2)', () => {
    const { p, una } = open({ tcp: { congestionControl: 'newreno' } });
    sendSegments(p, una, 5);
    p.send({ ack: una, window: 60_000 }); // a window update
    p.send({ ack: una, window: 60_000, data: 'x' }); // carries data
    p.expectSegment({ flags: 'ack', ack: p.seq, len: 0 }); // (a small segment is ACKed at once)
    p.send({ ack: una, window: 60_000 });
    p.send({ ack: una, window: 60_000 });
    p.expectNoSegment();
    p.send({ ack: una, window: 60_000 }); // the third true duplicate
    p.expectSegment({ seq: una, len: 1000 });
  });

  it('reduces cwnd to 0.5 of the flight with NewReno and 0.7 with CUBIC', () => {
    for (const [cc, expected] of [
      ['newreno', 5000],
      ['cubic', 7000],
    ] as const) {
      const { p, una } = open({ tcp: { congestionControl: cc } });
      expect(p.conn!.cc.name).toBe(cc);
      sendSegments(p, una, 10);
      for (let i = 0; i < 3; i++) p.send({ ack: una });
      p.expectSegment({ seq: una, len: 1000 });
      expect(p.conn!.cc.cwnd).toBe(expected);
      expect(p.conn!.cc.ssthresh).toBe(expected);
    }
  });
});

describe('SACK recovery (RFC 6675)', () => {
  const sackSyn: SynSpec = { mss: 1000, sackPermitted: true };
  /** [first, end) in segment numbers to sequence numbers. */
  const blk = (una: number, a: number, b: number): [number, number] => [una + a * 1000, una + b * 1000];

  it('retransmits holes by NextSeg, never SACKed data, within pipe', () => {
    const { p, una } = open({ tcp: { congestionControl: 'newreno' } }, sackSyn);
    sendSegments(p, una, 10);
    // Segments 2 and 5 are lost; the others arrive.
    p.send({ ack: una + 2000 });
    p.expectNoSegment();
    p.send({ ack: una + 2000, sack: [blk(una, 3, 4)] });
    p.send({ ack: una + 2000, sack: [blk(una, 3, 5)] });
    p.expectNoSegment();
    p.send({ ack: una + 2000, sack: [blk(una, 6, 7), blk(una, 3, 5)] });
    // The third duplicate ACK (and 3000 SACKed bytes above segment 2, IsLost): fast retransmit.
    p.expectSegment({ seq: una + 2000, len: 1000 });
    p.expectNoSegment();
    // FlightSize 8000: cwnd = ssthresh = 4000. pipe = 2 (rtx) + 5 + 7..9 = 5000: nothing more.
    expect(p.conn!.cc.cwnd).toBe(4000);

    p.send({ ack: una + 2000, sack: [blk(una, 6, 8), blk(una, 3, 5)] });
    p.expectNoSegment(); // pipe = 2 (rtx) + 5 + 8..9 = 4000 = cwnd

    p.send({ ack: una + 2000, sack: [blk(una, 6, 9), blk(una, 3, 5)] });
    // Segment 5 is now lost (3000 bytes SACKed above it): pipe 2000, room for one hole.
    p.expectSegment({ seq: una + 5000, len: 1000 });
    p.expectNoSegment();

    // The retransmission of 2 arrives: a partial ACK. With SACK no NewReno resend (5 was resent).
    p.send({ ack: una + 5000, sack: [blk(una, 6, 9)] });
    p.expectNoSegment();
    p.send({ ack: una + 9000 });
    p.expectNoSegment();
    expect(p.conn!.inRecovery).toBe(true);
    p.send({ ack: una + 10_000 });
    expect(p.conn!.inRecovery).toBe(false);
    expect(p.conn!.cc.cwnd).toBe(4000);
    expect(p.stack.stats.tcpRetransmits).toBe(2);
    expect(p.stack.stats.tcpTimeouts).toBe(0);
  });

  it('enters recovery on one ACK that SACKs more than 2 MSS (IsLost, RFC 6675 §5)', () => {
    const { p, una } = open({ tcp: { congestionControl: 'newreno' } }, sackSyn);
    sendSegments(p, una, 6);
    p.send({ ack: una, sack: [blk(una, 1, 4)] });
    p.expectSegment({ seq: una, len: 1000 });
    p.expectNoSegment();
    expect(p.conn!.inRecovery).toBe(true);
  });

  it('fills every lost hole once the window allows, in sequence order', () => {
    const { p, una } = open({ tcp: { congestionControl: 'newreno' } }, sackSyn);
    sendSegments(p, una, 10);
    // 0, 2 and 4 lost; 1, 3 and 5..9 arrive. One ACK reports them.
    p.send({ ack: una, sack: [blk(una, 5, 10), blk(una, 3, 4), blk(una, 1, 2)] });
    // cwnd = 5000; pipe counts only the retransmissions: every hole is lost (IsLost).
    expect(segNumbers(p.segments(), una)).toEqual([0, 2, 4]);
    p.send({ ack: una + 10_000 });
    expect(p.conn!.inRecovery).toBe(false);
    p.expectNoSegment();
  });

  it('sends new data within pipe once the holes are retransmitted', () => {
    const { p, una } = open({ tcp: { congestionControl: 'newreno' } }, sackSyn);
    p.appWrite(pattern(20_000));
    expect(p.segments()).toHaveLength(10);
    // Segment 0 lost, 1..9 arrive: after its retransmission pipe is 1000, cwnd 5000.
    p.send({ ack: una, sack: [blk(una, 1, 10)] });
    const sent = segNumbers(p.segments(), una);
    expect(sent[0]).toBe(0);
    // New data (RFC 6675 NextSeg rule 2) fills cwnd - pipe: 4 segments.
    expect(sent.slice(1)).toEqual([10, 11, 12, 13]);
    for (const s of sent.slice(1)) expect(s).toBeGreaterThanOrEqual(10); // SACKed 1..9 never resent
  });
});
