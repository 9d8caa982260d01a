// The chaos suite's one hook into a real operator process, inert unless
// SINGLETON_TEST_PAUSE_AFTER_RESERVE_MS is set: it logs HOOK_MESSAGE, then
// waits between a run's reservation and its Job create, so the suite can
// SIGSTOP a leader at exactly that point (fencing's adversarial case). It is
// injected into the controller (ReconcileHooks); the reconciler reads no
// environment. The suite waits for HOOK_MESSAGE by importing it from here.
import type { ReconcileHooks } from '../controller/ports.ts';

export const HOOK_MESSAGE = 'Test hook: paused after reserving run';
export const HOOK_ENV = 'SINGLETON_TEST_PAUSE_AFTER_RESERVE_MS';

export function chaosHooks(logger: { info(obj: object, msg: string): void }, env: NodeJS.ProcessEnv = process.env): { hooks?: ReconcileHooks } {
  const ms = Number(env[HOOK_ENV] ?? 0);
  if (!(ms > 0)) return {};
  return {
    hooks: {
      afterReserve: async (key, run) => {
        logger.info({ object: key, run, pauseMs: ms }, HOOK_MESSAGE);
        await new Promise((resolve) => setTimeout(resolve, ms));
      },
    },
  };
}
