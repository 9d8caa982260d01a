// Releasing a recorded run's Job: the one place that knows two ways (the
// operator unsuspends it; or Kueue manages it and the operator hands it to
// Kueue as its AdmissionCheck controller, kueue.ts).
import type { V1Job } from '@kubernetes/client-node';
import { KueueNotServed, queueOf } from '../cluster/kueue.ts';
import type { Pass } from './pass.ts';
import type { ActiveRun, SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { releaseGuards } from '../rules/prepare.ts';

/**
 * The release of a recorded run's Job: unsuspend it (testing the fields the
 * guarantees rest on: rules/prepare.ts releaseGuards) — or, when Kueue manages
 * it, hand it to Kueue (release marker, then the check Ready). False when
 * nothing was released: gone or changed (read it again), or Kueue has not made
 * its Workload yet (active-run.ts comes back for it).
 */
export async function releaseRun(p: Pass, sj: SingletonJob, run: ActiveRun, job: V1Job): Promise<boolean> {
  const kueue = p.d.kueue;
  const unsuspend = () => p.d.jobs.unsuspend(job, releaseGuards(sj, run));
  if (!kueue || !queueOf(job)) return unsuspend();
  let wl;
  try {
    wl = await kueue.workloadOf(job);
  } catch (err) {
    if (err instanceof KueueNotServed) return unsuspend();
    throw err;
  }
  return wl ? kueue.release(job, wl) : false;
}
