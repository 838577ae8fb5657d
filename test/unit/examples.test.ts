import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const dist = resolve(import.meta.dirname, '../../dist/examples');

describe('examples run as documented', () => {
  it('in-memory-ping prints the echo reply the stack built', () => {
    const out = execFileSync('node', [resolve(dist, 'in-memory-ping.js')], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out).toContain('reply: 198.18.5.9 > 198.18.0.1 type 0 id 7 seq 1');
    expect(out).toContain('"echoReplies":1');
  });

  it('in-memory-relay relays TCP through a custom dialer and UDP through a custom UDP dialer', () => {
    const out = execFileSync('node', [resolve(dist, 'in-memory-relay.js')], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out).toContain('dial 198.18.5.9:80');
    expect(out).toContain('tcp answer: hello, you asked for /index.html');
    expect(out).toContain('udp answer: ping over udp (from 198.18.5.9:7 to port 5000)');
  });
});
