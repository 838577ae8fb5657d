/**
 * Negotiated options at work after the handshake: window scaling both ways (RFC 7323 §2),
 * timestamps and the TS.Recent echo rule (RFC 7323 §3-4), SACK blocks for out-of-order data
 * (RFC 2018 §3-4), and malformed option lists (RFC 9293 §3.2).
 */
import { describe, expect, it } from 'vitest';
import { TcpPeer } from './harness.js';

const MSS = 1460;

describe('window scaling (RFC 7323 §2)', () => {
  it('scales our window field by the shift we offered', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS, wscale: 0 });
    p.send({ flags: 'psh|ack', data: new Uint8Array(100) });
    // 128 KiB buffer, 100 bytes held, shift 7 (our SYN-ACK's offer).
    p.expectSegment({ flags: 'ack', window: (128 * 1024 - 100) >>> 7 });
    p.appRead();
  });

  it('sends an unscaled window field, capped at 65535, without window scaling', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS });
    p.send({ flags: 'psh|ack', data: new Uint8Array(100) });
    p.expectSegment({ flags: 'ack', window: 65535 });
  });

  it("shifts the peer's window field by the peer's shift", () => {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS, wscale: 2, window: 1460 });
    expect(p.conn!.sndWnd).toBe(4 * MSS);
    p.appWrite(new Uint8Array(10_000));
    // The peer offered 1460 << 2 bytes: four full segments.
    expect(p.segments().map((s) => s.payload.length)).toEqual([MSS, MSS, MSS, MSS]);
    p.advance(10);
    // Everything acknowledged, window field 730 << 2: two more segments.
    p.send({ flags: 'ack', window: 730 });
    expect(p.conn!.sndWnd).toBe(2 * MSS);
    expect(p.segments().map((s) => s.payload.length)).toEqual([MSS, MSS]);
  });

  it('ignores the shift when only the peer offered it (both SYNs must carry it, §2.2)', () => {
    const p = TcpPeer.create({ stack: { tcp: { windowScaling: false } } });
    p.handshake({ mss: MSS, wscale: 4, window: 1000 });
    expect(p.conn!.sndWnd).toBe(1000);
  });
});

describe('timestamps (RFC 7323 §3-4)', () => {
  it('carries timestamps on every segment once negotiated, and echoes the latest in-order TSval', () => {
    const p = TcpPeer.create();
    const iss = p.handshake({ mss: MSS, ts: [5000, 0] });
    p.advance(50);
    p.send({ flags: 'psh|ack', data: 'abc', ts: [5050, 0] });
    const ack = p.expectSegment({ flags: 'ack', ack: 101 + 3, ts: true });
    expect(ack.ts![1]).toBe(5050);
    p.appWrite('reply');
    const data = p.expectSegment({ flags: 'psh|ack', seq: iss + 1, ts: true });
    expect(data.ts![1]).toBe(5050);
  });

  it('ticks its TSval in milliseconds', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100, ts: [1, 0] });
    const synAck = p.expectSegment({ flags: 'syn|ack', ts: true });
    p.send({ flags: 'ack', ts: [2, synAck.ts![0]] });
    p.advance(250);
    p.send({ flags: 'psh|ack', data: 'x', ts: [3, synAck.ts![0]] });
    const ack = p.expectSegment({ flags: 'ack' });
    expect((ack.ts![0] - synAck.ts![0]) >>> 0).toBe(250);
  });

  it('echoes the TSval of the earliest unacknowledged segment when ACKs are delayed (§4.3 case 1)', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS, ts: [5000, 0] });
    // A full-sized segment is not acknowledged at once; the second one is (RFC 9293 §3.8.6.3).
    p.send({ flags: 'ack', data: new Uint8Array(1448), ts: [6000, 0] });
    p.expectNoSegment();
    p.send({ flags: 'ack', data: new Uint8Array(1448), ts: [6001, 0] });
    const ack = p.expectSegment({ flags: 'ack', ack: 101 + 2 * 1448 });
    expect(ack.ts![1]).toBe(6000);
  });

  it('does not take the TSval of out-of-order data, but of the segment that fills the hole (§4.3 cases 2-3)', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS, ts: [5000, 0] });
    p.send({ flags: 'ack', seq: 101 + 100, data: new Uint8Array(100), ts: [7000, 0] });
    const dup = p.expectSegment({ flags: 'ack', ack: 101 });
    expect(dup.ts![1]).toBe(5000);
    p.send({ flags: 'ack', seq: 101, data: new Uint8Array(100), ts: [6000, 0] });
    const filled = p.expectSegment({ flags: 'ack', ack: 301 });
    expect(filled.ts![1]).toBe(6000);
  });

  it('ignores TSecr 0 and keeps working when the peer omits the option (Linux accepts it)', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS, ts: [5000, 0] });
    p.send({ flags: 'psh|ack', data: 'abc', ts: null });
    p.expectSegment({ flags: 'ack', ack: 104, ts: true });
    expect(p.appRead()?.length).toBe(3);
  });

  it('does not send timestamps when the SYN did not offer them', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS });
    p.send({ flags: 'psh|ack', data: 'abc', ts: [9, 9] });
    p.expectSegment({ flags: 'ack', ts: false });
  });
});

describe('SACK blocks (RFC 2018)', () => {
  function sackPeer(ts: boolean): TcpPeer {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS, sackPermitted: true, ...(ts ? { ts: [1000, 0] as [number, number] } : {}) });
    return p;
  }

  it('reports out-of-order data, the most recent block first (§4)', () => {
    const p = sackPeer(false);
    const base = 101;
    p.send({ flags: 'ack', seq: base + 1000, data: new Uint8Array(100) });
    p.expectSegment({ flags: 'ack', ack: base, sack: [[base + 1000, base + 1100]] });
    p.send({ flags: 'ack', seq: base + 2000, data: new Uint8Array(100) });
    p.expectSegment({
      flags: 'ack',
      ack: base,
      sack: [
        [base + 2000, base + 2100],
        [base + 1000, base + 1100],
      ],
    });
    // Data extending the older block makes it the most recent one.
    p.send({ flags: 'ack', seq: base + 1100, data: new Uint8Array(100) });
    p.expectSegment({
      flags: 'ack',
      ack: base,
      sack: [
        [base + 1000, base + 1200],
        [base + 2000, base + 2100],
      ],
    });
    // Filling the first hole leaves one block.
    p.send({ flags: 'ack', seq: base, data: new Uint8Array(1000) });
    p.expectSegment({ flags: 'ack', ack: base + 1200, sack: [[base + 2000, base + 2100]] });
    p.send({ flags: 'ack', seq: base + 1200, data: new Uint8Array(800) });
    p.expectSegment({ flags: 'ack', ack: base + 2100, sack: [] });
    expect(p.appRead()?.length).toBe(2100);
  });

  it('sends at most 3 blocks with timestamps and 4 without (§3, 40 option bytes)', () => {
    for (const [ts, max] of [
      [true, 3],
      [false, 4],
    ] as const) {
      const p = sackPeer(ts);
      for (let k = 1; k <= 5; k++) p.send({ flags: 'ack', seq: 101 + k * 200, data: new Uint8Array(100) });
      const last = p.segments().at(-1)!;
      expect(last.sack).toHaveLength(max);
      expect(last.sack[0]).toEqual([101 + 1000, 101 + 1100]);
    }
  });

  it('sends no SACK blocks unless SACK-permitted was negotiated', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS });
    p.send({ flags: 'ack', seq: 101 + 1000, data: new Uint8Array(100) });
    p.expectSegment({ flags: 'ack', ack: 101, sack: [] });
  });
});

describe('malformed options (RFC 9293 §3.2)', () => {
  const cases: [string, number[]][] = [
    ['an MSS option of length 3', [2, 3, 5, 0]],
    ['an option of length 0', [1, 1, 30, 0]],
    ['an option of length 1', [1, 1, 30, 1]],
    ['an option running past the header', [1, 1, 30, 8]],
    ['a kind byte with no length byte', [1, 1, 1, 30]],
    ['a timestamp option of length 8', [8, 8, 0, 0, 0, 1, 0, 0]],
    ['a SACK option with half a block', [1, 1, 5, 6, 0, 0, 0, 1]],
  ];
  for (const [name, bytes] of cases) {
    it(`drops a SYN with ${name}, silently`, () => {
      const p = TcpPeer.create();
      p.send({ flags: 'syn', seq: 100, rawOptions: Uint8Array.from(bytes) });
      p.expectNoSegment();
      expect(p.conn).toBeUndefined();
      expect(p.drops('tcp-bad-option-length')).toBe(1);
    });
  }

  it('drops a data segment with a malformed option: no data, no ACK', () => {
    const p = TcpPeer.create();
    p.handshake({ mss: MSS });
    p.send({ flags: 'psh|ack', data: 'abc', rawOptions: Uint8Array.from([1, 1, 30, 0]) });
    p.expectNoSegment();
    expect(p.conn!.readableLength).toBe(0);
    expect(p.drops('tcp-bad-option-length')).toBe(1);
  });

  it('skips unknown options by their length and accepts EOL padding (MUST-68)', () => {
    const p = TcpPeer.create();
    // MSS 1200, an unknown kind 30 of length 4, EOL, padding.
    p.send({
      flags: 'syn',
      seq: 100,
      rawOptions: Uint8Array.from([2, 4, 0x04, 0xb0, 30, 4, 9, 9, 0, 0, 0, 0]),
    });
    p.expectSegment({ flags: 'syn|ack', ack: 101 });
    expect(p.conn!.sndMss).toBe(1200);
  });
});
