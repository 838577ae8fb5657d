/**
 * Nagle's algorithm (RFC 896, RFC 9293 §3.7.4) as packet traces: a small segment waits while data
 * is unacknowledged, setNoDelay(true) turns that off, full-sized segments and the FIN never wait.
 */
import { describe, expect, it } from 'vitest';
import { pattern } from '../stack/packets.js';
import { TcpPeer } from './harness.js';

function open() {
  const p = TcpPeer.create();
  const iss = p.handshake({ mss: 1000 });
  return { p, una: (iss + 1) >>> 0 };
}

describe("Nagle's algorithm", () => {
  it('holds a small write while data is unacknowledged and sends it, coalesced, on the ACK', () => {
    const { p, una } = open();
    p.appWrite('a');
    p.expectSegment({ flags: 'psh|ack', seq: una, data: 'a' }); // nothing in flight: goes at once
    p.appWrite('b');
    p.appWrite('c');
    p.expectNoSegment();
    p.advance(30);
    p.expectNoSegment();
    p.send({ ack: una + 1 });
    p.expectSegment({ flags: 'psh|ack', seq: una + 1, data: 'bc' });
    p.expectNoSegment();
  });

  it('sends small writes at once with setNoDelay(true)', () => {
    const { p, una } = open();
    p.app((c) => c.setNoDelay(true));
    p.appWrite('a');
    p.appWrite('b');
    p.appWrite('c');
    p.expectSegment({ seq: una, data: 'a' });
    p.expectSegment({ seq: una + 1, data: 'b' });
    p.expectSegment({ seq: una + 2, data: 'c' });
    p.expectNoSegment();
  });

  it('releases held data when Nagle is switched off, and holds again when back on', () => {
    const { p, una } = open();
    p.appWrite('a');
    p.appWrite('b');
    p.expectSegment({ seq: una, data: 'a' });
    p.expectNoSegment();
    p.app((c) => c.setNoDelay(true));
    p.expectSegment({ seq: una + 1, data: 'b' });
    p.app((c) => c.setNoDelay(false));
    p.appWrite('c');
    p.expectNoSegment();
    p.send({ ack: una + 2 });
    p.expectSegment({ seq: una + 2, data: 'c' });
  });

  it('never delays full-sized segments, only the small tail', () => {
    const { p, una } = open();
    p.appWrite('a');
    p.expectSegment({ seq: una, len: 1 });
    p.appWrite(pattern(2500));
    p.expectSegment({ seq: una + 1, len: 1000 });
    p.expectSegment({ seq: una + 1001, len: 1000 });
    p.expectNoSegment(); // 500 bytes wait
    p.send({ ack: una + 2001 });
    p.expectSegment({ seq: una + 2001, len: 500 });
  });

  it('does not delay the FIN: held data goes with it', () => {
    const { p, una } = open();
    p.appWrite('a');
    p.expectSegment({ seq: una, data: 'a' });
    p.appWrite('b');
    p.expectNoSegment();
    p.appShutdown();
    p.expectSegment({ flags: 'fin|psh|ack', seq: una + 1, data: 'b' });
    expect(p.state).toBe('FIN-WAIT-1');
  });

  it('does not hold a small write when everything is acknowledged', () => {
    const { p, una } = open();
    for (let i = 0; i < 3; i++) {
      p.appWrite('x');
      p.expectSegment({ seq: una + i, data: 'x' });
      p.send({ ack: una + i + 1 });
    }
    p.expectNoSegment();
  });
});
