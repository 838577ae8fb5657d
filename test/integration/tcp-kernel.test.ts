/**
 * Our TCP judged by the Linux kernel's: kernel clients in a test namespace connect through a real
 * TUN to addresses the stack impersonates; the stack's connections echo or sink the data.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StackRuntime } from '../../src/runtime.js';
import type { TcpSocket } from '../../src/tcp-socket.js';
import { openTun } from '../../src/tun/linux-tun.js';
import { canRunIntegration, type Netns, Testbed } from '../testbed/index.js';

const CLIENT = resolve(import.meta.dirname, 'clients/tcp-client.mjs');

interface Result {
  sent: string;
  received: string;
  receivedBytes: number;
  ms: number;
}

describe.skipIf(!canRunIntegration())('TCP against the Linux kernel through a TUN', () => {
  let bed: Testbed;
  let ns: Netns;
  let runtime: StackRuntime;
  const sinks = new Map<number, string>();

  beforeAll(async () => {
    bed = await Testbed.create('tcpk');
    ns = await bed.netns('client');
    const tun = await bed.tun(ns, {
      mtu: 1500,
      address: '198.18.0.1/30',
      address6: 'fd00::1/64',
      routes: ['198.18.0.0/15'],
      routes6: ['fd00:5::/64'],
    });
    runtime = new StackRuntime(openTun({ name: tun, netns: ns.path }));
    runtime.onTcpRequest((req) => {
      if (req.localPort === 9) return req.reject();
      const socket: TcpSocket = req.accept();
      socket.on('error', () => {});
      if (req.localPort === 7) socket.pipe(socket);
      else if (req.localPort === 5001) {
        // Sink: hash everything, then close our side.
        const h = createHash('sha256');
        socket.on('data', (d) => h.update(d));
        socket.on('end', () => {
          sinks.set(req.remotePort, h.digest('hex'));
          socket.end();
        });
      }
    });
    runtime.start();
  });

  afterAll(async () => {
    await runtime?.close();
    await bed?.destroy();
  });

  async function client(
    mode: string,
    host: string,
    port: number,
    bytes: number,
    conns = 1,
  ): Promise<Result[]> {
    const r = await ns.exec('node', [CLIENT, mode, host, String(port), String(bytes), String(conns)], {
      timeoutMs: 120_000,
    });
    return JSON.parse(r.stdout) as Result[];
  }

  it('echoes 1 MB byte-exact over IPv4', async () => {
    const [r] = await client('echo', '198.18.5.9', 7, 1 << 20);
    expect(r!.receivedBytes).toBe(1 << 20);
    expect(r!.received).toBe(r!.sent);
  });

  it('echoes 1 MB byte-exact over IPv6', async () => {
    const [r] = await client('echo', 'fd00:5::9', 7, 1 << 20);
    expect(r!.received).toBe(r!.sent);
  });

  it('refuses a connection the application rejects (ECONNREFUSED)', async () => {
    const r = await ns.exec('node', [CLIENT, 'echo', '198.18.5.9', '9', '10'], { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ECONNREFUSED');
  });
});
