// Removing Jobs nobody needs: strays (a deposed leader's late create that
// belongs to no active run) and finished Jobs beyond the history limits.
import type { V1Job } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { jobOutcome, jobToken, ownJobs } from '../rules/jobs.ts';
import type { EventSink, JobControl, StatusStore } from '../cluster/ports.ts';

/**
 * Deletes unfinished Jobs of this SingletonJob that belong to no active run:
 * a deposed leader's create that arrived after its run had ended and been
 * pruned. Confirmed against a live read first, since a Job can be newer
 * than the cached object that would call it a stray.
 */
export async function deleteStrays(
  d: { status: StatusStore; jobs: JobControl; events: EventSink },
  key: string,
  sj: SingletonJob,
): Promise<boolean> {
  const active = sj.status?.activeRun?.name;
  const candidates = ownJobs(d.jobs, sj).filter(
    (j) => j.metadata?.name !== active && !j.metadata?.deletionTimestamp && !jobOutcome(j),
  );
  if (!candidates.length) return false;
  const live = await d.status.read(key);
  if (!live || live.metadata?.uid !== sj.metadata?.uid) return false;
  const suspects = candidates.filter(
    (j) =>
      j.metadata?.name !== live.status?.activeRun?.name &&
      (jobToken(j) ?? Infinity) <= (live.status?.currentToken ?? 0),
  );
  // The cache may be stale (a Job already deleted, or finished: a recorded
  // run, which only prune() may remove): confirm each one live.
  const strays: V1Job[] = [];
  for (const cached of suspects) {
    const job = await d.jobs.read(cached.metadata!.namespace!, cached.metadata!.name!);
    if (!job || job.metadata?.uid !== cached.metadata?.uid || job.metadata?.deletionTimestamp || jobOutcome(job))
      continue;
    strays.push(job);
  }
  for (const job of strays) {
    await d.jobs.delete(job);
    await d.events.emit(
      sj,
      'Warning',
      'StrayJobDeleted',
      `Deleted Job ${job.metadata!.name} (token ${jobToken(job)}): it belongs to no active run (a late create by a deposed leader)`,
    );
  }
  return strays.length > 0;
}

/**
 * Deletes finished Jobs beyond the history limits. Only Jobs of runs that
 * status records as finished qualify: a token below the active run's (or at
 * most the current token when nothing is active) and a terminal condition.
 */
export async function prune(jobs: JobControl, sj: SingletonJob, log: Logger): Promise<void> {
  const status = sj.status ?? {};
  const limitOk = sj.spec.successfulJobsHistoryLimit ?? 3;
  const limitFailed = sj.spec.failedJobsHistoryLimit ?? 1;
  const ceiling = status.activeRun ? status.activeRun.token - 1 : (status.currentToken ?? 0);
  const finished = ownJobs(jobs, sj)
    .filter((j) => !j.metadata?.deletionTimestamp)
    .map((job) => ({ job, token: jobToken(job), outcome: jobOutcome(job) }))
    .filter(
      (r): r is { job: V1Job; token: number; outcome: 'Succeeded' | 'Failed' } =>
        r.token !== undefined && r.token <= ceiling && r.outcome !== undefined,
    )
    .sort((a, b) => b.token - a.token);
  const doomed = [
    ...finished.filter((r) => r.outcome === 'Succeeded').slice(limitOk),
    ...finished.filter((r) => r.outcome === 'Failed').slice(limitFailed),
  ];
  for (const { job, token } of doomed) {
    log.info({ job: job.metadata?.name, token }, 'Pruned finished Job beyond the history limit');
    await jobs.delete(job);
  }
}
