// Types shared by the modules of one reconcile pass: reconciler.ts (the pass
// and its writes), active-run.ts (following a run to its end), start-run.ts
// (the start protocol, and the Job of a reserved run), claims.ts (which
// installation acts on an object) and cleanup.ts. Kept apart so that none of
// them depends on reconciler.ts.
import type { Logger } from 'pino';
import type { ActiveRun, FinishedRun, SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import type { Leadership } from '../../election/index.ts';
import type { LeaseRef } from '../cluster/lease-liveness.ts';
import type { KueuePort } from '../cluster/kueue.ts';
import type { ControllerMetrics } from '../metrics.ts';
import type {
  EventSink,
  JobControl,
  LeaseLiveness,
  PodControl,
  ReconcileHooks,
  StatusStore,
} from '../cluster/ports.ts';
import type { Readiness } from '../rules/status.ts';
import type { StatusChange } from '../rules/changes.ts';

export interface Result {
  /** Reconcile again after this many ms (0 = as soon as possible); absent = wait for a change. */
  requeueAfterMs?: number;
}

/**
 * What following the active run (active-run.ts) leaves to the pass: it ends
 * here with `result`, or it goes on to decide as usual — the run simply runs,
 * or waits for its Pod to start (Replace may cancel it) — and comes back by
 * `recheckInMs` at the latest (absent: on a change).
 */
export type Followed = ({ kind: 'ends'; result: Result } | { kind: 'goesOn'; recheckInMs?: number }) & {
  /** The status change the pass writes first (rules/changes.ts). */
  change?: StatusChange;
};

export interface ReconcilerDeps {
  status: StatusStore;
  jobs: JobControl;
  pods: PodControl;
  events: EventSink;
  leadership: Leadership;
  logger: Logger;
  metrics: ControllerMetrics;
  /** The API server's clock (schedules never follow this node's wall clock). */
  now: () => Date;
  /**
   * This installation's Lease and its duration: recorded in every status
   * write (status.leaderLease) so another installation knows whose object it
   * is. Absent (tests of one controller) = contention is not judged.
   */
  lease?: LeaseRef & { durationMs: number };
  /** Judges other installations' Leases; required with `lease`. */
  leases?: LeaseLiveness;
  /** First retry delay of a failed attempt (doubles per attempt, at most 6 min); default 10 s like the Job controller. */
  retryBackoffMs?: number;
  /** Monotonic clock (ms), for waiting on a term nobody follows up. */
  monotonicNow?: () => number;
  /** Waits this long (a prepared run's release armed just before its time, active-run.ts); default a timer. */
  sleep?: (ms: number) => Promise<void>;
  hooks?: ReconcileHooks;
  /** Kueue, for runs whose Job it manages (kueue.ts); absent in tests without Kueue. */
  kueue?: KueuePort;
  /**
   * The Job controller sets Complete/Failed only once every Pod of the Job is
   * terminal (Kubernetes 1.31 and later), so a finished Job proves its Pods
   * ended without a Pod list. False (the default) = always list Pods live.
   */
  jobsFinishAfterPods?: boolean;
}

/** What the decision modules use of the reconciler's pass. */
export interface Pass {
  readonly d: ReconcilerDeps;
  /** This leader's term (claims.ts may raise it; it never goes down). */
  term(): number;
  /** One CAS status write computed from `sj`; returns the object as written. */
  write(key: string, sj: SingletonJob, mutate: (status: SingletonJobStatus) => void): Promise<SingletonJob>;
  /** Records the run as finished (activeRun → recentRuns) and says so. */
  finish(
    key: string,
    sj: SingletonJob,
    run: ActiveRun,
    outcome: FinishedRun['outcome'],
    completion?: Date,
    readiness?: Readiness,
  ): Promise<Result>;
  /** Emits an Event once per distinct `id` and key, not on every pass. */
  announceOnce(
    sj: SingletonJob,
    id: string,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void>;
  /** The last id announced for the key. */
  announcedFor(key: string): string | undefined;
}

/** The object changed under us: re-read it and decide again. */
export class StaleError extends Error {}

/** Poll interval while a run ends (Pods terminating, a Job being deleted). */
export const POLL_MS = 1000;
