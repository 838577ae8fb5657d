/**
 * A Uint8Array stand-in that throws on any indexed read or write outside [0, length), so property
 * tests can prove that views never touch bytes past what check() validated (a plain typed array
 * would silently yield undefined). Methods such as subarray run on the real array.
 */
export function strictBytes(bytes: Uint8Array): Uint8Array {
  const inBounds = (key: string | symbol): boolean | undefined => {
    if (typeof key !== 'string' || !/^-?\d+$/.test(key)) return undefined;
    const i = Number(key);
    return i >= 0 && i < bytes.length;
  };
  return new Proxy(bytes, {
    get(target, key) {
      const ok = inBounds(key);
      if (ok === false) throw new RangeError(`read of byte ${String(key)} of ${target.length}`);
      if (ok) return target[Number(key)];
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
    set(target, key, value) {
      const ok = inBounds(key);
      if (ok === false) throw new RangeError(`write of byte ${String(key)} of ${target.length}`);
      return Reflect.set(target, key, value, target);
    },
  });
}
