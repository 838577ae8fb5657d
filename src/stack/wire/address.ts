/**
 * IP addresses as raw bytes: a `Uint8Array` of 4 (IPv4) or 16 (IPv6) bytes in network order, as
 * they sit in a packet. Text conversion follows RFC 4291 §2.2 (input) and RFC 5952 (output).
 */

/** Bytes in an IPv4 address. */
export const IPV4_ADDRESS_LENGTH = 4;

/** Bytes in an IPv6 address. */
export const IPV6_ADDRESS_LENGTH = 16;

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const ZERO = 0x30;
const DOT = 0x2e;

/**
 * The text form of an address: dotted quad for IPv4, RFC 5952 canonical form for IPv6 (lowercase,
 * no leading zeros, the longest run of two or more zero groups — the first on a tie — as `::`,
 * and the IPv4-mapped range as `::ffff:a.b.c.d` per §5). Any other length gives `invalid(<n>)`.
 */
export function formatAddress(a: Uint8Array): string {
  if (a.length === IPV4_ADDRESS_LENGTH) return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
  if (a.length !== IPV6_ADDRESS_LENGTH) return `invalid(${a.length})`;
  if (isIpv4Mapped(a)) return `::ffff:${a[12]}.${a[13]}.${a[14]}.${a[15]}`;
  // RFC 5952 §4.2: find the longest run of zero groups (first wins a tie); a single one stays.
  let bestStart = -1;
  let bestLength = 1;
  for (let g = 0; g < 8; ) {
    if (a[2 * g] !== 0 || a[2 * g + 1] !== 0) {
      g++;
      continue;
    }
    let end = g;
    while (end < 8 && a[2 * end] === 0 && a[2 * end + 1] === 0) end++;
    if (end - g > bestLength) {
      bestStart = g;
      bestLength = end - g;
    }
    g = end;
  }
  let text = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      text += '::';
      g += bestLength - 1;
      continue;
    }
    if (text !== '' && !text.endsWith(':')) text += ':';
    text += (((a[2 * g]! << 8) | a[2 * g + 1]!) >>> 0).toString(16);
  }
  return text;
}

/** True for ::ffff:0:0/96, the IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2). */
function isIpv4Mapped(a: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

/**
 * Writes a strict dotted quad (no leading zeros, each part 0-255) at `out[at..at+4)`. One pass over
 * the characters, no split or regex: the SOCKS5 paths parse a destination per connection and per
 * datagram.
 */
function parseIpv4Into(s: string, out: Uint8Array, at: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || part === 4) return false;
      out[at + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= ZERO && c <= ZERO + 9) {
      // A leading zero is only allowed alone (ambiguous octal in inet_aton otherwise).
      if (digits === 1 && value === 0) return false;
      value = value * 10 + (c - ZERO);
      if (value > 255) return false;
      digits++;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** Parses RFC 4291 §2.2 text: up to 8 hex groups, at most one `::`, an optional dotted IPv4 tail. */
function parseIpv6(s: string): Uint8Array | undefined {
  const out = new Uint8Array(IPV6_ADDRESS_LENGTH);
  let text = s;
  const lastColon = s.lastIndexOf(':');
  const hasIpv4Tail = s.indexOf('.', lastColon) !== -1;
  if (hasIpv4Tail) {
    // The dotted tail stands for the last two groups: parse it, then let two zero groups hold its place.
    if (!parseIpv4Into(s.slice(lastColon + 1), out, 12)) return undefined;
    text = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const gap = text.indexOf('::');
  if (gap !== text.lastIndexOf('::')) return undefined;
  const head = gap === -1 ? text : text.slice(0, gap);
  const tail = gap === -1 ? '' : text.slice(gap + 2);
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  const count = headGroups.length + tailGroups.length;
  if (gap === -1 ? count !== 8 : count > 7) return undefined;
  const groups = [...headGroups, ...new Array<string>(8 - count).fill('0'), ...tailGroups];
  for (let g = 0; g < 8; g++) {
    const group = groups[g]!;
    if (!HEX_GROUP.test(group)) return undefined;
    if (hasIpv4Tail && g >= 6) continue;
    const value = Number.parseInt(group, 16);
    out[2 * g] = value >>> 8;
    out[2 * g + 1] = value & 0xff;
  }
  return out;
}

/**
 * Parses a dotted-quad IPv4 address or an RFC 4291 §2.2 IPv6 address (with `::` and an embedded
 * IPv4 tail such as `::ffff:1.2.3.4`). Returns undefined for anything else: leading zeros in a
 * dotted part (ambiguous octal in inet_aton), zone ids, brackets, prefixes.
 */
export function parseAddress(s: string): Uint8Array | undefined {
  if (s.includes(':')) return parseIpv6(s);
  const out = new Uint8Array(IPV4_ADDRESS_LENGTH);
  return parseIpv4Into(s, out, 0) ? out : undefined;
}

/** True when both addresses have the same length and bytes. */
export function addressEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True for IPv4 224.0.0.0/4 (RFC 5771) and IPv6 ff00::/8 (RFC 4291 §2.7). */
export function isMulticast(a: Uint8Array): boolean {
  if (a.length === IPV4_ADDRESS_LENGTH) return (a[0]! & 0xf0) === 0xe0;
  return a.length === IPV6_ADDRESS_LENGTH && a[0] === 0xff;
}

/** True for 0.0.0.0 and :: (RFC 1122 §3.2.1.3, RFC 4291 §2.5.2). */
export function isUnspecified(a: Uint8Array): boolean {
  if (a.length !== IPV4_ADDRESS_LENGTH && a.length !== IPV6_ADDRESS_LENGTH) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/** True for IPv4 127.0.0.0/8 (RFC 1122 §3.2.1.3) and IPv6 ::1 (RFC 4291 §2.5.3). */
export function isLoopback(a: Uint8Array): boolean {
  if (a.length === IPV4_ADDRESS_LENGTH) return a[0] === 127;
  if (a.length !== IPV6_ADDRESS_LENGTH) return false;
  for (let i = 0; i < 15; i++) if (a[i] !== 0) return false;
  return a[15] === 1;
}

/** True for the IPv4 limited broadcast address 255.255.255.255 (RFC 919, RFC 1122 §3.2.1.3). */
export function isBroadcastV4(a: Uint8Array): boolean {
  return a.length === IPV4_ADDRESS_LENGTH && a[0] === 255 && a[1] === 255 && a[2] === 255 && a[3] === 255;
}
