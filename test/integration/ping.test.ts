/**
 * Acceptance of the foundation against the real kernel: in a test namespace whose routes send
 * 198.18.0.0/15 and fd00:5::/64 into a TUN, the `tun2socks` command answers ping for any address
 * (IPv4, IPv6, and a 4000-byte ping fragmented over MTU 1500), and `tcpdump -r` reads its pcap.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunIntegration, type Netns, Testbed, waitFor } from '../testbed/index.js';

const CLI = resolve(import.meta.dirname, '../../dist/src/cli.js');

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((res) => child.once('exit', (code) => res(code)));
}

describe.skipIf(!canRunIntegration())('tun2socks answers ping through a real TUN', () => {
  let bed: Testbed;
  let ns: Netns;
  let tun: string;
  let pcap: string;
  let child: ChildProcess;
  let stderr = '';

  beforeAll(async () => {
    bed = await Testbed.create('ping');
    ns = await bed.netns('client');
    tun = await bed.tun(ns, {
      mtu: 1500,
      address: '198.18.0.1/30',
      address6: 'fd00::1/64',
      routes: ['198.18.0.0/15'],
      routes6: ['fd00:5::/64'],
    });
    pcap = join(await bed.tmpdir(), 'ping.pcap');
    child = ns.spawn('node', [CLI, '--device', tun, '--pcap', pcap, '--loglevel', 'debug']);
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    await waitFor(() => stderr.includes('tun2socks started'), 10_000, `tun2socks to start (${stderr})`);
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  it('answers ping -c 3 to an IPv4 address routed into the TUN', async () => {
    const r = await ns.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '198.18.5.9']);
    expect(r.stdout).toContain('3 received');
  });

  it('answers ping -6 -c 3 to an IPv6 address routed into the TUN', async () => {
    const r = await ns.exec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', 'fd00:5::9']);
    expect(r.stdout).toContain('3 received');
  });

  it('reassembles a 4000-byte ping over MTU 1500 and answers it, both families', async () => {
    const v4 = await ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-s', '4000', '198.18.77.1']);
    expect(v4.stdout).toContain('2 received');
    expect(v4.stdout).toContain('4008 bytes from 198.18.77.1');
    const v6 = await ns.exec('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', '-s', '4000', 'fd00:5::77']);
    expect(v6.stdout).toContain('2 received');
  });

  it('exits 0 on SIGTERM and leaves a pcap that tcpdump -r reads', async () => {
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    expect(existsSync(pcap)).toBe(true);
    const r = await ns.exec('tcpdump', ['-n', '-r', pcap]);
    expect(r.stdout).toMatch(/198\.18\.0\.1 > 198\.18\.5\.9: ICMP echo request/);
    expect(r.stdout).toMatch(/198\.18\.5\.9 > 198\.18\.0\.1: ICMP echo reply/);
    expect(r.stdout).toMatch(/fd00:5::9 > fd00::1: ICMP6, echo reply/);
    expect(stderr).toContain('"echoReplies"');
  });
});
