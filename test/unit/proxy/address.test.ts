import { describe, expect, it } from 'vitest';
import { canonicalHost, isIpv6Literal } from '../../../src/proxy/address.js';
import { parseProxyUrl } from '../../../src/proxy/url.js';

describe('address text (ip-address)', () => {
  it.each([
    ['fd00:0:0::1', 'fd00::1'],
    ['[FD00::1]', 'fd00::1'],
    ['::ffff:198.18.0.1', '198.18.0.1'],
    ['198.18.0.1', '198.18.0.1'],
    ['Proxy.Example', 'proxy.example'],
  ])('canonicalHost(%s) = %s', (input, out) => expect(canonicalHost(input)).toBe(out));

  it('tells IPv6 literals from the rest', () => {
    expect(isIpv6Literal('fd00::1')).toBe(true);
    expect(isIpv6Literal(':::::')).toBe(false);
    expect(isIpv6Literal('198.18.0.1')).toBe(false);
    expect(isIpv6Literal('fe80::1%eth0')).toBe(false);
  });

  it('proxy URLs with a malformed bracketed IPv6 host are refused', () => {
    expect(() => parseProxyUrl('socks5://[:::::]:1080')).toThrow(/bad IPv6 address/);
    expect(parseProxyUrl('socks5://[fd00::2]:1080')).toMatchObject({ host: 'fd00::2', port: 1080 });
  });
});
