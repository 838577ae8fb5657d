/**
 * Loss recovery after a retransmission timeout as packet traces: RFC 6675 §5.1 (and RFC 6582 §4
 * without SACK) forbid a new fast recovery until everything sent before the timeout is
 * acknowledged; until then the go-back-N resend of the timeout repairs the losses.
 */
import { describe, expect, it } from 'vitest';
import { pattern } from '../stack/packets.js';
import { TcpPeer } from './harness.js';

const MSS = 1000;

/** An established SACK connection with ten 1000-byte segments in flight; data starts at `una`. */
function tenInFlight(): { p: TcpPeer; una: number } {
  const p = TcpPeer.create({ stack: { tcp: { congestionControl: 'newreno' } } });
  const una = (p.handshake({ mss: MSS, sackPermitted: true }) + 1) >>> 0;
  p.appWrite(pattern(10 * MSS));
  for (let i = 0; i < 10; i++) p.expectSegment({ seq: una + i * MSS, len: MSS });
  p.expectNoSegment();
  return { p, una };
}

describe('recovery after a retransmission timeout (RFC 6675 §5.1)', () => {
  it('starts no fast recovery before the data sent before the timeout is acknowledged', () => {
    const { p, una } = tenInFlight();
    p.advance(1000);
    p.expectSegment({ seq: una, len: MSS }); // the timeout's loss window: one segment
    p.expectNoSegment();
    // Segment 1 was lost too; 2..9 arrived. The ACK of the retransmission SACKs them: IsLost holds
    // for segment 1, but the timeout's recovery point (una + 10000) is not yet acknowledged.
    p.send({ ack: una + MSS, sack: [[una + 2 * MSS, una + 10 * MSS]] });
    expect(p.conn!.inRecovery).toBe(false);
    expect(p.stack.stats.tcpFastRetransmits).toBe(0);
    // Slow start from the loss window goes on: two segments, each sent once.
    p.expectSegment({ seq: una + MSS, len: MSS });
    p.expectSegment({ seq: una + 2 * MSS, len: MSS });
    p.expectNoSegment();
  });

  it('allows fast recovery again once the recovery point is acknowledged', () => {
    const { p, una } = tenInFlight();
    p.advance(1000);
    p.expectSegment({ seq: una, len: MSS });
    p.send({ ack: una + 10 * MSS });
    p.expectNoSegment();
    // New data; three ACKs of one segment each grow the window to six segments in flight.
    const base = una + 10 * MSS;
    p.appWrite(pattern(20 * MSS));
    let sent = p.segments().length;
    for (let k = 1; k <= 3; k++) {
      p.send({ ack: base + k * MSS });
      sent += p.segments().length;
    }
    expect(sent - 3).toBeGreaterThanOrEqual(5);
    // The first unacknowledged segment is lost; SACKs of the three above it start a recovery.
    const lost = base + 3 * MSS;
    p.send({ ack: lost, sack: [[lost + MSS, lost + 4 * MSS]] });
    expect(p.conn!.inRecovery).toBe(true);
    expect(p.stack.stats.tcpFastRetransmits).toBe(1);
    p.expectSegment({ seq: lost, len: MSS });
  });
});
