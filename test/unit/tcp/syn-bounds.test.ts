/**
 * Bounds on connection state (options.ts): half-open SYNs (awaiting the decision or the last ACK)
 * and connections in every state. Past a bound a SYN is dropped silently and counted, as Linux
 * drops SYNs on a full accept queue, so the client retries; room comes back as connections drain.
 */
import { describe, expect, it } from 'vitest';
import { TcpPeer } from './harness.js';

describe('maxPendingSyns', () => {
  it('drops SYNs past the bound, counted, and takes them again once one is accepted and completes', () => {
    const a = TcpPeer.create({ accept: 'manual', stack: { tcp: { maxPendingSyns: 2 } } });
    const b = a.sibling(40001);
    const c = a.sibling(40002);
    a.send({ flags: 'syn', seq: 100 });
    b.send({ flags: 'syn', seq: 100 });
    expect(a.stack.tcp.halfOpen).toBe(2);
    c.send({ flags: 'syn', seq: 100 });
    expect(c.conn).toBeUndefined();
    c.expectNoSegment();
    expect(c.drops('tcp-syn-backlog-full')).toBe(1);
    expect(a.stack.tcp.size).toBe(2);

    // Accepting is not enough: SYN-RECEIVED still counts as half-open.
    a.appAccept();
    const synAck = a.expectSegment({ flags: 'syn|ack' });
    c.advance(1000);
    c.send({ flags: 'syn', seq: 100 });
    expect(c.drops('tcp-syn-backlog-full')).toBe(2);

    // The handshake's last ACK frees the slot.
    a.send({ flags: 'ack', ack: synAck.seq + 1 });
    expect(a.state).toBe('ESTABLISHED');
    expect(a.stack.tcp.halfOpen).toBe(1);
    c.advance(2000);
    c.send({ flags: 'syn', seq: 100 });
    expect(c.state).toBe('SYN-PENDING');
    expect(a.stack.tcp.halfOpen).toBe(2);
    expect(c.drops('tcp-syn-backlog-full')).toBe(2);
  });

  it('frees the slot when a request is rejected, times out, or is reset', () => {
    const a = TcpPeer.create({
      accept: 'manual',
      stack: { tcp: { maxPendingSyns: 1, synDecisionTimeoutMs: 1000 } },
    });
    const b = a.sibling(40001);
    a.send({ flags: 'syn', seq: 100 });
    b.send({ flags: 'syn', seq: 100 });
    expect(b.conn).toBeUndefined();

    a.appReject('drop');
    b.send({ flags: 'syn', seq: 100 });
    expect(b.state).toBe('SYN-PENDING');
    expect(a.stack.tcp.halfOpen).toBe(1);

    // The decision timeout frees it.
    a.advance(1000);
    expect(b.state).toBe('CLOSED');
    expect(a.stack.tcp.halfOpen).toBe(0);

    // So does the client's RST.
    a.send({ flags: 'syn', seq: 500 });
    expect(a.stack.tcp.halfOpen).toBe(1);
    a.send({ flags: 'rst', seq: 501 });
    expect(a.stack.tcp.halfOpen).toBe(0);
  });

  it('frees the slot when the SYN-ACK retransmissions run out', () => {
    const a = TcpPeer.create({ stack: { tcp: { maxPendingSyns: 1, synAckRetries: 0 } } });
    const b = a.sibling(40001);
    a.send({ flags: 'syn', seq: 100 });
    a.expectSegment({ flags: 'syn|ack' });
    b.send({ flags: 'syn', seq: 100 });
    expect(b.drops('tcp-syn-backlog-full')).toBe(1);
    a.advance(1000);
    expect(a.state).toBe('CLOSED');
    b.send({ flags: 'syn', seq: 100 });
    b.expectSegment({ flags: 'syn|ack', ack: 101 });
  });
});

describe('maxConnections', () => {
  it('drops SYNs when the table is full, counted, until a connection goes away', () => {
    const a = TcpPeer.create({ stack: { tcp: { maxConnections: 2 } } });
    const b = a.sibling(40001);
    const c = a.sibling(40002);
    a.handshake();
    b.handshake();
    c.send({ flags: 'syn', seq: 100 });
    c.expectNoSegment();
    expect(c.conn).toBeUndefined();
    expect(c.drops('tcp-too-many-connections')).toBe(1);
    expect(a.stack.tcp.size).toBe(2);

    // Established connections never count as half-open.
    expect(a.stack.tcp.halfOpen).toBe(0);

    a.appAbort();
    a.expectSegment({ flags: 'rst|ack' });
    c.advance(1000);
    c.send({ flags: 'syn', seq: 100 });
    c.expectSegment({ flags: 'syn|ack', ack: 101 });
    expect(c.drops('tcp-too-many-connections')).toBe(1);
  });

  it('counts TIME-WAIT connections until they expire', () => {
    const a = TcpPeer.create({ stack: { tcp: { maxConnections: 1, timeWaitMs: 3000 } } });
    const b = a.sibling(40001);
    const iss = a.handshake();
    a.appShutdown();
    a.expectSegment({ flags: 'fin|ack' });
    a.send({ flags: 'fin|ack', ack: iss + 2 });
    a.expectSegment({ flags: 'ack' });
    expect(a.state).toBe('TIME-WAIT');
    b.send({ flags: 'syn', seq: 100 });
    expect(b.drops('tcp-too-many-connections')).toBe(1);
    b.advance(3000);
    expect(a.state).toBe('CLOSED');
    b.send({ flags: 'syn', seq: 100 });
    b.expectSegment({ flags: 'syn|ack' });
  });

  it('does not answer segments of the dropped SYN with anything but a RST once it retries elsewhere', () => {
    const a = TcpPeer.create({ stack: { tcp: { maxConnections: 1 } } });
    const b = a.sibling(40001);
    a.handshake();
    b.send({ flags: 'syn', seq: 100 });
    b.expectNoSegment();
    // The client gave up and sends something else: there is no connection to match.
    b.send({ flags: 'ack', seq: 101, ack: 1 });
    b.expectSegment({ flags: 'rst', seq: 1 });
  });
});
