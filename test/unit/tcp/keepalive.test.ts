/**
 * Keepalive (RFC 1122 §4.2.3.6), with Linux's defaults and probe form: after the idle time without
 * anything received, a probe <SEQ=SND.UNA-1> with no data; then one every interval; after
 * keepaliveProbes unanswered probes, a RST and ETIMEDOUT. Anything received starts over.
 */
import { describe, expect, it } from 'vitest';
import { TcpPeer } from './harness.js';

const IDLE = 10_000;
const INTERVAL = 1000;

function keepalivePeer(probes = 3): { p: TcpPeer; iss: number } {
  const p = TcpPeer.create({ stack: { tcp: { keepaliveIntervalMs: INTERVAL, keepaliveProbes: probes } } });
  const iss = p.handshake();
  p.app((c) => c.setKeepAlive(true, IDLE));
  return { p, iss };
}

describe('keepalive', () => {
  it('probes with SEQ=SND.UNA-1 after the idle time, then every interval, then resets (ETIMEDOUT)', () => {
    const { p, iss } = keepalivePeer(3);
    p.advance(IDLE - 1);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ flags: 'ack', seq: iss, ack: 101, len: 0 });
    for (let k = 2; k <= 3; k++) {
      p.advance(INTERVAL - 1);
      p.expectNoSegment();
      p.advance(1);
      p.expectSegment({ flags: 'ack', seq: iss, ack: 101, len: 0 });
    }
    expect(p.state).toBe('ESTABLISHED');
    p.advance(INTERVAL);
    p.expectSegment({ flags: 'rst|ack', seq: iss + 1 });
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBe('ETIMEDOUT');
    expect(p.drops('tcp-keepalive-timeout')).toBe(1);
    p.expectNoSegment();
  });

  it('starts over when the peer answers a probe', () => {
    const { p, iss } = keepalivePeer(2);
    for (let round = 0; round < 5; round++) {
      // Idle since the last thing received (the handshake, then the answer to the last probe).
      p.advance(IDLE - 1);
      p.expectNoSegment();
      p.advance(1);
      p.expectSegment({ flags: 'ack', seq: iss });
      p.advance(INTERVAL);
      p.expectSegment({ flags: 'ack', seq: iss });
      p.advance(100);
      // The duplicate ACK a real stack answers an old-sequence probe with.
      p.send({ flags: 'ack' });
      p.expectNoSegment();
      expect(p.conn!.probes).toBe(0);
    }
    expect(p.state).toBe('ESTABLISHED');
  });

  it('does not probe while segments keep arriving', () => {
    const { p } = keepalivePeer();
    for (let k = 0; k < 10; k++) {
      p.advance(IDLE - 1);
      p.send({ flags: 'psh|ack', data: 'x' });
      p.segments();
    }
    p.appRead();
    p.expectNoSegment();
    p.advance(IDLE);
    p.expectSegment({ flags: 'ack', len: 0, ack: 111 });
  });

  it('counts only what arrives: our own sending does not delay the probe (Linux)', () => {
    const { p, iss } = keepalivePeer();
    p.advance(IDLE / 2);
    p.appWrite('hello');
    p.expectSegment({ flags: 'psh|ack', len: 5 });
    p.send({ flags: 'ack', ack: iss + 6 });
    p.advance(IDLE - 1);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ flags: 'ack', seq: iss + 5, len: 0 });
  });

  it('leaves an unanswered connection with data in flight to the retransmission timer (Linux)', () => {
    const { p, iss } = keepalivePeer(1);
    p.advance(IDLE - 100);
    p.appWrite('unanswered');
    // Only retransmissions of the data go out, never a keepalive probe, and keepalive does not
    // cut the connection short: the user timeout (120 s) governs.
    p.advance(3 * IDLE);
    const segs = p.segments();
    expect(segs.length).toBeGreaterThan(3);
    for (const s of segs) expect([s.flags, s.seq, s.payload.length]).toEqual(['psh|ack', iss + 1, 10]);
    expect(p.state).toBe('ESTABLISHED');
    // Once everything is acknowledged, idleness counts from the last segment received.
    p.send({ flags: 'ack', ack: iss + 11 });
    p.segments();
    p.advance(IDLE - 1);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ flags: 'ack', seq: iss + 10, len: 0 });
  });

  it('uses the configured idle time when none is given', () => {
    const p = TcpPeer.create({ stack: { tcp: { keepaliveIdleMs: 60_000 } } });
    const iss = p.handshake();
    p.app((c) => c.setKeepAlive(true));
    p.advance(59_999);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ flags: 'ack', seq: iss });
  });

  it('is off until enabled, and setKeepAlive(false) stops it', () => {
    const p = TcpPeer.create({ stack: { tcp: { keepaliveIdleMs: 1000 } } });
    p.handshake();
    p.advance(10_000);
    p.expectNoSegment();
    p.app((c) => c.setKeepAlive(true));
    p.advance(1000);
    p.expectSegment({ flags: 'ack' });
    p.app((c) => c.setKeepAlive(false));
    p.advance(7_200_000);
    p.expectNoSegment();
    expect(p.state).toBe('ESTABLISHED');
  });

  it('keeps probing a half-closed connection (CLOSE-WAIT) and gives up the same way', () => {
    const { p, iss } = keepalivePeer(1);
    p.send({ flags: 'fin|ack' });
    p.expectSegment({ flags: 'ack', ack: 102 });
    p.advance(IDLE);
    p.expectSegment({ flags: 'ack', seq: iss, ack: 102 });
    p.advance(INTERVAL);
    p.expectSegment({ flags: 'rst|ack' });
    expect(p.conn!.error).toBe('ETIMEDOUT');
  });
});
