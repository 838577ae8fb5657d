import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addSums,
  checksum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  sum16,
  updateChecksum,
  updateChecksum32,
} from '../../../src/stack/wire/checksum.js';

/** RFC 1071 §4.1's reference algorithm, byte by byte. */
function naive(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

describe('Internet checksum', () => {
  it('matches the RFC 1071 §3 example', () => {
    const b = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    expect(sum16(b)).toBe(0xddf2);
    expect(checksum(b)).toBe(0x220d);
  });

  it('checksums a real IPv4 header to zero once filled in', () => {
    const h = Uint8Array.from(Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex'));
    const c = checksum(h);
    expect(c).toBe(0xb861);
    h[10] = c >>> 8;
    h[11] = c & 0xff;
    expect(checksum(h)).toBe(0);
  });

  it('agrees with the byte-wise reference at every length and alignment', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.nat(7),
        fc.nat(0xffff),
        (data, shift, init) => {
          const backing = new Uint8Array(data.length + 8);
          backing.set(data, shift);
          const view = backing.subarray(shift, shift + data.length);
          expect(sum16(view, init)).toBe(naive(data, init));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('handles all-0xff data without a negative zero mistake', () => {
    const b = new Uint8Array(4096).fill(0xff);
    expect(sum16(b)).toBe(0xffff);
    expect(checksum(b)).toBe(0);
  });

  it('composes partial sums of even-length regions', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), fc.uint8Array({ maxLength: 500 }), (a, b) => {
        const even = a.length % 2 === 0 ? a : a.subarray(1);
        const joined = new Uint8Array(even.length + b.length);
        joined.set(even);
        joined.set(b, even.length);
        expect(addSums(sum16(even), sum16(b))).toBe(naive(joined));
      }),
    );
  });

  it('computes the IPv4 and IPv6 pseudo-header sums', () => {
    const s4 = Uint8Array.of(198, 18, 0, 1);
    const d4 = Uint8Array.of(198, 18, 0, 2);
    const ph4 = new Uint8Array(12);
    ph4.set(s4, 0);
    ph4.set(d4, 4);
    ph4[9] = 6;
    ph4[11] = 40;
    expect(pseudoHeaderSumV4(s4, d4, 6, 40)).toBe(naive(ph4));

    const s6 = new Uint8Array(16).fill(0xfd);
    const d6 = new Uint8Array(16).map((_, i) => i * 17);
    const ph6 = new Uint8Array(40);
    ph6.set(s6, 0);
    ph6.set(d6, 16);
    new DataView(ph6.buffer).setUint32(32, 70000);
    ph6[39] = 17;
    expect(pseudoHeaderSumV6(s6, d6, 17, 70000)).toBe(naive(ph6));
  });

  it('updates a checksum incrementally as RFC 1624 eqn. 3', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.nat(9),
        fc.nat(0xffff),
        (h, word, value) => {
          const before = checksum(h);
          const old = (h[word * 2]! << 8) | h[word * 2 + 1]!;
          h[word * 2] = value >>> 8;
          h[word * 2 + 1] = value & 0xff;
          const updated = updateChecksum(before, old, value);
          // Equal modulo the two representations of one's-complement zero.
          expect(updated % 0xffff).toBe(checksum(h) % 0xffff);
        },
      ),
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.nat(0xffffffff), (h, value) => {
        const dv = new DataView(h.buffer);
        const before = checksum(h);
        const old = dv.getUint32(4);
        dv.setUint32(4, value);
        expect(updateChecksum32(before, old, value) % 0xffff).toBe(checksum(h) % 0xffff);
      }),
    );
  });
});
