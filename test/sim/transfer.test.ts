import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/stack/random.js';
import type { TcpConnection } from '../../src/stack/tcp/connection.js';
import { TcpEvent } from '../../src/stack/tcp/state.js';
import { parseAddress } from '../../src/stack/wire/address.js';
import { type LinkImpairment, SimLink } from './link.js';

const A = parseAddress('198.18.0.1')!;
const B = parseAddress('198.18.9.9')!;

/** Sends `bytes` of seeded data from a client on stack 0 to a server on stack 1 (and back when echo). */
function transfer(seed: number, bytes: number, impair: [LinkImpairment, LinkImpairment], maxMs: number) {
  const link = new SimLink(seed, impair);
  const [client, server] = link.stacks;
  server.tcp.listening = true;
  let serverConn: TcpConnection | undefined;
  const c = client.tcp.connect(A, 40000, B, 80, 0)!;
  const data = new Uint8Array(bytes);
  const r = seededRandom(seed);
  for (let i = 0; i < bytes; i += 4) new DataView(data.buffer).setUint32(i, r(), true);
  let written = 0;
  const hash = createHash('sha256');
  let received = 0;
  let closed = false;
  const app = () => {
    server.tcp.takeEvents((conn, bits) => {
      if (bits & TcpEvent.SYN) {
        conn.accept();
        serverConn = conn;
      }
    });
    client.tcp.takeEvents(() => {});
    if (written < bytes) {
      const n = c.write(data.subarray(written, Math.min(bytes, written + 65536)), true);
      written += n;
      if (written === bytes) c.shutdown();
    }
    if (serverConn !== undefined) {
      for (;;) {
        const chunk = serverConn.read(1 << 20);
        if (chunk === undefined) break;
        hash.update(chunk);
        received += chunk.length;
      }
      if (serverConn.readEnded && !closed) {
        closed = true;
        serverConn.shutdown();
      }
    }
  };
  link.flush();
  const ms = link.run(() => received === bytes && closed && c.state === 'TIME-WAIT', maxMs, app);
  const expected = createHash('sha256').update(data).digest('hex');
  return {
    ms,
    received,
    ok: hash.digest('hex') === expected,
    link,
    client: c,
    stats: [client.stats, server.stats],
  };
}

describe('seeded simulated link', () => {
  it('moves 4 MB over a clean 10 ms link, byte-exact, both sides closing', () => {
    const r = transfer(1, 4 << 20, [{ delayMs: 5 }, { delayMs: 5 }], 60_000);
    expect(r.received).toBe(4 << 20);
    expect(r.ok).toBe(true);
    expect(r.client.state).toBe('TIME-WAIT');
  });

  it('moves 4 MB with 2% loss, 1% duplication and reordering, byte-exact and reproducible', () => {
    const impair: LinkImpairment = {
      delayMs: 5,
      jitterMs: 1,
      loss: 0.02,
      duplicate: 0.01,
      reorder: 0.05,
      reorderMs: 3,
    };
    const r1 = transfer(7, 4 << 20, [impair, impair], 600_000);
    expect(r1.received).toBe(4 << 20);
    expect(r1.ok).toBe(true);
    const r2 = transfer(7, 4 << 20, [impair, impair], 600_000);
    expect(r2.ms).toBe(r1.ms);
    expect(r2.stats[0]!.tcpRetransmits).toBe(r1.stats[0]!.tcpRetransmits);
  });
});
