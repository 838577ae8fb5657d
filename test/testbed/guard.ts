/**
 * Guard rails: the test bed only ever configures addresses and routes inside 198.18.0.0/15
 * (RFC 2544 §C.2.2, the benchmarking range) and fd00::/8 (RFC 4193 unique local addresses), and
 * only interface names Linux accepts. Everything is checked before any command runs, so a bad
 * argument never leaves half a configuration behind.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** Linux's IFNAMSIZ less the terminating NUL. */
export const IFNAME_MAX_BYTES = 15;

/** The IPv4 prefix the test bed may use. */
export const ALLOWED_V4 = '198.18.0.0/15';

/** The IPv6 prefix the test bed may use. */
export const ALLOWED_V6 = 'fd00::/8';

function fail(what: string, value: string, why: string): never {
  throw new Error(`testbed: refusing ${what} ${JSON.stringify(value)}: ${why}`);
}

function splitCidr(what: string, value: string, maxPrefix: number): { addr: string; prefix: number } {
  const slash = value.indexOf('/');
  if (slash < 0) return { addr: value, prefix: maxPrefix };
  const text = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(text)) fail(what, value, 'the prefix length is not a number');
  const prefix = Number(text);
  if (prefix > maxPrefix) fail(what, value, `the prefix length is above ${maxPrefix}`);
  return { addr: value.slice(0, slash), prefix };
}

/**
 * Checks an IPv4 address or route in CIDR form (`198.18.0.1/24`, `198.18.4.0/24`, a bare address
 * means /32) and returns it. Throws unless the whole prefix lies inside 198.18.0.0/15.
 */
export function checkCidr4(value: string, what = 'IPv4 address'): string {
  const { addr, prefix } = splitCidr(what, value, 32);
  // isIPv4 accepts only dotted quads of decimal octets without leading zeros.
  if (!isIPv4(addr)) fail(what, value, 'not an IPv4 address');
  const [a, b] = addr.split('.').map(Number);
  if (a !== 198 || (b !== 18 && b !== 19)) fail(what, value, `outside ${ALLOWED_V4}`);
  if (prefix < 15) fail(what, value, `the prefix is wider than ${ALLOWED_V4}`);
  return value;
}

/** The 16 bytes of an IPv6 address accepted by `isIPv6` (without a zone). */
function ipv6Bytes(addr: string): Uint8Array {
  let text = addr;
  const bytes = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4 !== null) {
    const [, p, q, r, s] = v4.map(Number);
    text = `${text.slice(0, v4.index)}${((p! << 8) | q!).toString(16)}:${((r! << 8) | s!).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    bytes[i * 2] = v >>> 8;
    bytes[i * 2 + 1] = v & 0xff;
  });
  return bytes;
}

/**
 * Checks an IPv6 address or route in CIDR form (`fd00::1/64`, a bare address means /128) and
 * returns it. Throws unless the whole prefix lies inside fd00::/8.
 */
export function checkCidr6(value: string, what = 'IPv6 address'): string {
  const { addr, prefix } = splitCidr(what, value, 128);
  if (addr.includes('%') || !isIPv6(addr)) fail(what, value, 'not an IPv6 address');
  if (ipv6Bytes(addr)[0] !== 0xfd) fail(what, value, `outside ${ALLOWED_V6}`);
  if (prefix < 8) fail(what, value, `the prefix is wider than ${ALLOWED_V6}`);
  return value;
}

/**
 * Checks an interface name: 1 to 15 bytes of letters, digits, `-`, `_` and `.` (a subset of what
 * Linux's dev_valid_name() allows, and never `.` or `..`). Returns it.
 */
export function checkIfname(name: string): string {
  if (Buffer.byteLength(name) > IFNAME_MAX_BYTES) fail('interface name', name, 'longer than 15 bytes');
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..')
    fail('interface name', name, 'use 1 to 15 of [A-Za-z0-9_.-]');
  return name;
}

/** Checks an MTU: an integer from 68 (RFC 791's minimum) to 65535. Returns it. */
export function checkMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
    fail('MTU', String(mtu), 'not an integer in 68..65535');
  return mtu;
}
