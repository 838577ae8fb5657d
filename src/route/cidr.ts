/**
 * IP prefixes as the route flags take them (`--address`, `--exclude`, `--include`,
 * `--fake-ip-range`): `198.18.0.1/30`, `fd00::/8`, or a bare address (a /32 or /128).
 */
import { formatAddress, parseAddress } from '../stack/wire/address.js';

/** An IPv4 or IPv6 prefix; `address` is as written (canonical text), `network` has the host bits cleared. */
export interface Cidr {
  readonly family: 4 | 6;
  /** The address as given, in canonical text (an interface address keeps its host bits). */
  readonly address: string;
  /** The network address (host bits cleared), canonical text. */
  readonly network: string;
  readonly prefixLength: number;
}

/** A prefix that cannot be parsed; `code` is ERR_CIDR. */
export class CidrError extends Error {
  /** Always `ERR_CIDR`. */
  readonly code = 'ERR_CIDR';
}

/** Parses `ADDR/LEN` or a bare `ADDR`; throws CidrError with a one-line message. */
export function parseCidr(text: string): Cidr {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const addrText = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const bytes = parseAddress(addrText);
  if (bytes === undefined) throw new CidrError(`"${text}" is not an IPv4 or IPv6 prefix (like 10.0.0.0/8)`);
  const bits = bytes.length * 8;
  let prefixLength = bits;
  if (slash >= 0) {
    const lenText = trimmed.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) {
      throw new CidrError(`"${text}": the prefix length must be 0 to ${bits}`);
    }
    prefixLength = Number(lenText);
  }
  const network = new Uint8Array(bytes);
  for (let i = 0; i < network.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    network[i] = network[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return {
    family: bytes.length === 4 ? 4 : 6,
    address: formatAddress(bytes),
    network: formatAddress(network),
    prefixLength,
  };
}

/** `network/len`: the prefix as `ip route`/`ip rule` print it. */
export function prefixText(c: Cidr): string {
  return `${c.network}/${c.prefixLength}`;
}

/** `address/len`: an interface address as `ip addr` takes it. */
export function addressText(c: Cidr): string {
  return `${c.address}/${c.prefixLength}`;
}

/** True when `c` contains the address `addr` (same family, same leading prefix bits). */
export function cidrContains(c: Cidr, addr: string): boolean {
  const a = parseAddress(addr);
  const n = parseAddress(c.network);
  if (a === undefined || n === undefined || a.length !== n.length) return false;
  for (let bit = 0; bit < c.prefixLength; bit++) {
    const i = bit >>> 3;
    const mask = 0x80 >>> (bit & 7);
    if ((a[i]! & mask) !== (n[i]! & mask)) return false;
  }
  return true;
}

/** True when both are the same prefix (family, network and length). */
export function samePrefix(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefixLength === b.prefixLength && a.network === b.network;
}
