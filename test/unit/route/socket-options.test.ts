/**
 * Upstream socket options on real sockets over loopback (no route, rule or address is touched):
 * SO_MARK shows in `ss -e` as fwmark, TCP connects and carries data, UDP sends and receives on
 * both families, and a bad interface name fails with ENODEV before anything is sent.
 */
import { execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createDirectDialer, createDirectUdpDialer } from '../../../src/proxy/index.js';
import {
  openTcpSocket,
  openUdpSocket,
  SocketOptionError,
  setUpstreamSocketOptions,
  upstreamSocketOptions,
} from '../../../src/proxy/socket-options.js';

const root = process.platform === 'linux' && process.getuid?.() === 0;

function ssLines(args: string[]): string {
  return execFileSync('ss', args, { encoding: 'utf8', timeout: 5000 });
}

describe('upstreamSocketOptions', () => {
  afterEach(() => setUpstreamSocketOptions(undefined));

  it('is undefined unless a mark or an interface is asked for', () => {
    expect(upstreamSocketOptions()).toBeUndefined();
    setUpstreamSocketOptions({ fwmark: 0 });
    expect(upstreamSocketOptions()).toBeUndefined();
    setUpstreamSocketOptions({ fwmark: 0x2022 });
    expect(upstreamSocketOptions()).toEqual({ fwmark: 0x2022 });
    setUpstreamSocketOptions({ bindInterface: 'eth0' });
    expect(upstreamSocketOptions()).toEqual({ bindInterface: 'eth0' });
  });

  it('refuses a mark outside 32 bits', () => {
    expect(() => setUpstreamSocketOptions({ fwmark: -1 })).toThrow(RangeError);
    expect(() => setUpstreamSocketOptions({ fwmark: 2 ** 32 })).toThrow(RangeError);
    expect(() => setUpstreamSocketOptions({ fwmark: 1.5 })).toThrow(RangeError);
  });
});

describe.skipIf(!root)('marked sockets (root, loopback only)', () => {
  it('a TCP socket carries SO_MARK from before connect and relays data', async () => {
    const server = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const socket = openTcpSocket(4, { fwmark: 0x2022 });
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect({ host: '127.0.0.1', port }, resolve);
      });
      const local = socket.localPort!;
      const echoed = new Promise<string>((r) => socket.once('data', (d) => r(d.toString())));
      socket.write('ping');
      expect(await echoed).toBe('ping');
      const ss = ssLines(['-Htne', 'src', `127.0.0.1:${local}`]);
      expect(ss).toContain('fwmark:0x2022');
      socket.destroy();
    } finally {
      server.close();
    }
  });

  it('an IPv6 TCP socket connects to ::1', async () => {
    const server = net.createServer((s) => s.end('v6'));
    await new Promise<void>((r) => server.listen(0, '::1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const socket = openTcpSocket(6, { fwmark: 7 });
      const got = await new Promise<string>((resolve, reject) => {
        let text = '';
        socket.once('error', reject);
        socket.on('data', (d) => {
          text += d.toString();
        });
        socket.on('end', () => resolve(text));
        socket.connect({ host: '::1', port });
      });
      expect(got).toBe('v6');
    } finally {
      server.close();
    }
  });

  for (const family of [4, 6] as const) {
    it(`a UDP${family} socket with SO_MARK sends and receives replies`, async () => {
      const host = family === 4 ? '127.0.0.1' : '::1';
      const server = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
      server.on('message', (m, r) => server.send(m, r.port, r.address));
      await new Promise<void>((r) => server.bind(0, host, r));
      const port = server.address().port;
      const socket = openUdpSocket(family, { fwmark: 0x2022 });
      try {
        const reply = new Promise<string>((r) => socket.once('message', (m) => r(m.toString())));
        socket.send('hello', port, host);
        expect(await reply).toBe('hello');
        const ss = ssLines(['-Hunae', 'sport', '=', `:${socket.address().port}`]);
        expect(ss).toContain('fwmark:0x2022');
      } finally {
        socket.close();
        server.close();
      }
    });
  }

  it('an unknown interface is refused with ENODEV and the fd is closed', () => {
    let err: unknown;
    try {
      openTcpSocket(4, { bindInterface: 'no-such-if0' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SocketOptionError);
    expect((err as SocketOptionError).code).toBe('ENODEV');
  });

  it('SO_BINDTODEVICE to lo still reaches loopback', async () => {
    const server = net.createServer((s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const socket = openTcpSocket(4, { bindInterface: 'lo' });
      const got = await new Promise<string>((resolve, reject) => {
        socket.once('error', reject);
        socket.once('data', (d) => resolve(d.toString()));
        socket.connect({ host: '127.0.0.1', port });
      });
      expect(got).toBe('ok');
      socket.destroy();
    } finally {
      server.close();
    }
  });

  describe('dialers with setUpstreamSocketOptions', () => {
    afterEach(() => setUpstreamSocketOptions(undefined));

    it('the direct dialer marks its socket, resolving a name first', async () => {
      const server = net.createServer((s) => s.pipe(s));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      setUpstreamSocketOptions({ fwmark: 0x2023 });
      try {
        const socket = await createDirectDialer().dial({ host: 'localhost', port }, { timeoutMs: 2000 });
        const ss = ssLines(['-Htne', 'sport', '=', `:${socket.localPort}`]);
        expect(ss).toContain('fwmark:0x2023');
        socket.destroy();
      } finally {
        server.close();
      }
    });

    it('a refused option fails the dial with no socket left behind', async () => {
      setUpstreamSocketOptions({ bindInterface: 'no-such-if0' });
      await expect(createDirectDialer().dial({ host: '127.0.0.1', port: 9 })).rejects.toMatchObject({
        name: 'DialError',
      });
    });

    it('direct UDP marks its sockets; a refused option closes the association', async () => {
      const server = dgram.createSocket('udp4');
      let clientPort = 0;
      server.on('message', (m, r) => {
        clientPort = r.port;
        server.send(m, r.port, r.address);
      });
      await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
      setUpstreamSocketOptions({ fwmark: 0x2024 });
      const assoc = await createDirectUdpDialer().associate();
      try {
        const reply = new Promise<string>((r) => assoc.once('message', (m: Buffer) => r(m.toString())));
        assoc.send(Buffer.from('x1'), { host: '127.0.0.1', port: server.address().port });
        expect(await reply).toBe('x1');
        const ss = ssLines(['-Hunae', 'sport', '=', `:${clientPort}`]);
        expect(ss).toContain('fwmark:0x2024');
      } finally {
        assoc.close();
        server.close();
      }
      setUpstreamSocketOptions({ bindInterface: 'no-such-if0' });
      const bad = await createDirectUdpDialer().associate();
      const closed = new Promise<Error | undefined>((r) => bad.once('close', r));
      bad.send(Buffer.from('x'), { host: '127.0.0.1', port: 9 });
      expect((await closed)?.message).toMatch(/ENODEV/);
    });
  });
});
