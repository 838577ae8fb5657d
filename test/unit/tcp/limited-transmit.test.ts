/**
 * RFC 3042 limited transmit and the PAWS exemption for reordered duplicate ACKs, as packet traces.
 */
import { describe, expect, it } from 'vitest';
import { pattern } from '../stack/packets.js';
import { TcpPeer } from './harness.js';

describe('limited transmit (RFC 3042)', () => {
  it('sends one new segment on each of the first two duplicate ACKs, then fast-retransmits', () => {
    const p = TcpPeer.create();
    const una = (p.handshake({ mss: 1000 }) + 1) >>> 0;
    p.appWrite(pattern(12_000));
    expect(p.segments()).toHaveLength(10); // the initial window, RFC 6928
    p.send({ ack: una }); // first duplicate: segment 11 beyond cwnd
    p.expectSegment({ seq: una + 10_000, len: 1000 });
    p.expectNoSegment();
    p.send({ ack: una }); // second: segment 12
    p.expectSegment({ seq: una + 11_000, len: 1000 });
    p.send({ ack: una }); // third: fast retransmit of SND.UNA
    p.expectSegment({ seq: una, len: 1000 });
  });

  it('never sends beyond the peer window for it', () => {
    const p = TcpPeer.create();
    const una = (p.handshake({ mss: 1000, window: 10_000 }) + 1) >>> 0;
    p.appWrite(pattern(12_000));
    expect(p.segments()).toHaveLength(10);
    p.send({ ack: una, window: 10_000 });
    p.expectNoSegment();
  });
});

describe('PAWS and reordered duplicate ACKs (Linux tcp_disordered_ack)', () => {
  it('counts a duplicate ACK whose timestamp lags TS.Recent', () => {
    const p = TcpPeer.create();
    const una = (p.handshake({ mss: 1000, ts: [5000, 0] }) + 1) >>> 0;
    // With timestamps a segment carries 1000 - 12 = 988 bytes.
    p.appWrite(pattern(5 * 988));
    expect(p.segments()).toHaveLength(5);
    p.send({ ack: una + 988, ts: [5020, 0] }); // TS.Recent becomes 5020
    // Three duplicate ACKs that were reordered behind it carry older timestamps.
    for (let i = 0; i < 3; i++) p.send({ ack: una + 988, ts: [5010, 0] });
    expect(p.drops('tcp-paws')).toBe(0);
    p.expectSegment({ seq: una + 988, len: 988 }); // fast retransmit
  });

  it('still drops an old segment that carries data', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: 1000, ts: [5000, 0] });
    p.send({ flags: 'psh|ack', data: 'x', ts: [5020, 0] });
    p.segments();
    p.send({ flags: 'psh|ack', data: 'y', ts: [5010, 0] });
    expect(p.drops('tcp-paws')).toBe(1);
  });
});

describe('challenge ACK throttle (RFC 5961 §7)', () => {
  it('answers at most challengeAcksPerSec in-window RSTs per second, counting the rest', () => {
    const p = TcpPeer.create({ stack: { tcp: { challengeAcksPerSec: 3 } } });
    p.handshake({ mss: 1000 });
    for (let i = 0; i < 10; i++) p.send({ flags: 'rst', seq: p.seq + 10 + i });
    expect(p.segments()).toHaveLength(3);
    expect(p.drops('tcp-challenge-ack-limited')).toBe(7);
    p.advance(1000);
    p.send({ flags: 'rst', seq: p.seq + 50 });
    expect(p.segments()).toHaveLength(1);
    expect(p.conn!.state).toBe('ESTABLISHED');
  });
});
