import { describe, expect, it } from 'vitest';
import {
  DialError,
  httpStatusCode,
  socks4ReplyCode,
  socks5ReplyCode,
  socksMessageCode,
} from '../../../src/proxy/index.js';

describe('reply-code mapping', () => {
  it('maps every SOCKS5 reply (RFC 1928 §6)', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff].map(socks5ReplyCode)).toEqual([
      'EPROXY',
      'ECONNREFUSED',
      'ENETUNREACH',
      'EHOSTUNREACH',
      'ECONNREFUSED',
      'ETIMEDOUT',
      'EPROXY',
      'EPROXY',
      'EPROXY',
      'EPROXY',
    ]);
  });

  it('maps SOCKS4 replies', () => {
    expect([0x5b, 0x5c, 0x5d, 0x00].map(socks4ReplyCode)).toEqual([
      'ECONNREFUSED',
      'EPROXYAUTH',
      'EPROXYAUTH',
      'EPROXY',
    ]);
  });

  it('maps the socks package messages', () => {
    expect(socksMessageCode('Socks5 proxy rejected connection - ConnectionRefused')).toBe('ECONNREFUSED');
    expect(socksMessageCode('Socks5 proxy rejected connection - HostUnreachable')).toBe('EHOSTUNREACH');
    expect(socksMessageCode('Socks5 proxy rejected connection - NetworkUnreachable')).toBe('ENETUNREACH');
    expect(socksMessageCode('Socks5 proxy rejected connection - TTLExpired')).toBe('ETIMEDOUT');
    expect(socksMessageCode('Socks5 proxy rejected connection - NotAllowed')).toBe('ECONNREFUSED');
    expect(socksMessageCode('Socks5 proxy rejected connection - Failure')).toBe('EPROXY');
    expect(socksMessageCode('Socks5 proxy rejected connection - undefined')).toBe('EPROXY');
    expect(socksMessageCode('Socks4 Proxy rejected connection - (Failed)')).toBe('ECONNREFUSED');
    expect(socksMessageCode('Socks4 Proxy rejected connection - (Rejected)')).toBe('EPROXYAUTH');
    expect(socksMessageCode('Socks5 Authentication failed')).toBe('EPROXYAUTH');
    expect(
      socksMessageCode('Received invalid Socks5 initial handshake (no accepted authentication type)'),
    ).toBe('EPROXYAUTH');
    expect(socksMessageCode('Proxy connection timed out')).toBe('ETIMEDOUT');
    expect(socksMessageCode('Socket closed')).toBe('EPROXY');
  });

  it('maps HTTP CONNECT statuses', () => {
    expect([407, 502, 503, 504, 403, 404, 500, 301].map(httpStatusCode)).toEqual([
      'EPROXYAUTH',
      'EHOSTUNREACH',
      'EHOSTUNREACH',
      'ETIMEDOUT',
      'ECONNREFUSED',
      'ECONNREFUSED',
      'ECONNREFUSED',
      'ECONNREFUSED',
    ]);
  });

  it('DialError carries its code and name', () => {
    const e = new DialError('EPROXY', 'x');
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('EPROXY');
    expect(e.name).toBe('DialError');
    expect(e.message).toBe('EPROXY: x');
  });
});
