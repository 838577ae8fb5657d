/**
 * The forwarder: queries go to the upstream resolver through one shared association with IDs of
 * our own (clients' IDs restored in answers), a truncated UDP answer is asked again over TCP, a
 * proxy without UDP switches to DNS over TCP, and failures reject with stable codes.
 */
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsForwarder, type DnsForwarderOptions } from '../../../src/dns/forwarder.js';
import type { Dialer } from '../../../src/proxy/dialer.js';
import { DialError } from '../../../src/proxy/errors.js';
import { UdpUnsupportedError } from '../../../src/proxy/socks5-udp.js';
import type { FakeServer } from '../proxy/fake-server.js';
import { FakeUdpDialer, firstData, query, settle, tcpDnsUpstream, txtAnswer } from './fakes.js';

const UPSTREAM = { host: '198.18.9.53', port: 53 };
const noTcp: Dialer = { name: 'none', dial: () => Promise.reject(new DialError('EREJECTED', 'no TCP')) };

let forwarders: DnsForwarder[] = [];
let servers: FakeServer[] = [];
afterEach(async () => {
  for (const f of forwarders) f.close();
  await Promise.all(servers.map((s) => s.close()));
  forwarders = [];
  servers = [];
});

function forwarder(options: Partial<DnsForwarderOptions>): DnsForwarder {
  const f = new DnsForwarder({ upstream: UPSTREAM, udpDialer: undefined, dialer: noTcp, ...options });
  forwarders.push(f);
  return f;
}

describe('DnsForwarder over UDP', () => {
  it('gives same-ID queries distinct IDs upstream and restores each client ID', async () => {
    const udp = new FakeUdpDialer();
    const f = forwarder({ udpDialer: udp });
    const first = f.forward(query(0x0101, 'a.test', 'TXT'));
    const second = f.forward(query(0x0101, 'b.test', 'TXT'));
    await settle();
    expect(udp.associations).toHaveLength(1);
    const a = udp.associations[0]!;
    expect(a.sent.map((s) => s.to)).toEqual([UPSTREAM, UPSTREAM]);
    const [q1, q2] = a.sent.map((s) => s.payload);
    expect(q1!.readUInt16BE(0)).not.toBe(q2!.readUInt16BE(0));
    expect(f.inFlight).toBe(2);
    // Answers in reverse order; one from a wrong port is ignored.
    a.reply(txtAnswer(q2!, 'b'), UPSTREAM.host, 5353);
    a.reply(txtAnswer(q2!, 'b'), UPSTREAM.host, 53);
    a.reply(txtAnswer(q1!, 'a'), UPSTREAM.host, 53);
    const [r1, r2] = await Promise.all([first, second]);
    expect(dnsPacket.decode(r1).id).toBe(0x0101);
    expect(dnsPacket.decode(r1).answers?.[0]).toMatchObject({ name: 'a.test' });
    expect(dnsPacket.decode(r2).answers?.[0]).toMatchObject({ name: 'b.test' });
    expect(f.inFlight).toBe(0);
  });

  it('re-opens the association after it closed', async () => {
    const udp = new FakeUdpDialer();
    const f = forwarder({ udpDialer: udp });
    void f.forward(query(1, 'a.test')).catch(() => {});
    await settle();
    udp.associations[0]!.close();
    void f.forward(query(2, 'a.test')).catch(() => {});
    await settle();
    expect(udp.associations).toHaveLength(2);
    expect(udp.associations[1]!.sent).toHaveLength(1);
  });

  it('asks again over TCP when the UDP answer is truncated (RFC 7766 §5)', async () => {
    const tcp = await tcpDnsUpstream();
    servers.push(tcp.server);
    const udp = new FakeUdpDialer();
    const f = forwarder({ udpDialer: udp, dialer: tcp.dialer });
    const answer = f.forward(query(0x4242, 'big.test', 'TXT'));
    await settle();
    const sent = udp.associations[0]!.sent[0]!.payload;
    const truncated = Buffer.from(txtAnswer(sent, 'udp'));
    truncated[2]! |= 0x02;
    udp.associations[0]!.reply(truncated, UPSTREAM.host, 53);
    const out = dnsPacket.decode(await answer);
    expect(out.id).toBe(0x4242);
    expect(firstData(out!)).toBe('tcp');
    expect(tcp.dialed).toEqual([UPSTREAM]);
  });

  it('switches to DNS over TCP when the proxy has no UDP', async () => {
    const tcp = await tcpDnsUpstream();
    servers.push(tcp.server);
    const udp = new FakeUdpDialer();
    udp.failWith = new UdpUnsupportedError('EPROXY', 'command not supported');
    const f = forwarder({ udpDialer: udp, dialer: tcp.dialer });
    expect(dnsPacket.decode(await f.forward(query(9, 'x.test', 'MX'))).id).toBe(9);
    udp.failWith = undefined;
    expect(dnsPacket.decode(await f.forward(query(10, 'x.test', 'MX'))).id).toBe(10);
    expect(udp.associations).toHaveLength(0);
    expect(tcp.dialed).toHaveLength(1);
  });
});

describe('DnsForwarder failures', () => {
  it('has no transport without UDP when DNS over TCP is never', async () => {
    const f = forwarder({ dnsOverTcp: 'never' });
    await expect(f.forward(query(1, 'a.test'))).rejects.toMatchObject({ code: 'EDNS_FWD_UNAVAILABLE' });
  });

  it('fails a query whose TCP dial fails', async () => {
    const f = forwarder({ dnsOverTcp: 'always' });
    await expect(f.forward(query(1, 'a.test'))).rejects.toMatchObject({ code: 'EDNS_FWD_UNAVAILABLE' });
  });

  it('times out, refuses malformed queries, bounds the waiting queries, and closes', async () => {
    const udp = new FakeUdpDialer();
    const f = forwarder({ udpDialer: udp, queryTimeoutMs: 30, maxInFlight: 2 });
    await expect(f.forward(Buffer.alloc(5))).rejects.toMatchObject({ code: 'EDNS_FWD_MALFORMED' });
    const timedOut = f.forward(query(1, 'a.test'));
    const closed = f.forward(query(2, 'a.test'));
    await expect(f.forward(query(3, 'a.test'))).rejects.toMatchObject({ code: 'EDNS_FWD_BUSY' });
    await expect(timedOut).rejects.toMatchObject({ code: 'EDNS_FWD_TIMEOUT' });
    await expect(closed).rejects.toMatchObject({ code: 'EDNS_FWD_TIMEOUT' });
    const waiting = f.forward(query(4, 'a.test'));
    f.close();
    await expect(waiting).rejects.toMatchObject({ code: 'EDNS_FWD_CLOSED' });
    await expect(f.forward(query(5, 'a.test'))).rejects.toMatchObject({ code: 'EDNS_FWD_CLOSED' });
  });
});
