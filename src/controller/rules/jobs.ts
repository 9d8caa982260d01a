// The batch/v1 Job of one run: the user's template with singleton semantics
// forced on it and the fencing token stamped on the Job, its Pod template and
// every container; plus the predicates that decide when a run is over.
import type { V1Container, V1EnvVar, V1Job, V1Pod } from '@kubernetes/client-node';
import { API_VERSION, KIND, Keys } from '../../api/v1alpha1/singletonjob.ts';
import { withoutRefusedFields } from '../../api/v1alpha1/job-fields.ts';
import type { ActiveRun, SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { objectKey } from '../../kube/object-key.ts';

export const MANAGED_BY = 'singleton-operator';

/** Environment variables every container of a run receives. */
export const Env = {
  token: 'SINGLETON_FENCING_TOKEN',
  term: 'SINGLETON_LEADER_TERM',
  singletonJob: 'SINGLETON_JOB_NAME',
  namespace: 'SINGLETON_JOB_NAMESPACE',
  /** namespace/name: the key a store fences by (tokens increase per key, across delete and re-create). */
  key: 'SINGLETON_JOB_KEY',
  run: 'SINGLETON_RUN_NAME',
  attempt: 'SINGLETON_ATTEMPT',
  slot: 'SINGLETON_RUN_SLOT',
  requestId: 'SINGLETON_RUN_REQUEST_ID',
} as const;

export function runLabels(sj: SingletonJob, run: ActiveRun): Record<string, string> {
  return {
    'app.kubernetes.io/managed-by': MANAGED_BY,
    [Keys.ownerUid]: sj.metadata!.uid!,
    [Keys.run]: run.name,
    [Keys.runKind]: run.kind,
  };
}

export function runAnnotations(sj: SingletonJob, run: ActiveRun): Record<string, string> {
  const a: Record<string, string> = {
    [Keys.token]: String(run.token),
    [Keys.term]: String(run.term),
    [Keys.singletonJob]: sj.metadata!.name!,
    [Keys.attempt]: String(run.attempt ?? 1),
  };
  if (run.slot) a[Keys.slot] = run.slot;
  if (run.requestId) a[Keys.requestId] = run.requestId;
  if (run.generation !== undefined) a[Keys.generation] = String(run.generation);
  return a;
}

/** The spec generation a prepared run's Job was built from (its annotation), undefined on other Jobs. */
export function jobGeneration(job: V1Job): number | undefined {
  const value = job.metadata?.annotations?.[Keys.generation];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

function stamp(container: V1Container, env: V1EnvVar[]): V1Container {
  const ours = new Set(env.map((e) => e.name));
  return { ...container, env: [...(container.env ?? []).filter((e) => !ours.has(e.name)), ...env] };
}

/**
 * The Job of a run. `suspended`: created with spec.suspend=true, so no Pod
 * starts until the leader has recorded this Job's UID in the run (a CAS'd,
 * term-fenced status write) and then unsuspends it. A deposed leader's create
 * delivered late (after the run ended and its Job was deleted, so the name was
 * free again) thus yields a Job that never runs and is deleted as a stray.
 */
export function buildJob(sj: SingletonJob, run: ActiveRun, options: { suspended?: boolean } = {}): V1Job {
  const template = sj.spec.jobTemplate;
  const spec = template.spec!;
  const pod = spec.template;
  const labels = runLabels(sj, run);
  const annotations: Record<string, string> = { ...template.metadata?.annotations, ...runAnnotations(sj, run) };
  // The release marker is ours alone: "not yet" on a Job created suspended (the release patch tests it), never from a template.
  delete annotations[Keys.released];
  delete annotations[Keys.kueueWorkload];
  if (options.suspended) annotations[Keys.released] = NOT_RELEASED;
  const env: V1EnvVar[] = [
    { name: Env.token, value: String(run.token) },
    { name: Env.term, value: String(run.term) },
    { name: Env.singletonJob, value: sj.metadata!.name! },
    { name: Env.namespace, value: sj.metadata!.namespace! },
    { name: Env.key, value: objectKey(sj) },
    { name: Env.run, value: run.name },
    { name: Env.attempt, value: String(run.attempt ?? 1) },
    { name: Env.slot, value: run.slot ?? '' },
    { name: Env.requestId, value: run.requestId ?? '' },
  ];
  const podSpec = pod.spec!;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: run.name,
      namespace: sj.metadata!.namespace!,
      labels: { ...template.metadata?.labels, ...labels },
      annotations,
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: KIND,
          name: sj.metadata!.name!,
          uid: sj.metadata!.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      // Less the refused fields that would break a guarantee, should a template
      // stored before the CRD refused them still carry them (job-fields.ts).
      ...withoutRefusedFields(spec),
      // One Pod at a time: no parallel Pods, and a failed Pod is replaced only
      // once it is terminal (not while it is still terminating).
      parallelism: 1,
      completions: 1,
      completionMode: 'NonIndexed',
      podReplacementPolicy: 'Failed',
      // Every Pod attempt that can write carries its own token: the Job
      // never replaces a failed Pod itself (the replacement would share the
      // token with a Pod that may only look failed, e.g. on a partitioned
      // node). The template's backoffLimit is the operator's retry budget:
      // each retry is a new Job with a new, higher token (pass/active-run.ts).
      backoffLimit: 0,
      suspend: options.suspended ?? false,
      template: {
        ...pod,
        metadata: {
          ...pod.metadata,
          labels: { ...pod.metadata?.labels, ...labels },
          annotations: { ...pod.metadata?.annotations, ...annotations },
        },
        spec: {
          ...podSpec,
          restartPolicy: podSpec.restartPolicy ?? 'Never',
          containers: podSpec.containers.map((c) => stamp(c, env)),
          ...(podSpec.initContainers ? { initContainers: podSpec.initContainers.map((c) => stamp(c, env)) } : {}),
        },
      },
    },
  };
}

/** Succeeded/Failed once the Job has its terminal condition (since 1.31 set only after all Pods terminated). */
export function jobOutcome(job: V1Job): 'Succeeded' | 'Failed' | undefined {
  const conds = job.status?.conditions ?? [];
  if (conds.some((c) => c.type === 'Complete' && c.status === 'True')) return 'Succeeded';
  if (conds.some((c) => c.type === 'Failed' && c.status === 'True')) return 'Failed';
  return undefined;
}

/** A Pod that can no longer run anything. A Pod being deleted still runs until it is terminal or gone. */
export function isPodTerminal(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/**
 * The one rule for "a Pod of this SingletonJob": per namespace/name, not per
 * UID, so a Pod of a deleted predecessor with the same name (still
 * terminating, or orphaned with --cascade=orphan) counts too. A Pod counts
 * when it carries the SingletonJob-name annotation, the owner-uid label, the
 * run label, or an owner reference to the run's Job: a Pod whose labels were
 * edited by hand, or one the garbage collector has not removed yet, still
 * holds the next run. The caller lists the SingletonJob's namespace.
 */
export function belongsTo(pod: V1Pod, sj: SingletonJob, run?: ActiveRun): boolean {
  if (pod.metadata?.annotations?.[Keys.singletonJob] === sj.metadata?.name) return true;
  const labels = pod.metadata?.labels ?? {};
  if (labels[Keys.ownerUid] === sj.metadata?.uid) return true;
  return run !== undefined && belongsToRun(pod, run);
}

/** Whether the Pod belongs to the run itself (not only to its SingletonJob): what Replace may cancel. */
export function belongsToRun(pod: V1Pod, run: ActiveRun): boolean {
  if (pod.metadata?.labels?.[Keys.run] === run.name) return true;
  return (pod.metadata?.ownerReferences ?? []).some(
    (r) => (run.jobUID && r.uid === run.jobUID) || (r.kind === 'Job' && r.name === run.name),
  );
}

/** A Job of ours that was never released: suspended, never started, no Pod ever counted (start-run.ts). */
export function isPendingAttempt(job: V1Job, sj: SingletonJob): boolean {
  return (
    isOwnedBy(job, sj) &&
    !job.metadata?.deletionTimestamp &&
    neverReleased(job) &&
    !job.status?.succeeded &&
    !job.status?.failed
  );
}

/**
 * Whether a Pod of this Job may still run as far as the Job itself tells:
 * unfinished and released, or finished while still counting active Pods.
 * A Job deleted in that state leaves the question to a live Pod list.
 */
export function mayStillRunPods(job: V1Job): boolean {
  if (jobOutcome(job)) return !finishedAfterItsPods(job);
  return !neverReleased(job);
}

/**
 * Whether a finished Job itself shows that every Pod it had was terminal when
 * it finished. The delay of Complete/Failed until all Pods are terminal is
 * kube-controller-manager's (JobManagedBy or JobPodReplacementPolicy on; the
 * skew policy allows a controller-manager a minor older than the API server,
 * and on 1.31–1.33 the gates can be off), so the API server's /version cannot
 * tell. A delaying Job controller first adds an interim condition —
 * `SuccessCriteriaMet` before Complete, `FailureTarget` before Failed — and
 * only then the terminal one; an older controller adds FailureTarget only for
 * a podFailurePolicy match (reason PodFailurePolicy), which proves nothing.
 */
export function finishedAfterItsPods(job: V1Job): boolean {
  const outcome = jobOutcome(job);
  if (!outcome || (job.status?.active ?? 0) > 0) return false;
  const interim = job.status?.conditions?.find(
    (c) => c.status === 'True' && c.type === (outcome === 'Succeeded' ? 'SuccessCriteriaMet' : 'FailureTarget'),
  );
  return !!interim && (outcome === 'Succeeded' || interim.reason !== 'PodFailurePolicy');
}

/**
 * `singleton.dev/released` on a Job created suspended, until its release: the
 * release patch tests for exactly this value and replaces it with the time in
 * the same request, so two releases of one Job — two writers that both saw it
 * recorded and suspended, or one delivered late after someone suspended the
 * released Job again — cannot both succeed (the second one's test fails).
 */
export const NOT_RELEASED = '';

/**
 * Whether the operator ever released this Job: the release patch stamps
 * `singleton.dev/released` with its time (a startTime covers Jobs released by
 * an older version, which did not stamp). A suspended Job that was released
 * has been suspended again by someone else, and is never released twice.
 */
export function wasReleased(job: V1Job): boolean {
  const marker = job.metadata?.annotations?.[Keys.released];
  return (marker !== undefined && marker !== NOT_RELEASED) || !!job.status?.startTime;
}

/** Suspended and never started: the Job controller has never given it a Pod. */
function neverReleased(job: V1Job): boolean {
  return job.spec?.suspend === true && !wasReleased(job) && !job.status?.active;
}

/**
 * The SingletonJob a run's Job belongs to, as namespace/name — per name, not
 * per UID, like belongsTo for Pods: a Job of a deleted predecessor with the
 * same name counts, whether the garbage collector orphaned it (its owner
 * reference gone: `kubectl delete sj --cascade=orphan`) or not yet removed
 * it. What the Job cache is indexed by, and what "a Job deleted while its
 * Pods might run" is remembered under.
 */
export function sjKeyOfJob(job: V1Job): string | undefined {
  const name = job.metadata?.annotations?.[Keys.singletonJob] ?? controllerRef(job)?.name;
  return name && job.metadata?.namespace ? `${job.metadata.namespace}/${name}` : undefined;
}

/** The cached Jobs of this very object (its UID), out of all Jobs of its namespace/name. */
export function ownJobs(jobs: { ofName(key: string): V1Job[] }, sj: SingletonJob): V1Job[] {
  return jobs.ofName(objectKey(sj)).filter((j) => isOwnedBy(j, sj));
}

/**
 * Jobs of this namespace/name that are not this object's and may still get
 * or run a Pod: a deleted predecessor's released Job (orphaned, or not yet
 * collected) — also one with no Pod yet (FailedCreate: the Job controller
 * keeps trying and may succeed hours later). They hold the object's starts
 * until they are gone; the operator deletes them (UID precondition).
 */
export function predecessorJobs(jobs: { ofName(key: string): V1Job[] }, sj: SingletonJob): V1Job[] {
  return jobs.ofName(objectKey(sj)).filter((j) => !isOwnedBy(j, sj) && mayStillRunPods(j));
}

/** Whether the Job is this very object's (its UID): its controlling SingletonJob (controllerRef) is `sj`. */
export function isOwnedBy(job: V1Job, sj: SingletonJob): boolean {
  return controllerRef(job)?.uid === sj.metadata?.uid;
}

/**
 * The one rule for a Job's owner: its controlling owner reference to a
 * SingletonJob (the one Kubernetes' garbage collector follows). Its UID says
 * "this object's Job" (isOwnedBy); its name, when the Job lacks the
 * singleton.dev/singletonjob annotation, says which namespace/name
 * (sjKeyOfJob). Not the owner-uid label: that only selects which Jobs are
 * watched, and a label edited by hand must not hide a Job from stray cleanup
 * and pruning.
 */
function controllerRef(job: V1Job): { name: string; uid: string } | undefined {
  return job.metadata?.ownerReferences?.find((r) => r.controller && r.kind === KIND);
}

export function jobToken(job: V1Job): number | undefined {
  const raw = job.metadata?.annotations?.[Keys.token];
  return raw === undefined ? undefined : Number(raw);
}

/**
 * What the Job cache keeps of a Job: identity, ownership, the run's labels
 * and annotations, suspend, and the status conditions — not the Pod
 * template, which is most of a Job and which nothing reads from the cache.
 * With a few finished Jobs kept per SingletonJob, the Jobs are the larger
 * half of the operator's memory. Cached Jobs are therefore partial: they are
 * only ever deleted or patched by UID, never sent back whole.
 */
export function projectJob(job: V1Job): V1Job {
  const m = job.metadata ?? {};
  const metadata: NonNullable<V1Job['metadata']> = {};
  for (const k of [
    'name',
    'namespace',
    'uid',
    'resourceVersion',
    'generation',
    'creationTimestamp',
    'deletionTimestamp',
    'labels',
    'annotations',
    'ownerReferences',
  ] as const) {
    if (m[k] !== undefined) (metadata as Record<string, unknown>)[k] = m[k];
  }
  // What a prepared run's release checks too (prepare.ts guardViolations): parallelism and the template's marks.
  const t = job.spec?.template?.metadata;
  const marks = (from: Record<string, string> | undefined, keys: string[]) =>
    Object.fromEntries(keys.filter((k) => from?.[k] !== undefined).map((k) => [k, from![k]!]));
  const spec = {
    suspend: job.spec?.suspend,
    parallelism: job.spec?.parallelism,
    template: {
      metadata: {
        labels: marks(t?.labels, [Keys.ownerUid, Keys.run]),
        annotations: marks(t?.annotations, [Keys.singletonJob]),
      },
    },
  };
  const projected: V1Job = { metadata, spec: spec as V1Job['spec'] };
  if (job.status) {
    const { conditions, completionTime, startTime, active, ready, succeeded, failed } = job.status;
    projected.status = { conditions, completionTime, startTime, active, ready, succeeded, failed };
  }
  return projected;
}
