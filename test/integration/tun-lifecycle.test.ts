/**
 * The TUN device's life cycle against the real kernel: batching and flushes, close() while a poll
 * or read is in flight (fast, idempotent, callable from inside the sink), no handle left keeping
 * the process alive, reading stopping cleanly when the interface is deleted, and a pcap capture of
 * both directions read back by tcpdump.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TunError } from '../../src/tun/errors.js';
import { openTun, type ReadMode, type TunDevice, type TunOptions } from '../../src/tun/linux-tun.js';
import { PcapDevice } from '../../src/tun/pcap.js';
import { canRunIntegration, type Netns, Testbed, waitFor } from '../testbed/index.js';
import { echoReply4, sendUdpScript, udpPayload } from './tun-packets.js';

const DIST_TUN = resolve(import.meta.dirname, '../../dist/src/tun/linux-tun.js');
const MODES: ReadMode[] = ['drain', 'async-read', 'uv-poll'];

/** A node one-liner sending `count` datagrams to host:port back to back. */
function burstScript(host: string, port: number, count: number): string {
  return (
    `const s=require('node:dgram').createSocket('udp4');let n=0;` +
    `const next=()=>{if(n===${count})return s.close();s.send('p'+n++,${port},'${host}',next)};next()`
  );
}

/** Runs a child node process and resolves with its exit code, or 'running' if it outlives `ms`. */
function exitWithin(child: ReturnType<typeof spawn>, ms: number): Promise<number | 'running'> {
  return new Promise((res) => {
    const timer = setTimeout(() => res('running'), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      res(code ?? -1);
    });
  });
}

describe.skipIf(!canRunIntegration())('Linux TUN device life cycle', () => {
  let bed: Testbed;
  let ns: Netns;
  const open: { close(): Promise<void> }[] = [];
  let subnet = 60;

  beforeAll(async () => {
    bed = await Testbed.create('tunlife');
    ns = await bed.netns('life');
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  async function tunWithAddress(opts: TunOptions = {}): Promise<{ tun: TunDevice; k: number }> {
    const k = subnet++;
    const tun = openTun({ name: bed.ifname('l'), netns: ns.path, ...opts });
    open.push(tun);
    await ns.ip(['addr', 'add', `198.18.${k}.1/24`, 'dev', tun.name]);
    await ns.ip(['link', 'set', tun.name, 'up']);
    return { tun, k };
  }

  for (const readMode of MODES) {
    it(`delivers a queued burst in batches of at most \`batch\`, one flush each (${readMode})`, async () => {
      const { tun, k } = await tunWithAddress({ readMode, batch: 4 });
      // Queued in the kernel before the reader starts, so the batch structure is deterministic.
      await ns.exec('node', ['-e', burstScript(`198.18.${k}.2`, 7000, 10)]);
      // Batches count every packet (the kernel may queue an IPv6 router solicitation too).
      const batches: number[] = [];
      let current = 0;
      let datagrams = 0;
      tun.start({
        receive: (p) => {
          current++;
          if (udpPayload(p, 7000)) datagrams++;
        },
        flush: () => {
          batches.push(current);
          current = 0;
        },
      });
      await waitFor(() => datagrams === 10, 5000, 'all 10 datagrams');
      if (readMode !== 'async-read') {
        expect(Math.max(...batches)).toBe(4);
        expect(batches.length).toBeGreaterThanOrEqual(3);
      } else {
        expect(batches.every((n) => n === 1)).toBe(true);
      }
    });

    it(`closes within 100 ms while a poll is waiting, idempotently (${readMode})`, async () => {
      const { tun } = await tunWithAddress({ readMode });
      tun.start({ receive: () => {}, flush: () => {} });
      await new Promise((r) => setTimeout(r, 50)); // the async poll is now blocked in the thread pool
      const t0 = performance.now();
      const closing = tun.close();
      expect(tun.close()).toBe(closing);
      await closing;
      // ~100 ms is the contract; the margin absorbs a loaded CI machine.
      expect(performance.now() - t0).toBeLessThan(200);
      expect(tun.fd).toBe(-1);
      expect(tun.write(new Uint8Array(20))).toBe(false);
      // A non-persistent TUN disappears with its fd.
      expect((await ns.ip(['link', 'show', tun.name], { allowFail: true })).code).not.toBe(0);
    });

    it(`can be closed from inside the sink (${readMode})`, async () => {
      const { tun, k } = await tunWithAddress({ readMode });
      let closed: Promise<void> | undefined;
      let after = 0;
      tun.start({
        receive: () => {
          if (closed === undefined) closed = tun.close();
          else after++;
        },
        flush: () => {},
      });
      await ns.exec('node', ['-e', burstScript(`198.18.${k}.2`, 7001, 5)]);
      await waitFor(() => closed !== undefined, 5000, 'the first packet');
      await closed;
      expect(after).toBe(0);
    });

    it(`stops reading and reports TUN_READ when the interface is deleted (${readMode})`, async () => {
      const { tun } = await tunWithAddress({ readMode, onError: () => {} });
      tun.start({ receive: () => {}, flush: () => {} });
      await ns.ip(['link', 'del', tun.name]);
      const err = (await waitFor(() => tun.readError, 5000, 'the read error'))!;
      expect(err.code).toBe('TUN_READ');
      expect(err.message).toMatch(new RegExp(`^TUN ${tun.name}: reading stopped: `));
      await tun.close();
    });
  }

  it('calls onError once when the interface goes away', async () => {
    const errors: TunError[] = [];
    const { tun } = await tunWithAddress({ onError: (e) => errors.push(e) });
    tun.start({ receive: () => {}, flush: () => {} });
    await ns.ip(['link', 'del', tun.name]);
    await waitFor(() => errors.length > 0, 5000, 'onError');
    await new Promise((r) => setTimeout(r, 50));
    expect(errors.length).toBe(1);
    expect(tun.stats.rxErrors).toBe(1);
  });

  it.skipIf(!existsSync(DIST_TUN))('leaves no handle keeping the process alive after close()', async () => {
    for (const readMode of MODES) {
      const name = bed.ifname('h');
      const script =
        `const { openTun } = await import(${JSON.stringify(DIST_TUN)});` +
        `const tun = openTun({ name: ${JSON.stringify(name)}, netns: ${JSON.stringify(ns.path)}, readMode: '${readMode}' });` +
        `tun.start({ receive() {}, flush() {} });` +
        `await new Promise((r) => setTimeout(r, 100));` +
        `if (process.argv[1] === 'close') await tun.close();`;
      const closing = spawn(process.execPath, ['--input-type=module', '-e', script, 'close'], {
        stdio: 'inherit',
      });
      expect(await exitWithin(closing, 5000)).toBe(0);
      // The control: without close() the started device keeps the process alive, as a socket does.
      const name2 = bed.ifname('h');
      const leaking = spawn(
        process.execPath,
        ['--input-type=module', '-e', script.replaceAll(JSON.stringify(name), JSON.stringify(name2)), 'keep'],
        { stdio: 'inherit' },
      );
      try {
        expect(await exitWithin(leaking, 1000)).toBe('running');
      } finally {
        leaking.kill('SIGKILL');
      }
    }
  });

  it('captures both directions to a pcap file that tcpdump reads', async () => {
    const hasTcpdump = ['/usr/bin/tcpdump', '/usr/sbin/tcpdump'].some((p) => existsSync(p));
    if (!hasTcpdump && process.env.CI)
      throw new Error('tcpdump is required under CI (apt-get install tcpdump)');
    const path = join(await bed.tmpdir(), 'tun.pcap');
    const { tun, k } = await tunWithAddress();
    const dev = new PcapDevice(tun, path);
    open.push(dev);
    let udpSeen = false;
    dev.start({
      receive: (p) => {
        if (udpPayload(p, 40002)) udpSeen = true;
        const reply = echoReply4(p);
        if (reply !== undefined) dev.write(reply);
      },
      flush: () => {},
    });
    await ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', `198.18.${k}.5`]);
    await ns.exec('node', ['-e', sendUdpScript('udp4', `198.18.${k}.6`, 40002, 'captured')]);
    await waitFor(() => udpSeen, 5000, 'the datagram');
    await dev.close();
    if (!hasTcpdump) return;
    const out = await new Promise<string>((res, rej) => {
      const td = spawn('tcpdump', ['-n', '-r', path], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      td.stdout.on('data', (d: Buffer) => {
        text += d.toString();
      });
      td.on('error', rej);
      td.on('exit', (code) => (code === 0 ? res(text) : rej(new Error(`tcpdump exited with ${code}`))));
    });
    expect(out).toMatch(new RegExp(`198\\.18\\.${k}\\.1 > 198\\.18\\.${k}\\.5: ICMP echo request`));
    expect(out).toMatch(new RegExp(`198\\.18\\.${k}\\.5 > 198\\.18\\.${k}\\.1: ICMP echo reply`));
    expect(out).toMatch(
      new RegExp(`198\\.18\\.${k}\\.1\\.\\d+ > 198\\.18\\.${k}\\.6\\.40002: UDP, length 8`),
    );
    expect(out.match(/ICMP echo (request|reply)/g)?.length).toBe(4);
  });
});
