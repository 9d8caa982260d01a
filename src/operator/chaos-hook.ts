// The chaos suite's hooks into a real operator process, inert unless their
// environment variables are set (the chart never sets them, only its
// `extraEnv` could; no flag reaches them):
// - SINGLETON_TEST_PAUSE_AFTER_RESERVE_MS: log HOOK_MESSAGE, then wait between
//   a run's reservation and the status write recording it, so the suite can
//   SIGSTOP a leader at exactly that point (fencing's adversarial case).
// - SINGLETON_TEST_FENCES_ONLY=<min>-<max> (ms): the no-election profile. The
//   replica acts on every object whoever wrote it last (no stand-by, no "a
//   newer leader wrote it"), never fences itself (assertValid is a no-op, and
//   losing the Lease does not stop its work), and gives its Lease up every
//   <min>–<max> ms to take it again with a new, higher term. Several replicas
//   so configured act on every object at once with interleaving terms: only
//   the API server's fences keep the guarantees. The value must name a range,
//   so a stray "1" or "true" turns nothing off.
// The hooks are injected (ReconcileHooks, RunOptions.fencesOnly); neither the
// reconciler nor run.ts reads the environment. The suite imports the names
// from here, never a copied string.
import type { ReconcileHooks } from '../controller/cluster/ports.ts';

export const HOOK_MESSAGE = 'Test hook: paused after reserving run';
export const HOOK_ENV = 'SINGLETON_TEST_PAUSE_AFTER_RESERVE_MS';
export const FENCES_ONLY_ENV = 'SINGLETON_TEST_FENCES_ONLY';
/** Logged once at start by a replica in the no-election mode (the suite checks it took effect). */
export const FENCES_ONLY_MESSAGE = 'Test hook: no election, fences only';

export interface FencesOnly {
  /** Each leadership lasts a uniformly drawn time in this range (ms), then the Lease is given up and taken again. */
  rotateMs: [number, number];
}

export function fencesOnlyMode(env: NodeJS.ProcessEnv = process.env): FencesOnly | undefined {
  const value = env[FENCES_ONLY_ENV];
  if (value === undefined || value === '') return undefined;
  const m = /^(\d+)-(\d+)$/.exec(value.trim());
  const min = Number(m?.[1]);
  const max = Number(m?.[2]);
  if (!m || !(min > 0) || max < min)
    throw new Error(`${FENCES_ONLY_ENV}=${JSON.stringify(value)}: expected <min ms>-<max ms> with 0 < min <= max`);
  return { rotateMs: [min, max] };
}

export function chaosHooks(
  logger: { info(obj: object, msg: string): void },
  env: NodeJS.ProcessEnv = process.env,
): { hooks?: ReconcileHooks } {
  const ms = Number(env[HOOK_ENV] ?? 0);
  const hooks: ReconcileHooks = {};
  if (ms > 0) {
    hooks.afterReserve = async (key, run) => {
      logger.info({ object: key, run, pauseMs: ms }, HOOK_MESSAGE);
      await new Promise((resolve) => setTimeout(resolve, ms));
    };
  }
  if (fencesOnlyMode(env)) hooks.fencesOnly = true;
  return Object.keys(hooks).length > 0 ? { hooks } : {};
}
