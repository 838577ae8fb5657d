/**
 * The SOCKS5 client handshake as a byte trace: what we send at each step (RFC 1928 §3/§4, RFC 1929
 * §2), what we make of every reply the proxy can give, and the same outcome whatever way the
 * proxy's bytes are split.
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  encodeSocks5Address,
  Socks5Error,
  Socks5Handshake,
  type Socks5Request,
  type Socks5Step,
  socks5Handshake,
} from '../../../src/proxy/socks5-handshake.js';
import { type FakeServer, readBytes, startServer } from './fake-server.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/ /g, ''), 'hex'));

/** Feeds `input` in the given chunk sizes; collects what we send and the final step. */
function run(
  req: Socks5Request,
  input: Uint8Array,
  cuts: readonly number[] = [],
): { sent: string[]; last: Socks5Step | undefined } {
  const hs = new Socks5Handshake(req);
  const first = hs.first();
  if (first.kind !== 'send') return { sent: [], last: first };
  const sent = [hex(first.bytes)];
  let last: Socks5Step | undefined;
  let at = 0;
  for (const end of [...cuts, input.length]) {
    let step = hs.push(input.subarray(at, end));
    at = end;
    while (step?.kind === 'send') {
      sent.push(hex(step.bytes));
      step = hs.push();
    }
    if (step !== undefined) {
      last = step;
      break;
    }
  }
  return { sent, last };
}

const CONNECT_V4: Socks5Request = { command: 'connect', host: '198.18.32.2', port: 7001 };
const OK_V4 = '05 00 00 01 c6122002 1b59';

describe('SOCKS5 handshake bytes', () => {
  it('no auth: greeting, CONNECT to an IPv4 address, reply with BND', () => {
    const { sent, last } = run(CONNECT_V4, bytes(`05 00 ${OK_V4}`));
    expect(sent).toEqual(['050100', '05010001c61220021b59']);
    expect(last).toEqual({
      kind: 'done',
      reply: { host: '198.18.32.2', port: 7001, rest: new Uint8Array(0) },
    });
  });

  it('IPv6 and domain destinations (RFC 1928 §5 ATYP 04 and 03)', () => {
    expect(hex(encodeSocks5Address('fd00::1')!)).toBe('04fd000000000000000000000000000001');
    expect(hex(encodeSocks5Address('a.test')!)).toBe('0306612e74657374');
    expect(encodeSocks5Address('')).toBeUndefined();
    expect(encodeSocks5Address('x'.repeat(256))).toBeUndefined();
    const { sent } = run({ command: 'connect', host: 'a.test', port: 80 }, bytes('05 00'));
    expect(sent[1]).toBe('050100' + '0306612e74657374' + '0050');
  });

  it('UDP ASSOCIATE sends CMD 03 with zeros, and reads an IPv6 or domain BND', () => {
    const req: Socks5Request = { command: 'associate', host: '0.0.0.0', port: 0 };
    const v6 = run(req, bytes('05 00 05 00 00 04 fd000000000000000000000000000002 04d2'));
    expect(v6.sent[1]).toBe('05030001000000000000');
    expect(v6.last).toMatchObject({ kind: 'done', reply: { host: 'fd00::2', port: 1234 } });
    const name = run(req, bytes('05 00 05 00 00 03 06 612e74657374 04d2'));
    expect(name.last).toMatchObject({ kind: 'done', reply: { host: 'a.test', port: 1234 } });
  });

  it('offers username/password with credentials and sends RFC 1929 auth when chosen', () => {
    const req: Socks5Request = { ...CONNECT_V4, username: 'u', password: 'pw' };
    const { sent, last } = run(req, bytes(`05 02 01 00 ${OK_V4}`));
    expect(sent).toEqual(['05020002', '0101750270 77'.replace(/ /g, ''), '05010001c61220021b59']);
    expect(last?.kind).toBe('done');
    // The proxy may still pick "no authentication".
    expect(run(req, bytes(`05 00 ${OK_V4}`)).last?.kind).toBe('done');
  });

  it("phase 'greeting' stops once the method (and login) is accepted; phase 'request' starts with the request", () => {
    const greet: Socks5Request = { command: 'connect', host: '', port: 0, phase: 'greeting' };
    expect(run(greet, bytes('05 00'))).toEqual({
      sent: ['050100'],
      last: { kind: 'done', reply: { host: '', port: 0, rest: new Uint8Array(0) } },
    });
    const login = run({ ...greet, username: 'u', password: 'pw' }, bytes('05 02 01 00'));
    expect(login.sent).toEqual(['05020002', '01017502707 7'.replace(/ /g, '')]);
    expect(login.last?.kind).toBe('done');
    expect(run({ ...greet, username: 'u', password: 'x' }, bytes('05 02 01 01')).last).toMatchObject({
      kind: 'error',
      code: 'EPROXYAUTH',
    });
    // On a greeted connection: the request first, credentials never sent again.
    const request = run({ ...CONNECT_V4, username: 'u', password: 'pw', phase: 'request' }, bytes(OK_V4));
    expect(request.sent).toEqual(['05010001c61220021b59']);
    expect(request.last).toEqual({
      kind: 'done',
      reply: { host: '198.18.32.2', port: 7001, rest: new Uint8Array(0) },
    });
  });

  it('tunnel bytes that came with the reply are handed back', () => {
    const { last } = run(CONNECT_V4, bytes(`05 00 ${OK_V4} 68 69`));
    expect(last).toMatchObject({ kind: 'done' });
    expect(hex((last as { reply: { rest: Uint8Array } }).reply.rest)).toBe('6869');
  });

  it('the same outcome at every split of the proxy bytes', () => {
    const req: Socks5Request = { ...CONNECT_V4, username: 'u', password: 'pw' };
    const input = bytes(`05 02 01 00 ${OK_V4}`);
    const whole = run(req, input);
    expect(whole.last?.kind).toBe('done');
    for (let a = 0; a <= input.length; a++)
      for (let b = a; b <= input.length; b++) expect(run(req, input, [a, b])).toEqual(whole);
  });
});

describe('SOCKS5 handshake failures', () => {
  const fails = (req: Socks5Request, input: string) => run(req, bytes(input)).last;

  it('maps every REP to a dial code and keeps the REP', () => {
    expect(fails(CONNECT_V4, '05 00 05 05 00 01 00000000 0000')).toEqual({
      kind: 'error',
      code: 'ECONNREFUSED',
      reason: 'refused: connection refused',
      rep: 5,
    });
    expect(fails(CONNECT_V4, '05 00 05 04 00 01 00000000 0000')).toMatchObject({
      code: 'EHOSTUNREACH',
      rep: 4,
    });
    expect(fails(CONNECT_V4, '05 00 05 07 00 01 00000000 0000')).toMatchObject({ code: 'EPROXY', rep: 7 });
    expect(fails(CONNECT_V4, '05 00 05 2a 00 01')).toMatchObject({ reason: 'refused: unassigned reply 42' });
  });

  it('no acceptable method and a failed login are EPROXYAUTH; a method never offered is EPROXY', () => {
    expect(fails(CONNECT_V4, '05 ff')).toMatchObject({ code: 'EPROXYAUTH' });
    expect(fails({ ...CONNECT_V4, username: 'u' }, '05 02 01 01')).toMatchObject({ code: 'EPROXYAUTH' });
    expect(fails(CONNECT_V4, '05 02')).toMatchObject({ code: 'EPROXY' });
  });

  it('a server of another version or a malformed reply is EPROXY, never a throw', () => {
    expect(fails(CONNECT_V4, '04 00')).toMatchObject({ code: 'EPROXY' });
    expect(fails(CONNECT_V4, '05 00 04 00 00 01')).toMatchObject({ code: 'EPROXY' });
    expect(fails(CONNECT_V4, '05 00 05 00 00 09 00')).toMatchObject({ code: 'EPROXY' });
    expect(fails({ command: 'connect', host: 'x'.repeat(300), port: 1 }, '05 00')).toMatchObject({
      code: 'EPROXY',
    });
    for (let i = 0; i < 2000; i++) {
      const noise = Uint8Array.from({ length: 1 + (i % 40) }, (_, k) => (i * 31 + k * 97) & 0xff);
      expect(() => run(CONNECT_V4, noise, [1, 3])).not.toThrow();
    }
  });
});

describe('socks5Handshake over a socket', () => {
  let server: FakeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function connected(onConnection: (s: net.Socket) => void): Promise<net.Socket> {
    server = await startServer(onConnection);
    const socket = net.connect(server.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    return socket;
  }

  it('resolves with the reply and leaves early tunnel bytes readable by the first data listener', async () => {
    const socket = await connected(async (s) => {
      await readBytes(s, 3);
      s.write(bytes('05 00'));
      await readBytes(s, 10);
      s.write(bytes(`${OK_V4} 6869`));
    });
    const reply = await socks5Handshake(socket, CONNECT_V4, 'test');
    expect(reply).toMatchObject({ host: '198.18.32.2', port: 7001 });
    const first = await new Promise<Buffer>((r) => socket.once('data', r));
    expect(first.toString()).toBe('hi');
    socket.destroy();
  });

  it('a proxy that closes after our request rejects with stage "reply" and closed set', async () => {
    const socket = await connected(async (s) => {
      await readBytes(s, 3);
      s.write(bytes('05 00'));
      await readBytes(s, 10);
      s.destroy();
    });
    const err = (await socks5Handshake(socket, CONNECT_V4, 'test').catch((e: unknown) => e)) as Socks5Error;
    expect(err).toBeInstanceOf(Socks5Error);
    expect(err).toMatchObject({ code: 'EPROXY', stage: 'reply', closed: true });
  });
});
