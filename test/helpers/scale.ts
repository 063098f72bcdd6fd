/**
 * The reliability suite runs in two forms: the short form inside `npm test` (fixed seeds,
 * counts sized for minutes) and the long form `npm run test:stress` (STRESS=1, larger counts).
 * SEED replays a run: every randomised test prints the seed it used.
 */
export const STRESS = process.env.STRESS === '1';

/** `short` in `npm test`, `long` in `npm run test:stress`. */
export function scale(short: number, long: number): number {
  return STRESS ? long : short;
}

/** The seed of a randomised test: SEED from the environment, else `fixed` (short form) or a fresh one (long form). */
export function seedFor(name: string, fixed: number): number {
  const env = process.env.SEED;
  const seed = env !== undefined ? Number(env) : STRESS ? Math.floor(Math.random() * 2 ** 31) : fixed;
  // Printed so a failure can be replayed: SEED=<seed> npx jest <file>
  process.stdout.write(`[${name}] seed ${seed} (replay: SEED=${seed})\n`);
  return seed;
}
