/**
 * Property tests explore random inputs on developers' machines (a new seed each run), but CI runs
 * them from a fixed seed so a landing never depends on luck. `FC_SEED=n` reproduces any run.
 */
import fc from 'fast-check';

const seed = process.env.FC_SEED ?? (process.env.CI ? '20261201' : undefined);
if (seed !== undefined) fc.configureGlobal({ seed: Number(seed) });
