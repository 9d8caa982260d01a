// Deterministic run names: one possible Job name per reservation — per
// (SingletonJob, slot, attempt) and per (SingletonJob, manual request, token) —
// so the API server's name uniqueness is the mutex, and a name recorded in
// status is the only name its Job can have. Names fit 63 characters because
// Job names become Pod label values.
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

/** Job name of a scheduled slot: the slot's UTC instant in seconds since the epoch; retries (attempt ≥ 2) append the attempt. */
export function scheduledRunName(singletonJob: string, slot: Date, attempt = 1): string {
  const seconds = String(Math.floor(slot.getTime() / 1000));
  return withSuffix(singletonJob, attempt > 1 ? `${seconds}-${attempt}` : seconds);
}

/**
 * Job name of a manual request: a hash of the request id (free-form text)
 * and the run's token. The token makes every manual run's name new: a
 * request id used again later (a, b, a) is a new run and must not collide
 * with the Job of the earlier one still kept in history.
 */
export function manualRunName(singletonJob: string, requestId: string, token: number): string {
  return withSuffix(singletonJob, `m-${hash(`${requestId}\n${token}`, 10)}`);
}

/**
 * Job name of a backfill run (a past slot run on request): the slot and a
 * hash of the token, so it never collides with the Job the slot had when it
 * was scheduled (still in history) or with an earlier backfill of it.
 */
export function backfillRunName(singletonJob: string, slot: Date, token: number): string {
  return withSuffix(singletonJob, `b${Math.floor(slot.getTime() / 1000)}-${hash(String(token), 5)}`);
}

/** The Job name of a reservation of any kind. */
export function runName(
  singletonJob: string,
  run: {
    kind: 'Scheduled' | 'Manual' | 'Backfill';
    slot?: string | Date;
    requestId?: string;
    token: number;
    attempt?: number;
  },
): string {
  const slot = run.slot === undefined ? new Date(0) : new Date(run.slot);
  if (run.kind === 'Scheduled') return scheduledRunName(singletonJob, slot, run.attempt ?? 1);
  if (run.kind === 'Backfill') return backfillRunName(singletonJob, slot, run.token);
  return manualRunName(singletonJob, run.requestId ?? '', run.token);
}
