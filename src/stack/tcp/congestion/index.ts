/**
 * Congestion control: the interface, NewReno (RFC 5681) and CUBIC (RFC 9438), chosen by name.
 */

import { Cubic, type CubicOptions } from './cubic.js';
import { NewReno } from './newreno.js';
import type { CongestionControl, CongestionControlName } from './types.js';

export {
  CUBIC_ALPHA,
  CUBIC_BETA,
  CUBIC_C,
  Cubic,
  type CubicOptions,
  cubicK,
  DEFAULT_CUBIC_OPTIONS,
  wCubic,
} from './cubic.js';
export { CSS_GROWTH_DIVISOR, type HyStartPhase, HyStartPlusPlus } from './hystart.js';
export { NewReno } from './newreno.js';
export {
  type CongestionControl,
  type CongestionControlName,
  initialWindow,
  MAX_WINDOW_BYTES,
} from './types.js';

/** Options of the algorithms that have any (CUBIC's; NewReno has none). */
export type CongestionControlOptions = Partial<CubicOptions>;

/** A new controller at the initial window for `mss`, created at time `now`. */
export function createCongestionControl(
  name: CongestionControlName,
  mss: number,
  now: number,
  options: CongestionControlOptions = {},
): CongestionControl {
  return name === 'cubic' ? new Cubic(mss, now, options) : new NewReno(mss, now);
}
