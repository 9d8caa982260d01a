// Pure helpers over SingletonJob status: the Ready condition, the fencing
// token of the next run, and the record of a finished run.
import { MAX_SAFE } from '../api/v1alpha1/builder.ts';
import type { ActiveRun, Condition, FinishedRun, SingletonJob, SingletonJobStatus } from '../api/v1alpha1/singletonjob.ts';
import { Keys } from '../api/v1alpha1/singletonjob.ts';

export const RECENT_RUNS = 10;

export interface Readiness {
  ready: boolean;
  reason: string;
  message: string;
}

export class TokenExhaustedError extends Error {}

/**
 * The token of the next run (or retry attempt): above every token issued for
 * this namespace/name, and at least the leader's term.
 * - `currentToken + 1`: above this object's own earlier tokens.
 * - `term`: the etcd revision of this leader's Lease write, later than every
 *   reservation written under an earlier term.
 * - `resourceVersion`: the revision of the object the reservation is computed
 *   from (the CAS makes it the object's current one). Every token ever issued
 *   is below the revision of its own reservation write (by induction over the
 *   three terms here), and a SingletonJob re-created under the same name has a
 *   revision above every write of its deleted predecessor — so tokens keep
 *   increasing per namespace/name across delete and re-create, although the
 *   new object's status starts empty.
 */
export function nextToken(status: SingletonJobStatus, term: number, resourceVersion?: string): number {
  let revision = 0;
  if (resourceVersion && /^[1-9][0-9]*$/.test(resourceVersion)) {
    const big = BigInt(resourceVersion);
    revision = big > BigInt(MAX_SAFE) ? Infinity : Number(big);
  }
  const token = Math.max((status.currentToken ?? 0) + 1, term, revision);
  if (!Number.isSafeInteger(token) || token > MAX_SAFE) throw new TokenExhaustedError(`the next fencing token ${token} would not be below 2^53`);
  return token;
}

export function readyCondition(status: SingletonJobStatus): Condition | undefined {
  return status.conditions?.find((c) => c.type === 'Ready');
}

/** Sets Ready; returns true when anything a reader would notice changed. */
export function setReady(status: SingletonJobStatus, r: Readiness, generation: number | undefined, now: Date): boolean {
  return setCondition(status, { type: 'Ready', status: r.ready ? 'True' : 'False', reason: r.reason, message: r.message }, generation, now);
}

/** Sets one condition (by type); returns true when anything a reader would notice changed. */
export function setCondition(status: SingletonJobStatus, c: Pick<Condition, 'type' | 'status' | 'reason' | 'message'>, generation: number | undefined, now: Date): boolean {
  const old = status.conditions?.find((x) => x.type === c.type);
  if (old && old.status === c.status && old.reason === c.reason && old.message === c.message && old.observedGeneration === generation) return false;
  const next: Condition = { ...c, lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now.toISOString() };
  if (generation !== undefined) next.observedGeneration = generation;
  status.conditions = [...(status.conditions ?? []).filter((x) => x.type !== c.type), next];
  return true;
}

/** The condition types this controller writes besides Ready. */
export const Conditions = { stalled: 'Stalled', paused: 'Paused', contended: 'Contended' } as const;

/** Scheduled runs are held after `suspendAfterFailures` failed runs in a row, until resumed. */
export function pausedAfterFailures(sj: SingletonJob, status: SingletonJobStatus = sj.status ?? {}): boolean {
  const limit = sj.spec.suspendAfterFailures;
  return limit !== undefined && (status.consecutiveFailures ?? 0) >= limit;
}

export function healthyReadiness(sj: SingletonJob): Readiness {
  const { timeZone, suspend } = sj.spec;
  const schedule = sj.spec.schedules?.length ? sj.spec.schedules.join('" and "') : sj.spec.schedule;
  // A run in flight that cannot start: not ready until it runs or is ended.
  const stalled = sj.status?.conditions?.find((c) => c.type === Conditions.stalled && c.status === 'True');
  if (stalled) return { ready: false, reason: 'RunStalled', message: stalled.message };
  if (!schedule) return { ready: true, reason: 'OnDemand', message: `No schedule: runs start only on request (annotation ${Keys.runNow})` };
  if (suspend) return { ready: true, reason: 'Suspended', message: 'Scheduled runs are suspended; manual requests still run' };
  if (pausedAfterFailures(sj)) {
    return {
      ready: false,
      reason: 'PausedAfterFailures',
      message: `Scheduled runs are paused after ${sj.status?.consecutiveFailures} failed runs in a row; resume with the annotation ${Keys.resume} (a new value)`,
    };
  }
  return { ready: true, reason: 'Scheduled', message: `Runs on ${sj.spec.schedules?.length ? 'schedules' : 'schedule'} "${schedule}" in ${timeZone ?? 'UTC'}` };
}

export function recordFinished(status: SingletonJobStatus, run: ActiveRun, outcome: FinishedRun['outcome'], now: Date, completion?: Date): void {
  const finished: FinishedRun = { name: run.name, token: run.token, term: run.term, kind: run.kind, outcome, finishedTime: now.toISOString() };
  if (run.reservedTime) finished.reservedTime = run.reservedTime;
  if (run.slot) finished.slot = run.slot;
  if (run.requestId) finished.requestId = run.requestId;
  if (run.attempt && run.attempt > 1) finished.attempt = run.attempt;
  delete status.activeRun;
  status.recentRuns = [finished, ...(status.recentRuns ?? [])].slice(0, RECENT_RUNS);
  if (outcome === 'Succeeded') status.lastSuccessfulTime = (completion ?? now).toISOString();
}

/** Timestamps arrive as strings (raw JSON) or Dates (client-node models). */
export function toDate(value: Date | string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export { newerThan } from '../kube/resource-version.ts';
