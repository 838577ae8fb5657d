/**
 * Flow control as packet traces: the peer's zero window and our persist probes (RFC 9293
 * §3.8.6.1), our advertised window following the application's reads (a slow reader closes it),
 * window updates after reads (Linux's "at least doubled" rule), the right edge never moving left
 * (§3.8.6.2.2), receiver silly-window avoidance, and receive-buffer auto-tuning.
 */
import { describe, expect, it } from 'vitest';
import type { StackOptions } from '../../../src/stack/options.js';
import { seqGe } from '../../../src/stack/wire/seq.js';
import { pattern } from '../stack/packets.js';
import { type SynSpec, TcpPeer } from './harness.js';

/** An established connection; data from the stack starts at `una`, from the peer at `irs1`. */
function open(stack: StackOptions = {}, syn: SynSpec = { mss: 1000 }) {
  const p = TcpPeer.create({ stack });
  const iss = p.handshake(syn);
  return { p, una: (iss + 1) >>> 0, irs1: p.seq };
}

/** Reads everything the application can read; returns the byte count. */
function readAll(p: TcpPeer): number {
  let n = 0;
  for (let i = 0; i < 10_000; i++) {
    const chunk = p.appRead();
    if (chunk === undefined) break;
    n += chunk.length;
  }
  return n;
}

/** A 4096-byte receive buffer that never grows. */
const SMALL: StackOptions = { tcp: { recvBufferBytes: 4096, recvBufferMaxBytes: 4096 } };

describe("the peer's zero window: persist timer (RFC 9293 §3.8.6.1)", () => {
  it('probes with SEQ = SND.UNA - 1, backing off, until the window opens', () => {
    const { p, una } = open();
    p.send({ window: 0 });
    p.appWrite('hello');
    p.expectNoSegment();
    // The persist timer starts at the RTO (1 s here) and doubles like it.
    for (const gap of [1000, 2000, 4000, 8000]) {
      p.advance(gap - 1);
      p.expectNoSegment();
      p.advance(1);
      p.expectSegment({ flags: 'ack', seq: una - 1, len: 0 });
      p.send({ window: 0 }); // the answer: still closed
    }
    expect(p.state).toBe('ESTABLISHED');
    expect(p.stack.stats.tcpRetransmits).toBe(0);
    // The window opens: the data goes at once, and probing stops.
    p.send({ window: 1000 });
    p.expectSegment({ flags: 'psh|ack', seq: una, data: 'hello' });
    p.send({ ack: una + 5 });
    p.advance(60_000);
    p.expectNoSegment();
  });

  it('gives up on a peer that answers no probe for userTimeoutMs (Linux: tcp_probe_timer)', () => {
    const p = TcpPeer.create({ stack: { tcp: { userTimeoutMs: 10_000 } } });
    const una = (p.handshake({ mss: 1000 }) + 1) >>> 0;
    p.send({ window: 0 });
    p.appWrite('stuck');
    // Probes at 1, 3 and 7 s after the last segment from the peer; at 15 s it has been silent
    // for more than the user timeout: RST and ETIMEDOUT instead of a fourth probe.
    for (const gap of [1000, 2000, 4000]) {
      p.advance(gap);
      p.expectSegment({ flags: 'ack', seq: una - 1, len: 0 });
    }
    p.advance(8000);
    p.expectSegment({ flags: 'rst|ack', seq: una });
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBe('ETIMEDOUT');
    expect(p.drops('tcp-persist-timeout')).toBe(1);
  });

  it('keeps probing as long as the peer answers, past userTimeoutMs', () => {
    const p = TcpPeer.create({ stack: { tcp: { userTimeoutMs: 10_000, maxRtoMs: 4000 } } });
    const una = (p.handshake({ mss: 1000 }) + 1) >>> 0;
    p.send({ window: 0 });
    p.appWrite('wait');
    for (let t = 0; t < 60_000; t += 4000) {
      p.advance(4000);
      for (const s of p.segments()) expect(s.seq).toBe(una - 1);
      p.send({ window: 0 });
    }
    expect(p.state).toBe('ESTABLISHED');
  });

  it('resumes when a probe is answered with an open window', () => {
    const { p, una } = open();
    p.appWrite(pattern(2000));
    p.expectSegment({ seq: una, len: 1000 });
    p.expectSegment({ seq: una + 1000, len: 1000 });
    p.send({ ack: una + 2000, window: 0 });
    p.appWrite(pattern(3000));
    p.expectNoSegment();
    // The first ACK yielded an RTT sample of 0 ms: the persist timer starts at the minimum RTO.
    p.advance(200);
    p.expectSegment({ seq: una + 1999, len: 0 });
    p.send({ ack: una + 2000, window: 3000 });
    expect(p.segments().map((s) => s.payload.length)).toEqual([1000, 1000, 1000]);
  });

  it('sends what a window smaller than an MSS allows after the persist timeout (§3.8.6.2.1)', () => {
    const { p, una } = open();
    p.send({ window: 500 });
    p.appWrite(pattern(2000));
    // 500 bytes is below a full segment and below half the largest window (65535): sender SWS
    // avoidance waits, and with nothing in flight only the override timeout releases it.
    p.expectNoSegment();
    p.advance(999);
    p.expectNoSegment();
    p.advance(1);
    p.expectSegment({ seq: una, len: 500 });
    p.expectNoSegment();
    p.send({ ack: una + 500, window: 65535 });
    p.expectSegment({ seq: una + 500, len: 1000 });
    p.expectNoSegment(); // the 500-byte tail waits for that ACK (Nagle)
    p.send({ ack: una + 1500, window: 65535 });
    p.expectSegment({ seq: una + 1500, len: 500 });
  });

  it('keeps data within a window that shrank to zero with data in flight', () => {
    const { p, una } = open();
    p.appWrite(pattern(3000));
    expect(p.segments()).toHaveLength(3);
    p.send({ ack: una + 1000, window: 0 });
    p.appWrite('more');
    p.expectNoSegment();
    // The unacknowledged segments are retransmitted by the RTO, not probed.
    p.advance(10_000);
    for (const s of p.segments()) expect(s.seq).not.toBe(una + 3000);
  });
});

describe('our advertised window', () => {
  it('accepts data on the first segment after the handshake', () => {
    const { p, irs1 } = open(SMALL);
    p.send({ data: 'hello' });
    p.expectSegment({ flags: 'ack', ack: irs1 + 5, window: 4096 - 5 });
    expect(p.appRead()).toEqual(new TextEncoder().encode('hello'));
  });

  it('closes for a slow reader and refuses data beyond it', () => {
    const { p, irs1 } = open(SMALL);
    for (let i = 0; i < 4; i++) p.send({ data: pattern(1000) });
    p.expectSegment({ ack: irs1 + 2000, window: 2096 });
    p.expectSegment({ ack: irs1 + 4000, window: 96 });
    // 1000 bytes against 96 of window: the first 96 are taken (RFC 9293 §3.10.7.4 trims).
    p.send({ data: pattern(1000) });
    p.expectSegment({ ack: irs1 + 4096, window: 0 });
    expect(p.conn!.readableLength).toBe(4096);
    // Anything more is refused with an ACK of the zero window.
    p.send({ seq: irs1 + 4096, data: pattern(1000) });
    p.expectSegment({ ack: irs1 + 4096, window: 0 });
    p.send({ seq: irs1 + 5000, data: pattern(500) });
    p.expectSegment({ ack: irs1 + 4096, window: 0 });
    expect(p.conn!.readableLength).toBe(4096);
    expect(p.conn!.bytesReceived).toBe(4096);
  });

  it('reopens with a window update once reads at least double the window (Linux rule)', () => {
    const { p, irs1 } = open(SMALL);
    for (let i = 0; i < 4; i++) p.send({ data: pattern(1000) });
    p.send({ data: pattern(96) });
    p.segments();
    expect(p.app((c) => c.read(1000))?.length).toBe(1000);
    // 1000 free bytes: less than an MSS (receiver SWS avoidance), no update.
    p.expectNoSegment();
    expect(p.app((c) => c.read(1000))?.length).toBe(1000);
    p.expectSegment({ flags: 'ack', ack: irs1 + 4096, window: 2000 });
    // Reading 500 more (2500 free against an advertised 2000) is not a doubling.
    expect(p.app((c) => c.read(500))?.length).toBe(500);
    p.expectNoSegment();
    expect(p.app((c) => c.read(1500))?.length).toBe(1500);
    p.expectSegment({ flags: 'ack', ack: irs1 + 4096, window: 4000 });
    // Above half the buffer no read triggers an update; the next ACK carries the window.
    expect(readAll(p)).toBe(96);
    p.expectNoSegment();
    // The next ACK keeps the advertised edge: 96 more bytes are not worth moving it (SWS).
    p.send({ data: 'x' });
    p.expectSegment({ ack: irs1 + 4097, window: 3999 });
  });

  it('does not open the window by less than an MSS: receiver SWS avoidance (RFC 9293 §3.8.6.2.2)', () => {
    const { p, irs1 } = open(SMALL);
    for (let i = 0; i < 4; i++) p.send({ data: pattern(1000) });
    p.send({ data: pattern(96) });
    p.segments();
    p.app((c) => c.read(1000));
    p.expectNoSegment();
    // A zero-window probe from the peer is answered with a still-closed window.
    p.send({ seq: irs1 + 4095, data: new Uint8Array(0) });
    p.expectSegment({ ack: irs1 + 4096, window: 0 });
    // A byte in the (not yet advertised) space is refused too.
    p.send({ seq: irs1 + 4096, data: 'x' });
    p.expectSegment({ ack: irs1 + 4096, window: 0 });
    p.app((c) => c.read(500));
    p.expectSegment({ ack: irs1 + 4096, window: 1500 });
  });

  it('never moves the right edge left (RFC 9293 §3.8.6.2.2)', () => {
    const { p, irs1 } = open({ tcp: { recvBufferBytes: 20_000, recvBufferMaxBytes: 20_000 } });
    let edge = irs1 + 20_000; // the SYN-ACK's window
    // Odd sizes and partial reads, so that the free space changes by odd amounts.
    for (const size of [333, 1000, 77, 1000, 999, 5, 1000, 1000, 100, 1460, 1460, 1460]) {
      p.send({ data: pattern(size) });
      p.advance(40);
      if (size === 1000) p.app((c) => c.read(700));
      for (const s of p.segments()) {
        const e = (s.ack + s.window) >>> 0;
        expect(seqGe(e, edge), `right edge ${e - irs1} after ${edge - irs1}`).toBe(true);
        edge = e;
      }
    }
    // Everything up to the advertised edge is accepted.
    const room = (edge - p.seq) >>> 0;
    expect(room).toBeGreaterThan(0);
    p.send({ data: pattern(room) });
    expect(p.conn!.rcvNxt).toBe(edge);
  });

  it('with window scaling retracts the edge the peer sees by less than one scale unit (RFC 7323 §2.4)', () => {
    // RFC 7323 §2.4 / Appendix F: a scaled window field rounds down, so the edge the peer sees
    // can move left by up to 2^S - 1 bytes; the edge we accept to (rcvAdv) never does.
    // Linux rounds up instead (ALIGN in tcp_select_window), backed by receive-memory slack.
    const { p, irs1 } = open(
      { tcp: { recvBufferBytes: 100_000, recvBufferMaxBytes: 100_000 } },
      { mss: 1000, wscale: 0 },
    );
    const shift = p.conn!.rcvWscale;
    expect(shift).toBe(1);
    let seen = irs1 + 65_535; // the SYN-ACK's unscaled window
    let accepted = p.conn!.rcvAdv;
    for (const size of [333, 1000, 77, 1000, 999, 5, 1000, 1000, 100]) {
      p.send({ data: pattern(size) });
      p.advance(40);
      for (const s of p.segments()) {
        const e = (s.ack + s.window * 2 ** shift) >>> 0;
        expect(seqGe(e + 2 ** shift - 1, seen), `right edge ${e - irs1} after ${seen - irs1}`).toBe(true);
        seen = e;
      }
      expect(seqGe(p.conn!.rcvAdv, accepted)).toBe(true);
      accepted = p.conn!.rcvAdv;
    }
    for (let room = (seen - p.seq) >>> 0; room > 0; room = (seen - p.seq) >>> 0) {
      p.send({ data: pattern(Math.min(room, 1000)) });
    }
    expect(p.conn!.rcvNxt).toBe(seen);
  });
});

describe('receive-buffer auto-tuning', () => {
  /** Runs `rounds` RTTs of a peer filling the advertised window; returns the window per round. */
  function rounds(p: TcpPeer, shift: number, count: number, reader: boolean, rttMs = 50): number[] {
    let window = 16_384;
    const seen: number[] = [];
    for (let r = 0; r < count; r++) {
      // The peer's data echoes the TSval of the ACK that opened the window one RTT ago.
      const echo = p.lastStackTsVal;
      for (let sent = 0; sent + 1000 <= window; sent += 1000) {
        p.send({ data: pattern(1000), ts: [p.tsVal(), echo] });
      }
      if (reader) readAll(p);
      p.advance(rttMs);
      const acks = p.segments();
      if (acks.length > 0) window = acks[acks.length - 1]!.window * 2 ** shift;
      seen.push(window);
    }
    return seen;
  }

  it('grows the window for a fast reader, up to recvBufferMaxBytes', () => {
    const { p } = open(
      { tcp: { recvBufferBytes: 16_384, recvBufferMaxBytes: 128 * 1024 } },
      { mss: 1000, wscale: 7, ts: [1, 0] },
    );
    const windows = rounds(p, p.conn!.rcvWscale, 12, true);
    expect(windows[0]).toBeLessThanOrEqual(16_384);
    expect(Math.max(...windows)).toBeGreaterThan(4 * 16_384);
    expect(p.conn!.recvBufferSize).toBe(128 * 1024);
    expect(Math.max(...windows)).toBeLessThanOrEqual(128 * 1024);
  });

  it('does not grow the buffer of a reader that does not read', () => {
    const { p } = open(
      { tcp: { recvBufferBytes: 16_384, recvBufferMaxBytes: 256 * 1024 } },
      { mss: 1000, wscale: 7, ts: [1, 0] },
    );
    const windows = rounds(p, p.conn!.rcvWscale, 5, false);
    expect(windows[windows.length - 1]).toBeLessThan(1000);
    expect(p.conn!.recvBufferSize).toBe(16_384);
    expect(p.conn!.readableLength).toBeLessThanOrEqual(16_384);
  });
});
