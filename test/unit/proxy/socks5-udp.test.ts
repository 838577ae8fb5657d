/**
 * SOCKS5 UDP ASSOCIATE (RFC 1928 §7): the datagram header codec (golden bytes, cross-checked
 * against the socks package's createUDPFrame/parseUDPFrame, truncated at every length, random
 * bytes), and the association against a scripted SOCKS5 server on loopback: echo through IPv4,
 * IPv6 and domain headers, fragments and malformed frames dropped, teardown with the control
 * connection, and every way an ASSOCIATE is refused. Also the direct UDP dialer.
 */
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import type * as net from 'node:net';
import fc from 'fast-check';
import { SocksClient } from 'socks';
import { afterEach, describe, expect, it } from 'vitest';
import { DialError } from '../../../src/proxy/errors.js';
import {
  createSocks5UdpDialer,
  encodeSocks5UdpFrame,
  isUdpUnsupported,
  parseSocks5UdpFrame,
  socks5UdpHeaderLength,
  UdpUnsupportedError,
} from '../../../src/proxy/socks5-udp.js';
import {
  createDirectUdpDialer,
  createUdpDialer,
  type UdpAssociation,
  type UdpEndpoint,
} from '../../../src/proxy/udp.js';
import { parseProxyUrl } from '../../../src/proxy/url.js';
import { closedPort, type FakeServer, Socks5GreetingServer, startServer } from './fake-server.js';

/** How the fake answers the ASSOCIATE request. */
interface FakeUdpProxyOptions {
  /** Reply field; 0 succeeds. Default 0. */
  readonly rep?: number;
  /** Close the control connection instead of replying (a CONNECT-only server). */
  readonly closeOnAssociate?: boolean;
  /** Required RFC 1929 credentials. */
  readonly auth?: { readonly user: string; readonly pass: string };
  /** BND.ADDR in the reply: the relay's address (default) or the unspecified '0.0.0.0'. */
  readonly bindAddress?: '127.0.0.1' | '0.0.0.0';
  /** Relay socket family; default udp4 on 127.0.0.1 (udp6 binds ::1 and replies with ATYP 04). */
  readonly relayFamily?: 'udp4' | 'udp6';
}

/** The running fake. */
interface FakeUdpProxy {
  readonly port: number;
  readonly control: FakeServer;
  readonly relay: dgram.Socket;
  /** Where the client's datagrams come from (set after its first one). */
  client: dgram.RemoteInfo | undefined;
  /** Parsed frames received from the client. */
  readonly frames: { host: string; port: number; data: Buffer }[];
  /** Sends raw bytes to the client's UDP address. */
  sendRaw(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Starts the fake proxy. */
async function startFakeUdpProxy(opts: FakeUdpProxyOptions = {}): Promise<FakeUdpProxy> {
  const family = opts.relayFamily ?? 'udp4';
  const relay = dgram.createSocket(family);
  await new Promise<void>((resolve) => relay.bind(0, family === 'udp4' ? '127.0.0.1' : '::1', resolve));
  const relayPort = relay.address().port;
  const fake: FakeUdpProxy = {
    port: 0,
    control: undefined as unknown as FakeServer,
    relay,
    client: undefined,
    frames: [],
    sendRaw: (bytes) =>
      new Promise((resolve, reject) => {
        const c = fake.client;
        if (c === undefined) return reject(new Error('no client yet'));
        relay.send(bytes, c.port, c.address, (err) => (err ? reject(err) : resolve()));
      }),
    close: async () => {
      relay.close();
      await fake.control.close();
    },
  };
  relay.on('message', (msg, rinfo) => {
    fake.client = rinfo;
    const frame = SocksClient.parseUDPFrame(msg);
    fake.frames.push({ host: frame.remoteHost.host, port: frame.remoteHost.port, data: frame.data });
    relay.send(
      SocksClient.createUDPFrame({ remoteHost: frame.remoteHost, data: frame.data }),
      rinfo.port,
      rinfo.address,
    );
  });
  const control = await startServer((socket) => handshake(socket, opts, relayPort, family));
  Object.assign(fake, { port: control.port, control });
  return fake;
}

function handshake(socket: net.Socket, opts: FakeUdpProxyOptions, relayPort: number, family: string): void {
  const greeting = new Socks5GreetingServer(socket, opts.auth);
  let buf: Buffer = Buffer.alloc(0);
  let stage: 'greeting' | 'request' | 'open' = 'greeting';
  socket.on('data', (c: Buffer) => {
    if (stage === 'greeting') {
      const rest = greeting.push(c);
      if (rest === 'more') return;
      if (rest === 'refused') {
        stage = 'open';
        return;
      }
      stage = 'request';
      buf = rest;
    } else {
      buf = Buffer.concat([buf, c]);
    }
    if (stage === 'request' && buf.length >= 10) {
      // VER 5, CMD 3 (UDP ASSOCIATE), RSV, ATYP 1, 0.0.0.0, port 0 from our client.
      if (buf[1] !== 0x03) {
        socket.destroy();
        return;
      }
      stage = 'open';
      if (opts.closeOnAssociate === true) {
        socket.destroy();
        return;
      }
      const rep = opts.rep ?? 0;
      const port = [relayPort >> 8, relayPort & 0xff];
      if (family === 'udp6') {
        socket.write(Buffer.of(5, rep, 0, 4, ...new Array(15).fill(0), 1, ...port));
      } else {
        const a = opts.bindAddress === '0.0.0.0' ? [0, 0, 0, 0] : [127, 0, 0, 1];
        socket.write(Buffer.of(5, rep, 0, 1, ...a, ...port));
      }
      if (rep !== 0) socket.end();
    }
  });
}

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function fakeProxy(opts: FakeUdpProxyOptions = {}): Promise<FakeUdpProxy> {
  const p = await startFakeUdpProxy(opts);
  cleanups.push(() => p.close());
  return p;
}

async function open(url: string): Promise<UdpAssociation> {
  const dialer = createUdpDialer(parseProxyUrl(url));
  if (dialer === undefined) throw new Error(`no UDP for ${url}`);
  const a = await dialer.associate({ timeoutMs: 2000 });
  cleanups.push(() => a.close());
  return a;
}

/** The next 'message' of an association. */
async function nextMessage(a: UdpAssociation): Promise<{ payload: Buffer; from: UdpEndpoint }> {
  const [payload, from] = (await once(a, 'message', { signal: AbortSignal.timeout(2000) })) as [
    Buffer,
    UdpEndpoint,
  ];
  return { payload, from };
}

async function associateError(url: string): Promise<DialError> {
  const err = await createUdpDialer(parseProxyUrl(url))!
    .associate({ timeoutMs: 2000 })
    .then(
      (a) => {
        a.close();
        return undefined;
      },
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(DialError);
  return err as DialError;
}

describe('RFC 1928 §7 UDP request header', () => {
  it('encodes IPv4, IPv6 and domain destinations (golden bytes)', () => {
    const data = Buffer.from('hi');
    expect([...encodeSocks5UdpFrame({ host: '198.18.5.9', port: 53 }, data)!]).toEqual([
      0, 0, 0, 1, 198, 18, 5, 9, 0, 53, 0x68, 0x69,
    ]);
    expect([...encodeSocks5UdpFrame({ host: 'fd00:5::9', port: 0x1234 }, data)!]).toEqual([
      0, 0, 0, 4, 0xfd, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0x12, 0x34, 0x68, 0x69,
    ]);
    expect([...encodeSocks5UdpFrame({ host: 'a.test', port: 7 }, data)!]).toEqual([
      0, 0, 0, 3, 6, 0x61, 0x2e, 0x74, 0x65, 0x73, 0x74, 0, 7, 0x68, 0x69,
    ]);
    expect(socks5UdpHeaderLength('198.18.5.9')).toBe(10);
    expect(socks5UdpHeaderLength('fd00::1')).toBe(22);
    expect(socks5UdpHeaderLength('a.test')).toBe(13);
    expect(encodeSocks5UdpFrame({ host: 'x'.repeat(256), port: 1 }, data)).toBeUndefined();
  });

  it('matches the socks package both ways', () => {
    for (const host of ['198.18.5.9', 'fd00:5::9', '::', 'name.test']) {
      const data = Buffer.from([1, 2, 3]);
      const ours = encodeSocks5UdpFrame({ host, port: 4242 }, data)!;
      expect(ours).toEqual(SocksClient.createUDPFrame({ remoteHost: { host, port: 4242 }, data }));
      const parsed = parseSocks5UdpFrame(ours);
      expect(parsed).toMatchObject({ frag: 0, host, port: 4242 });
      expect([...(parsed as { data: Uint8Array }).data]).toEqual([1, 2, 3]);
    }
  });

  it('parses FRAG and gives IPv6 in RFC 5952 form', () => {
    const f = Buffer.of(0, 0, 3, 4, 0xfd, 0, ...new Array(13).fill(0), 1, 0, 80, 9);
    const parsed = parseSocks5UdpFrame(f);
    expect(parsed).toMatchObject({ frag: 3, host: 'fd00::1', port: 80 });
    expect([...(parsed as { data: Uint8Array }).data]).toEqual([9]);
  });

  it('reports every truncation and an unknown ATYP as malformed', () => {
    for (const host of ['198.18.5.9', 'fd00:5::9', 'name.test']) {
      const frame = encodeSocks5UdpFrame({ host, port: 53 }, Buffer.alloc(0))!;
      for (let n = 0; n < frame.length; n++) {
        expect(parseSocks5UdpFrame(frame.subarray(0, n))).toBe('socks5-udp-malformed');
      }
      expect(parseSocks5UdpFrame(frame)).toMatchObject({ host, port: 53 });
    }
    expect(parseSocks5UdpFrame(Buffer.of(0, 0, 0, 2, 1, 2, 3, 4, 0, 1))).toBe('socks5-udp-malformed');
    expect(parseSocks5UdpFrame(Buffer.of(0, 0, 0, 3, 0, 0, 1))).toBe('socks5-udp-malformed');
  });

  it('never throws on random bytes, and round-trips any IPv4/IPv6 destination', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const r = parseSocks5UdpFrame(b);
        if (typeof r !== 'string') expect(r.data.length).toBeLessThanOrEqual(b.length);
      }),
    );
    fc.assert(
      fc.property(
        fc.oneof(fc.ipV4(), fc.ipV6()),
        fc.integer({ min: 0, max: 65535 }),
        fc.uint8Array({ maxLength: 32 }),
        (ip, port, data) => {
          const r = parseSocks5UdpFrame(encodeSocks5UdpFrame({ host: ip, port }, data)!);
          expect(typeof r).not.toBe('string');
          const f = r as Exclude<typeof r, string>;
          expect([f.port, [...f.data], f.frag]).toEqual([port, [...data], 0]);
          expect(encodeSocks5UdpFrame({ host: f.host, port }, data)).toEqual(
            encodeSocks5UdpFrame({ host: ip, port }, data),
          );
        },
      ),
    );
  });
});

describe('SOCKS5 UDP ASSOCIATE against a scripted server', () => {
  it('relays to IPv4, IPv6 and domain destinations and reports the remote', async () => {
    const proxy = await fakeProxy();
    const a = await open(`socks5://127.0.0.1:${proxy.port}`);
    for (const host of ['198.18.5.9', 'fd00:5::9', 'name.test']) {
      const reply = nextMessage(a);
      a.send(Buffer.from(`to ${host}`), { host, port: 7 });
      const { payload, from } = await reply;
      expect(payload.toString()).toBe(`to ${host}`);
      expect(from).toEqual({ address: host, port: 7 });
    }
    expect(proxy.frames.map((f) => f.host)).toEqual([
      '198.18.5.9',
      expect.stringMatching(/^fd00:/),
      'name.test',
    ]);
  });

  it('authenticates with RFC 1929 credentials; wrong ones are EPROXYAUTH', async () => {
    const proxy = await fakeProxy({ auth: { user: 'u', pass: 'p' } });
    const a = await open(`socks5://u:p@127.0.0.1:${proxy.port}`);
    const reply = nextMessage(a);
    a.send(Buffer.from('x'), { host: '198.18.5.9', port: 9 });
    expect((await reply).payload.toString()).toBe('x');
    const err = await associateError(`socks5://u:wrong@127.0.0.1:${proxy.port}`);
    expect(err.code).toBe('EPROXYAUTH');
    expect(err.message).not.toContain('wrong');
    expect(isUdpUnsupported(err)).toBe(false);
  });

  it('sends to the proxy address when BND.ADDR is 0.0.0.0, and to an IPv6 relay', async () => {
    for (const opts of [{ bindAddress: '0.0.0.0' }, { relayFamily: 'udp6' }] as const) {
      const proxy = await fakeProxy(opts);
      const a = await open(`socks5://127.0.0.1:${proxy.port}`);
      const reply = nextMessage(a);
      a.send(Buffer.from('y'), { host: '198.18.5.9', port: 9 });
      expect((await reply).payload.toString()).toBe('y');
    }
  });

  it('drops fragments (FRAG ≠ 0) and malformed frames with a reason, and keeps going', async () => {
    const proxy = await fakeProxy();
    const a = await open(`socks5://127.0.0.1:${proxy.port}`);
    const drops: string[] = [];
    const messages: string[] = [];
    a.on('drop', (r: string) => drops.push(r));
    a.on('message', (p: Buffer) => messages.push(p.toString()));
    const first = nextMessage(a);
    a.send(Buffer.from('hello'), { host: '198.18.5.9', port: 9 });
    await first;
    await proxy.sendRaw(Buffer.of(0, 0, 1, 1, 198, 18, 5, 9, 0, 9, 0x66));
    await proxy.sendRaw(Buffer.of(0, 0, 0, 9, 1));
    await proxy.sendRaw(Buffer.of(0, 0));
    const last = nextMessage(a);
    await proxy.sendRaw(Buffer.of(0, 0, 0, 1, 198, 18, 5, 10, 0, 10, 0x21));
    expect((await last).from).toEqual({ address: '198.18.5.10', port: 10 });
    expect(drops).toEqual(['socks5-udp-fragment', 'socks5-udp-malformed', 'socks5-udp-malformed']);
    expect(messages).toEqual(['hello', '!']);
  });

  it('closes when the control connection ends; sending afterwards does nothing', async () => {
    const proxy = await fakeProxy();
    const a = await open(`socks5://127.0.0.1:${proxy.port}`);
    const closed = once(a, 'close', { signal: AbortSignal.timeout(2000) });
    for (const s of proxy.control.sockets) s.end();
    await closed;
    expect(a.closed).toBe(true);
    a.send(Buffer.from('late'), { host: '198.18.5.9', port: 9 });
    a.close();
  });

  it('close() ends the control connection and emits close once', async () => {
    const proxy = await fakeProxy();
    const a = await open(`socks5://127.0.0.1:${proxy.port}`);
    let closes = 0;
    a.on('close', () => closes++);
    a.close();
    a.close();
    for (let i = 0; i < 100 && proxy.control.sockets.size > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(proxy.control.sockets.size).toBe(0);
    expect(closes).toBe(1);
  });

  it('reply 07 and a proxy closing on ASSOCIATE mean "no UDP"; other failures do not', async () => {
    const unsupported = await fakeProxy({ rep: 7 });
    let err = await associateError(`socks5://127.0.0.1:${unsupported.port}`);
    expect(err).toBeInstanceOf(UdpUnsupportedError);
    expect([err.code, isUdpUnsupported(err)]).toEqual(['EPROXY', true]);

    const closing = await fakeProxy({ closeOnAssociate: true });
    err = await associateError(`socks5://127.0.0.1:${closing.port}`);
    expect([err.code, isUdpUnsupported(err)]).toEqual(['EPROXY', true]);

    const failing = await fakeProxy({ rep: 1 });
    err = await associateError(`socks5://127.0.0.1:${failing.port}`);
    expect([err.code, isUdpUnsupported(err)]).toEqual(['EPROXY', false]);

    const notAllowed = await fakeProxy({ rep: 2 });
    err = await associateError(`socks5://127.0.0.1:${notAllowed.port}`);
    expect([err.code, isUdpUnsupported(err)]).toEqual(['ECONNREFUSED', false]);

    err = await associateError(`socks5://127.0.0.1:${await closedPort()}`);
    expect([err.code, isUdpUnsupported(err)]).toEqual(['EPROXY', false]);
  });

  it('a silent proxy times out with ETIMEDOUT', async () => {
    const silent: FakeServer = await startServer((s) => s.resume());
    cleanups.push(() => silent.close());
    const err = await createSocks5UdpDialer({ kind: 'socks5', host: '127.0.0.1', port: silent.port })
      .associate({ timeoutMs: 200 })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ETIMEDOUT' });
  });
});

describe('createUdpDialer and the direct UDP dialer', () => {
  it('has UDP for socks5 and direct only', () => {
    expect(createUdpDialer(parseProxyUrl('socks5://127.0.0.1:1080'))?.name).toBe('socks5');
    expect(createUdpDialer(parseProxyUrl('direct://'))?.name).toBe('direct');
    for (const url of ['socks4://127.0.0.1:1080', 'socks4a://h:1', 'http://h:1', 'reject://']) {
      expect(createUdpDialer(parseProxyUrl(url))).toBeUndefined();
    }
  });

  it('direct: full cone over IPv4 and IPv6 sockets opened on demand', async () => {
    const echoes: dgram.Socket[] = [];
    for (const [type, host] of [
      ['udp4', '127.0.0.1'],
      ['udp6', '::1'],
    ] as const) {
      const s = dgram.createSocket(type);
      s.on('message', (m, r) => s.send(m, r.port, r.address));
      await new Promise<void>((resolve) => s.bind(0, host, resolve));
      echoes.push(s);
      cleanups.push(() => {
        s.close();
      });
    }
    const a = await createDirectUdpDialer().associate();
    cleanups.push(() => a.close());
    const hosts = ['127.0.0.1', '::1'];
    for (let i = 0; i < 2; i++) {
      const reply = nextMessage(a);
      a.send(Buffer.from(`v${i}`), { host: hosts[i]!, port: echoes[i]!.address().port });
      const { payload, from } = await reply;
      expect([payload.toString(), from]).toEqual([
        `v${i}`,
        { address: hosts[i], port: echoes[i]!.address().port },
      ]);
    }
    let closes = 0;
    a.on('close', () => closes++);
    a.close();
    a.close();
    a.send(Buffer.from('late'), { host: '127.0.0.1', port: 9 });
    expect([a.closed, closes]).toEqual([true, 1]);
  });
});
