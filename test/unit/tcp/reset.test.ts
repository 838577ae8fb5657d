/**
 * Resets (RFC 9293 §3.5.2-3, §3.10.7) with RFC 5961's defences: an exact RST in every state, a
 * challenge ACK for an in-window one, silence for an out-of-window one; SYN in a synchronized state
 * (§4.2); ACKs too old (§5.2) or for unsent data; abort(); and segments for no connection.
 */
import { describe, expect, it } from 'vitest';
import type { TcpErrorCode } from '../../../src/stack/tcp/state.js';
import { TcpEvent } from '../../../src/stack/tcp/state.js';
import { TcpPeer } from './harness.js';

const CLOSED_BITS = TcpEvent.CLOSED | TcpEvent.READABLE | TcpEvent.WRITABLE;

/** A peer whose connection is in `state`; returns the stack's ISS (or 0 in SYN-PENDING). */
function inState(state: string): { p: TcpPeer; iss: number } {
  const p = TcpPeer.create({ accept: state === 'SYN-PENDING' ? 'manual' : 'auto' });
  let iss = 0;
  switch (state) {
    case 'SYN-PENDING':
      p.send({ flags: 'syn', seq: 100, mss: 1460 });
      break;
    case 'SYN-RECEIVED':
      p.send({ flags: 'syn', seq: 100, mss: 1460 });
      iss = p.expectSegment({ flags: 'syn|ack' }).seq;
      break;
    case 'ESTABLISHED':
      iss = p.handshake();
      break;
    case 'CLOSE-WAIT':
    case 'LAST-ACK':
      iss = p.handshake();
      p.send({ flags: 'fin|ack' });
      p.expectSegment({ flags: 'ack' });
      if (state === 'LAST-ACK') {
        p.appShutdown();
        p.expectSegment({ flags: 'fin|ack' });
      }
      break;
    default: {
      // FIN-WAIT-1, FIN-WAIT-2, CLOSING, TIME-WAIT
      iss = p.handshake();
      p.appShutdown();
      p.expectSegment({ flags: 'fin|ack' });
      if (state === 'FIN-WAIT-2' || state === 'TIME-WAIT') p.send({ flags: 'ack', ack: iss + 2 });
      if (state === 'CLOSING' || state === 'TIME-WAIT') {
        p.send({ flags: 'fin|ack', ack: state === 'CLOSING' ? iss + 1 : iss + 2 });
        p.expectSegment({ flags: 'ack' });
      }
    }
  }
  expect(p.state).toBe(state);
  p.expectNoSegment();
  p.advance(10);
  return { p, iss };
}

describe('RST in every state (RFC 9293 §3.10.7.4 second check, RFC 5961 §3.2)', () => {
  const states: [string, TcpErrorCode | undefined][] = [
    ['SYN-PENDING', undefined],
    // A passive open's SYN-RECEIVED returns to LISTEN: the owner never had a connection.
    ['SYN-RECEIVED', undefined],
    ['ESTABLISHED', 'ECONNRESET'],
    ['FIN-WAIT-1', 'ECONNRESET'],
    ['FIN-WAIT-2', 'ECONNRESET'],
    ['CLOSE-WAIT', 'ECONNRESET'],
    ['CLOSING', undefined],
    ['LAST-ACK', undefined],
    // Linux's default (tcp_rfc1337 = 0): an RST ends TIME-WAIT.
    ['TIME-WAIT', undefined],
  ];

  for (const [state, error] of states) {
    it(`${state}: an RST at exactly RCV.NXT closes${error ? ` with ${error}` : ''}`, () => {
      const { p } = inState(state);
      const before = p.stack.stats.tcpResetsReceived;
      p.send({ flags: 'rst', seq: p.seq });
      p.expectNoSegment();
      expect(p.state).toBe('CLOSED');
      expect(p.conn!.error).toBe(error);
      expect(p.events.at(-1)).toBe(CLOSED_BITS);
      expect(p.stack.tcp.size).toBe(0);
      expect(p.stack.tcp.halfOpen).toBe(0);
      if (state !== 'SYN-PENDING') expect(p.stack.stats.tcpResetsReceived).toBe(before + 1);
    });

    it(`${state}: an RST with an ACK field at RCV.NXT closes too`, () => {
      const { p, iss } = inState(state);
      p.send({ flags: 'rst|ack', seq: p.seq, ack: iss + 1 });
      expect(p.state).toBe('CLOSED');
    });

    if (state !== 'SYN-PENDING') {
      it(`${state}: an in-window RST elsewhere draws a challenge ACK and changes nothing`, () => {
        const { p, iss } = inState(state);
        const c = p.conn!;
        p.send({ flags: 'rst', seq: p.seq + 1 });
        p.expectSegment({ flags: 'ack', seq: c.sndNxt, ack: p.seq, len: 0 });
        expect(p.state).toBe(state);
        expect(p.stack.stats.tcpChallengeAcks).toBe(1);
        expect(p.drops('tcp-rst-challenged')).toBe(1);
        expect(c.sndNxt - iss).toBeGreaterThan(0);
      });
    }

    it(`${state}: an RST outside the window is ignored silently`, () => {
      const { p } = inState(state);
      p.send({ flags: 'rst', seq: p.seq + 10_000_000 });
      p.send({ flags: 'rst', seq: p.seq - 1 });
      p.expectNoSegment();
      expect(p.state).toBe(state);
      expect(p.stack.stats.tcpChallengeAcks).toBe(0);
    });
  }

  it('ESTABLISHED: reports ECONNRESET to the owner and forgets buffered data', () => {
    const { p } = inState('ESTABLISHED');
    p.appWrite('unsent?');
    p.expectSegment({ flags: 'psh|ack' });
    p.send({ flags: 'rst', seq: p.seq });
    expect(p.conn!.error).toBe('ECONNRESET');
    expect(p.conn!.unacknowledged).toBe(0);
    // Later segments for the tuple meet no connection.
    p.send({ flags: 'ack', seq: p.seq });
    expect(p.expectSegment({ flags: 'rst' }).seq).toBe(p.conn!.sndMax);
  });
});

describe('SYN in a synchronized state (RFC 5961 §4.2)', () => {
  for (const state of ['ESTABLISHED', 'FIN-WAIT-2', 'CLOSE-WAIT']) {
    it(`${state}: an in-window SYN draws a challenge ACK`, () => {
      const { p } = inState(state);
      const c = p.conn!;
      p.send({ flags: 'syn', seq: p.seq + 5, mss: 1460 });
      p.expectSegment({ flags: 'ack', seq: c.sndNxt, ack: c.rcvNxt });
      expect(p.state).toBe(state);
      expect(p.drops('tcp-syn-challenged')).toBe(1);
    });
  }

  it('a retransmission of the original SYN after the handshake draws an ACK, not a new connection', () => {
    const { p, iss } = inState('ESTABLISHED');
    const c = p.conn!;
    p.send({ flags: 'syn', seq: 100, mss: 1460 });
    p.expectSegment({ flags: 'ack', seq: iss + 1, ack: 101 });
    expect(p.conn).toBe(c);
    expect(p.state).toBe('ESTABLISHED');
  });
});

describe('ACK field checks', () => {
  it('challenges an ACK older than SND.UNA - MAX.SND.WND and drops its data (RFC 5961 §5.2)', () => {
    const { p, iss } = inState('ESTABLISHED');
    p.appWrite(new Uint8Array(100));
    p.expectSegment({ flags: 'psh|ack', len: 100 });
    p.send({ flags: 'ack', ack: iss + 101 });
    p.send({ flags: 'psh|ack', ack: iss + 101 - 70_000, data: 'evil' });
    p.expectSegment({ flags: 'ack', seq: iss + 101, ack: 101 });
    expect(p.drops('tcp-ack-too-old')).toBe(1);
    expect(p.stack.stats.tcpChallengeAcks).toBe(1);
    expect(p.conn!.readableLength).toBe(0);
  });

  it('takes the data of a merely duplicate ACK (SND.UNA - MAX.SND.WND <= SEG.ACK < SND.UNA)', () => {
    const { p, iss } = inState('ESTABLISHED');
    p.appWrite(new Uint8Array(100));
    p.expectSegment({ flags: 'psh|ack', len: 100 });
    p.send({ flags: 'ack', ack: iss + 101 });
    p.send({ flags: 'psh|ack', ack: iss + 51, data: 'fine' });
    p.expectSegment({ flags: 'ack', ack: 105 });
    expect(p.conn!.readableLength).toBe(4);
    expect(p.conn!.sndUna).toBe(iss + 101);
  });

  it('answers an ACK of data never sent with an ACK and drops the segment (RFC 9293 §3.10.7.4)', () => {
    const { p, iss } = inState('ESTABLISHED');
    p.appWrite(new Uint8Array(10));
    p.expectSegment({ flags: 'psh|ack', len: 10 });
    p.send({ flags: 'psh|ack', ack: iss + 1 + 10 + 100, data: 'nope' });
    p.expectSegment({ flags: 'ack', seq: iss + 11, ack: 101 });
    expect(p.drops('tcp-ack-unsent')).toBe(1);
    expect(p.conn!.readableLength).toBe(0);
    expect(p.conn!.sndUna).toBe(iss + 1);
  });

  it('ignores a segment without ACK in a synchronized state', () => {
    const { p } = inState('ESTABLISHED');
    p.send({ flags: 'psh', data: 'x' });
    p.expectNoSegment();
    expect(p.drops('tcp-no-ack')).toBe(1);
    expect(p.conn!.readableLength).toBe(0);
  });
});

describe('abort() (RFC 9293 §3.10.5)', () => {
  it('sends RST with SEQ=SND.NXT and closes without error', () => {
    const { p, iss } = inState('ESTABLISHED');
    p.appWrite(new Uint8Array(300));
    p.expectSegment({ flags: 'psh|ack', len: 300 });
    p.appAbort();
    p.expectSegment({ flags: 'rst|ack', seq: iss + 301, ack: 101, len: 0 });
    expect(p.state).toBe('CLOSED');
    expect(p.conn!.error).toBeUndefined();
    expect(p.events.at(-1)).toBe(CLOSED_BITS);
    expect(p.stack.tcp.size).toBe(0);
  });

  for (const state of ['SYN-RECEIVED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK']) {
    it(`${state}: RST at SND.NXT`, () => {
      const { p } = inState(state);
      const c = p.conn!;
      const sndNxt = c.sndNxt;
      p.appAbort();
      p.expectSegment({ flags: 'rst|ack', seq: sndNxt });
      expect(p.state).toBe('CLOSED');
    });
  }

  for (const state of ['SYN-PENDING', 'TIME-WAIT']) {
    it(`${state}: closes without a RST`, () => {
      const { p } = inState(state);
      p.appAbort();
      p.expectNoSegment();
      expect(p.state).toBe('CLOSED');
      expect(p.stack.tcp.size).toBe(0);
    });
  }
});

describe('segments for no connection (RFC 9293 §3.10.7.1)', () => {
  it('answers a segment with ACK by <SEQ=SEG.ACK><CTL=RST>', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'psh|ack', seq: 7, ack: 12345, data: 'stray' });
    p.expectSegment({ flags: 'rst', seq: 12345, ack: 0, len: 0, window: 0 });
    expect(p.drops('tcp-no-connection')).toBe(1);
    expect(p.stack.tcp.size).toBe(0);
  });

  it('answers a segment without ACK by <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'fin|psh', seq: 500, data: new Uint8Array(10) });
    // SEG.LEN counts the FIN.
    p.expectSegment({ flags: 'rst|ack', seq: 0, ack: 511 });
  });

  it('answers a SYN|ACK with RST <SEQ=SEG.ACK>', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'syn|ack', seq: 500, ack: 999 });
    p.expectSegment({ flags: 'rst', seq: 999 });
    expect(p.drops('tcp-bad-syn')).toBe(1);
    expect(p.stack.tcp.size).toBe(0);
  });

  it('never answers a RST', () => {
    const p = TcpPeer.create();
    p.send({ flags: 'rst', seq: 500 });
    p.send({ flags: 'rst|ack', seq: 500, ack: 1 });
    p.expectNoSegment();
  });

  it('refuses a SYN with RST|ACK when nothing listens', () => {
    const p = TcpPeer.create();
    p.stack.tcp.listening = false;
    p.send({ flags: 'syn', seq: 0xfffffff0, mss: 1460 });
    p.expectSegment({ flags: 'rst|ack', seq: 0, ack: 0xfffffff1 });
    expect(p.drops('tcp-no-listener')).toBe(1);
    expect(p.conn).toBeUndefined();
  });

  it('answers the IPv6 peer over IPv6', () => {
    const p = TcpPeer.create({ ipv6: true });
    p.send({ flags: 'ack', seq: 1, ack: 2 });
    expect(p.expectSegment({ flags: 'rst', seq: 2 }).ipv6).toBe(true);
  });
});
