// What the reconciler does to the cluster, as narrow interfaces: the seam
// between the decisions (reconciler.ts, active-run.ts, claims.ts) and the API
// server (kube.ts). The real implementations talk to Kubernetes through
// client-node and the informers; test/support/fake-cluster.ts implements the
// same contracts in memory — with the API server's own rules (CAS on
// resourceVersion, the CEL term/token rules, AlreadyExists, UID
// preconditions) — for table-driven tests of every decision.
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import type { SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import type { Liveness } from './lease-liveness.ts';
import type { RelatedJob } from './events.ts';

/** SingletonJobs: cached reads (read-your-writes), live reads and the CAS'd status write. */
export interface StatusStore {
  /** Newest known copy (our own last write until the informer has it). */
  cached(key: string): SingletonJob | undefined;
  /** A live GET; undefined when the object does not exist. */
  read(key: string): Promise<SingletonJob | undefined>;
  /** PUT /status with the body's resourceVersion as precondition: 409 when stale, 422 when CEL refuses it. */
  replaceStatus(sj: SingletonJob): Promise<SingletonJob>;
  /** Drops what is kept for a key whose object is gone. */
  forget(key: string): void;
}

/** The Jobs of runs: cached and live reads, create, UID-guarded delete and unsuspend. */
export interface JobControl {
  cached(namespace: string, name: string): V1Job | undefined;
  /** Cached Jobs of runs of this SingletonJob namespace/name (sjKeyOfJob), whatever their owner: a deleted predecessor's too. */
  ofName(key: string): V1Job[];
  read(namespace: string, name: string): Promise<V1Job | undefined>;
  /** 409 AlreadyExists when the name is taken, 422 when the API server refuses the Job. `dryRun`: validated and admitted, not stored. */
  create(job: V1Job, options?: { dryRun?: boolean }): Promise<V1Job>;
  /** Events the API server recorded about this Job (e.g. FailedCreate from the Job controller). */
  events(job: V1Job): Promise<CoreV1Event[]>;
  /** Background propagation, precondition on the UID; "already gone" is fine. */
  delete(job: V1Job): Promise<void>;
  /**
   * spec.suspend=false on exactly this Job, once: the patch tests its UID and
   * that its release marker still says "not yet" (jobs.ts NOT_RELEASED), so a
   * release decided from an older read — another writer's, or ours delivered
   * late — never unsuspends a Job released and suspended again since; and
   * `guards` (JSON-patch tests: the fields the guarantees rest on), so a Job
   * edited since it was built is never released. False
   * when nothing was released (released already, or gone): read it again and
   * decide.
   */
  unsuspend(job: V1Job, guards?: { path: string; value: string | number }[]): Promise<boolean>;
  /**
   * Deletes a prepared run's Job exactly as it was read (preconditions on its
   * UID and resourceVersion: still suspended, never released). False when it
   * changed or is gone meanwhile: read it again and decide.
   */
  withdraw(job: V1Job): Promise<boolean>;
  /** A Job of this SingletonJob namespace/name was deleted while its Pods might still run, since podsChecked(key). */
  deletedWhileRunning(key: string): boolean;
  /** A live Pod list found no Pod of the SingletonJob running. */
  podsChecked(key: string): void;
}

/** Pods: live lists only (a cache may not show a new Pod yet), UID-guarded deletes. */
export interface PodControl {
  list(namespace: string): Promise<V1Pod[]>;
  delete(pods: V1Pod[]): Promise<void>;
}

/** events.k8s.io/v1 Events regarding a SingletonJob (events.ts): `related` is the run's Job (by default the active run's; `null`: none). */
export interface EventSink {
  emit(
    sj: SingletonJob,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    related?: RelatedJob | null,
  ): Promise<void>;
}

/** Liveness of another installation's Lease (lease-liveness.ts). */
export interface LeaseLiveness {
  check(key: string): Promise<Liveness>;
}

/** Points in a pass where tests (the chaos suite) may hold a leader. No-ops in production. */
export interface ReconcileHooks {
  /** Between the run's suspended Job create (its reservation) and the status write recording it: fencing's adversarial moment. */
  afterReserve?(key: string, run: string): Promise<void>;
  /**
   * The chaos suite's no-election profile (src/operator/chaos-hook.ts): act on
   * every object whoever wrote it last — no stand-by for another
   * installation, no "a newer leader has written this object" — so that only
   * the fences (CAS, CEL, names, UID preconditions) keep the guarantees.
   */
  fencesOnly?: boolean;
}
