/**
 * Randomness for the core (ISS, fragment identifications, ports) comes from an injected source,
 * so that the same seed gives the same bytes out.
 */

/** A source of uniformly distributed unsigned 32-bit integers. */
export type RandomSource = () => number;

/** A deterministic source for tests and simulations (mulberry32; not for production secrets). */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
