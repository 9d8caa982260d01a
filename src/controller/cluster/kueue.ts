// Kueue (kubernetes-sigs/kueue) manages a run's Job when the Job carries the
// label kueue.x-k8s.io/queue-name — from the template, or put there by Kueue's
// own webhook (LocalQueue defaulting: a LocalQueue named "default" in the
// namespace, with manageJobsWithoutQueueName). Kueue then unsuspends the Job
// itself once its Workload is admitted, so the operator's release (the
// unsuspend that follows the fenced record) is not the only way a run's Job
// gets a Pod any more.
//
// The operator is therefore a Kueue AdmissionCheck controller, controllerName
// singleton.dev/fenced-run (ADMISSION_CHECK_CONTROLLER). A ClusterQueue that
// lists such an AdmissionCheck admits a Workload only once the operator has
// marked that check Ready on it, and the operator does that only for the
// Workload of a run's *recorded* Job (the UID in activeRun, after the live Pod
// check), once: the release patch stamps singleton.dev/released and the
// Workload's UID on the Job, then the check goes Ready. So:
// - an unrecorded attempt, or a deposed leader's late create, has a Workload
//   whose check stays Pending: Kueue never admits it, the Job never runs, and
//   it is deleted as a stray like any unreleased Job;
// - a released run that Kueue evicts (preemption; the Workload's checks are
//   reset to Pending) is never admitted again: its attempt ends like a Job
//   someone suspended again (a new Job with a new token, within backoffLimit);
// - while Kueue holds it for quota, the SingletonJob says so (condition
//   AwaitingAdmission, Ready's reason AwaitingAdmission) — not RunStalled, and
//   podStartDeadlineSeconds counts only from admission.
// A ClusterQueue without the check would admit every Job of ours on its own,
// recorded or not: a Job for it is refused before it is created (and deleted
// at once when Kueue's webhook put the queue label on it), as the API server's
// refusals are — the run ends Failed, TemplateAccepted=False says what to
// configure, and runs are held until it is configured.
import { ApiException, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { ApisApi, BatchV1Api, CustomObjectsApi, V1Job } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Keys } from '../../api/v1alpha1/singletonjob.ts';
import { isConflict, isForbidden, isNotFound, statusCode } from '../../kube/errors.ts';
import { NOT_RELEASED, wasReleased } from '../rules/jobs.ts';

export const KUEUE_GROUP = 'kueue.x-k8s.io';
export const KUEUE_VERSION = 'v1beta2';
export const QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';
const JOB_UID_LABEL = 'kueue.x-k8s.io/job-uid';
/** The controllerName of the AdmissionCheck a ClusterQueue lists so that the operator's record gates Kueue's admission. */
export const ADMISSION_CHECK_CONTROLLER = 'singleton.dev/fenced-run';

interface KueueCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface AdmissionCheckState {
  name: string;
  state: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface Workload {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    ownerReferences?: { uid: string }[];
    deletionTimestamp?: string;
  };
  spec?: { queueName?: string };
  status?: { admissionChecks?: AdmissionCheckState[]; conditions?: KueueCondition[] };
}

/** The LocalQueue Kueue files this Job under, when Kueue manages it. */
export function queueOf(job: V1Job): string | undefined {
  const q = job.metadata?.labels?.[QUEUE_LABEL];
  return q ? q : undefined;
}

/** What a run needs of Kueue (kube.ts wires it into Job creates; active-run.ts follows a queued run). */
export interface KueuePort {
  /** Why Kueue would admit Jobs of this LocalQueue without the operator's fence; undefined when its ClusterQueue has the check (or Kueue would admit nothing there). */
  unfencedReason(namespace: string, queue: string): Promise<string | undefined>;
  /** The Workload Kueue made for this Job (live), if any yet; throws KueueNotServed without Kueue. */
  workloadOf(job: V1Job): Promise<Workload | undefined>;
  /** Hands a recorded, never released Job to Kueue: stamps the release marker and the Workload's UID (tests: UID, marker), then marks the check Ready. False: nothing handed out (read again and decide). */
  release(job: V1Job, wl: Workload): Promise<boolean>;
  /** Marks the operator's check(s) Ready on this Workload (CAS on its resourceVersion); false when it changed meanwhile. */
  markReady(wl: Workload, message: string): Promise<boolean>;
  /** The operator's checks on this Workload (names of AdmissionChecks with our controllerName). */
  ourChecks(wl: Workload): Promise<AdmissionCheckState[]>;
  /** Whether the API server serves Kueue's API group (discovery, cached SERVED_TTL_MS); true when unknown. */
  served(): Promise<boolean>;
}

/** How long the answer of served() is kept: Kueue installed meanwhile is still caught after the create (kube.ts). */
const SERVED_TTL_MS = 60_000;

/** The Workload API is not served (Kueue is not installed): a queue-name label then means nothing. */
export class KueueNotServed extends Error {}

/** A refusal the API server would give, for the paths that treat refusals (start-run.ts, the template probe). */
export function kueueRefusal(message: string): ApiException<unknown> {
  return new ApiException(
    422,
    message,
    { kind: 'Status', status: 'Failure', reason: 'Invalid', code: 422, message },
    {},
  );
}

/** Ever evicted (preempted, a check set to Retry, PodsReady timeout, deactivated): its admission checks were reset, and it may have run. */
export function everEvicted(wl: Workload): boolean {
  return (wl.status?.conditions ?? []).some((c) => c.type === 'Evicted');
}

/** Kueue's own words on why a Workload is not admitted yet (its QuotaReserved or Admitted condition). */
export function admissionWait(wl: Workload): string {
  const c = wl.status?.conditions ?? [];
  const quota = c.find((x) => x.type === 'QuotaReserved');
  if (quota?.status !== 'True')
    return quota?.message ? `no quota reserved yet: ${quota.message}` : 'no quota reserved yet';
  const admitted = c.find((x) => x.type === 'Admitted');
  return admitted?.message
    ? `quota reserved, not admitted yet: ${admitted.message}`
    : 'quota reserved, waiting for the other admission checks';
}

export class KubeKueue implements KueuePort {
  private readonly custom: CustomObjectsApi;
  private readonly batch: BatchV1Api;
  private readonly log: Logger;
  /** AdmissionCheck name → its controllerName (immutable in Kueue). */
  private readonly controllers = new Map<string, string>();
  /** Our AdmissionChecks already seen (or made) Active. */
  private readonly active = new Set<string>();

  private readonly apis: ApisApi | undefined;
  private servedAnswer: { served: boolean; at: number } | undefined;

  /** `apis`: discovery, so that a cluster without Kueue is not asked about it per namespace (no `apis`: always asked). */
  constructor(custom: CustomObjectsApi, batch: BatchV1Api, log: Logger, apis?: ApisApi) {
    this.custom = custom;
    this.batch = batch;
    this.log = log;
    this.apis = apis;
  }

  /** The discovery read in flight: the reconcile workers that ask at once (a stampede's first minute) share it. */
  private servedAsk: Promise<boolean> | undefined;

  served(): Promise<boolean> {
    if (!this.apis) return Promise.resolve(true);
    if (this.servedAnswer && performance.now() - this.servedAnswer.at < SERVED_TTL_MS) {
      return Promise.resolve(this.servedAnswer.served);
    }
    this.servedAsk ??= this.apis
      .getAPIVersions()
      .then(
        (groups) => {
          this.servedAnswer = { served: groups.groups.some((g) => g.name === KUEUE_GROUP), at: performance.now() };
          return this.servedAnswer.served;
        },
        // Unknown: ask Kueue's webhook (the dry run), as without discovery.
        () => true,
      )
      .finally(() => (this.servedAsk = undefined));
    return this.servedAsk;
  }

  private async get<T>(plural: string, name: string, namespace?: string): Promise<T | undefined> {
    try {
      return (await (namespace
        ? this.custom.getNamespacedCustomObject({ group: KUEUE_GROUP, version: KUEUE_VERSION, plural, namespace, name })
        : this.custom.getClusterCustomObject({ group: KUEUE_GROUP, version: KUEUE_VERSION, plural, name }))) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async unfencedReason(namespace: string, queue: string): Promise<string | undefined> {
    try {
      return await this.unfenced(namespace, queue);
    } catch (err) {
      // Without these reads the operator cannot tell whether Kueue would start an unrecorded Job: refused, saying which permission tells.
      if (isForbidden(err)) {
        return `The Job would be managed by Kueue (LocalQueue ${namespace}/${queue}), and the operator may not read Kueue's queues to check that Kueue admits it only through the operator's AdmissionCheck (${ADMISSION_CHECK_CONTROLLER}): install the chart with kueue.enabled=true`;
      }
      throw err;
    }
  }

  private async unfenced(namespace: string, queue: string): Promise<string | undefined> {
    const lq = await this.get<{ spec?: { clusterQueue?: string } }>('localqueues', queue, namespace);
    // No LocalQueue or ClusterQueue: Kueue admits nothing here (its Workload stays pending, said in AwaitingAdmission).
    const cqName = lq?.spec?.clusterQueue;
    if (!cqName) return undefined;
    const cq = await this.get<{
      spec?: {
        admissionChecks?: string[];
        admissionChecksStrategy?: { admissionChecks?: { name: string; onFlavors?: string[] }[] };
      };
    }>('clusterqueues', cqName);
    if (!cq) return undefined;
    // Checks that apply to every flavor (a check limited by onFlavors leaves the others unfenced).
    const names = [
      ...(cq.spec?.admissionChecks ?? []),
      ...(cq.spec?.admissionChecksStrategy?.admissionChecks ?? [])
        .filter((c) => !c.onFlavors?.length)
        .map((c) => c.name),
    ];
    for (const name of names) {
      if ((await this.controllerOf(name)) === ADMISSION_CHECK_CONTROLLER) {
        await this.activate(name);
        return undefined;
      }
    }
    return (
      `Kueue would start this SingletonJob's runs without the operator's fence: ClusterQueue ${cqName} (LocalQueue ${namespace}/${queue}) lists no AdmissionCheck ` +
      `with spec.controllerName ${ADMISSION_CHECK_CONTROLLER} for all its flavors, so Kueue could also start a Job the operator never recorded (a deposed leader's late create). ` +
      `Create an AdmissionCheck with controllerName ${ADMISSION_CHECK_CONTROLLER} and add it to the ClusterQueue's spec.admissionChecksStrategy.admissionChecks (without onFlavors); until then no run starts`
    );
  }

  private async controllerOf(name: string): Promise<string | undefined> {
    const known = this.controllers.get(name);
    if (known) return known;
    const ac = await this.get<{ spec?: { controllerName?: string }; status?: { conditions?: KueueCondition[] } }>(
      'admissionchecks',
      name,
    );
    const controller = ac?.spec?.controllerName;
    if (controller) this.controllers.set(name, controller);
    if (
      controller === ADMISSION_CHECK_CONTROLLER &&
      ac?.status?.conditions?.some((c) => c.type === 'Active' && c.status === 'True')
    )
      this.active.add(name);
    return controller;
  }

  /** An AdmissionCheck's controller says it is Active (else Kueue holds its ClusterQueue inactive). */
  private async activate(name: string): Promise<void> {
    if (this.active.has(name)) return;
    const body = {
      status: {
        conditions: [
          {
            type: 'Active',
            status: 'True',
            reason: 'Active',
            message: `Served by the singleton-operator: the check goes Ready once a run's Job is recorded`,
            lastTransitionTime: new Date().toISOString(),
          },
        ],
      },
    };
    await this.custom.patchClusterCustomObjectStatus(
      { group: KUEUE_GROUP, version: KUEUE_VERSION, plural: 'admissionchecks', name, body },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    this.active.add(name);
    this.log.info({ admissionCheck: name }, 'Marked the AdmissionCheck Active');
  }

  async workloadOf(job: V1Job): Promise<Workload | undefined> {
    const uid = job.metadata!.uid!;
    const list = (await this.custom
      .listNamespacedCustomObject({
        group: KUEUE_GROUP,
        version: KUEUE_VERSION,
        plural: 'workloads',
        namespace: job.metadata!.namespace!,
        labelSelector: `${JOB_UID_LABEL}=${uid}`,
      })
      .catch((err: unknown) => {
        // No Workload API: Kueue is not installed, and nobody but the operator releases the Job.
        if (isNotFound(err)) throw new KueueNotServed();
        throw err;
      })) as { items: Workload[] };
    return list.items.find(
      (wl) => !wl.metadata.deletionTimestamp && (wl.metadata.ownerReferences ?? []).some((o) => o.uid === uid),
    );
  }

  async ourChecks(wl: Workload): Promise<AdmissionCheckState[]> {
    const ours: AdmissionCheckState[] = [];
    for (const check of wl.status?.admissionChecks ?? [])
      if ((await this.controllerOf(check.name)) === ADMISSION_CHECK_CONTROLLER) ours.push(check);
    return ours;
  }

  async release(job: V1Job, wl: Workload): Promise<boolean> {
    if (wasReleased(job)) return false;
    const escape = (k: string) => `/metadata/annotations/${k.replace('/', '~1')}`;
    const unreleased = job.metadata?.annotations?.[Keys.released] === NOT_RELEASED;
    try {
      await this.batch.patchNamespacedJob(
        {
          namespace: job.metadata!.namespace!,
          name: job.metadata!.name!,
          body: [
            { op: 'test', path: '/metadata/uid', value: job.metadata!.uid! },
            unreleased
              ? { op: 'test', path: escape(Keys.released), value: NOT_RELEASED }
              : { op: 'test', path: '/metadata/resourceVersion', value: job.metadata!.resourceVersion! },
            // Not spec.suspend: Kueue unsuspends it on admission, which the check below allows.
            { op: 'add', path: escape(Keys.released), value: new Date().toISOString() },
            { op: 'add', path: escape(Keys.kueueWorkload), value: wl.metadata.uid },
          ],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    } catch (err) {
      if (isNotFound(err) || isConflict(err) || statusCode(err) === 422) return false;
      throw err;
    }
    return this.markReady(
      wl,
      `Run ${job.metadata!.name} (token ${job.metadata?.annotations?.[Keys.token]}) is recorded`,
    );
  }

  async markReady(wl: Workload, message: string): Promise<boolean> {
    const checks = wl.status?.admissionChecks ?? [];
    const ours = new Set((await this.ourChecks(wl)).map((c) => c.name));
    const ops: unknown[] = [{ op: 'test', path: '/metadata/resourceVersion', value: wl.metadata.resourceVersion }];
    checks.forEach((c, i) => {
      if (!ours.has(c.name) || c.state === 'Ready') return;
      ops.push({ op: 'test', path: `/status/admissionChecks/${i}/name`, value: c.name });
      ops.push({
        op: 'replace',
        path: `/status/admissionChecks/${i}`,
        value: { name: c.name, state: 'Ready', message, lastTransitionTime: new Date().toISOString() },
      });
    });
    if (ops.length === 1) return true;
    try {
      await this.custom.patchNamespacedCustomObjectStatus(
        {
          group: KUEUE_GROUP,
          version: KUEUE_VERSION,
          plural: 'workloads',
          namespace: wl.metadata.namespace,
          name: wl.metadata.name,
          body: ops,
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
      return true;
    } catch (err) {
      // Kueue updated it meanwhile (its own status writes are frequent): read it again.
      if (isNotFound(err) || isConflict(err) || statusCode(err) === 422) return false;
      throw err;
    }
  }
}
