// Lease-based leader election with self-fencing and a fencing term.
// See elector.ts for the behaviour and token.ts for how the term is derived.
export { LeaderElector, LeadershipLostError } from './elector.ts';
export type { Leadership, LeaderCallbacks, LossReason } from './elector.ts';
export { makeIdentity, ConfigError, resolveTimings } from './config.ts';
export type { LeaderElectionConfig, ResolvedTimings } from './config.ts';
export { termFromResourceVersion, compareResourceVersions, TermError } from './token.ts';
export { realClock, skewedClock, ManualClock } from './clock.ts';
export type { Clock, TimerHandle } from './clock.ts';
export { KubernetesLeaseLock, formatMicroTime } from './lock.ts';
export type { LeaseLock, LeaseRecord, LeaseSnapshot, LeaseEvent } from './lock.ts';
