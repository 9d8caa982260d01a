// Deterministic run names: one possible Job name per (SingletonJob, slot) and
// per (SingletonJob, manual request), so the API server's name uniqueness is
// the mutex. Names fit 63 characters because Job names become Pod label values.
import { createHash } from 'node:crypto';

const MAX = 63;

function hash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

function withSuffix(base: string, suffix: string): string {
  if (base.length + 1 + suffix.length <= MAX) return `${base}-${suffix}`;
  // Too long: keep a readable prefix and add a hash of the full name so two
  // long names with the same prefix still differ.
  const room = MAX - suffix.length - 1 - 8 - 1;
  const prefix = base.slice(0, room).replace(/[-.]+$/, '');
  return `${prefix}-${hash(base, 8)}-${suffix}`;
}

/** Job name of a scheduled slot: the slot's UTC instant in seconds since the epoch. */
export function scheduledRunName(singletonJob: string, slot: Date): string {
  return withSuffix(singletonJob, String(Math.floor(slot.getTime() / 1000)));
}

/** Job name of a manual request: a hash of the request id (ids are free-form text). */
export function manualRunName(singletonJob: string, requestId: string): string {
  return withSuffix(singletonJob, `m-${hash(requestId, 10)}`);
}
