/**
 * Big-endian (network order) field access on byte arrays by plain arithmetic, with no DataView
 * per packet. Reads past the end yield garbage, never a throw: views call these only after check().
 */

/** The 16-bit big-endian value at `b[o..o+2)`. */
export function getU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

/** The 32-bit big-endian unsigned value at `b[o..o+4)`. */
export function getU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Stores the low 16 bits of `v` big-endian at `b[o..o+2)`. */
export function setU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

/** Stores the low 32 bits of `v` big-endian at `b[o..o+4)`. */
export function setU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}
