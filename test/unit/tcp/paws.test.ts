/**
 * PAWS, protection against wrapped sequences (RFC 7323 §5): a segment whose TSval is older than
 * TS.Recent is a duplicate from the past and is dropped with an ACK; RST is exempt; TS.Recent
 * follows the §4.3 update rule and expires after 24 idle days (§5.5).
 */
import { describe, expect, it } from 'vitest';
import { TcpPeer } from './harness.js';

/** An established connection with timestamps; TS.Recent is 5000 afterwards. */
function pawsPeer(): { p: TcpPeer; iss: number } {
  const p = TcpPeer.create();
  p.send({ flags: 'syn', seq: 100, mss: 1460, ts: [4000, 0] });
  const synAck = p.expectSegment({ flags: 'syn|ack', ts: true });
  p.send({ flags: 'ack', ts: [5000, synAck.ts![0]] });
  expect(p.state).toBe('ESTABLISHED');
  expect(p.conn!.tsRecent).toBe(5000);
  p.advance(10);
  return { p, iss: synAck.seq };
}

describe('PAWS (RFC 7323 §5.3)', () => {
  it('drops data with a TSval older than TS.Recent and answers with an ACK', () => {
    const { p, iss } = pawsPeer();
    p.send({ flags: 'psh|ack', data: 'old', ts: [4998, 0] });
    const ack = p.expectSegment({ flags: 'ack', seq: iss + 1, ack: 101, ts: true });
    // The ACK echoes TS.Recent, not the rejected TSval.
    expect(ack.ts![1]).toBe(5000);
    expect(p.conn!.readableLength).toBe(0);
    expect(p.drops('tcp-paws')).toBe(1);
    // The same bytes with a current timestamp are taken.
    p.send({ flags: 'psh|ack', seq: 101, data: 'new', ts: [5001, 0] });
    p.expectSegment({ flags: 'ack', ack: 104 });
    expect(p.conn!.readableLength).toBe(3);
  });

  it('tolerates a TSval one tick older than TS.Recent, as Linux (TCP_PAWS_WINDOW)', () => {
    const { p } = pawsPeer();
    p.send({ flags: 'psh|ack', data: 'late', ts: [4999, 0] });
    p.expectSegment({ flags: 'ack', ack: 105 });
    expect(p.drops('tcp-paws')).toBe(0);
  });

  it('takes a TSval equal to TS.Recent', () => {
    const { p } = pawsPeer();
    p.send({ flags: 'psh|ack', data: 'same', ts: [5000, 0] });
    p.expectSegment({ flags: 'ack', ack: 105 });
    expect(p.drops('tcp-paws')).toBe(0);
  });

  it('drops an old pure ACK without acting on it', () => {
    const { p, iss } = pawsPeer();
    p.appWrite(new Uint8Array(100));
    p.expectSegment({ flags: 'psh|ack', len: 100 });
    p.send({ flags: 'ack', ack: iss + 101, ts: [1, 0] });
    p.expectSegment({ flags: 'ack', ack: 101 });
    expect(p.conn!.sndUna).toBe(iss + 1);
    expect(p.drops('tcp-paws')).toBe(1);
  });

  it('drops an old FIN', () => {
    const { p } = pawsPeer();
    p.send({ flags: 'fin|ack', ts: [100, 0] });
    p.expectSegment({ flags: 'ack', ack: 101 });
    expect(p.state).toBe('ESTABLISHED');
  });

  it('exempts RST: an exact RST with an old TSval still resets', () => {
    const { p } = pawsPeer();
    p.send({ flags: 'rst', seq: 101, ts: [1, 0] });
    p.expectNoSegment();
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBe('ECONNRESET');
  });

  it('compares TSvals modulo 2^32: a wrapped clock is newer, not older', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100, mss: 1460, ts: [0xfffffff0, 0] });
    const synAck = p.expectSegment({ flags: 'syn|ack' });
    p.send({ flags: 'ack', ts: [0xfffffff8, synAck.ts![0]] });
    p.send({ flags: 'psh|ack', data: 'wrap', ts: [0x10, 0] });
    p.expectSegment({ flags: 'ack', ack: 105 });
    expect(p.conn!.tsRecent).toBe(0x10);
    p.send({ flags: 'psh|ack', data: 'back', ts: [0xfffffff9, 0] });
    p.expectSegment({ flags: 'ack', ack: 105 });
    expect(p.drops('tcp-paws')).toBe(1);
  });

  it('forgets TS.Recent after 24 idle days (§5.5): an old TSval is taken again', () => {
    const { p } = pawsPeer();
    p.advance(25 * 24 * 3600 * 1000);
    p.send({ flags: 'psh|ack', data: 'late', ts: [10, 0] });
    p.expectSegment({ flags: 'ack', ack: 105 });
    expect(p.drops('tcp-paws')).toBe(0);
    expect(p.conn!.tsRecent).toBe(10);
  });

  it('does not apply without negotiated timestamps', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: 1460 });
    p.send({ flags: 'psh|ack', data: 'a', ts: [5000, 0] });
    p.send({ flags: 'psh|ack', data: 'b', ts: [1, 0] });
    expect(p.conn!.readableLength).toBe(2);
  });
});

describe('TS.Recent update (RFC 7323 §4.3)', () => {
  it('advances with in-order segments only', () => {
    const { p } = pawsPeer();
    p.send({ flags: 'psh|ack', data: 'a', ts: [6000, 0] });
    p.expectSegment({ flags: 'ack' });
    expect(p.conn!.tsRecent).toBe(6000);
    // Out of order (SEG.SEQ > Last.ACK.sent): its newer TSval is not remembered...
    p.send({ flags: 'ack', seq: 200, data: 'z', ts: [9000, 0] });
    p.expectSegment({ flags: 'ack', ack: 102 });
    expect(p.conn!.tsRecent).toBe(6000);
    // ...so an in-order segment with an older TSval than that one is not a PAWS victim.
    p.send({ flags: 'psh|ack', data: 'b', ts: [7000, 0] });
    p.expectSegment({ flags: 'ack', ack: 103 });
    expect(p.conn!.readableLength).toBe(2);
    expect(p.conn!.tsRecent).toBe(7000);
    expect(p.drops('tcp-paws')).toBe(0);
  });

  it('is not moved by a segment PAWS rejected, nor by an unacceptable one', () => {
    const { p } = pawsPeer();
    p.send({ flags: 'psh|ack', data: 'x', ts: [4000, 0] });
    p.expectSegment({ flags: 'ack' });
    expect(p.conn!.tsRecent).toBe(5000);
    p.send({ flags: 'psh|ack', seq: 101 + 10_000_000, data: 'y', ts: [8000, 0] });
    p.expectSegment({ flags: 'ack', ack: 101 });
    expect(p.conn!.tsRecent).toBe(5000);
  });

  it('takes the TSval of a duplicate segment at Last.ACK.sent (a retransmission)', () => {
    const { p } = pawsPeer();
    p.send({ flags: 'psh|ack', data: 'abc', ts: [6000, 0] });
    p.expectSegment({ flags: 'ack', ack: 104 });
    // The peer retransmits from 101 (our ACK was lost) with a newer clock: SEG.SEQ <= Last.ACK.sent.
    p.send({ flags: 'psh|ack', seq: 101, data: 'abcdef', ts: [6100, 0] });
    const ack = p.expectSegment({ flags: 'ack', ack: 107 });
    expect(ack.ts![1]).toBe(6100);
  });
});
