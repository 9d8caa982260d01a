// What the checker's rules share: the violation type, how a run is keyed
// (namespace/name of its SingletonJob, across delete and re-create: the
// guarantees are promised per name, not per UID), and how the Jobs of one run
// (its attempts) are told apart from a second run.
import {
  compareRv,
  type AuditWrite,
  type History,
  type Installation,
  type JobRecord,
  type PodRecord,
} from './history.ts';

export type CheckName =
  | 'one-in-flight'
  | 'slot-at-most-once'
  | 'slot-exactly-once'
  | 'slot-off-schedule'
  | 'slot-early'
  | 'tokens-increase'
  | 'status-fences'
  | 'pod-tokens'
  | 'retries'
  | 'request-at-most-once'
  | 'not-wedged'
  | 'deposed-writes'
  | 'one-installation'
  | 'stray-jobs'
  | 'expectations'
  | 'recovery'
  | 'crash-loop'
  | 'history-complete'
  | 'bad-input'
  | 'forbidden';

export interface Violation {
  check: CheckName;
  /** Harness wall-clock ms when it happened (for ordering and attribution to a fault). */
  at: number;
  message: string;
}

export function rel(h: History, at: number | undefined): string {
  if (at === undefined) return 'never';
  return `+${((at - h.startedAt) / 1000).toFixed(1)}s`;
}

export function ref(o: { namespace: string; name: string }): string {
  return `${o.namespace}/${o.name}`;
}

/** The SingletonJob a Job belongs to, as namespace/name (the key every guarantee is promised under). */
export const jobKey = (j: JobRecord): string => `${j.namespace}/${j.owner}`;

/**
 * A Job is a run once it was let run. The operator creates every Job suspended
 * and unsuspends it only after the run recorded the Job's UID (a fenced status
 * write), so a deposed leader's create delivered late — after the run's Job
 * was deleted and its name freed — yields a Job that never gets a Pod and is
 * deleted as a stray: that is not a second run. Whether such a Job ever got a
 * Pod is judged by the Pod checks regardless.
 */
export const wasStarted = (job: JobRecord, h?: History): boolean =>
  job.started !== false || (h?.pods.some((p) => p.jobUid === job.uid) ?? false);

/** Jobs per SingletonJob namespace/name, in etcd's creation order. */
export function jobsByKey(h: History): Map<string, JobRecord[]> {
  const out = new Map<string, JobRecord[]>();
  for (const job of h.jobs) {
    const list = out.get(jobKey(job)) ?? [];
    list.push(job);
    out.set(jobKey(job), list);
  }
  for (const list of out.values()) list.sort((a, b) => compareRv(a.createdRv, b.createdRv));
  return out;
}

/** Pods per SingletonJob namespace/name (through their Job, else their singletonjob annotation), in creation order. */
export function podsByKey(h: History): Map<string, PodRecord[]> {
  const jobs = new Map(h.jobs.map((j) => [j.uid, j]));
  const out = new Map<string, PodRecord[]>();
  for (const pod of h.pods) {
    const job = jobs.get(pod.jobUid);
    const key = job ? jobKey(job) : pod.singletonJob ? `${pod.namespace}/${pod.singletonJob}` : undefined;
    if (!key) continue;
    const list = out.get(key) ?? [];
    list.push(pod);
    out.set(key, list);
  }
  for (const list of out.values()) list.sort((a, b) => compareRv(a.createdRv, b.createdRv));
  return out;
}

export const attemptOf = (j: JobRecord): number => j.attempt ?? 1;

/** What a run is for: its slot, or its manual request id. */
const purpose = (j: JobRecord): string => (j.slot ? `slot ${j.slot}` : `request ${JSON.stringify(j.requestId ?? '')}`);

export interface Run {
  /** The started Jobs of the run, attempt 1 first. */
  attempts: JobRecord[];
  /** Attempts that do not continue a failed attempt of the same run (reported by the retries rule). */
  orphans: JobRecord[];
}

/**
 * Groups the started Jobs of one SingletonJob (in creation order) into runs:
 * attempt n > 1 continues the latest run for the same slot or request whose
 * last attempt is n − 1 and did not complete. Attempt 1 (or no attempt
 * annotation) always begins a run. An attempt that continues nothing begins a
 * run of its own and is listed in `orphans`.
 */
export function runsOf(jobs: JobRecord[], h?: History): Run[] {
  const runs: Run[] = [];
  for (const job of jobs) {
    if (!wasStarted(job, h)) continue;
    const n = attemptOf(job);
    if (n > 1) {
      const run = [...runs].reverse().find((r) => {
        const last = r.attempts[r.attempts.length - 1] as JobRecord;
        return purpose(last) === purpose(job) && attemptOf(last) === n - 1 && last.outcome !== 'Complete';
      });
      if (run) {
        run.attempts.push(job);
        continue;
      }
      runs.push({ attempts: [job], orphans: [job] });
      continue;
    }
    runs.push({ attempts: [job], orphans: [] });
  }
  return runs;
}

export function describeRun(h: History, r: Run): string {
  return r.attempts
    .map(
      (j) =>
        `Job ${j.name} (attempt ${attemptOf(j)}, token ${j.token ?? '?'}, created at rv ${j.createdRv} ${rel(h, j.createdAt)})`,
    )
    .join(' → ');
}

/** Every installation of a history; older histories knew only the main one. */
export function installationsOf(h: History): Installation[] {
  return h.installations && h.installations.length > 0
    ? h.installations
    : [{ name: 'main', lease: h.lease, replicas: h.replicas }];
}

export const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
export const ok = (w: AuditWrite): boolean => w.code >= 200 && w.code < 300;
export const usToMs = (us: number): number => Math.floor(us / 1000);
