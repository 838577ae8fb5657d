/**
 * The UDP relay end to end: a kernel client's datagrams go into a TUN driven by our stack
 * (udp-relay-runner.mjs), out through a real SOCKS5 proxy, to a UDP echo and a dnsmasq in a
 * server namespace (see udp-site.ts). danted carries UDP (RFC 1928 §7 UDP ASSOCIATE); microsocks
 * does not, so DNS falls back to TCP on its own and other datagrams are dropped and counted.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { canRunIntegration, Testbed, waitFor } from '../testbed/index.js';
import {
  DANTED_URL,
  DNS_ANSWER,
  ECHO_PORT,
  MICROSOCKS_URL,
  missingPrerequisites,
  SERVER_V4,
  SERVER_V6,
  type UdpRunner,
  UdpSite,
} from './udp-site.js';

describe.skipIf(!canRunIntegration())('UDP relay through real SOCKS5 proxies', () => {
  let bed: Testbed;
  let site: UdpSite;
  let runner: UdpRunner | undefined;

  beforeAll(async () => {
    // Under CI nothing may skip: missing tools or an unbuilt dist/ fail the file instead.
    const missing = missingPrerequisites();
    if (missing.length > 0) throw new Error(`the UDP relay test needs ${missing.join(', ')}`);
    bed = await Testbed.create('udprelay');
    site = await UdpSite.create(bed);
  });

  afterEach(async () => {
    await runner?.stop();
    runner = undefined;
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  it('echoes UDP over IPv4 and IPv6 through danted UDP ASSOCIATE, and resolves DNS over UDP', async () => {
    runner = await site.runner(DANTED_URL);
    const v4 = await site.echo(SERVER_V4, ECHO_PORT, 3);
    expect(v4).toEqual([0, 1, 2].map((i) => ({ reply: `msg-${i}`, from: `${SERVER_V4}:${ECHO_PORT}` })));
    const v6 = await site.echo(SERVER_V6, ECHO_PORT, 3);
    expect(v6).toEqual([0, 1, 2].map((i) => ({ reply: `msg-${i}`, from: `${SERVER_V6}:${ECHO_PORT}` })));
    expect(await site.dig(SERVER_V4)).toBe(DNS_ANSWER);
    expect(await site.dig(SERVER_V6)).toBe(DNS_ANSWER);
    const stats = await runner.stats();
    expect(stats.dnsOverTcp).toBe(0);
    expect(stats.datagramsDown).toBeGreaterThanOrEqual(8);
    expect(stats.associations).toBeGreaterThanOrEqual(4);
    expect(stats.dropped).toEqual({});
  });

  it('through microsocks (no UDP): DNS goes over TCP automatically, other UDP is dropped and counted', async () => {
    runner = await site.runner(MICROSOCKS_URL);
    expect(await site.dig(SERVER_V4)).toBe(DNS_ANSWER);
    expect(await site.dig(SERVER_V6)).toBe(DNS_ANSWER);
    const echo = await site.echo(SERVER_V4, ECHO_PORT, 1, 0, 500);
    expect(echo).toEqual([{ timeout: true }]);
    const stats = await runner.stats();
    expect(stats.dnsOverTcp).toBeGreaterThanOrEqual(2);
    expect(stats.dropped['no-udp']).toBeGreaterThanOrEqual(1);
    // Only the first flow tried ASSOCIATE; the relay remembered that the proxy has no UDP.
    expect(stats.associations).toBe(0);
  });

  it('re-creates the association after the flow expires idle', async () => {
    runner = await site.runner(DANTED_URL, ['--udp-idle-ms=300']);
    const r = await site.echo(SERVER_V4, ECHO_PORT, 2, 1200);
    expect(r).toEqual([0, 1].map((i) => ({ reply: `msg-${i}`, from: `${SERVER_V4}:${ECHO_PORT}` })));
    // Two flows, each with its own association; the second expires too.
    const stats = await waitFor(
      async () => {
        const s = await runner!.stats();
        return s.flowsOpen === 0 ? s : undefined;
      },
      5000,
      'the second flow to expire',
    );
    expect(stats).toMatchObject({ flowsTotal: 2, associations: 2, datagramsDown: 2 });
  });
});
