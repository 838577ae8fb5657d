/**
 * The Linux TUN device against the real kernel, in a test namespace: packets sent by sockets in
 * the namespace arrive through the sink (both read modes, IPv4 and IPv6), packets written into the
 * TUN reach the namespace's sockets and ping, persistent devices and handed-over fds attach, and
 * each failure gives its one-line TunError.
 */
import { closeSync, openSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PacketSink } from '../../src/tun/device.js';
import { TunError } from '../../src/tun/errors.js';
import {
  openTun,
  type ReadMode,
  resolveReadMode,
  type TunDevice,
  type TunOptions,
} from '../../src/tun/linux-tun.js';
import { openTunFd } from '../../src/tun/tun-open.js';
import { canRunIntegration, type Netns, Testbed, waitFor } from '../testbed/index.js';
import {
  echoReply4,
  receiveManyUdpScript,
  receiveUdpScript,
  sendManyUdpScript,
  sendUdpScript,
  udp4,
  udpPayload,
} from './tun-packets.js';

/** A sink keeping copies of everything, and an optional responder that writes replies. */
function collector(respond?: (p: Uint8Array) => void) {
  const packets: Uint8Array[] = [];
  let flushes = 0;
  const sink: PacketSink = {
    receive(p) {
      packets.push(p.slice());
      respond?.(p);
    },
    flush() {
      flushes++;
    },
  };
  return { sink, packets, flushes: () => flushes };
}

function tunErrorOf(fn: () => unknown): TunError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TunError);
    return err as TunError;
  }
  throw new Error('expected a TunError');
}

const text = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b).toString();

describe.skipIf(!canRunIntegration())('Linux TUN device', () => {
  let bed: Testbed;
  let ns: Netns;
  const open: TunDevice[] = [];
  let subnet = 10;

  beforeAll(async () => {
    bed = await Testbed.create('tun');
    ns = await bed.netns('tun');
  });

  // Each started TUN keeps one libuv thread-pool thread blocked in poll() (4 by default), so every
  // test closes what it opened rather than letting them pile up.
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  /** Opens a TUN in the namespace, gives it 198.18.<k>.1/24 (and fd00:<k>::1/64) and brings it up. */
  async function tunWithAddress(opts: TunOptions = {}): Promise<{ tun: TunDevice; k: number }> {
    const k = subnet++;
    const tun = openTun({ name: bed.ifname('t'), netns: ns.path, ...opts });
    open.push(tun);
    await ns.ip(['addr', 'add', `198.18.${k}.1/24`, 'dev', tun.name]);
    await ns.ip(['addr', 'add', `fd00:${k}::1/64`, 'dev', tun.name, 'nodad']);
    await ns.ip(['link', 'set', tun.name, 'up']);
    return { tun, k };
  }

  /** Runs a UDP receiver script in the namespace; resolves once it is listening, to its output so far. */
  async function udpReceiver(script: string): Promise<() => string> {
    const child = ns.spawn('node', ['-e', script], { detached: false });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor(() => out.includes('ready'), 5000, 'the UDP receiver');
    return () => out;
  }

  for (const readMode of ['drain', 'async-read', 'uv-poll'] as ReadMode[]) {
    it(`receives UDP sent from the namespace (${readMode}), IPv4 and IPv6`, async () => {
      const { tun, k } = await tunWithAddress({ readMode, mtu: 1400 });
      expect(tun.mtu).toBe(1400);
      expect((await ns.ip(['link', 'show', tun.name])).stdout).toContain('mtu 1400');
      const c = collector();
      tun.start(c.sink);
      await ns.exec('node', ['-e', sendUdpScript('udp4', `198.18.${k}.2`, 5000, `hello ${readMode}`)]);
      await ns.exec('node', ['-e', sendUdpScript('udp6', `fd00:${k}::2`, 5000, `hello6 ${readMode}`)]);
      await waitFor(() => c.packets.filter((p) => udpPayload(p, 5000)).length >= 2, 5000, 'both datagrams');
      const v4 = c.packets.find((p) => p[0]! >> 4 === 4 && udpPayload(p, 5000))!;
      expect(text(udpPayload(v4, 5000))).toBe(`hello ${readMode}`);
      expect([...v4.subarray(12, 20)]).toEqual([198, 18, k, 1, 198, 18, k, 2]);
      const v6 = c.packets.find((p) => p[0]! >> 4 === 6 && udpPayload(p, 5000))!;
      expect(text(udpPayload(v6, 5000))).toBe(`hello6 ${readMode}`);
      expect(tun.stats.rxPackets).toBe(c.packets.length);
      expect(tun.stats.rxBytes).toBe(c.packets.reduce((a, p) => a + p.length, 0));
      expect(c.flushes()).toBeGreaterThan(0);
      expect(tun.stats.rxErrors).toBe(0);
    });
  }

  it("defaults to 'uv-poll' when koffi has its readiness binding, else 'drain'", async () => {
    const { tun } = await tunWithAddress();
    expect(tun.readMode).toBe(resolveReadMode('auto'));
    expect(['uv-poll', 'drain']).toContain(tun.readMode);
    expect(resolveReadMode('drain')).toBe('drain');
  });

  it('runs more uv-poll devices at once than the thread pool has threads', async () => {
    // Six 'drain' devices would need six blocked thread-pool polls (the pool has 4 by default).
    const devices = await Promise.all(
      Array.from({ length: 6 }, () => tunWithAddress({ readMode: 'uv-poll' })),
    );
    const seen = devices.map(({ tun }) => {
      const c = collector();
      tun.start(c.sink);
      return c;
    });
    for (const { k } of devices)
      await ns.exec('node', ['-e', sendUdpScript('udp4', `198.18.${k}.2`, 5005, `to ${k}`)]);
    await waitFor(
      () => seen.every((c, i) => c.packets.some((p) => text(udpPayload(p, 5005)) === `to ${devices[i]!.k}`)),
      5000,
      'a datagram on every device',
    );
  });

  it('writes a UDP datagram that a socket in the namespace receives', async () => {
    const { tun, k } = await tunWithAddress();
    tun.start(collector().sink);
    const output = await udpReceiver(receiveUdpScript(`198.18.${k}.1`, 6000));
    const packet = udp4(`198.18.${k}.2`, 7777, `198.18.${k}.1`, 6000, Buffer.from('from the tun'));
    // Written from a view at an odd offset into a larger buffer, as a stack emitting in place would.
    const backing = new Uint8Array(packet.length + 20).fill(0xa5);
    backing.set(packet, 7);
    expect(tun.write(backing.subarray(7, 7 + packet.length))).toBe(true);
    await waitFor(() => output().includes('got '), 5000, `the datagram (${output()})`);
    expect(output()).toContain(`got from the tun from 198.18.${k}.2:7777`);
    expect(tun.stats).toMatchObject({ txPackets: 1, txBytes: packet.length, txErrors: 0, txDropped: 0 });
  });

  it('answers ping from the namespace by writing echo replies', async () => {
    const { tun, k } = await tunWithAddress();
    tun.start(
      collector((p) => {
        const reply = echoReply4(p);
        if (reply !== undefined) tun.write(reply);
      }).sink,
    );
    const r = await ns.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', `198.18.${k}.77`]);
    expect(r.stdout).toContain('3 received');
    expect(tun.stats.txPackets).toBe(3);
  });

  it('counts a write to a TUN that is down as an error, without throwing (plain)', async () => {
    const tun = openTun({ name: bed.ifname('t'), netns: ns.path, ioMode: 'plain' });
    open.push(tun);
    expect(tun.ioMode).toBe('plain');
    expect(tun.write(udp4('198.18.9.2', 1, '198.18.9.1', 2, new Uint8Array(4)))).toBe(false);
    expect(tun.write(new Uint8Array(0))).toBe(false);
    expect(tun.stats.txErrors).toBe(2);
  });

  it('counts batched writes to a TUN that is down as errors when the batch goes out (uring)', async () => {
    const tun = openTun({ name: bed.ifname('t'), netns: ns.path, ioMode: 'uring' });
    open.push(tun);
    expect(tun.ioMode).toBe('uring');
    // Queued: the verdict comes when the turn's batch is submitted (two packets: one submit).
    expect(tun.write(udp4('198.18.9.2', 1, '198.18.9.1', 2, new Uint8Array(4)))).toBe(true);
    expect(tun.write(udp4('198.18.9.2', 1, '198.18.9.1', 2, new Uint8Array(5)))).toBe(true);
    expect(tun.write(new Uint8Array(0))).toBe(false);
    expect(tun.stats.txErrors).toBe(1);
    await Promise.resolve();
    expect(tun.stats).toMatchObject({ txErrors: 3, txPackets: 0, txBatches: 1 });
  });

  it('writes a turn of packets through io_uring in order, a large one in between, as the kernel counts them', async () => {
    const { tun, k } = await tunWithAddress({ ioMode: 'uring', mtu: 9000 });
    expect(tun.ioMode).toBe('uring');
    tun.start(collector().sink);
    const n = 100;
    const output = await udpReceiver(receiveManyUdpScript(`198.18.${k}.1`, 6001, n));
    // One synchronous turn: datagram 50 is 6000 bytes, past the ring's arena limit, so it is
    // written directly, after the 50 queued before it.
    const sent: string[] = [];
    for (let i = 0; i < n; i++) {
      const text = i === 50 ? `#${i} ${'x'.repeat(6000)}` : `#${i}`;
      sent.push(text);
      expect(tun.write(udp4(`198.18.${k}.2`, 7000, `198.18.${k}.1`, 6001, Buffer.from(text)))).toBe(true);
    }
    await waitFor(() => output().includes(']'), 12_000, 'the datagrams');
    const got = JSON.parse(output().slice(output().indexOf('['))) as string[];
    expect(got).toEqual(sent);
    expect(tun.stats).toMatchObject({ txPackets: n, txErrors: 0, txDropped: 0, txBatches: 2 });

    // Past the ring's 256 entries in one turn: several submits, every packet seen by the kernel.
    const before = Number(
      /RX:.*\n\s*\d+\s+(\d+)/.exec((await ns.ip(['-s', 'link', 'show', tun.name])).stdout)![1],
    );
    const many = 600;
    for (let i = 0; i < many; i++)
      tun.write(udp4(`198.18.${k}.2`, 7000, `198.18.${k}.1`, 9, Buffer.from(`bulk ${i}`)));
    await Promise.resolve();
    expect(tun.stats.txPackets).toBe(n + many);
    expect(tun.stats.txBatches).toBeGreaterThanOrEqual(2 + 3);
    const after = Number(
      /RX:.*\n\s*\d+\s+(\d+)/.exec((await ns.ip(['-s', 'link', 'show', tun.name])).stdout)![1],
    );
    expect(after - before).toBe(many);
  });

  it('reads a burst through io_uring in order, several packets per io_uring_enter', async () => {
    const { tun, k } = await tunWithAddress({ ioMode: 'uring' });
    expect(tun.readsThroughUring).toBe(true);
    const c = collector();
    tun.start(c.sink);
    const n = 2000;
    await ns.exec('node', ['-e', sendManyUdpScript(`198.18.${k}.2`, 5010, n)]);
    await waitFor(() => c.packets.filter((p) => udpPayload(p, 5010)).length >= n, 10_000, 'the burst');
    const got = c.packets.map((p) => text(udpPayload(p, 5010))).filter((t) => t !== undefined);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => `#${i}`));
    expect(tun.stats.rxErrors).toBe(0);
    expect(tun.readsThroughUring).toBe(true);
  });

  it('goes back to read() when a packet outgrows the io_uring read slots (MTU raised after open)', async () => {
    // Without offload, so the read slots are MTU-sized (with TSO they hold 64 KB super-segments).
    const { tun, k } = await tunWithAddress({ ioMode: 'uring', mtu: 1500, offload: 'off' });
    expect(tun.readsThroughUring).toBe(true);
    const c = collector();
    tun.start(c.sink);
    await ns.ip(['link', 'set', tun.name, 'mtu', '9000']);
    const big = 'y'.repeat(8000);
    await ns.exec('node', ['-e', sendUdpScript('udp4', `198.18.${k}.2`, 5011, big)]);
    await waitFor(() => !tun.readsThroughUring, 5000, 'the fall-back to read()');
    expect(tun.ioNote).toMatch(/larger than the io_uring read slots/);
    expect(tun.stats.rxErrors).toBe(1);
    await ns.exec('node', ['-e', sendUdpScript('udp4', `198.18.${k}.2`, 5011, big)]);
    await waitFor(() => c.packets.some((p) => text(udpPayload(p, 5011)) === big), 5000, 'the big datagram');
    expect(tun.readError).toBeUndefined();
  });

  it("falls back to write() when io_uring is refused ('auto')", async () => {
    const { tun, k } = await tunWithAddress({ ioMode: 'plain' });
    // More entries than io_uring_setup accepts (32768): refused with EINVAL, as a kernel without
    // io_uring or a seccomp filter refuses it.
    expect(tun.useUring(1 << 20)).toBe('io_uring_setup refused (EINVAL)');
    expect(tun.ioNote).toBe('io_uring_setup refused (EINVAL)');
    expect(tun.ioMode).toBe('plain');
    tun.start(collector().sink);
    const output = await udpReceiver(receiveUdpScript(`198.18.${k}.1`, 6002));
    expect(tun.write(udp4(`198.18.${k}.2`, 7001, `198.18.${k}.1`, 6002, Buffer.from('plain write')))).toBe(
      true,
    );
    expect(tun.stats.txPackets).toBe(1);
    await waitFor(() => output().includes('got '), 5000, `the datagram (${output()})`);
  });

  it('attaches to a persistent TUN made by `ip tuntap add`, which outlives close()', async () => {
    const name = await bed.tun(ns, { address: '198.18.40.1/24' });
    const tun = openTun({ name, netns: ns.path });
    open.push(tun);
    expect(tun.name).toBe(name);
    const c = collector();
    tun.start(c.sink);
    await ns.exec('node', ['-e', sendUdpScript('udp4', '198.18.40.9', 5001, 'persistent')]);
    await waitFor(
      () => c.packets.some((p) => text(udpPayload(p, 5001)) === 'persistent'),
      5000,
      'the datagram',
    );
    await tun.close();
    expect((await ns.ip(['link', 'show', name])).stdout).toContain(name);
  });

  it('refuses a second attach to a busy single-queue TUN with TUN_BUSY', async () => {
    const { tun } = await tunWithAddress();
    const err = tunErrorOf(() => openTun({ name: tun.name, netns: ns.path }));
    expect(err.code).toBe('TUN_BUSY');
    expect(err.errno).toBe('EBUSY');
    expect(err.message).toBe(
      `TUN ${tun.name} is busy (EBUSY): another process holds it (a single-queue TUN has one reader) or it has different flags`,
    );
  });

  it('refuses the name of a non-TUN interface (lo) with TUN_NOT_TUN', () => {
    const err = tunErrorOf(() => openTun({ name: 'lo', netns: ns.path }));
    expect(err.code).toBe('TUN_NOT_TUN');
    expect(err.message).toMatch(/^interface lo exists but is not a TUN device/);
  });

  it('reports a missing namespace path with TUN_NETNS', () => {
    const err = tunErrorOf(() => openTun({ name: 'tun0', netns: `${ns.path}-missing` }));
    expect(err.code).toBe('TUN_NETNS');
    expect(err.message).toBe(
      `network namespace ${ns.path}-missing does not exist (create it with: ip netns add NAME)`,
    );
  });

  it('adopts a handed-over fd, learning name and MTU in the device namespace', async () => {
    const name = bed.ifname('fd');
    const raw = openTunFd(name, { netns: ns.path });
    await ns.ip(['link', 'set', name, 'mtu', '1280']);
    await ns.ip(['addr', 'add', '198.18.50.1/24', 'dev', name]);
    await ns.ip(['link', 'set', name, 'up']);
    // No netns option: the MTU is read in the device's namespace found through TUNGETDEVNETNS.
    const tun = openTun({ fd: raw.fd });
    open.push(tun);
    expect([tun.name, tun.mtu, tun.fd]).toEqual([name, 1280, raw.fd]);
    const c = collector();
    tun.start(c.sink);
    await ns.exec('node', ['-e', sendUdpScript('udp4', '198.18.50.2', 5002, 'handed over')]);
    await waitFor(
      () => c.packets.some((p) => text(udpPayload(p, 5002)) === 'handed over'),
      5000,
      'the datagram',
    );
  });

  it('strips and prepends the packet-info header of an fd opened without IFF_NO_PI', async () => {
    const name = bed.ifname('pi');
    const raw = openTunFd(name, { netns: ns.path, packetInfo: true });
    const tun = openTun({ fd: raw.fd, netns: ns.path });
    open.push(tun);
    await ns.ip(['addr', 'add', '198.18.51.1/24', 'dev', name]);
    await ns.ip(['addr', 'add', 'fd00:51::1/64', 'dev', name, 'nodad']);
    await ns.ip(['link', 'set', name, 'up']);
    const c = collector((p) => {
      const reply = echoReply4(p);
      if (reply !== undefined) tun.write(reply);
    });
    tun.start(c.sink);
    await ns.exec('node', ['-e', sendUdpScript('udp4', '198.18.51.2', 5003, 'with pi')]);
    await ns.exec('node', ['-e', sendUdpScript('udp6', 'fd00:51::2', 5003, 'with pi 6')]);
    await waitFor(() => c.packets.filter((p) => udpPayload(p, 5003)).length >= 2, 5000, 'both datagrams');
    // Packets start at the IP header: the 4-byte tun_pi was stripped.
    expect(c.packets.every((p) => p[0]! >> 4 === 4 || p[0]! >> 4 === 6)).toBe(true);
    const r = await ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '198.18.51.9']);
    expect(r.stdout).toContain('2 received');
  });

  it('refuses fds that are not TUN devices', () => {
    const devNull = openSync('/dev/null', 'r');
    const unattached = openSync('/dev/net/tun', 'r+');
    try {
      const notTun = tunErrorOf(() => openTun({ fd: devNull }));
      expect(notTun.code).toBe('TUN_NOT_TUN');
      expect(notTun.message).toBe(`fd ${devNull} is not a TUN device (ENOTTY)`);
      const bare = tunErrorOf(() => openTun({ fd: unattached }));
      expect(bare.code).toBe('TUN_NOT_TUN');
      expect(bare.message).toMatch(/not attached to any interface/);
    } finally {
      closeSync(devNull);
      closeSync(unattached);
    }
    // Far above any open fd (and RLIMIT_NOFILE), so nothing else can own it meanwhile.
    const closed = tunErrorOf(() => openTun({ fd: 999_999 }));
    expect(closed.code).toBe('TUN_BAD_FD');
    expect(closed.message).toBe('fd 999999 is not open (EBADF)');
  });
});
