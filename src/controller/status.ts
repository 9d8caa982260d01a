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
 * The token of the next run: above every token this object has issued, and at
 * least the leader's term. Terms are etcd revisions of the Lease acquisition,
 * later than every reservation written under an earlier term, so a new term's
 * tokens exceed all earlier ones even when the status is recreated.
 */
export function nextToken(status: SingletonJobStatus, term: number): number {
  const token = Math.max((status.currentToken ?? 0) + 1, term);
  if (!Number.isSafeInteger(token) || token > MAX_SAFE) throw new TokenExhaustedError(`the next fencing token ${token} would not be below 2^53`);
  return token;
}

export function readyCondition(status: SingletonJobStatus): Condition | undefined {
  return status.conditions?.find((c) => c.type === 'Ready');
}

/** Sets Ready; returns true when anything a reader would notice changed. */
export function setReady(status: SingletonJobStatus, r: Readiness, generation: number | undefined, now: Date): boolean {
  const old = readyCondition(status);
  const value = r.ready ? 'True' : 'False';
  if (old && old.status === value && old.reason === r.reason && old.message === r.message && old.observedGeneration === generation) return false;
  const next: Condition = {
    type: 'Ready',
    status: value,
    reason: r.reason,
    message: r.message,
    lastTransitionTime: old && old.status === value ? old.lastTransitionTime : now.toISOString(),
  };
  if (generation !== undefined) next.observedGeneration = generation;
  status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== 'Ready'), next];
  return true;
}

export function healthyReadiness(sj: SingletonJob): Readiness {
  const { schedule, timeZone, suspend } = sj.spec;
  if (!schedule) return { ready: true, reason: 'OnDemand', message: `No schedule: runs start only on request (annotation ${Keys.runNow})` };
  if (suspend) return { ready: true, reason: 'Suspended', message: 'Scheduled runs are suspended; manual requests still run' };
  return { ready: true, reason: 'Scheduled', message: `Runs on schedule "${schedule}" in ${timeZone ?? 'UTC'}` };
}

export function recordFinished(status: SingletonJobStatus, run: ActiveRun, outcome: FinishedRun['outcome'], now: Date, completion?: Date): void {
  const finished: FinishedRun = { name: run.name, token: run.token, term: run.term, kind: run.kind, outcome, finishedTime: now.toISOString() };
  if (run.slot) finished.slot = run.slot;
  if (run.requestId) finished.requestId = run.requestId;
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

/** resourceVersions are comparable integers (KEP-5504); compare them as BigInt, never as Number. */
export function newerThan(a: string | undefined, b: string | undefined): boolean {
  if (!a) return false;
  if (!b) return true;
  try {
    return BigInt(a) > BigInt(b);
  } catch {
    return false;
  }
}
