// Lease-based leader election with self-fencing and a fencing term.
// See elector.ts (campaign), leadership.ts (leading, self-fencing) and token.ts
// (how the term is derived).
export { LeaderElector } from './elector.ts';
export type { LeaderCallbacks } from './elector.ts';
export { LeadershipLostError } from './leadership.ts';
export type { Leadership, LossReason } from './leadership.ts';
export { makeIdentity, ConfigError, resolveTimings } from './config.ts';
export type { LeaderElectionConfig, ResolvedTimings } from './config.ts';
export { termFromResourceVersion, compareResourceVersions, TermError } from './token.ts';
export { realClock, skewedClock } from './clock.ts';
export type { Clock, TimerHandle } from './clock.ts';
export { KubernetesLeaseLock, formatMicroTime } from './lock.ts';
export type { LeaseLock, LeaseRecord, LeaseSnapshot, LeaseEvent } from './lock.ts';
