// Why a run's Pod is not running: what the kubelet, the scheduler and the Job
// controller say about it. A run that cannot start (an image that cannot be
// pulled, a Pod nobody can schedule, Pods the Job controller cannot even
// create — a missing ServiceAccount, a quota, an admission webhook) would
// otherwise hold its schedule for good under Forbid.
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';

export interface Stall {
  /** CamelCase, as Kubernetes says it: ImagePullBackOff, Unschedulable, FailedCreate, … */
  reason: string;
  message: string;
}

/** Container waiting reasons that do not resolve by waiting a few seconds. */
const STUCK = new Set([
  'ImagePullBackOff',
  'ErrImagePull',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'CrashLoopBackOff',
]);

/** Whether the run's Pod has run at all: Ready, running, or already finished. */
export function started(job: V1Job, pods: V1Pod[]): boolean {
  const s = job.status ?? {};
  if ((s.ready ?? 0) > 0 || (s.succeeded ?? 0) > 0 || (s.failed ?? 0) > 0) return true;
  return pods.some((p) => ['Running', 'Succeeded', 'Failed'].includes(p.status?.phase ?? ''));
}

/** The most telling reason the run's Pods do not run, or undefined when they are merely on their way (or nothing says why). */
export function diagnose(pods: V1Pod[], jobEvents: CoreV1Event[]): Stall | undefined {
  for (const pod of pods) {
    const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
    for (const c of statuses) {
      const waiting = c.state?.waiting;
      if (waiting?.reason && STUCK.has(waiting.reason)) {
        return {
          reason: waiting.reason,
          message: `Pod ${pod.metadata?.name}, container ${c.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
        };
      }
    }
    const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      return {
        reason: 'Unschedulable',
        message: `Pod ${pod.metadata?.name} cannot be scheduled: ${scheduled.message ?? 'no node fits'}`,
      };
    }
  }
  if (pods.length === 0) {
    const failed = jobEvents.filter((e) => e.reason === 'FailedCreate').sort((a, b) => eventTime(b) - eventTime(a))[0];
    if (failed)
      return {
        reason: 'FailedCreate',
        message: `The Job controller cannot create the run's Pod: ${failed.message ?? 'FailedCreate'}`,
      };
  }
  return undefined;
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t as unknown as string).getTime() : 0;
}
