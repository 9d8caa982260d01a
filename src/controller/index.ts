// The SingletonJob controller (see controller.ts for the wiring contract).
export { SingletonJobController } from './controller.ts';
export type { ControllerOptions } from './controller.ts';
export { Env as RunEnv } from './rules/jobs.ts';
