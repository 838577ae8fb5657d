import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CidrError, cidrContains, parseCidr, prefixText, samePrefix } from '../../../src/route/cidr.js';

describe('parseCidr', () => {
  it('keeps the address and clears host bits for the network', () => {
    expect(parseCidr('198.18.0.1/30')).toEqual({
      family: 4,
      address: '198.18.0.1',
      network: '198.18.0.0',
      prefixLength: 30,
    });
    expect(parseCidr('fdfe:dcba:9876::1/126')).toMatchObject({
      family: 6,
      network: 'fdfe:dcba:9876::',
      prefixLength: 126,
    });
    expect(prefixText(parseCidr('10.1.2.3/8'))).toBe('10.0.0.0/8');
    expect(prefixText(parseCidr('10.1.2.3/0'))).toBe('0.0.0.0/0');
    expect(prefixText(parseCidr('FD00:0:0::5/8'))).toBe('fd00::/8');
  });

  it('reads a bare address as a host prefix', () => {
    expect(prefixText(parseCidr('1.2.3.4'))).toBe('1.2.3.4/32');
    expect(prefixText(parseCidr('::1'))).toBe('::1/128');
  });

  it('refuses what is not a prefix, with a one-line CidrError', () => {
    for (const bad of [
      '',
      'x',
      '1.2.3.4/33',
      '::/129',
      '1.2.3/8',
      '1.2.3.4/',
      '1.2.3.4/-1',
      '1.2.3.4/8/8',
      'a.b.c.d/8',
    ]) {
      expect(() => parseCidr(bad), bad).toThrow(CidrError);
    }
  });

  it('contains tests leading bits of the same family only', () => {
    const c = parseCidr('198.18.0.0/15');
    expect(cidrContains(c, '198.19.255.255')).toBe(true);
    expect(cidrContains(c, '198.20.0.0')).toBe(false);
    expect(cidrContains(c, '::1')).toBe(false);
    expect(cidrContains(parseCidr('fd00::/8'), 'fd12::1')).toBe(true);
    expect(cidrContains(parseCidr('0.0.0.0/0'), '8.8.8.8')).toBe(true);
  });

  it('samePrefix compares network and length', () => {
    expect(samePrefix(parseCidr('10.0.0.1/8'), parseCidr('10.9.9.9/8'))).toBe(true);
    expect(samePrefix(parseCidr('10.0.0.0/8'), parseCidr('10.0.0.0/9'))).toBe(false);
  });

  it('never throws anything but CidrError on random text', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          const c = parseCidr(s);
          expect(cidrContains(c, c.network)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(CidrError);
        }
      }),
    );
  });

  it('the network of any IPv4 prefix contains the address it came from', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (a, len) => {
        const c = parseCidr(`${a}/${len}`);
        expect(cidrContains(c, a)).toBe(true);
        expect(prefixText(parseCidr(prefixText(c)))).toBe(prefixText(c));
      }),
    );
  });
});
