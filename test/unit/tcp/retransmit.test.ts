/**
 * Retransmission timeouts as packet traces (RFC 6298): the first RTO, the RTO from measured RTTs,
 * the minimum, exponential backoff, Karn's rule, go-back-N from SND.UNA with a 1-MSS window, the
 * timer restarting on new ACKs and stopping when everything is acknowledged, and FIN retransmission.
 */
import { describe, expect, it } from 'vitest';
import type { StackOptions } from '../../../src/stack/options.js';
import { pattern } from '../stack/packets.js';
import { type SynSpec, TcpPeer } from './harness.js';

/** An established connection; data from the stack starts at `una` (ISS + 1). */
function open(stack: StackOptions = {}, syn: SynSpec = { mss: 1000 }): { p: TcpPeer; una: number } {
  const p = TcpPeer.create({ stack });
  const iss = p.handshake(syn);
  return { p, una: (iss + 1) >>> 0 };
}

/** The connection's current RTO. */
function rto(p: TcpPeer): number {
  return p.conn!.rtt.rtoMs;
}

/** Expects nothing for `ms - 1` ms, then a retransmission of `seq` at exactly `ms`. */
function expectRetransmitAfter(p: TcpPeer, ms: number, seq: number, len?: number): void {
  p.advance(ms - 1);
  p.expectNoSegment();
  p.advance(1);
  p.expectSegment({ seq, len });
  p.expectNoSegment();
}

describe('TCP retransmission timer (RFC 6298)', () => {
  it('uses 1 s before any RTT sample (§2.1)', () => {
    const { p, una } = open();
    expect(p.conn!.rtt.srttMs).toBeUndefined();
    p.appWrite('hello');
    p.expectSegment({ flags: 'psh|ack', seq: una, data: 'hello' });
    expectRetransmitAfter(p, 1000, una, 5);
    expect(p.stack.stats.tcpTimeouts).toBe(1);
    expect(p.stack.stats.tcpRetransmits).toBe(1);
  });

  it('uses 3 s for data after a retransmitted SYN-ACK left no RTT sample (§5.7)', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', mss: 1000 });
    const synAck = p.expectSegment({ flags: 'syn|ack' });
    p.advance(1000);
    p.expectSegment({ flags: 'syn|ack', seq: synAck.seq });
    p.send({ ack: synAck.seq + 1 });
    expect(p.state).toBe('ESTABLISHED');
    expect(rto(p)).toBe(3000);
    p.appWrite('x');
    p.expectSegment({ seq: synAck.seq + 1, len: 1 });
    expectRetransmitAfter(p, 3000, synAck.seq + 1, 1);
  });

  it('computes SRTT + 4*RTTVAR from measured RTTs (§2.2, §2.3)', () => {
    const { p, una } = open();
    p.appWrite('a');
    p.expectSegment({ seq: una, len: 1 });
    p.advance(300);
    p.send({ ack: una + 1 });
    // First sample: SRTT = 300, RTTVAR = 150, RTO = 300 + 600.
    expect(p.conn!.rtt.srttMs).toBe(300);
    expect(rto(p)).toBe(900);

    p.appWrite('b');
    p.expectSegment({ seq: una + 1, len: 1 });
    p.advance(100);
    p.send({ ack: una + 2 });
    // RTTVAR = 3/4*150 + 1/4*|300-100| = 162.5; SRTT = 7/8*300 + 1/8*100 = 275; RTO = 275 + 650.
    expect(p.conn!.rtt.srttMs).toBe(275);
    expect(p.conn!.rtt.rttvarMs).toBe(162.5);
    expect(rto(p)).toBe(925);

    p.appWrite('c');
    p.expectSegment({ seq: una + 2, len: 1 });
    expectRetransmitAfter(p, 925, una + 2, 1);
  });

  it('clamps the RTO to minRtoMs, 200 ms by default like Linux (§2.4 deviation)', () => {
    const { p, una } = open();
    p.appWrite('a');
    p.expectSegment({ seq: una });
    p.advance(10);
    p.send({ ack: una + 1 });
    // SRTT + 4*RTTVAR = 10 + 20 = 30 ms, below the floor.
    expect(rto(p)).toBe(200);
    p.appWrite('b');
    p.expectSegment({ seq: una + 1 });
    expectRetransmitAfter(p, 200, una + 1, 1);
  });

  it('honours a configured minRtoMs', () => {
    const { p, una } = open({ tcp: { minRtoMs: 50 } });
    p.appWrite('a');
    p.expectSegment({ seq: una });
    p.advance(10);
    p.send({ ack: una + 1 });
    expect(rto(p)).toBe(50);
    p.appWrite('b');
    p.expectSegment({ seq: una + 1 });
    expectRetransmitAfter(p, 50, una + 1, 1);
  });

  it('doubles the RTO on each timeout up to maxRtoMs (§5.5)', () => {
    const { p, una } = open({ tcp: { maxRtoMs: 5000 } });
    p.appWrite('x');
    p.expectSegment({ seq: una, len: 1 });
    for (const gap of [1000, 2000, 4000, 5000, 5000, 5000]) expectRetransmitAfter(p, gap, una, 1);
    expect(p.stack.stats.tcpTimeouts).toBe(6);
    expect(p.state).toBe('ESTABLISHED');
  });

  it("takes no RTT sample from a retransmitted segment without timestamps (Karn's rule, §3)", () => {
    const { p, una } = open();
    p.appWrite('x');
    p.expectSegment({ seq: una });
    expectRetransmitAfter(p, 1000, una, 1);
    p.advance(50);
    p.send({ ack: una + 1 });
    // Neither 1050 ms (from the first send) nor 50 ms (from the retransmission) was sampled, and
    // the backed-off RTO stays until a valid sample (§5.7 note, Linux's tcp_ack_update_rtt).
    expect(p.conn!.rtt.srttMs).toBeUndefined();
    expect(rto(p)).toBe(2000);
    p.appWrite('y');
    p.expectSegment({ seq: una + 1 });
    expectRetransmitAfter(p, 2000, una + 1, 1);
  });

  it('samples a segment sent once after a retransmission, ending the backoff', () => {
    const { p, una } = open();
    p.appWrite('x');
    p.expectSegment({ seq: una });
    expectRetransmitAfter(p, 1000, una, 1);
    p.send({ ack: una + 1 });
    p.appWrite('y');
    p.expectSegment({ seq: una + 1 });
    p.advance(400);
    p.send({ ack: una + 2 });
    expect(p.conn!.rtt.srttMs).toBe(400);
    expect(rto(p)).toBe(1200);
  });

  it('samples retransmitted segments with timestamps: TSecr is unambiguous (RFC 7323 §4)', () => {
    const { p, una } = open({}, { mss: 1000, ts: [7000, 0] });
    // The handshake's ACK echoed the SYN-ACK's TSval at once: a 0 ms RTT counts as 0.5 ms.
    expect(p.conn!.rtt.srttMs).toBe(0.5);
    expect(rto(p)).toBe(200);
    p.appWrite('x');
    const first = p.expectSegment({ seq: una, ts: true });
    p.advance(200);
    const again = p.expectSegment({ seq: una, ts: true });
    expect(again.ts![0] - first.ts![0]).toBe(200);
    p.advance(50);
    // The peer echoes the retransmission's TSval (the harness's default TSecr): RTT 50 ms.
    p.send({ ack: una + 1 });
    expect(p.conn!.rtt.srttMs).toBeCloseTo((7 / 8) * 0.5 + (1 / 8) * 50, 9);
  });

  it('retransmits from SND.UNA with cwnd = 1 MSS, then slow-starts (go-back-N, RFC 5681 §3.1)', () => {
    const { p, una } = open({ tcp: { congestionControl: 'newreno' } });
    p.appWrite(pattern(5000));
    for (let i = 0; i < 5; i++) p.expectSegment({ seq: una + i * 1000, len: 1000 });
    p.expectNoSegment();
    p.advance(1000);
    // One segment: the loss window.
    p.expectSegment({ seq: una, len: 1000, data: pattern(5000).subarray(0, 1000) });
    p.expectNoSegment();
    expect(p.conn!.cc.cwnd).toBe(1000);
    expect(p.conn!.cc.ssthresh).toBe(2500);
    p.send({ ack: una + 1000 });
    // Slow start: cwnd 2 MSS, and the segments after SND.UNA are resent though sent before.
    expect(p.conn!.cc.cwnd).toBe(2000);
    p.expectSegment({ seq: una + 1000, len: 1000 });
    p.expectSegment({ seq: una + 2000, len: 1000 });
    p.expectNoSegment();
    p.send({ ack: una + 3000 });
    p.expectSegment({ seq: una + 3000, len: 1000 });
    p.expectSegment({ seq: una + 4000, len: 1000 });
    p.expectNoSegment();
    p.send({ ack: una + 5000 });
    p.expectNoSegment();
    expect(p.stack.stats.tcpRetransmits).toBe(5);
    expect(p.conn!.unacknowledged).toBe(0);
  });

  it('also collapses CUBIC to one segment after a timeout', () => {
    const { p, una } = open({ tcp: { congestionControl: 'cubic' } });
    p.appWrite(pattern(5000));
    expect(p.segments()).toHaveLength(5);
    p.advance(1000);
    p.expectSegment({ seq: una, len: 1000 });
    p.expectNoSegment();
    expect(p.conn!.cc.cwnd).toBe(1000);
  });

  it('restarts the timer when new data is acknowledged (§5.3)', () => {
    const { p, una } = open();
    p.appWrite(pattern(3000));
    expect(p.segments()).toHaveLength(3);
    p.advance(500);
    p.send({ ack: una + 1000 });
    // The sample (500 ms) makes the RTO 500 + 4*250 = 1500, counted from this ACK.
    expect(rto(p)).toBe(1500);
    p.advance(500);
    p.expectNoSegment(); // the first deadline (1000 ms after sending) has passed unused
    expectRetransmitAfter(p, 1000, una + 1000, 1000);
  });

  it('stops when everything is acknowledged (§5.2)', () => {
    const { p, una } = open();
    p.appWrite(pattern(3000));
    expect(p.segments()).toHaveLength(3);
    p.advance(20);
    p.send({ ack: una + 3000 });
    expect(p.conn!.rtxAt).toBe(Number.POSITIVE_INFINITY);
    p.advance(600_000);
    p.expectNoSegment();
    // The timer heap may wake once at the cancelled deadline (lazy deletion), then holds nothing.
    expect(p.stack.nextDeadline()).toBeUndefined();
  });

  it('retransmits the FIN, with the unacknowledged data before it', () => {
    const { p, una } = open();
    p.appWrite('bye');
    p.expectSegment({ flags: 'psh|ack', seq: una, data: 'bye' });
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack', seq: una + 3, len: 0 });
    expect(p.state).toBe('FIN-WAIT-1');
    p.advance(1000);
    // Go-back-N from SND.UNA: the data and the FIN fit one segment.
    p.expectSegment({ flags: 'fin|psh|ack', seq: una, data: 'bye' });
    p.expectNoSegment();
    p.send({ ack: una + 3 });
    // Only the FIN is left; the RTO is still backed off (no sample from a retransmission).
    p.advance(1999);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ flags: 'fin|ack', seq: una + 3, len: 0 });
    p.send({ ack: una + 4 });
    expect(p.state).toBe('FIN-WAIT-2');
    p.advance(10_000);
    p.expectNoSegment();
  });
});
