/** Scripted parts for the DNS tests: a UDP association and dialer, a loopback DNS-over-TCP server. */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Destination, Dialer, DialOptions } from '../../../src/proxy/dialer.js';
import type { UdpAssociation, UdpDialer } from '../../../src/proxy/udp.js';
import { DnsTcpFramer, frameDnsMessage } from '../../../src/relay/dns-over-tcp.js';
import { type FakeServer, startServer } from '../proxy/fake-server.js';

/** An association that records sends; the test plays the remote with reply(). */
export class FakeAssociation extends EventEmitter implements UdpAssociation {
  readonly sent: { payload: Buffer; to: Destination }[] = [];
  closed = false;

  send(payload: Uint8Array, to: Destination): void {
    if (!this.closed) this.sent.push({ payload: Buffer.from(payload), to });
  }

  close(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', error);
  }

  reply(payload: Uint8Array, address: string, port: number): void {
    this.emit('message', Buffer.from(payload), { address, port });
  }
}

/** A UdpDialer that opens FakeAssociations, or fails with `failWith`. */
export class FakeUdpDialer implements UdpDialer {
  readonly name = 'fake';
  readonly associations: FakeAssociation[] = [];
  failWith: Error | undefined;

  associate(_opts?: DialOptions): Promise<UdpAssociation> {
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    const a = new FakeAssociation();
    this.associations.push(a);
    return Promise.resolve(a);
  }
}

/** A DNS query for `name`/`type` with `id`. */
export function query(id: number, name: string, type: dnsPacket.RecordType = 'A'): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
  });
}

/** A TXT answer to `q` saying `text`. */
export function txtAnswer(q: Uint8Array, text: string): Buffer {
  const decoded = dnsPacket.decode(Buffer.from(q));
  return dnsPacket.encode({
    type: 'response',
    id: decoded.id ?? 0,
    flags: dnsPacket.RECURSION_AVAILABLE,
    questions: decoded.questions ?? [],
    answers: [{ type: 'TXT', name: decoded.questions?.[0]?.name ?? '', data: text }],
  });
}

/** Lets promise callbacks run. */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Polls `what` every 5 ms for at most `ms`. */
export async function until(what: () => boolean, ms = 2000): Promise<void> {
  for (let waited = 0; !what(); waited += 5) {
    if (waited > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A loopback DNS-over-TCP server answering every query with a TXT 'tcp', and a Dialer that sends
 * every destination there (recording them).
 */
export async function tcpDnsUpstream(): Promise<{
  server: FakeServer;
  dialer: Dialer;
  dialed: Destination[];
}> {
  const server = await startServer((socket) => {
    const framer = new DnsTcpFramer();
    socket.on('data', (c: Buffer) => {
      for (const q of framer.push(c)) socket.write(frameDnsMessage(txtAnswer(q, 'tcp'))!);
    });
  });
  const dialed: Destination[] = [];
  const dialer: Dialer = {
    name: 'fake-tcp',
    dial: (dst) => {
      dialed.push(dst);
      return new Promise((resolve, reject) => {
        const s = net.connect(server.port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
    },
  };
  return { server, dialer, dialed };
}

/** The data of the first answer of a decoded message, as text. */
export function firstData(p: dnsPacket.Packet): string {
  return String((p.answers?.[0] as { data?: unknown } | undefined)?.data);
}

/** The RCODE of a message, by name (dns-packet decodes it; its types omit it). */
export function rcodeOf(message: Uint8Array): string {
  return (dnsPacket.decode(Buffer.from(message)) as dnsPacket.DecodedPacket & { rcode: string }).rcode;
}
