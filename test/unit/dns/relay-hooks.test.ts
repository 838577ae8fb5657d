/**
 * The relays' name-substitution hooks without a stack: UdpRelay sends a datagram to a fake
 * address by name and shows the replies from the fake address (unless the client also talks to
 * that remote directly), refuses unmapped fake addresses with ICMP, and hands datagrams for a
 * local service to it even when the proxy has no UDP.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Destination, Dialer } from '../../../src/proxy/dialer.js';
import { DialError } from '../../../src/proxy/errors.js';
import type { UdpEndpoint } from '../../../src/proxy/udp.js';
import { type RelayUdpFlow, UdpRelay, type UdpRelayOptions } from '../../../src/relay/udp-relay.js';
import { FakeUdpDialer, settle } from './fakes.js';

class FakeFlow extends EventEmitter implements RelayUdpFlow {
  readonly sent: { payload: string; from: UdpEndpoint }[] = [];
  readonly unreachables: UdpEndpoint[] = [];
  readonly clientAddress = '198.18.0.1';
  readonly clientPort = 40000;
  readonly family = 'IPv4' as const;
  closed = false;

  send(payload: Uint8Array, from: UdpEndpoint): boolean {
    this.sent.push({ payload: Buffer.from(payload).toString(), from });
    return !this.closed;
  }

  unreachable(destination: UdpEndpoint): void {
    this.unreachables.push(destination);
  }

  close(): void {
    if (!this.closed) {
      this.closed = true;
      this.emit('close');
    }
  }

  datagram(payload: string, address: string, port: number): void {
    this.emit('datagram', Buffer.from(payload), { address, port });
  }
}

const noTcp: Dialer = { name: 'none', dial: () => Promise.reject(new DialError('EREJECTED', 'no TCP')) };
/** 198.19.0.1 is "name.test", 198.19.0.2 is fake but unmapped; everything else stays. */
function resolveDestination(dst: Destination): Destination | undefined {
  if (dst.host === '198.19.0.1') return { host: 'name.test', port: dst.port };
  if (dst.host.startsWith('198.19.')) return undefined;
  return dst;
}

let relays: UdpRelay[] = [];
afterEach(() => {
  for (const r of relays) r.close();
  relays = [];
});

function relay(options: Partial<UdpRelayOptions>): UdpRelay {
  const r = new UdpRelay({ udpDialer: undefined, dialer: noTcp, resolveDestination, ...options });
  relays.push(r);
  return r;
}

describe('UdpRelay name hooks', () => {
  it('sends to the name and shows replies from the fake address', async () => {
    const udp = new FakeUdpDialer();
    const r = relay({ udpDialer: udp });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram('q1', '198.19.0.1', 5000);
    await settle();
    const a = udp.associations[0]!;
    expect(a.sent.map((s) => s.to)).toEqual([{ host: 'name.test', port: 5000 }]);
    a.reply(Buffer.from('r1'), '203.0.113.7', 5000);
    // Another port is another remote: shown as it is.
    a.reply(Buffer.from('r2'), '203.0.113.7', 6000);
    expect(flow.sent).toEqual([
      { payload: 'r1', from: { address: '198.19.0.1', port: 5000 } },
      { payload: 'r2', from: { address: '203.0.113.7', port: 6000 } },
    ]);
  });

  it('keeps a remote the client also sent to directly as it is', async () => {
    const udp = new FakeUdpDialer();
    const r = relay({ udpDialer: udp });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram('by-name', '198.19.0.1', 5000);
    flow.datagram('direct', '203.0.113.7', 5000);
    await settle();
    udp.associations[0]!.reply(Buffer.from('r'), '203.0.113.7', 5000);
    udp.associations[0]!.reply(Buffer.from('s'), '203.0.113.8', 5000);
    expect(flow.sent.map((s) => s.from)).toEqual([
      { address: '203.0.113.7', port: 5000 },
      { address: '198.19.0.1', port: 5000 },
    ]);
  });

  it('refuses an unmapped fake address with ICMP and counts it', () => {
    const udp = new FakeUdpDialer();
    const r = relay({ udpDialer: udp });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram('x', '198.19.0.2', 9);
    expect(flow.unreachables).toEqual([{ address: '198.19.0.2', port: 9 }]);
    expect(r.stats.dropped).toEqual({ 'fake-unmapped': 1 });
    expect(udp.associations).toHaveLength(0);
  });

  it('hands datagrams for a local service to it, even without UDP upstream', () => {
    const r = relay({
      localService: (dst) =>
        dst.port === 53 ? (payload, reply) => reply(Buffer.from(`answer:${payload.toString()}`)) : undefined,
    });
    const flow = new FakeFlow();
    r.accept(flow);
    flow.datagram('q', '198.18.0.2', 53);
    flow.datagram('other', '198.18.0.2', 54);
    expect(flow.sent).toEqual([{ payload: 'answer:q', from: { address: '198.18.0.2', port: 53 } }]);
    expect(r.stats).toMatchObject({ datagramsUp: 2, datagramsDown: 1, dropped: { 'no-udp': 1 } });
  });
});
