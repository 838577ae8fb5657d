/**
 * The idle footprint of a core connection: once it has been quiet for IDLE_TRIM_MS (nothing sent,
 * received or buffered), its send and receive buffers hold no blocks and no timer is left armed
 * for it, while a busy connection, unread data and unacknowledged data keep theirs. Packet traces
 * in virtual time; no RSS is measured here (see test/memory/idle-footprint.mjs for that).
 */
import { describe, expect, it } from 'vitest';
import { MIN_BLOCK } from '../../../src/stack/tcp/blocks.js';
import type { TcpConnection } from '../../../src/stack/tcp/connection.js';
import { IDLE_TRIM_MS } from '../../../src/stack/tcp/timers.js';
import { pattern } from '../stack/packets.js';
import { TcpPeer } from './harness.js';

/** Bytes held by the connection's buffers. */
function held(c: TcpConnection): number {
  return c.sendBuffer.storageBytes + c.recvBuffer.storageBytes;
}

/** An established connection that has echoed `data` once: peer → stack, read, written back, acked. */
function echoed(p: TcpPeer, data: Uint8Array | string = 'x'): TcpConnection {
  p.handshake();
  const c = p.conn!;
  p.send({ data });
  const got = p.appRead();
  expect(got).toBeDefined();
  expect(p.appWrite(got!)).toBe(got!.length);
  // The echo (an ACK may go out ahead of it: the read reopened the window).
  const sent = p.segments().filter((seg) => seg.payload.length > 0);
  expect(sent.map((seg) => seg.payload.length)).toEqual([got!.length]);
  p.send({});
  return c;
}

describe('idle trim of the buffers', () => {
  it('releases both buffers after an exchange and a quiet period, sending nothing', () => {
    const p = TcpPeer.create();
    const c = echoed(p);
    expect(c.sendBuffer.storageBytes).toBeGreaterThan(0);
    expect(c.recvBuffer.storageBytes).toBeGreaterThan(0);
    p.advance(IDLE_TRIM_MS - 1);
    expect(held(c)).toBeGreaterThan(0);
    p.advance(1);
    expect(held(c)).toBe(0);
    p.expectNoSegment();
    // Nothing left armed: an idle connection costs no timer either.
    expect(p.stack.nextDeadline()).toBeUndefined();
    expect(c.state).toBe('ESTABLISHED');
  });

  it('keeps working after a trim: blocks come back on demand, bytes intact', () => {
    const p = TcpPeer.create();
    const c = echoed(p);
    p.advance(IDLE_TRIM_MS * 3);
    expect(held(c)).toBe(0);
    const data = pattern(3000);
    p.send({ data: data.subarray(0, 1460) });
    p.send({ data: data.subarray(1460) });
    p.expectSegment({ flags: 'ack' });
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) {
      const chunk = p.appRead();
      if (chunk === undefined) break;
      chunks.push(chunk.slice());
    }
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(data));
    expect(p.appWrite(data)).toBe(data.length);
    // Acknowledge each flight (Nagle holds the last partial segment until then).
    const out: Uint8Array[] = [];
    for (let i = 0; i < 10 && c.sendBuffer.length > 0; i++) {
      for (const seg of p.segments()) out.push(seg.payload);
      p.send({});
    }
    expect(Buffer.concat(out)).toEqual(Buffer.from(data));
    p.advance(IDLE_TRIM_MS);
    expect(held(c)).toBe(0);
  });

  it('starts block sizes again from MIN_BLOCK after a trim: a quiet connection stays small', () => {
    const p = TcpPeer.create();
    const c = echoed(p);
    // Grow both buffers' block sizes with a burst each way.
    const data = pattern(1460);
    for (let i = 0; i < 40; i++) {
      p.send({ data });
      while (p.appRead() !== undefined);
    }
    for (let i = 0; i < 40; i++) {
      p.appWrite(data);
      p.segments();
      p.send({});
    }
    p.advance(IDLE_TRIM_MS);
    expect(held(c)).toBe(0);
    // One small exchange after the quiet period costs one first-size block per buffer.
    p.send({ data: 'z' });
    p.appWrite(p.appRead()!);
    p.segments();
    p.send({});
    expect(c.recvBuffer.storageBytes).toBe(MIN_BLOCK);
    expect(c.sendBuffer.storageBytes).toBe(MIN_BLOCK);
  });

  it('waits for quiet: a connection exchanging more often than IDLE_TRIM_MS keeps its blocks', () => {
    const p = TcpPeer.create();
    const c = echoed(p);
    for (let round = 0; round < 10; round++) {
      p.advance(IDLE_TRIM_MS / 2);
      expect(held(c), `round ${round}`).toBeGreaterThan(0);
      p.send({ data: 'y' });
      p.appWrite(p.appRead()!);
      p.segments();
      p.send({});
    }
    p.advance(IDLE_TRIM_MS);
    expect(held(c)).toBe(0);
  });

  it('never drops unread data, however long it waits', () => {
    const p = TcpPeer.create();
    p.handshake();
    const c = p.conn!;
    p.send({ data: 'abcdef' });
    expect(p.appRead(2)).toEqual(new TextEncoder().encode('ab'));
    p.advance(IDLE_TRIM_MS * 20);
    expect(c.recvBuffer.storageBytes).toBeGreaterThan(0);
    expect(p.appRead()).toEqual(new TextEncoder().encode('cdef'));
    p.advance(IDLE_TRIM_MS);
    expect(held(c)).toBe(0);
  });

  it('keeps unacknowledged data until the ACK, then trims once quiet', () => {
    const p = TcpPeer.create();
    p.handshake();
    const c = p.conn!;
    expect(p.appWrite('hello')).toBe(5);
    expect(p.segments().map((seg) => new TextDecoder().decode(seg.payload))).toEqual(['hello']);
    // No ACK: the data is retransmitted, never trimmed.
    p.advance(IDLE_TRIM_MS * 4);
    const resent = p.segments();
    expect(resent.length).toBeGreaterThan(0);
    expect(resent[0]!.payload).toEqual(new TextEncoder().encode('hello'));
    expect(c.sendBuffer.storageBytes).toBeGreaterThan(0);
    p.send({});
    expect(c.sendBuffer.length).toBe(0);
    p.advance(IDLE_TRIM_MS);
    expect(held(c)).toBe(0);
  });

  it('holds no buffer bytes for 100 connections that each echoed once and went quiet', () => {
    const first = TcpPeer.create({ srcPort: 30000 });
    const conns = [echoed(first)];
    for (let i = 1; i < 100; i++) conns.push(echoed(first.sibling(30000 + i)));
    expect(conns.reduce((sum, c) => sum + held(c), 0)).toBeGreaterThan(0);
    first.advance(IDLE_TRIM_MS);
    expect(conns.reduce((sum, c) => sum + held(c), 0)).toBe(0);
    expect(first.stack.nextDeadline()).toBeUndefined();
  });
});
