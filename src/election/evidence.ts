// Evidence that a Lease holder's process is dead, from outside the Lease.
//
// A crashed leader (OOM kill, segfault, kill -9) stops renewing, and by the
// Lease alone a standby can only wait out the lease. The kubelet knows within
// about a second: it reports the container terminated, or restarted, or the
// Pod goes away. The operator's replicas are Pods of one Deployment and a
// holder identity is `<pod name>_<10 hex digits>` (config.ts makeIdentity), so
// a standby that watches its installation's Pods can tell that the process
// which wrote the record it sees can no longer run, and take the Lease over at
// once (a resourceVersion CAS on that record).
//
// Why this is safe rather than merely fast: the fences (src/controller/README.md
// "Why the fences suffice") keep every guarantee with no single leader at all,
// so a holder judged dead that was only slow can do no harm — it steps down at
// its next renew, and anything it sent meanwhile is refused by a fence. The
// evidence decides only how soon a standby may act, never whether a write is
// accepted. With the evidence right, nothing is lost either: a terminated
// container's processes are gone (the runtime kills its cgroup).
//
// What counts (judgeHolder below; each rule needs the holder mapped to a Pod
// this process has seen):
// - the Pod was seen and is now gone from the API (deleted and removed, not
//   merely marked: a deletionTimestamp alone is a grace period in which the
//   process may still run);
// - the Pod's phase is Failed or Succeeded (every container terminated);
// - the operator container is not running (terminated, or waiting after a
//   termination) and the holder acquired the Lease before that termination;
// - the operator container runs, but started after the holder acquired the
//   Lease: the acquirer was an earlier incarnation (a restarted container
//   gets a new identity). The kubelet stamps startedAt/finishedAt on the same
//   node's wall clock as the holder's acquireTime, to the second; the rules
//   allow for that truncation, and on any doubt there is no evidence.
// What does not count: a deletionTimestamp, a NotReady Pod or node, a missed
// renew, a Pod this process never saw (replicas run as plain processes, an
// identity set with --identity): then the lease's expiry stays the rule.
import type { LeaseRecord } from './lock.ts';

/** What a standby can learn about a holder outside the Lease. */
export interface HolderEvidence {
  /** Why the process that wrote `record` cannot be running any more; undefined when nothing says so. */
  deathOf(record: Pick<LeaseRecord, 'holderIdentity' | 'acquireTime'>): string | undefined;
  /** `listener` is called whenever new evidence may have arrived; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

/** The part of a container's status the rules read (core/v1 ContainerStatus). */
export interface ContainerView {
  name: string;
  restartCount: number;
  running?: { startedAt?: string };
  terminated?: { finishedAt?: string; containerID?: string };
  waiting?: boolean;
  lastTerminated?: { finishedAt?: string; containerID?: string };
}

/** The part of a Pod the rules read. */
export interface PodView {
  name: string;
  uid: string;
  phase?: string;
  deletionTimestamp?: string;
  containers: ContainerView[];
}

/** What this process knows of the Pod a holder ran in. */
export type PodKnowledge =
  { state: 'present'; pod: PodView } | { state: 'gone'; name: string; uid: string } | { state: 'unknown' };

const IDENTITY = /^(.+)_[0-9a-f]{10}$/;

/** The Pod name in an identity made by makeIdentity (`<pod>_<10 hex>`); undefined for any other identity. */
export function podOfIdentity(identity: string): string | undefined {
  return IDENTITY.exec(identity)?.[1];
}

/** Kubernetes Time strings have whole seconds: the instant lies in [t, t + 1 s). */
const SECOND_MS = 1000;

function parse(time: string | undefined): number | undefined {
  if (!time) return undefined;
  const ms = Date.parse(time);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Why the holder of `record` is dead, judged from what is known of its Pod and
 * of the container the operator runs in; undefined when it may be alive.
 */
export function judgeHolder(
  record: Pick<LeaseRecord, 'holderIdentity' | 'acquireTime'>,
  pod: PodKnowledge,
  containerName: string,
): string | undefined {
  if (pod.state === 'unknown') return undefined;
  if (pod.state === 'gone') return `its Pod ${pod.name} (uid ${pod.uid}) was deleted and removed`;
  const p = pod.pod;
  if (p.phase === 'Failed' || p.phase === 'Succeeded')
    return `its Pod ${p.name} is ${p.phase} (every container terminated)`;
  const acquired = parse(record.acquireTime);
  const container = p.containers.find((c) => c.name === containerName);
  // Without the acquisition time or the container, nothing ties a termination to this holder.
  if (acquired === undefined || !container) return undefined;
  if (container.running) {
    const started = parse(container.running.startedAt);
    // started is truncated: the real start is ≥ started, so started > acquired means it began after the acquisition.
    if (started !== undefined && started > acquired) {
      return `its container ${containerName} in Pod ${p.name} was restarted (restart ${container.restartCount}, running since ${container.running.startedAt}) after the holder acquired the Lease at ${record.acquireTime}`;
    }
    return undefined;
  }
  const ended = container.terminated ?? (container.waiting ? container.lastTerminated : undefined);
  const finished = parse(ended?.finishedAt);
  // The real end is < finished + 1 s: an acquisition at or after that was made by a later incarnation.
  if (ended && finished !== undefined && acquired < finished + SECOND_MS) {
    return `its container ${containerName} in Pod ${p.name} terminated at ${ended.finishedAt}${container.terminated ? '' : ' and has not run since'}`;
  }
  return undefined;
}
