// "A Job of this SingletonJob namespace/name was deleted while its Pods might
// still run", kept in one place: such a Job's Pods outlive it in every cache,
// so the next start of that name lists Pods live (start-run.ts
// mayHaveLivePods). Fed by our own deletes (kube.ts) and the Job informer's
// delete events (follow); cleared by a live list that found no Pod running.
import type { V1Job } from '@kubernetes/client-node';
import { mayStillRunPods, sjKeyOfJob } from '../rules/jobs.ts';

export class LostJobs {
  private readonly keys = new Set<string>();

  /** A Job was deleted (by us, or by anyone: the informer saw it go). */
  deleted(job: V1Job): void {
    const key = sjKeyOfJob(job);
    if (key && mayStillRunPods(job)) this.keys.add(key);
  }

  /** Records the deletes a Job cache sees. */
  follow(cache: { on(handler: (type: string, job: V1Job) => void): void }): void {
    cache.on((type, job) => {
      if (type === 'delete') this.deleted(job);
    });
  }

  /** A Job of this SingletonJob namespace/name was deleted while its Pods might run, since cleared(key). */
  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** A live Pod list found no Pod of the SingletonJob running. */
  cleared(key: string): void {
    this.keys.delete(key);
  }
}
