/**
 * The Internet checksum (RFC 1071), the IPv4/IPv6 pseudo-headers (RFC 793 §3.1, RFC 8200 §8.1) and
 * incremental update (RFC 1624).
 *
 * Sums are kept as folded 16-bit one's-complement sums in network byte order, so partial sums of
 * consecutive even-length regions compose with `addSums` (RFC 1071 §2(A), associativity). The hot
 * loop adds 32-bit words through an Int32Array view: RFC 1071 §2(B) lets the sum be computed in
 * the machine's byte order and swapped once at the end.
 */

/** Words summed between folds: 2^20 words of up to 2^32 stay far below 2^53 (exact doubles). */
const WORDS_PER_CHUNK = 1 << 20;

/** Folds a non-negative integer below 2^53 into a 16-bit one's-complement sum. */
function fold(sum: number): number {
  while (sum > 0xffff) {
    const lo = sum % 0x10000;
    sum = lo + (sum - lo) / 0x10000;
  }
  return sum;
}

function swap16(x: number): number {
  return ((x & 0xff) << 8) | (x >>> 8);
}

/** Sums bytes pairwise in network order: the slow path for short or oddly aligned regions. */
function sumBytes(b: Uint8Array, start: number, end: number): number {
  let sum = 0;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < end) sum += b[i]! << 8;
  return sum;
}

/**
 * The folded 16-bit one's-complement sum of `bytes` (network order), added to `initial`. An odd
 * final byte is padded with zero, so compose only regions of even length before the last.
 */
export function sum16(bytes: Uint8Array, initial = 0): number {
  const n = bytes.length;
  const off = bytes.byteOffset;
  if (n < 64 || (off & 1) !== 0) return fold(initial + sumBytes(bytes, 0, n));
  // Align to 4 bytes: with an even offset at most one leading 16-bit word is summed by hand.
  const head = (off & 3) === 0 ? 0 : 2;
  const words = (n - head) >>> 2;
  // Int32Array loads stay small integers in V8 (a Uint32Array load above 2^31 becomes a heap
  // number); a negative word x stands for x + 2^32, so each one adds 2^32 back.
  const i32 = new Int32Array(bytes.buffer, off + head, words);
  let le = 0;
  for (let start = 0; start < words; start += WORDS_PER_CHUNK) {
    const end = Math.min(words, start + WORDS_PER_CHUNK);
    let a = 0;
    let b = 0;
    let negatives = 0;
    let k = start;
    for (; k + 1 < end; k += 2) {
      const x = i32[k]!;
      const y = i32[k + 1]!;
      a += x;
      b += y;
      negatives += (x >>> 31) + (y >>> 31);
    }
    if (k < end) {
      const x = i32[k]!;
      a += x;
      negatives += x >>> 31;
    }
    le = fold(le + fold(a + b + negatives * 0x100000000));
  }
  const body = swap16(le);
  const rest = sumBytes(bytes, head + words * 4, n);
  const lead = head === 0 ? 0 : (bytes[0]! << 8) | bytes[1]!;
  return fold(initial + body + rest + lead);
}

/** Adds two folded 16-bit sums. */
export function addSums(a: number, b: number): number {
  return fold(a + b);
}

/** The checksum field value for `bytes` with `initial` (e.g. a pseudo-header sum): ~sum. */
export function checksum(bytes: Uint8Array, initial = 0): number {
  return ~sum16(bytes, initial) & 0xffff;
}

/** The one's-complement sum of the IPv4 pseudo-header (RFC 9293 §3.1): src, dst, zero, protocol, length. */
export function pseudoHeaderSumV4(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  length: number,
): number {
  return fold(
    ((src[0]! << 8) | src[1]!) +
      ((src[2]! << 8) | src[3]!) +
      ((dst[0]! << 8) | dst[1]!) +
      ((dst[2]! << 8) | dst[3]!) +
      protocol +
      length,
  );
}

/** The one's-complement sum of the IPv6 pseudo-header (RFC 8200 §8.1): src, dst, 32-bit length, next header. */
export function pseudoHeaderSumV6(
  src: Uint8Array,
  dst: Uint8Array,
  nextHeader: number,
  length: number,
): number {
  let sum = nextHeader + (length >>> 16) + (length & 0xffff);
  for (let i = 0; i < 16; i += 2) sum += ((src[i]! << 8) | src[i + 1]!) + ((dst[i]! << 8) | dst[i + 1]!);
  return fold(sum);
}

/** The pseudo-header sum for either family, chosen by the address length (4 or 16 bytes). */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  return src.length === 4
    ? pseudoHeaderSumV4(src, dst, protocol, length)
    : pseudoHeaderSumV6(src, dst, protocol, length);
}

/**
 * RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data changes from
 * `oldWord` to `newWord`: HC' = ~(~HC + ~m + m'). Never yields 0x0000 from a non-zero sum's
 * complement mistake of eqn. 2.
 */
export function updateChecksum(oldChecksum: number, oldWord: number, newWord: number): number {
  return ~fold((~oldChecksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** RFC 1624 for a 32-bit field (an IPv4 address or a TCP sequence number): two 16-bit updates. */
export function updateChecksum32(oldChecksum: number, oldValue: number, newValue: number): number {
  const c = updateChecksum(oldChecksum, oldValue >>> 16, newValue >>> 16);
  return updateChecksum(c, oldValue & 0xffff, newValue & 0xffff);
}
