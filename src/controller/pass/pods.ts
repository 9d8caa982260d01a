// The live Pod list of a pass: a cache may not show a new Pod yet, so every
// question "may a Pod of this SingletonJob still run" is asked of the API
// server (the rule of which Pod counts is rules/jobs.ts's belongsTo).
import type { V1Pod } from '@kubernetes/client-node';
import type { ActiveRun, SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import type { PodControl } from '../cluster/ports.ts';
import { belongsTo, isPodTerminal } from '../rules/jobs.ts';

/** The Pods of this SingletonJob (namespace/name; see belongsTo) that may still run, from a live list. */
export async function runningPods(pods: PodControl, sj: SingletonJob, run?: ActiveRun): Promise<V1Pod[]> {
  return (await pods.list(sj.metadata!.namespace!)).filter((p) => !isPodTerminal(p) && belongsTo(p, sj, run));
}
