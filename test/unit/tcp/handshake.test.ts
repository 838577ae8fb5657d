/**
 * Passive open (RFC 9293 §3.5, §3.10.7.2-4): option negotiation in the SYN-ACK, MSS from the MTU,
 * SYN-ACK retransmission and give-up, the accept/refuse decision before the SYN-ACK, and the
 * handshake's last ACK, as packet traces against a scripted peer.
 */
import { describe, expect, it } from 'vitest';
import { TcpEvent } from '../../../src/stack/tcp/state.js';
import { type SynSpec, TcpPeer } from './harness.js';

describe('the SYN-ACK mirrors the options the SYN offered', () => {
  // Our window shift covers the 4 MiB receive-buffer ceiling: 65535 << 7 >= 4 MiB (RFC 7323 §2.3).
  const cases: {
    name: string;
    syn: SynSpec;
    ws: number | null;
    sack: boolean;
    ts: boolean;
    sndMss: number;
  }[] = [
    { name: 'no options', syn: {}, ws: null, sack: false, ts: false, sndMss: 536 },
    { name: 'MSS only', syn: { mss: 1400 }, ws: null, sack: false, ts: false, sndMss: 1400 },
    {
      name: 'MSS + window scale',
      syn: { mss: 1460, wscale: 3 },
      ws: 7,
      sack: false,
      ts: false,
      sndMss: 1460,
    },
    {
      name: 'MSS + SACK',
      syn: { mss: 1460, sackPermitted: true },
      ws: null,
      sack: true,
      ts: false,
      sndMss: 1460,
    },
    // RFC 6691: the send MSS leaves room for the 12 option bytes carried on every segment.
    {
      name: 'MSS + timestamps',
      syn: { mss: 1460, ts: [5000, 0] },
      ws: null,
      sack: false,
      ts: true,
      sndMss: 1448,
    },
    {
      name: 'everything',
      syn: { mss: 1460, wscale: 7, sackPermitted: true, ts: [5000, 0] },
      ws: 7,
      sack: true,
      ts: true,
      sndMss: 1448,
    },
  ];
  for (const k of cases) {
    it(k.name, () => {
      const p = TcpPeer.create();
      p.send({ flags: 'syn', seq: 100, ...k.syn });
      const synAck = p.expectSegment({
        flags: 'syn|ack',
        ack: 101,
        mss: 1460,
        wscale: k.ws,
        sackPermitted: k.sack,
        ts: k.ts,
        // RFC 7323 §2.2: the window of a SYN-ACK is never scaled.
        window: 65535,
        len: 0,
        sack: [],
      });
      // RFC 7323 §3.2: the SYN-ACK echoes the SYN's TSval.
      if (k.ts) expect(synAck.ts?.[1]).toBe(5000);
      p.expectNoSegment();
      const c = p.conn!;
      expect(c.state).toBe('SYN-RECEIVED');
      expect([c.wsOk, c.sackOk, c.tsOk, c.sndMss]).toEqual([k.ws !== null, k.sack, k.ts, k.sndMss]);
      expect(c.sndWscale).toBe(k.syn.wscale ?? 0);
    });
  }

  it('clamps a window shift above 14 to 14 (RFC 7323 §2.3)', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100, mss: 1460, wscale: 15 });
    p.expectSegment({ flags: 'syn|ack', wscale: 7 });
    expect(p.conn!.sndWscale).toBe(14);
  });

  it('offers nothing it was configured not to, even when the SYN offers it', () => {
    const p = TcpPeer.create({ stack: { tcp: { windowScaling: false, sack: false, timestamps: false } } });
    p.send({ flags: 'syn', seq: 100, mss: 1460, wscale: 7, sackPermitted: true, ts: [1, 0] });
    p.expectSegment({ flags: 'syn|ack', wscale: null, sackPermitted: false, ts: false });
    expect(p.conn!.sndWscale).toBe(0);
  });
});

describe('MSS', () => {
  it('advertises the MTU less the IPv4 and TCP headers', () => {
    const p = TcpPeer.create({ stack: { mtu: 1400 } });
    p.send({ flags: 'syn', seq: 100, mss: 1460 });
    p.expectSegment({ flags: 'syn|ack', mss: 1360 });
    // We never send segments larger than we could receive ourselves.
    expect(p.conn!.sndMss).toBe(1360);
  });

  it('advertises the MTU less the IPv6 and TCP headers', () => {
    const p = TcpPeer.create({ ipv6: true });
    p.send({ flags: 'syn', seq: 100, mss: 1440 });
    p.expectSegment({ flags: 'syn|ack', mss: 1440 });
  });

  it('sends 536-byte segments to an IPv4 peer that gave no MSS (RFC 9293 §3.7.1)', () => {
    const p = TcpPeer.create();
    p.handshake({});
    p.app((c) => c.setNoDelay(true));
    p.appWrite(new Uint8Array(2000));
    const lens = p.segments().map((s) => s.payload.length);
    expect(lens).toEqual([536, 536, 536, 392]);
  });

  it('sends 1220-byte segments to an IPv6 peer that gave no MSS (RFC 8200 §5: 1280 - 60)', () => {
    const p = TcpPeer.create({ ipv6: true });
    p.handshake({});
    p.app((c) => c.setNoDelay(true));
    p.appWrite(new Uint8Array(2000));
    const segs = p.segments();
    expect(segs.map((s) => s.payload.length)).toEqual([1220, 780]);
    expect(segs.every((s) => s.ipv6)).toBe(true);
  });
});

describe('SYN-ACK retransmission', () => {
  it('backs off 1 s, 2 s, 4 s, 8 s, 16 s and gives up after synAckRetries (RFC 6298 §5.5)', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100, mss: 1460 });
    const iss = p.expectSegment({ flags: 'syn|ack' }).seq;
    let t = p.now;
    for (const rto of [1000, 2000, 4000, 8000, 16000]) {
      p.advance(rto - 1);
      p.expectNoSegment();
      p.advance(1);
      expect(p.now - t).toBe(rto);
      p.expectSegment({ flags: 'syn|ack', seq: iss, ack: 101, mss: 1460 });
      t = p.now;
    }
    expect(p.state).toBe('SYN-RECEIVED');
    // Retransmissions are exhausted (5, Linux's tcp_synack_retries): one more RTO, then silence.
    p.advance(32000 - 1);
    expect(p.state).toBe('SYN-RECEIVED');
    p.advance(1);
    p.expectNoSegment();
    expect(p.state).toBe('CLOSED');
    expect(p.drops('tcp-synack-timeout')).toBe(1);
    expect(p.events).toEqual([TcpEvent.SYN, TcpEvent.CLOSED | TcpEvent.READABLE | TcpEvent.WRITABLE]);
    expect(p.conn!.error).toBeUndefined();
    expect(p.stack.tcp.size).toBe(0);
    expect(p.stack.tcp.halfOpen).toBe(0);
  });

  it('honours a configured retry count', () => {
    const p = TcpPeer.create({ stack: { tcp: { synAckRetries: 1 } } });
    p.send({ flags: 'syn', seq: 100 });
    p.expectSegment({ flags: 'syn|ack' });
    p.advance(1000);
    p.expectSegment({ flags: 'syn|ack' });
    p.advance(2000);
    p.expectNoSegment();
    expect(p.state).toBe('CLOSED');
  });

  it('answers a retransmitted SYN with the same SYN-ACK', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100, mss: 1460, sackPermitted: true });
    const first = p.expectSegment({ flags: 'syn|ack' });
    p.advance(300);
    p.send({ flags: 'syn', seq: 100, mss: 1460, sackPermitted: true });
    p.expectSegment({ flags: 'syn|ack', seq: first.seq, ack: 101, mss: 1460, sackPermitted: true });
    expect(p.drops('tcp-syn-retransmit')).toBe(1);
    p.send({ flags: 'ack', ack: first.seq + 1 });
    expect(p.state).toBe('ESTABLISHED');
  });

  it('stops retransmitting once the handshake completes', () => {
    const p = TcpPeer.create();
    p.handshake();
    p.advance(200_000);
    p.expectNoSegment();
    expect(p.state).toBe('ESTABLISHED');
  });
});

describe('the accept decision (SYN-PENDING)', () => {
  it('sends no SYN-ACK until accept() and absorbs SYN retransmissions meanwhile', () => {
    const p = TcpPeer.create({ accept: 'manual' });
    p.send({ flags: 'syn', seq: 100, mss: 1460 });
    expect(p.events).toEqual([TcpEvent.SYN]);
    expect(p.state).toBe('SYN-PENDING');
    p.expectNoSegment();
    p.advance(1000);
    p.send({ flags: 'syn', seq: 100, mss: 1460 });
    p.advance(2000);
    p.send({ flags: 'syn', seq: 100, mss: 1460 });
    p.expectNoSegment();
    expect(p.drops('tcp-syn-retransmit-pending')).toBe(2);
    expect(p.events).toEqual([TcpEvent.SYN]);
    p.appAccept();
    const synAck = p.expectSegment({ flags: 'syn|ack', ack: 101, mss: 1460 });
    p.send({ flags: 'ack', ack: synAck.seq + 1 });
    expect(p.state).toBe('ESTABLISHED');
    expect(p.events).toEqual([TcpEvent.SYN, TcpEvent.ESTABLISHED | TcpEvent.WRITABLE]);
  });

  it("reject('rst') answers RST|ACK acknowledging the SYN, as a closed port", () => {
    const p = TcpPeer.create({ accept: 'manual' });
    p.send({ flags: 'syn', seq: 5000, mss: 1460 });
    p.appReject('rst');
    p.expectSegment({ flags: 'rst|ack', seq: 0, ack: 5001, len: 0 });
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBeUndefined();
    expect(p.stack.tcp.size).toBe(0);
    expect(p.stack.tcp.halfOpen).toBe(0);
    expect(p.stack.stats.tcpResetsSent).toBe(1);
  });

  it("reject('drop') stays silent; a later SYN is a new request", () => {
    const p = TcpPeer.create({ accept: 'manual' });
    p.send({ flags: 'syn', seq: 5000 });
    const first = p.conn!;
    p.appReject('drop');
    p.expectNoSegment();
    expect(first.state).toBe('CLOSED');
    expect(p.stack.tcp.size).toBe(0);
    p.advance(1000);
    p.send({ flags: 'syn', seq: 5000 });
    expect(p.conn).not.toBe(first);
    expect(p.state).toBe('SYN-PENDING');
    p.expectNoSegment();
  });

  it('drops the request silently when no decision comes within synDecisionTimeoutMs', () => {
    const p = TcpPeer.create({ accept: 'manual', stack: { tcp: { synDecisionTimeoutMs: 5000 } } });
    p.send({ flags: 'syn', seq: 100 });
    p.advance(4999);
    expect(p.state).toBe('SYN-PENDING');
    p.advance(1);
    expect(p.state).toBe('CLOSED');
    p.expectNoSegment();
    expect(p.drops('tcp-syn-decision-timeout')).toBe(1);
    expect(p.stack.tcp.halfOpen).toBe(0);
    // A late decision does nothing.
    p.appAccept();
    p.expectNoSegment();
  });

  it('forgets the request when the client resets it', () => {
    const p = TcpPeer.create({ accept: 'manual' });
    p.send({ flags: 'syn', seq: 100 });
    p.send({ flags: 'rst', seq: 101 });
    expect(p.state).toBe('CLOSED');
    p.expectNoSegment();
  });
});

describe('the last ACK of the handshake', () => {
  it('completes it: ESTABLISHED event, no longer half-open', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100, mss: 1460 });
    expect(p.stack.tcp.halfOpen).toBe(1);
    const synAck = p.expectSegment({ flags: 'syn|ack' });
    p.advance(10);
    p.send({ flags: 'ack', seq: 101, ack: synAck.seq + 1 });
    expect(p.state).toBe('ESTABLISHED');
    expect(p.events).toEqual([TcpEvent.SYN, TcpEvent.ESTABLISHED | TcpEvent.WRITABLE]);
    expect(p.stack.tcp.halfOpen).toBe(0);
    expect(p.stack.stats.tcpEstablished).toBe(1);
    // The pure ACK needs no answer.
    p.expectNoSegment();
  });

  it('answers an ACK beyond the SYN-ACK with RST <SEQ=SEG.ACK> and stays (RFC 9293 §3.10.7.4)', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100 });
    const iss = p.expectSegment({ flags: 'syn|ack' }).seq;
    p.send({ flags: 'ack', ack: iss + 2 });
    p.expectSegment({ flags: 'rst', seq: iss + 2, len: 0 });
    expect(p.state).toBe('SYN-RECEIVED');
    p.send({ flags: 'ack', ack: iss });
    p.expectSegment({ flags: 'rst', seq: iss });
    expect(p.state).toBe('SYN-RECEIVED');
    expect(p.drops('tcp-bad-ack-syn-received')).toBe(2);
    // The right ACK still completes the handshake.
    p.send({ flags: 'ack', ack: iss + 1 });
    expect(p.state).toBe('ESTABLISHED');
  });

  it('delivers data carried on the last ACK', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100, mss: 1460 });
    const iss = p.expectSegment({ flags: 'syn|ack' }).seq;
    p.send({ flags: 'psh|ack', ack: iss + 1, data: 'GET / HTTP/1.0\r\n\r\n' });
    expect(p.state).toBe('ESTABLISHED');
    expect(p.events).toEqual([TcpEvent.SYN, TcpEvent.ESTABLISHED | TcpEvent.WRITABLE | TcpEvent.READABLE]);
    expect(new TextDecoder().decode(p.appRead())).toBe('GET / HTTP/1.0\r\n\r\n');
    p.expectSegment({ flags: 'ack', seq: iss + 1, ack: 101 + 18 });
  });

  it('takes the FIN carried on the last ACK: CLOSE-WAIT', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100 });
    const iss = p.expectSegment({ flags: 'syn|ack' }).seq;
    p.send({ flags: 'fin|ack', ack: iss + 1 });
    expect(p.state).toBe('CLOSE-WAIT');
    p.expectSegment({ flags: 'ack', ack: 102 });
  });

  it('applies the window scale to the window of the last ACK, not of the SYN (RFC 7323 §2.2)', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn', seq: 100, mss: 1460, wscale: 2, window: 1000 });
    expect(p.conn!.sndWnd).toBe(1000);
    const iss = p.expectSegment({ flags: 'syn|ack' }).seq;
    p.send({ flags: 'ack', ack: iss + 1, window: 1000 });
    expect(p.conn!.sndWnd).toBe(4000);
  });
});

describe('IPv6', () => {
  it('completes a handshake and exchanges data', () => {
    const p = TcpPeer.create({ ipv6: true });
    const iss = p.handshake({ mss: 1440, wscale: 7, sackPermitted: true, ts: [1, 0] });
    p.send({ flags: 'psh|ack', data: 'ping' });
    expect(new TextDecoder().decode(p.appRead())).toBe('ping');
    p.appWrite('pong');
    const segs = p.segments();
    expect(segs.every((s) => s.ipv6)).toBe(true);
    expect(segs.at(-1)).toMatchObject({ flags: 'psh|ack', seq: iss + 1 });
    expect(new TextDecoder().decode(segs.at(-1)!.payload)).toBe('pong');
  });
});
