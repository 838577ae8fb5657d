/**
 * The user timeout (RFC 9293 §3.8.3 R2, RFC 5482): data left unacknowledged for
 * tcp.userTimeoutMs aborts the connection with a RST and ETIMEDOUT.
 */
import { describe, expect, it } from 'vitest';
import { TcpEvent } from '../../../src/stack/tcp/state.js';
import { TcpPeer } from './harness.js';

function open(userTimeoutMs: number) {
  const p = TcpPeer.create({ stack: { tcp: { userTimeoutMs } } });
  const iss = p.handshake({ mss: 1000 });
  return { p, una: (iss + 1) >>> 0 };
}

describe('user timeout', () => {
  it('resets and reports ETIMEDOUT after userTimeoutMs without an acknowledgment', () => {
    const { p, una } = open(5000);
    p.appWrite('lost');
    p.expectSegment({ seq: una, data: 'lost' });
    // RTOs at 1 s and 3 s; the next (7 s) is clamped to the 5 s user timeout, like Linux.
    p.advance(1000);
    p.expectSegment({ seq: una, data: 'lost' });
    p.advance(2000);
    p.expectSegment({ seq: una, data: 'lost' });
    p.advance(1999);
    p.expectNoSegment();
    expect(p.state).toBe('ESTABLISHED');
    p.advance(1);
    p.expectSegment({ flags: 'rst|ack', seq: una + 4 });
    p.expectNoSegment();
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBe('ETIMEDOUT');
    expect(p.allEvents & TcpEvent.CLOSED).toBe(TcpEvent.CLOSED);
    expect(p.drops('tcp-user-timeout')).toBe(1);
    expect(p.stack.stats.tcpOpen).toBe(0);
  });

  it('counts from the last acknowledgment of new data', () => {
    const { p, una } = open(5000);
    p.appWrite('ab');
    p.expectSegment({ seq: una, len: 2 });
    p.advance(1000);
    p.expectSegment({ seq: una, len: 2 });
    p.advance(2000);
    p.expectSegment({ seq: una, len: 2 });
    // Progress at 3.5 s: one byte acknowledged restarts the clock.
    p.advance(500);
    p.send({ ack: una + 1 });
    p.advance(4999);
    expect(p.state).toBe('ESTABLISHED');
    p.advance(1);
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBe('ETIMEDOUT');
  });

  it('counts from when the data was sent, not from an earlier idle period', () => {
    const { p, una } = open(5000);
    p.appWrite('x');
    p.expectSegment({ seq: una });
    p.send({ ack: una + 1 });
    // Idle far longer than the user timeout, then a write whose segment is lost.
    p.advance(60_000);
    p.appWrite('y');
    p.expectSegment({ seq: una + 1, data: 'y' });
    p.advance(1000);
    expect(p.state).toBe('ESTABLISHED');
    p.expectSegment({ seq: una + 1, data: 'y' });
  });

  it('does not fire while everything is acknowledged', () => {
    const { p, una } = open(5000);
    p.appWrite('x');
    p.expectSegment({ seq: una });
    p.send({ ack: una + 1 });
    p.advance(600_000);
    expect(p.state).toBe('ESTABLISHED');
    p.expectNoSegment();
  });
});
