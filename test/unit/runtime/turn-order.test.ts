/**
 * One turn of the runtime: the events of a drained batch reach their owners before the batch's
 * output is written, so a new connection's request (whose owner starts the upstream dial) does not
 * wait behind the TUN writes of other connections; what the owners do goes out in the same flush.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StackRuntime } from '../../../src/runtime.js';
import { seededRandom } from '../../../src/stack/random.js';
import { Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { formatTcpFlags, TcpFlags, TcpSegment } from '../../../src/stack/wire/tcp.js';
import { MemoryDevice } from '../../../src/tun/memory-device.js';
import { CLIENT4, REMOTE4, tcpPacket } from '../stack/packets.js';

const open: StackRuntime[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

/** `wrote <flags> <client port>` for a segment the runtime wrote to the device. */
function describeWritten(packet: Uint8Array): string {
  const seg = new TcpSegment(new Ipv4Packet(packet).payload);
  return `wrote ${formatTcpFlags(seg.flags)} ${seg.dstPort}`;
}

describe('a turn of the runtime', () => {
  it('hands a SYN to its owner before the ACK of a FIN in the same batch is written', () => {
    const log: string[] = [];
    let iss = 0;
    const device = new MemoryDevice({
      onTransmit: (packet) => {
        const seg = new TcpSegment(new Ipv4Packet(packet).payload);
        if ((seg.flags & TcpFlags.SYN) !== 0) iss = seg.seqNumber;
        log.push(describeWritten(packet));
      },
    });
    const runtime = new StackRuntime(device, { random: seededRandom(7), busyPoll: 0 });
    open.push(runtime);
    runtime.onTcpRequest((request) => {
      log.push(`request ${request.remotePort}`);
      request.accept();
    });
    runtime.start();
    const from = (srcPort: number, seq: number, flags: number, ack?: number) =>
      tcpPacket(CLIENT4, REMOTE4, {
        srcPort,
        dstPort: 80,
        seq,
        flags,
        ...(ack !== undefined ? { ack } : {}),
      });

    // Connection 1: handshake.
    device.inject(from(40000, 1000, TcpFlags.SYN));
    device.inject(from(40000, 1001, TcpFlags.ACK, iss + 1));
    expect(log).toEqual(['request 40000', 'wrote syn|ack 40000']);
    log.length = 0;

    // One drained batch: connection 1 ends (its FIN needs an ACK), connection 2 opens.
    device.injectBatch([
      from(40000, 1001, TcpFlags.FIN | TcpFlags.ACK, iss + 1),
      from(40001, 5000, TcpFlags.SYN),
    ]);
    // The request came before any write of the batch; both answers then went out in one flush.
    expect(log[0]).toBe('request 40001');
    expect(log.slice(1).sort()).toEqual(['wrote ack 40000', 'wrote syn|ack 40001']);
  });
});
