// Live reads and guarded deletes/patches of the objects a run consists of:
// the SingletonJob itself, its Jobs and their Pods. Reads here never use the
// cache; deletes carry a UID precondition and tolerate "already gone".
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../api/v1alpha1/singletonjob.ts';
import type { ActiveRun, SingletonJob } from '../api/v1alpha1/singletonjob.ts';
import { isConflict, isNotFound } from '../kube/errors.ts';
import { belongsTo, isPodTerminal } from './jobs.ts';
import type { ReconcilerDeps } from './reconciler.ts';

export async function readSingletonJob(d: ReconcilerDeps, key: string): Promise<SingletonJob | undefined> {
  const [namespace, name] = key.split('/') as [string, string];
  try {
    return (await d.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })) as SingletonJob;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function readJob(d: ReconcilerDeps, namespace: string, name: string): Promise<V1Job | undefined> {
  try {
    return await d.batch.readNamespacedJob({ namespace, name });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * The Pods of this SingletonJob (namespace/name, any UID, any run) that may
 * still run, from a live list (never the cache: it may not have seen a new
 * Pod yet). See belongsTo() for the one rule; `run` adds the run's own Pods
 * whose labels were edited.
 */
export async function runningPods(d: ReconcilerDeps, sj: SingletonJob, run?: ActiveRun): Promise<V1Pod[]> {
  const pods = await d.core.listNamespacedPod({ namespace: sj.metadata!.namespace! });
  return pods.items.filter((p) => !isPodTerminal(p) && belongsTo(p, sj, run));
}

export async function podsTerminal(d: ReconcilerDeps, sj: SingletonJob, run?: ActiveRun): Promise<boolean> {
  return (await runningPods(d, sj, run)).length === 0;
}

export async function deletePods(d: ReconcilerDeps, pods: V1Pod[]): Promise<void> {
  for (const pod of pods) {
    try {
      await d.core.deleteNamespacedPod({ namespace: pod.metadata!.namespace!, name: pod.metadata!.name!, body: { preconditions: { uid: pod.metadata!.uid! } } });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }
}

export async function deleteJob(d: ReconcilerDeps, job: V1Job): Promise<void> {
  try {
    await d.batch.deleteNamespacedJob({
      namespace: job.metadata!.namespace!,
      name: job.metadata!.name!,
      // In the body: with a body the server ignores the query parameters, and
      // batch/v1 Jobs default to orphaning their Pods.
      body: { propagationPolicy: 'Background', preconditions: { uid: job.metadata!.uid! } },
    });
  } catch (err) {
    if (!isNotFound(err) && !isConflict(err)) throw err;
  }
}

/** Lets a recorded run's Job start; the JSON patch's test on the UID makes it apply to that very Job only. */
export async function unsuspend(d: ReconcilerDeps, job: V1Job): Promise<void> {
  try {
    await d.batch.patchNamespacedJob(
    {
      namespace: job.metadata!.namespace!,
      name: job.metadata!.name!,
      body: [
        { op: 'test', path: '/metadata/uid', value: job.metadata!.uid! },
        { op: 'replace', path: '/spec/suspend', value: false },
      ],
    },
    setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
  } catch (err) {
    // Gone: the next pass sees the run's Job missing and decides from there.
    if (!isNotFound(err)) throw err;
  }
}
