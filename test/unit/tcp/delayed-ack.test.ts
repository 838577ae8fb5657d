/**
 * When the stack acknowledges, as packet traces (RFC 9293 §3.8.6.3, RFC 5681 §4.2): every second
 * full-sized segment at once, a lone one after delayedAckMs, out-of-order data and the segment
 * that fills a hole at once, one ACK for a batch of segments handled in one flush, and small
 * segments at once except in interactive mode past the quick-ACK count.
 */
import { describe, expect, it } from 'vitest';
import type { StackOptions } from '../../../src/stack/options.js';
import { QUICK_ACK_SEGMENTS } from '../../../src/stack/tcp/receive.js';
import { pattern } from '../stack/packets.js';
import { type SynSpec, TcpPeer } from './harness.js';

/** Full-sized: our receive MSS on a 1500-byte MTU (1500 - 40). */
const FULL = 1460;

function open(stack: StackOptions = {}, syn: SynSpec = { mss: 1460 }) {
  const p = TcpPeer.create({ stack });
  const iss = p.handshake(syn);
  return { p, una: (iss + 1) >>> 0, irs1: p.seq };
}

/** Hands every segment `build` sends to the stack before a single flush (one device batch). */
function batch(p: TcpPeer, build: () => void): void {
  const packets: Uint8Array[] = [];
  const sendRaw = p.sendRaw;
  p.sendRaw = (packet) => packets.push(packet.slice());
  try {
    build();
  } finally {
    p.sendRaw = sendRaw;
  }
  for (const packet of packets) p.stack.input(packet, p.now);
  p.stack.flush(p.now);
}

describe('delayed ACK', () => {
  it('acknowledges every second full-sized segment at once', () => {
    const { p, irs1 } = open();
    p.send({ data: pattern(FULL) });
    p.expectNoSegment();
    p.send({ data: pattern(FULL) });
    p.expectSegment({ flags: 'ack', ack: irs1 + 2 * FULL, len: 0 });
    p.send({ data: pattern(FULL) });
    p.expectNoSegment();
    p.send({ data: pattern(FULL) });
    p.expectSegment({ flags: 'ack', ack: irs1 + 4 * FULL, len: 0 });
    p.expectNoSegment();
  });

  it('acknowledges a lone segment after delayedAckMs (40 ms, like Linux)', () => {
    const { p, irs1 } = open();
    p.send({ data: pattern(FULL) });
    p.advance(39);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ flags: 'ack', ack: irs1 + FULL, len: 0 });
    p.advance(1000);
    p.expectNoSegment();
  });

  it('waits the configured delayedAckMs', () => {
    const { p, irs1 } = open({ tcp: { delayedAckMs: 200 } });
    p.send({ data: pattern(FULL) });
    p.advance(199);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ flags: 'ack', ack: irs1 + FULL });
  });

  it('acknowledges a small segment (under half an MSS) at once', () => {
    // Not a Linux rule (Linux delays it outside quick-ack mode): it spares a Nagle-limited peer
    // waiting out our delayed ACK before its next small write.
    const { p, irs1 } = open();
    p.send({ data: 'GET / HTTP/1.1\r\n\r\n' });
    p.expectSegment({ flags: 'ack', ack: irs1 + 18 });
  });

  it('piggybacks the ACK on data the application sends before the timer', () => {
    const { p, una, irs1 } = open();
    p.send({ data: pattern(FULL) });
    p.expectNoSegment();
    p.advance(10);
    p.appWrite('reply');
    p.expectSegment({ flags: 'psh|ack', seq: una, ack: irs1 + FULL, data: 'reply' });
    p.advance(100);
    p.expectNoSegment();
  });

  it('acknowledges out-of-order data at once, with a SACK block (RFC 5681 §4.2, RFC 2018)', () => {
    const { p, irs1 } = open({}, { mss: 1460, sackPermitted: true });
    p.send({ seq: irs1 + FULL, data: pattern(FULL) });
    p.expectSegment({ flags: 'ack', ack: irs1, sack: [[irs1 + FULL, irs1 + 2 * FULL]] });
    p.send({ seq: irs1 + 3 * FULL, data: pattern(FULL) });
    p.expectSegment({
      ack: irs1,
      sack: [
        [irs1 + 3 * FULL, irs1 + 4 * FULL],
        [irs1 + FULL, irs1 + 2 * FULL],
      ],
    });
    // Filling the first hole is acknowledged at once too, and reports what is left.
    p.send({ seq: irs1, data: pattern(FULL) });
    p.expectSegment({ ack: irs1 + 2 * FULL, sack: [[irs1 + 3 * FULL, irs1 + 4 * FULL]] });
    p.send({ seq: irs1 + 2 * FULL, data: pattern(FULL) });
    p.expectSegment({ ack: irs1 + 4 * FULL, sack: [] });
    p.expectNoSegment();
    expect(p.conn!.readableLength).toBe(4 * FULL);
  });

  it('acknowledges out-of-order data at once without SACK (duplicate ACK)', () => {
    const { p, irs1 } = open();
    p.send({ seq: irs1 + FULL, data: pattern(FULL) });
    p.expectSegment({ flags: 'ack', ack: irs1, sack: [] });
    p.send({ seq: irs1, data: pattern(FULL) });
    p.expectSegment({ flags: 'ack', ack: irs1 + 2 * FULL });
  });

  it('sends one ACK for a batch of segments handled before one flush', () => {
    const { p, irs1 } = open();
    batch(p, () => {
      for (let i = 0; i < 5; i++) p.send({ data: pattern(FULL) });
    });
    p.expectSegment({ flags: 'ack', ack: irs1 + 5 * FULL });
    p.expectNoSegment();
    // An odd segment left over is covered by the same ACK: no timer left behind.
    p.advance(100);
    p.expectNoSegment();
  });

  it('sends one ACK for a batch of out-of-order segments', () => {
    const { p, irs1 } = open({}, { mss: 1460, sackPermitted: true });
    batch(p, () => {
      for (let i = 1; i < 4; i++) p.send({ seq: irs1 + i * FULL, data: pattern(FULL) });
    });
    p.expectSegment({ ack: irs1, sack: [[irs1 + FULL, irs1 + 4 * FULL]] });
    p.expectNoSegment();
  });
});

describe('interactive mode (Linux "pingpong")', () => {
  /** The peer's small request. */
  function request(p: TcpPeer, i: number): void {
    p.send({ data: `request ${i}` });
  }

  it('after 16 quick ACKs, a small request in a request-response exchange waits for the answer to carry its ACK', () => {
    const { p, una } = open();
    let seq = una;
    for (let i = 0; i < QUICK_ACK_SEGMENTS; i++) {
      request(p, i);
      p.expectSegment({ flags: 'ack', ack: p.seq, len: 0 }); // quick-ACK mode
      p.advance(1);
      p.appWrite(`answer ${i}`);
      p.expectSegment({ flags: 'psh|ack', seq, data: `answer ${i}` });
      seq += `answer ${i}`.length;
    }
    request(p, 16);
    p.expectNoSegment();
    p.advance(1);
    p.appWrite('answer 16');
    p.expectSegment({ flags: 'psh|ack', seq, ack: p.seq, data: 'answer 16' });
    p.advance(100);
    p.expectNoSegment();
  });

  it('an answer later than the delayed-ACK time ends interactive mode: small segments are ACKed at once again', () => {
    const { p } = open();
    for (let i = 0; i < QUICK_ACK_SEGMENTS; i++) {
      request(p, i);
      p.expectSegment({ flags: 'ack', len: 0 });
      p.appWrite(`answer ${i}`);
      p.expectSegment({ data: `answer ${i}` });
    }
    request(p, 16);
    p.expectNoSegment();
    p.advance(40);
    p.expectSegment({ flags: 'ack', ack: p.seq, len: 0 });
    // A Nagle-limited writer's next piece is not kept waiting.
    p.send({ data: 'more' });
    p.expectSegment({ flags: 'ack', ack: p.seq, len: 0 });
  });

  it('a peer that only sends (we never answer) gets every small segment ACKed at once', () => {
    const { p } = open();
    for (let i = 0; i < 3 * QUICK_ACK_SEGMENTS; i++) {
      p.send({ data: `piece ${i}` });
      p.expectSegment({ flags: 'ack', ack: p.seq, len: 0 });
      p.advance(5);
    }
  });
});
