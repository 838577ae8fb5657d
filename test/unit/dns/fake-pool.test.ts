/**
 * The fake-IP pool: addresses handed out in order from each family's range, the name behind an
 * address, the LRU bound with the TTL-gated recycling rule, and bad configurations.
 */
import { describe, expect, it } from 'vitest';
import { FakeIpPool, FakeRangeError, inRange, normalizeName, parseCidr } from '../../../src/dns/fake-pool.js';
import { parseAddress } from '../../../src/stack/wire/address.js';

describe('parseCidr / inRange', () => {
  it('parses IPv4 and IPv6 ranges and rejects host bits or junk', () => {
    expect(parseCidr('198.19.0.0/16')?.prefix).toBe(16);
    expect(parseCidr('fdfe:dcba:9877::/64')?.base.length).toBe(16);
    for (const bad of [
      '198.19.0.1/16',
      '198.19.0.0',
      '198.19.0.0/33',
      'x/8',
      '::/129',
      '1.2.3.0/-1',
      '1.2.3.0/ 8',
    ]) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });

  it('matches addresses inside the prefix only', () => {
    const r = parseCidr('198.19.128.0/17')!;
    expect(inRange(parseAddress('198.19.200.1')!, r)).toBe(true);
    expect(inRange(parseAddress('198.19.127.255')!, r)).toBe(false);
    expect(inRange(parseAddress('fdfe::1')!, r)).toBe(false);
  });
});

describe('FakeIpPool', () => {
  it('hands out addresses in order, one per name and family, and maps them back', () => {
    const pool = new FakeIpPool();
    expect(pool.addressFor('name.test', 4, 0)).toBe('198.19.0.1');
    expect(pool.addressFor('other.test', 4, 0)).toBe('198.19.0.2');
    expect(pool.addressFor('NAME.test.', 4, 0)).toBe('198.19.0.1');
    expect(pool.addressFor('name.test', 6, 0)).toBe('fdfe:dcba:9877::1');
    expect(pool.nameOf('198.19.0.2', 0)).toBe('other.test');
    expect(pool.nameOf('fdfe:dcba:9877:0::1', 0)).toBe('name.test');
    expect(pool.nameOf('198.19.0.9', 0)).toBeUndefined();
    expect(pool.isFake('198.19.0.9')).toBe(true);
    expect(pool.isFake('198.18.0.9')).toBe(false);
    expect(pool.isFake('not an address')).toBe(false);
    expect(pool.stats).toEqual({ live: 3, evicted: 0, exhausted: 0 });
  });

  it('carries offsets across bytes', () => {
    const pool = new FakeIpPool({ ranges: ['10.0.0.0/8'] });
    let last = '';
    for (let i = 0; i < 300; i++) last = pool.addressFor(`n${i}.test`, 4, 0)!;
    expect(last).toBe('10.0.1.44');
    expect(pool.hasFamily(6)).toBe(false);
    expect(pool.addressFor('x.test', 6, 0)).toBeUndefined();
  });

  it('never hands out the network or broadcast address of a small IPv4 range', () => {
    const pool = new FakeIpPool({ ranges: ['198.19.0.0/30'], ttlSeconds: 1 });
    expect(pool.addressFor('a', 4, 0)).toBe('198.19.0.1');
    expect(pool.addressFor('b', 4, 0)).toBe('198.19.0.2');
    // Full (2 usable) and both fresh: no address, counted.
    expect(pool.addressFor('c', 4, 500)).toBeUndefined();
    expect(pool.stats.exhausted).toBe(1);
  });

  it('recycles the least recently used mapping only once its TTL expired', () => {
    const pool = new FakeIpPool({ maxNames: 2, ttlSeconds: 10 });
    expect(pool.addressFor('a.test', 4, 0)).toBe('198.19.0.1');
    expect(pool.addressFor('b.test', 4, 1000)).toBe('198.19.0.2');
    // A connection to a's address touches it: b becomes the least recently used.
    expect(pool.nameOf('198.19.0.1', 5000)).toBe('a.test');
    expect(pool.addressFor('c.test', 4, 10_999)).toBeUndefined(); // b fresh until 11 000
    expect(pool.addressFor('c.test', 4, 11_000)).toBe('198.19.0.2');
    expect(pool.nameOf('198.19.0.2', 11_000)).toBe('c.test');
    expect(pool.addressFor('b.test', 4, 16_000)).toBe('198.19.0.1'); // a untouched since 5000 (+10 s)
    expect(pool.nameOf('198.19.0.1', 16_000)).toBe('b.test');
    expect(pool.stats).toEqual({ live: 2, evicted: 2, exhausted: 1 });
  });

  it('keeps the bound per family', () => {
    const pool = new FakeIpPool({ maxNames: 1, ttlSeconds: 0 });
    expect(pool.addressFor('a', 4, 0)).toBe('198.19.0.1');
    expect(pool.addressFor('a', 6, 0)).toBe('fdfe:dcba:9877::1');
    expect(pool.addressFor('b', 4, 0)).toBe('198.19.0.1');
    expect(pool.nameOf('198.19.0.1', 0)).toBe('b');
    expect(pool.nameOf('fdfe:dcba:9877::1', 0)).toBe('a');
    expect(pool.stats.live).toBe(2);
  });

  it('rejects bad configurations with a FakeRangeError', () => {
    for (const ranges of [
      ['nope'],
      ['198.19.0.0/16', '10.0.0.0/8'],
      ['fd00::/64', 'fd01::/64'],
      ['1.2.3.4/32'],
    ]) {
      expect(() => new FakeIpPool({ ranges }), ranges.join()).toThrow(FakeRangeError);
    }
    expect(() => new FakeIpPool({ maxNames: 0 })).toThrow(FakeRangeError);
    expect(() => new FakeIpPool({ ttlSeconds: Number.NaN })).toThrow(FakeRangeError);
  });

  it('normalizes names', () => {
    expect(normalizeName('WWW.Example.COM.')).toBe('www.example.com');
  });
});
