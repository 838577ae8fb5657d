/**
 * Connection termination (RFC 9293 §3.6): half-close either way, simultaneous close, LAST-ACK,
 * TIME-WAIT and its duration, FIN retransmission, a FIN ahead of missing data, and a new SYN on a
 * four-tuple in TIME-WAIT.
 */
import { describe, expect, it } from 'vitest';
import { TcpEvent } from '../../../src/stack/tcp/state.js';
import { TcpPeer } from './harness.js';

const CLOSED_BITS = TcpEvent.CLOSED | TcpEvent.READABLE | TcpEvent.WRITABLE;
const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

describe('the peer closes first (passive close)', () => {
  it('CLOSE-WAIT: the app reads the end, still writes, then LAST-ACK → CLOSED', () => {
    const p = TcpPeer.create();
    const iss = p.handshake();
    p.advance(5);
    p.send({ flags: 'fin|psh|ack', data: 'bye' });
    p.expectSegment({ flags: 'ack', seq: iss + 1, ack: 101 + 3 + 1 });
    expect(p.state).toBe('CLOSE-WAIT');
    expect(p.events.at(-1)! & TcpEvent.READABLE).toBeTruthy();
    expect(text(p.appRead())).toBe('bye');
    expect(p.conn!.readEnded).toBe(true);

    // Our direction still flows.
    p.appWrite('still here');
    p.expectSegment({ flags: 'psh|ack', seq: iss + 1, ack: 105, data: 'still here' });
    p.advance(5);
    p.send({ flags: 'ack' });
    p.expectNoSegment();

    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack', seq: iss + 11, ack: 105, len: 0 });
    expect(p.state).toBe('LAST-ACK');
    p.advance(5);
    p.send({ flags: 'ack', ack: iss + 12 });
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBeUndefined();
    expect(p.events.at(-1)).toBe(CLOSED_BITS);
    expect(p.stack.tcp.size).toBe(0);
    p.expectNoSegment();
  });

  it('acknowledges a retransmitted FIN in CLOSE-WAIT and LAST-ACK', () => {
    const p = TcpPeer.create();
    const iss = p.handshake();
    p.send({ flags: 'fin|ack' });
    p.expectSegment({ flags: 'ack', ack: 102 });
    p.advance(200);
    p.send({ flags: 'fin|ack', seq: 101 });
    p.expectSegment({ flags: 'ack', seq: iss + 1, ack: 102 });
    expect(p.state).toBe('CLOSE-WAIT');
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack', seq: iss + 1 });
    p.send({ flags: 'fin|ack', seq: 101, ack: iss + 1 });
    p.expectSegment({ flags: 'ack', seq: iss + 2, ack: 102 });
    expect(p.state).toBe('LAST-ACK');
  });

  it('ignores data the peer sends after its FIN', () => {
    const p = TcpPeer.create();
    p.handshake();
    p.send({ flags: 'fin|ack' });
    p.expectSegment({ flags: 'ack', ack: 102 });
    p.send({ flags: 'psh|ack', data: 'late' });
    expect(p.conn!.readableLength).toBe(0);
    expect(p.state).toBe('CLOSE-WAIT');
  });
});

describe('the app closes first (active close)', () => {
  it('FIN-WAIT-1 → FIN-WAIT-2 with peer data still delivered → TIME-WAIT → CLOSED', () => {
    const p = TcpPeer.create();
    const iss = p.handshake();
    p.app((c) => {
      c.write(new TextEncoder().encode('request'), false);
      c.shutdown();
    });
    // Data and FIN in one segment.
    p.expectSegment({ flags: 'fin|psh|ack', seq: iss + 1, data: 'request' });
    expect(p.state).toBe('FIN-WAIT-1');
    expect(p.conn!.writableLength).toBe(0);
    expect(p.appWrite('more')).toBe(0);

    p.advance(5);
    p.send({ flags: 'ack', ack: iss + 9 });
    expect(p.state).toBe('FIN-WAIT-2');
    p.expectNoSegment();

    // The peer's half is still open.
    p.advance(5);
    p.send({ flags: 'psh|ack', data: 'response' });
    p.expectSegment({ flags: 'ack', seq: iss + 9, ack: 101 + 8 });
    expect(text(p.appRead())).toBe('response');
    // No FIN-WAIT-2 timeout while the owner may read (see input.ts: Linux's tcp_fin_timeout is
    // for orphaned sockets only).
    p.advance(120_000);
    expect(p.state).toBe('FIN-WAIT-2');

    p.send({ flags: 'fin|ack' });
    p.expectSegment({ flags: 'ack', seq: iss + 9, ack: 101 + 8 + 1 });
    expect(p.state).toBe('TIME-WAIT');
    expect(p.conn!.readEnded).toBe(true);
    p.advance(2000);
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBeUndefined();
    expect(p.stack.tcp.size).toBe(0);
    p.expectNoSegment();
  });

  it('goes from FIN-WAIT-1 straight to TIME-WAIT on a FIN that acknowledges ours', () => {
    const p = TcpPeer.create();
    const iss = p.handshake();
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack', seq: iss + 1 });
    p.send({ flags: 'fin|ack', ack: iss + 2 });
    p.expectSegment({ flags: 'ack', seq: iss + 2, ack: 102 });
    expect(p.state).toBe('TIME-WAIT');
  });

  it('shuts down after the queued data: the FIN follows the last byte', () => {
    const p = TcpPeer.create();
    const iss = p.handshake({ mss: 1000 });
    p.app((c) => {
      c.write(new Uint8Array(2500), false);
      c.shutdown();
    });
    const segs = p.segments();
    expect(segs.map((s) => [s.flags, s.seq - iss, s.payload.length])).toEqual([
      ['ack', 1, 1000],
      ['ack', 1001, 1000],
      ['fin|psh|ack', 2001, 500],
    ]);
  });

  it('retransmits an unacknowledged FIN at the RTO, backing off', () => {
    const p = TcpPeer.create();
    const iss = p.handshake();
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack', seq: iss + 1 });
    const rto = p.conn!.rtt.rtoMs;
    p.advance(rto - 1);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ flags: 'fin|ack', seq: iss + 1, ack: 101 });
    p.advance(2 * rto - 1);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ flags: 'fin|ack', seq: iss + 1 });
    p.send({ flags: 'ack', ack: iss + 2 });
    expect(p.state).toBe('FIN-WAIT-2');
    p.advance(60_000);
    p.expectNoSegment();
  });
});

describe('closing before the handshake completes', () => {
  it('queues data and FIN written in SYN-RECEIVED until the last ACK', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100, mss: 1460 });
    const iss = p.expectSegment({ flags: 'syn|ack' }).seq;
    p.app((c) => {
      c.write(new TextEncoder().encode('banner'), false);
      c.shutdown();
    });
    p.expectNoSegment();
    expect(p.state).toBe('SYN-RECEIVED');
    p.send({ flags: 'ack', ack: iss + 1 });
    p.expectSegment({ flags: 'fin|psh|ack', seq: iss + 1, data: 'banner' });
    expect(p.state).toBe('FIN-WAIT-1');
  });

  it('aborts silently when shut down while the decision is pending', () => {
    const p = TcpPeer.create({ accept: 'manual' });
    p.send({ flags: 'syn', seq: 100 });
    p.appShutdown();
    p.expectNoSegment();
    expect(p.state).toBe('CLOSED');
  });
});

describe('simultaneous close (RFC 9293 §3.6 case 2)', () => {
  it('FIN-WAIT-1 → CLOSING → TIME-WAIT', () => {
    const p = TcpPeer.create();
    const iss = p.handshake();
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack', seq: iss + 1, ack: 101 });
    // The peer's FIN crossed ours: it does not acknowledge our FIN yet.
    p.send({ flags: 'fin|ack', ack: iss + 1 });
    p.expectSegment({ flags: 'ack', seq: iss + 2, ack: 102 });
    expect(p.state).toBe('CLOSING');
    p.advance(3);
    p.send({ flags: 'ack', ack: iss + 2 });
    expect(p.state).toBe('TIME-WAIT');
    p.expectNoSegment();
    p.advance(2000);
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBeUndefined();
  });

  it('retransmits our FIN from CLOSING until it is acknowledged', () => {
    const p = TcpPeer.create();
    const iss = p.handshake();
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack' });
    p.send({ flags: 'fin|ack', ack: iss + 1 });
    p.expectSegment({ flags: 'ack', ack: 102 });
    p.advance(p.conn!.rtt.rtoMs);
    p.expectSegment({ flags: 'fin|ack', seq: iss + 1, ack: 102 });
    expect(p.state).toBe('CLOSING');
  });
});

describe('TIME-WAIT', () => {
  function timeWait(timeWaitMs = 5000): { p: TcpPeer; iss: number } {
    const p = TcpPeer.create({ stack: { tcp: { timeWaitMs } } });
    const iss = p.handshake();
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack' });
    p.send({ flags: 'fin|ack', ack: iss + 2 });
    p.expectSegment({ flags: 'ack', ack: 102 });
    expect(p.state).toBe('TIME-WAIT');
    return { p, iss };
  }

  it('lasts timeWaitMs, then frees the four-tuple', () => {
    const { p } = timeWait(5000);
    p.advance(4999);
    expect(p.state).toBe('TIME-WAIT');
    expect(p.stack.tcp.size).toBe(1);
    p.advance(1);
    expect(p.state).toBe('CLOSED');
    expect(p.stack.tcp.size).toBe(0);
    expect(p.events.at(-1)).toBe(CLOSED_BITS);
  });

  it('acknowledges a retransmitted FIN and restarts the timer (RFC 9293 §3.10.7.4)', () => {
    const { p, iss } = timeWait(5000);
    p.advance(3000);
    p.send({ flags: 'fin|ack', seq: 101, ack: iss + 2 });
    p.expectSegment({ flags: 'ack', seq: iss + 2, ack: 102 });
    p.advance(4999);
    expect(p.state).toBe('TIME-WAIT');
    p.advance(1);
    expect(p.state).toBe('CLOSED');
  });

  it('does not leave TIME-WAIT on stray ACKs', () => {
    const { p, iss } = timeWait(5000);
    p.send({ flags: 'ack', seq: 102, ack: iss + 2 });
    p.expectNoSegment();
    expect(p.state).toBe('TIME-WAIT');
  });

  it('starts a new connection on a SYN with a higher sequence number (RFC 6191, as Linux)', () => {
    const { p } = timeWait(60_000);
    const old = p.conn!;
    p.advance(100);
    p.send({ flags: 'syn', seq: 100_000, mss: 1460 });
    expect(old.state).toBe('CLOSED');
    expect(p.conn).not.toBe(old);
    p.expectSegment({ flags: 'syn|ack', ack: 100_001 });
    p.send({ flags: 'ack' });
    expect(p.state).toBe('ESTABLISHED');
    expect(p.stack.tcp.size).toBe(1);
  });

  it('starts a new connection on a SYN with a lower sequence number but a newer timestamp (RFC 6191 §2, Linux)', () => {
    const p = TcpPeer.create({ stack: { tcp: { timeWaitMs: 60_000 } } });
    const iss = p.handshake({ mss: 1460, ts: [5000, 0] });
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack' });
    p.send({ flags: 'fin|ack', ack: iss + 2 });
    p.expectSegment({ flags: 'ack' });
    expect(p.state).toBe('TIME-WAIT');
    const old = p.conn!;
    p.advance(100);
    p.send({ flags: 'syn', seq: 50, mss: 1460, ts: [6000, 0] });
    expect(old.state).toBe('CLOSED');
    p.expectSegment({ flags: 'syn|ack', ack: 51 });
    expect(p.state).toBe('SYN-RECEIVED');
  });

  it('answers a SYN with an old sequence number and an old timestamp with an ACK', () => {
    const p = TcpPeer.create({ stack: { tcp: { timeWaitMs: 60_000 } } });
    const iss = p.handshake({ mss: 1460, ts: [5000, 0] });
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack' });
    p.send({ flags: 'fin|ack', ack: iss + 2 });
    p.expectSegment({ flags: 'ack' });
    p.send({ flags: 'syn', seq: 50, mss: 1460, ts: [5000, 0] });
    p.expectSegment({ flags: 'ack', ack: 102 });
    expect(p.state).toBe('TIME-WAIT');
  });

  it('answers a SYN with an old sequence number with an ACK and stays', () => {
    const { p, iss } = timeWait(60_000);
    const old = p.conn!;
    p.send({ flags: 'syn', seq: 50, mss: 1460 });
    p.expectSegment({ flags: 'ack', seq: iss + 2, ack: 102 });
    expect(p.conn).toBe(old);
    expect(old.state).toBe('TIME-WAIT');
  });
});

describe('a FIN ahead of missing data', () => {
  it('waits for the hole to fill, then takes the FIN: CLOSE-WAIT', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: 1460, sackPermitted: true });
    p.send({ flags: 'fin|psh|ack', seq: 104, data: 'def' });
    p.expectSegment({ flags: 'ack', ack: 101, sack: [[104, 107]] });
    expect(p.state).toBe('ESTABLISHED');
    expect(p.conn!.readableLength).toBe(0);
    p.send({ flags: 'ack', seq: 101, data: 'abc' });
    p.expectSegment({ flags: 'ack', ack: 108, sack: [] });
    expect(p.state).toBe('CLOSE-WAIT');
    expect(text(p.appRead())).toBe('abcdef');
    expect(p.conn!.readEnded).toBe(true);
  });

  it('also in FIN-WAIT-2: the late FIN ends in TIME-WAIT', () => {
    const p = TcpPeer.create();
    const iss = p.handshake();
    p.appShutdown();
    p.expectSegment({ flags: 'fin|ack' });
    p.send({ flags: 'ack', ack: iss + 2 });
    expect(p.state).toBe('FIN-WAIT-2');
    p.send({ flags: 'fin|ack', seq: 103, data: 'yz' });
    p.expectSegment({ flags: 'ack', ack: 101 });
    expect(p.state).toBe('FIN-WAIT-2');
    p.send({ flags: 'ack', seq: 101, data: 'wx' });
    p.expectSegment({ flags: 'ack', ack: 106 });
    expect(p.state).toBe('TIME-WAIT');
    expect(text(p.appRead())).toBe('wxyz');
  });
});
