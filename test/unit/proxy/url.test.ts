import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ProxyConfig, ProxyUrlError, parseProxyUrl, redactProxyUrl } from '../../../src/proxy/index.js';

describe('parseProxyUrl', () => {
  const good: [string, ProxyConfig][] = [
    ['socks5://127.0.0.1:1080', { kind: 'socks5', host: '127.0.0.1', port: 1080 }],
    ['socks5://proxy.example', { kind: 'socks5', host: 'proxy.example', port: 1080 }],
    ['SOCKS5://h:9', { kind: 'socks5', host: 'h', port: 9 }],
    ['socks5://u:p@h:1', { kind: 'socks5', host: 'h', port: 1, username: 'u', password: 'p' }],
    ['socks5://u@h', { kind: 'socks5', host: 'h', port: 1080, username: 'u' }],
    ['socks5://u:@h', { kind: 'socks5', host: 'h', port: 1080, username: 'u', password: '' }],
    [
      'socks5://us%40er:p%3Aa%2Fss%25@h:2',
      { kind: 'socks5', host: 'h', port: 2, username: 'us@er', password: 'p:a/ss%' },
    ],
    ['socks5://u:p@ss@h', { kind: 'socks5', host: 'h', port: 1080, username: 'u', password: 'p@ss' }],
    ['socks5://[::1]:1081', { kind: 'socks5', host: '::1', port: 1081 }],
    ['socks5://[fd00::1]', { kind: 'socks5', host: 'fd00::1', port: 1080 }],
    ['socks4://10.0.0.1', { kind: 'socks4', host: '10.0.0.1', port: 1080 }],
    ['socks4://ident@10.0.0.1:1', { kind: 'socks4', host: '10.0.0.1', port: 1, username: 'ident' }],
    ['socks4a://h:65535', { kind: 'socks4a', host: 'h', port: 65535 }],
    ['http://h', { kind: 'http', host: 'h', port: 8080 }],
    [
      'http://u:p@[fd00::2]:3128/',
      { kind: 'http', host: 'fd00::2', port: 3128, username: 'u', password: 'p' },
    ],
    ['direct://', { kind: 'direct' }],
    ['direct', { kind: 'direct' }],
    ['reject://', { kind: 'reject' }],
    ['  socks5://h  ', { kind: 'socks5', host: 'h', port: 1080 }],
  ];
  for (const [url, want] of good) {
    it(`parses ${url}`, () => expect(parseProxyUrl(url)).toEqual(want));
  }

  const bad: [string, RegExp][] = [
    ['', /no scheme/],
    ['127.0.0.1:1080', /no scheme/],
    ['ftp://h', /unsupported proxy scheme "ftp"/],
    ['https://h', /unsupported proxy scheme "https"/],
    ['socks5://', /no host/],
    ['socks5://:1080', /no host/],
    ['socks5://u:secret@:1080', /no host/],
    ['socks5://h:0', /bad port "0"/],
    ['socks5://h:65536', /bad port "65536"/],
    ['socks5://h:abc', /bad port "abc"/],
    ['socks5://h:', /bad port ""/],
    ['socks5://h:-1', /bad port/],
    ['socks5://::1', /brackets/],
    ['socks5://[::1', /unclosed/],
    ['socks5://[::1]x', /after "]"/],
    ['socks5://[zz]:1', /bad IPv6/],
    ['socks5://h/path', /path/],
    ['socks5://h?x', /path, query/],
    ['socks5://h w', /bad host/],
    ['direct://h', /takes no host/],
    ['socks5://u:%zz@h', /percent-encoding in the password/],
  ];
  for (const [url, re] of bad) {
    it(`rejects ${JSON.stringify(url)}`, () => {
      let err: unknown;
      try {
        parseProxyUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProxyUrlError);
      expect((err as ProxyUrlError).code).toBe('ERR_PROXY_URL');
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).not.toContain('\n');
    });
  }

  it('never puts the password in an error message', () => {
    for (const url of ['socks5://u:secret@h:99999', 'socks5://u:secret@h/x', 'socks5://u:secret@::1']) {
      expect(() => parseProxyUrl(url)).toThrow(ProxyUrlError);
      try {
        parseProxyUrl(url);
      } catch (e) {
        expect((e as Error).message).not.toContain('secret');
        expect((e as Error).message).toContain('***');
      }
    }
  });

  it('throws only ProxyUrlError on random input', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          parseProxyUrl(s);
        } catch (e) {
          if (!(e instanceof ProxyUrlError)) throw e;
        }
      }),
    );
  });
});

describe('redactProxyUrl', () => {
  it('hides the password and keeps the rest', () => {
    expect(redactProxyUrl(parseProxyUrl('socks5://u:hunter2@h:1'))).toBe('socks5://u:***@h:1');
    expect(redactProxyUrl(parseProxyUrl('http://a%20b:x@[fd00::1]'))).toBe('http://a%20b:***@[fd00::1]:8080');
    expect(redactProxyUrl(parseProxyUrl('socks4://id@h'))).toBe('socks4://id@h:1080');
    expect(redactProxyUrl(parseProxyUrl('socks5://h'))).toBe('socks5://h:1080');
    expect(redactProxyUrl({ kind: 'reject' })).toBe('reject://');
  });

  it('round-trips through parseProxyUrl except for the password', () => {
    const c = parseProxyUrl('socks5://u%3A1@[::1]:5');
    expect(parseProxyUrl(redactProxyUrl(c))).toEqual(c);
  });
});
