/**
 * Test-only references, deliberately naive and independent of src/stack/wire/checksum.ts: the
 * RFC 1071 §4.1 byte-wise sum over a pseudo-header built byte by byte.
 */

/** Bytes from a hex string; spaces and newlines are ignored. */
export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

/** The Internet checksum of the concatenated parts, summed byte pair by byte pair. */
export function referenceChecksum(...parts: Uint8Array[]): number {
  const all = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += (all[i]! << 8) | (all[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The IPv4 pseudo-header (RFC 9293 §3.1) as bytes. */
export function pseudoV4(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): Uint8Array {
  return Uint8Array.of(...src, ...dst, 0, protocol, length >>> 8, length & 0xff);
}

/** The IPv6 pseudo-header (RFC 8200 §8.1) as bytes. */
export function pseudoV6(src: Uint8Array, dst: Uint8Array, nextHeader: number, length: number): Uint8Array {
  return Uint8Array.of(
    ...src,
    ...dst,
    length >>> 24,
    (length >>> 16) & 0xff,
    (length >>> 8) & 0xff,
    length & 0xff,
    0,
    0,
    0,
    nextHeader,
  );
}
