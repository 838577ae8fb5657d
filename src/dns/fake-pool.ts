/**
 * The fake-IP pool: hands out addresses from reserved ranges (one IPv4 and one IPv6 range) for
 * names, and maps an address back to its name, so a connection to a fake address can be relayed
 * by NAME and resolved at the proxy.
 *
 * Bounds and recycling: each family holds at most `maxNames` mappings (and never more than its
 * range has host addresses). Every answer and every connection or datagram to a fake address
 * touches the mapping: it becomes the most recently used and its expiry moves to now + TTL. When
 * a family is full, a new name takes the address of the least recently used mapping, and only if
 * that mapping has expired (untouched for TTL seconds); otherwise the name gets no address (the
 * query is answered SERVFAIL) rather than pull an address from under a client that may still use
 * it. A client that holds a fake address past its TTL and after recycling reaches the newer name:
 * the same trade-off as sing-box and Clash fake-IP, kept rare by the large default bound.
 */
import { formatAddress, parseAddress } from '../stack/wire/address.js';

/** Default fake ranges: inside 198.18.0.0/15 (RFC 2544 benchmarking) and a ULA /64 (RFC 4193). */
export const DEFAULT_FAKE_RANGES: readonly string[] = ['198.19.0.0/16', 'fdfe:dcba:9877::/64'];
/** Default TTL of fake answers and of an untouched mapping, in seconds. */
export const DEFAULT_FAKE_TTL_SECONDS = 60;
/** Default bound of the mappings per family (LRU). */
export const DEFAULT_FAKE_MAX_NAMES = 65536;

/** Counters of a FakeIpPool. */
export interface FakeIpPoolStats {
  /** Mappings held now (both families). */
  live: number;
  /** Mappings whose address was recycled for another name. */
  evicted: number;
  /** Names refused an address because every mapping of the family was still fresh. */
  exhausted: number;
}

/** A parsed CIDR range. */
export interface FakeRange {
  /** The network address bytes (4 or 16). */
  readonly base: Uint8Array;
  /** Prefix length. */
  readonly prefix: number;
}

/** Parses `a.b.c.d/n` or `x::/n`; undefined when malformed or with host bits set. */
export function parseCidr(text: string): FakeRange | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const base = parseAddress(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (base === undefined || !/^[0-9]{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > base.length * 8) return undefined;
  for (let bit = prefix; bit < base.length * 8; bit++) {
    if ((base[bit >> 3]! & (0x80 >> (bit & 7))) !== 0) return undefined;
  }
  return { base, prefix };
}

/** True when `address` lies inside `range`. */
export function inRange(address: Uint8Array, range: FakeRange): boolean {
  if (address.length !== range.base.length) return false;
  const full = range.prefix >> 3;
  for (let i = 0; i < full; i++) if (address[i] !== range.base[i]) return false;
  const rest = range.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address[full]! & mask) === (range.base[full]! & mask);
}

interface Mapping {
  readonly name: string;
  readonly address: string;
  expiresAt: number;
}

/** One family's pool: an LRU (Map insertion order) keyed by name, and the reverse map. */
class FamilyPool {
  private readonly byName = new Map<string, Mapping>();
  private readonly byAddress = new Map<string, Mapping>();
  /** Host addresses this family hands out at most. */
  readonly capacity: number;
  private nextOffset = 1;

  constructor(
    readonly range: FakeRange,
    maxNames: number,
    private readonly stats: FakeIpPoolStats,
  ) {
    const hostBits = range.base.length * 8 - range.prefix;
    // Offset 0 (the network) and, for IPv4, the all-ones broadcast are never handed out.
    const usable = hostBits >= 31 ? 2 ** 31 : 2 ** hostBits - (range.base.length === 4 ? 2 : 1);
    this.capacity = Math.max(0, Math.min(maxNames, usable));
  }

  get size(): number {
    return this.byName.size;
  }

  /** The address for `name`, allocating or recycling one; undefined when none is free. */
  addressFor(name: string, nowMs: number, ttlMs: number): string | undefined {
    const known = this.byName.get(name);
    if (known !== undefined) {
      this.touch(known, nowMs, ttlMs);
      return known.address;
    }
    let address: string;
    if (this.nextOffset <= this.capacity) {
      address = this.addressAt(this.nextOffset++);
    } else {
      const oldest = this.byName.values().next().value;
      if (oldest === undefined || oldest.expiresAt > nowMs) {
        this.stats.exhausted++;
        return undefined;
      }
      this.byName.delete(oldest.name);
      this.byAddress.delete(oldest.address);
      this.stats.evicted++;
      this.stats.live--;
      address = oldest.address;
    }
    const mapping: Mapping = { name, address, expiresAt: nowMs + ttlMs };
    this.byName.set(name, mapping);
    this.byAddress.set(address, mapping);
    this.stats.live++;
    return address;
  }

  /** The name behind `address` (canonical text), touching the mapping. */
  nameOf(address: string, nowMs: number, ttlMs: number): string | undefined {
    const mapping = this.byAddress.get(address);
    if (mapping === undefined) return undefined;
    this.touch(mapping, nowMs, ttlMs);
    return mapping.name;
  }

  private touch(mapping: Mapping, nowMs: number, ttlMs: number): void {
    this.byName.delete(mapping.name);
    this.byName.set(mapping.name, mapping);
    if (nowMs + ttlMs > mapping.expiresAt) mapping.expiresAt = nowMs + ttlMs;
  }

  /** The range's base plus `offset` (up to 2^31), as canonical text. */
  private addressAt(offset: number): string {
    const b = Uint8Array.from(this.range.base);
    let carry = offset;
    for (let i = b.length - 1; i >= 0 && carry > 0; i--) {
      const sum = b[i]! + (carry & 0xff);
      b[i] = sum & 0xff;
      carry = Math.floor(carry / 256) + (sum >> 8);
    }
    return formatAddress(b);
  }
}

/** Options of a FakeIpPool. */
export interface FakeIpPoolOptions {
  /** CIDR ranges, at most one per family; default DEFAULT_FAKE_RANGES. */
  readonly ranges?: readonly string[];
  /** TTL of answers and of untouched mappings; default DEFAULT_FAKE_TTL_SECONDS. */
  readonly ttlSeconds?: number;
  /** LRU bound per family; default DEFAULT_FAKE_MAX_NAMES. */
  readonly maxNames?: number;
}

/** Thrown by the FakeIpPool constructor on a bad range list (a configuration error). */
export class FakeRangeError extends Error {
  /** Stable code. */
  readonly code = 'EFAKERANGE';
}

/** Names ↔ fake addresses, both families; the clock is passed in (milliseconds). */
export class FakeIpPool {
  /** Counters, updated live. */
  readonly stats: FakeIpPoolStats = { live: 0, evicted: 0, exhausted: 0 };
  /** TTL of answers, seconds. */
  readonly ttlSeconds: number;
  private readonly v4: FamilyPool | undefined;
  private readonly v6: FamilyPool | undefined;

  constructor(options: FakeIpPoolOptions = {}) {
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_FAKE_TTL_SECONDS;
    const maxNames = options.maxNames ?? DEFAULT_FAKE_MAX_NAMES;
    if (!(this.ttlSeconds >= 0) || !Number.isInteger(maxNames) || maxNames < 1) {
      throw new FakeRangeError(`bad fake-IP TTL ${this.ttlSeconds} or bound ${maxNames}`);
    }
    let v4: FamilyPool | undefined;
    let v6: FamilyPool | undefined;
    for (const text of options.ranges ?? DEFAULT_FAKE_RANGES) {
      const range = parseCidr(text);
      if (range === undefined) throw new FakeRangeError(`bad fake-IP range ${JSON.stringify(text)}`);
      const pool = new FamilyPool(range, maxNames, this.stats);
      if (pool.capacity < 1) throw new FakeRangeError(`fake-IP range ${text} has no host address`);
      if (range.base.length === 4) {
        if (v4 !== undefined) throw new FakeRangeError('more than one IPv4 fake-IP range');
        v4 = pool;
      } else {
        if (v6 !== undefined) throw new FakeRangeError('more than one IPv6 fake-IP range');
        v6 = pool;
      }
    }
    this.v4 = v4;
    this.v6 = v6;
  }

  /** The fake IPv4 (family 4) or IPv6 (6) address for `name`; undefined when none is free or no range. */
  addressFor(name: string, family: 4 | 6, nowMs: number): string | undefined {
    const pool = family === 4 ? this.v4 : this.v6;
    return pool?.addressFor(normalizeName(name), nowMs, this.ttlSeconds * 1000);
  }

  /** True when the pool has a range of this family. */
  hasFamily(family: 4 | 6): boolean {
    return (family === 4 ? this.v4 : this.v6) !== undefined;
  }

  /** True when `address` (text) is inside a fake range, mapped or not. */
  isFake(address: string): boolean {
    return this.poolOf(address) !== undefined;
  }

  /**
   * The name behind a fake address (touching its mapping); undefined when the address is not
   * fake or has no mapping (never handed out, or recycled).
   */
  nameOf(address: string, nowMs: number): string | undefined {
    const found = this.poolOf(address);
    return found?.pool.nameOf(found.canonical, nowMs, this.ttlSeconds * 1000);
  }

  private poolOf(address: string): { pool: FamilyPool; canonical: string } | undefined {
    const bytes = parseAddress(address);
    if (bytes === undefined) return undefined;
    const pool = bytes.length === 4 ? this.v4 : this.v6;
    if (pool === undefined || !inRange(bytes, pool.range)) return undefined;
    return { pool, canonical: formatAddress(bytes) };
  }
}

/** Lowercase, without the trailing dot (DNS names compare case-insensitively, RFC 4343 §3). */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
