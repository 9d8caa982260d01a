// The ports (ports.ts) implemented against the API server with client-node.
// Live reads never use the cache; deletes carry a UID precondition and
// tolerate "already gone"; the status write is a PUT whose body carries the
// resourceVersion it was computed from.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { BatchV1Api, CoreV1Api, CoreV1Event, CustomObjectsApi, V1Job, V1Pod } from '@kubernetes/client-node';
import { GROUP, Keys, PLURAL, VERSION } from '../../api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { isConflict, isNotFound, statusCode } from '../../kube/errors.ts';
import type { MutationCache } from '../../kube/mutation-cache.ts';
import { slimInPlace } from '../../kube/slim.ts';
import { NOT_RELEASED, wasReleased } from '../rules/jobs.ts';
import { LostJobs } from './lost-jobs.ts';
import { kueueRefusal, queueOf } from './kueue.ts';
import type { KueuePort } from './kueue.ts';
import type { JobControl, PodControl, StatusStore } from './ports.ts';

/** What the Job informer offers: keyed reads and the index by controlling owner UID. */
export interface JobCache {
  get(key: string): V1Job | undefined;
  byIndex(value: string): V1Job[];
}

/** How long the answer to "does Kueue file unlabelled Jobs of this namespace under a queue?" is kept. */
const DEFAULTED_TTL_MS = 60_000;

export class KubeStatusStore implements StatusStore {
  private readonly api: CustomObjectsApi;
  private readonly mutations: MutationCache<SingletonJob>;

  /** `mutations`: one per informer, shared by every leadership of the process. */
  constructor(api: CustomObjectsApi, mutations: MutationCache<SingletonJob>) {
    this.api = api;
    this.mutations = mutations;
  }

  cached(key: string): SingletonJob | undefined {
    return this.mutations.get(key);
  }

  async read(key: string): Promise<SingletonJob | undefined> {
    const [namespace, name] = key.split('/') as [string, string];
    try {
      return (await this.api.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace,
        name,
      })) as SingletonJob;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async replaceStatus(sj: SingletonJob): Promise<SingletonJob> {
    const namespace = sj.metadata!.namespace!;
    const name = sj.metadata!.name!;
    // Trimmed as the informer keeps it (no managedFields), so our copy costs what the cache's would.
    const updated = slimInPlace(
      (await this.api.replaceNamespacedCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace,
        name,
        body: sj,
      })) as SingletonJob,
    );
    this.mutations.mutated(updated);
    return updated;
  }

  forget(key: string): void {
    this.mutations.forget(key);
  }
}

export class KubeJobControl implements JobControl {
  private readonly api: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly cache: JobCache;

  private readonly lostJobs: LostJobs;
  private readonly kueue: KueuePort | undefined;

  /**
   * `lostJobs`: Jobs deleted while their Pods might run (also fed by the Job informer's deletes: LostJobs.follow).
   * `kueue`: creates of Jobs Kueue would manage are refused unless its ClusterQueue admits them only through the operator's check (kueue.ts).
   */
  constructor(
    api: BatchV1Api,
    core: CoreV1Api,
    cache: JobCache,
    lostJobs: LostJobs = new LostJobs(),
    kueue?: KueuePort,
  ) {
    this.api = api;
    this.core = core;
    this.cache = cache;
    this.lostJobs = lostJobs;
    this.kueue = kueue;
  }

  deletedWhileRunning(key: string): boolean {
    return this.lostJobs.has(key);
  }

  podsChecked(key: string): void {
    this.lostJobs.cleared(key);
  }

  cached(namespace: string, name: string): V1Job | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  ofName(key: string): V1Job[] {
    return this.cache.byIndex(key);
  }

  async read(namespace: string, name: string): Promise<V1Job | undefined> {
    try {
      return await this.api.readNamespacedJob({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(job: V1Job, options: { dryRun?: boolean } = {}): Promise<V1Job> {
    const namespace = job.metadata!.namespace!;
    // A Job Kueue would manage, in a ClusterQueue that would admit it without the operator's check: refused before it exists.
    // Unlabelled, it may be filed under a queue by Kueue's webhook (LocalQueue defaulting): asked by a dry run, once a minute per namespace.
    const queue = queueOf(job) ?? (this.kueue && !options.dryRun ? await this.defaultedQueue(job) : undefined);
    if (this.kueue && queue) {
      const why = await this.kueue.unfencedReason(namespace, queue);
      if (why) throw kueueRefusal(why);
    }
    const created = await this.api.createNamespacedJob({
      namespace,
      body: job,
      ...(options.dryRun ? { dryRun: 'All' } : {}),
    });
    // Kueue's webhook filed it under a queue itself (LocalQueue defaulting): the same question, and the Job goes at once.
    const filed = queueOf(created);
    if (this.kueue && filed && filed !== queue) {
      const why = await this.kueue.unfencedReason(namespace, filed);
      if (why) {
        if (!options.dryRun) await this.delete(created);
        throw kueueRefusal(why);
      }
    }
    return created;
  }

  /** Namespace → the queue label Kueue's webhook adds to an unlabelled Job there ('' for none), and when that was asked. */
  private readonly defaulted = new Map<string, { queue: string; at: number }>();

  /** The queue Kueue would file this unlabelled Job under, from a dry run of it (cached DEFAULTED_TTL_MS per namespace); undefined when none or unknown. */
  private async defaultedQueue(job: V1Job): Promise<string | undefined> {
    const namespace = job.metadata!.namespace!;
    const known = this.defaulted.get(namespace);
    if (known && performance.now() - known.at < DEFAULTED_TTL_MS) return known.queue || undefined;
    // No Kueue API on this cluster: no webhook of Kueue's to ask (one discovery read a minute instead of a dry run per namespace).
    if (!(await this.kueue!.served())) return undefined;
    let queue = '';
    try {
      queue = queueOf(await this.api.createNamespacedJob({ namespace, body: job, dryRun: 'All' })) ?? '';
    } catch {
      // Unknown (a refusal, no answer): the create itself answers, and its queue is checked then.
      return undefined;
    }
    this.defaulted.set(namespace, { queue, at: performance.now() });
    return queue || undefined;
  }

  async events(job: V1Job): Promise<CoreV1Event[]> {
    const list = await this.core.listNamespacedEvent({
      namespace: job.metadata!.namespace!,
      fieldSelector: `involvedObject.uid=${job.metadata!.uid}`,
    });
    return list.items;
  }

  async delete(job: V1Job): Promise<void> {
    this.lostJobs.deleted(job);
    try {
      await this.api.deleteNamespacedJob({
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

  async withdraw(job: V1Job): Promise<boolean> {
    try {
      await this.api.deleteNamespacedJob({
        namespace: job.metadata!.namespace!,
        name: job.metadata!.name!,
        body: {
          propagationPolicy: 'Background',
          preconditions: { uid: job.metadata!.uid!, resourceVersion: job.metadata!.resourceVersion! },
        },
      });
      return true;
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) return false;
      throw err;
    }
  }

  async unsuspend(job: V1Job, guards: { path: string; value: string | number }[] = []): Promise<boolean> {
    if (wasReleased(job)) return false;
    const marker = `/metadata/annotations/${Keys.released.replace('/', '~1')}`;
    const unreleased = job.metadata?.annotations?.[Keys.released] === NOT_RELEASED;
    try {
      await this.api.patchNamespacedJob(
        {
          namespace: job.metadata!.namespace!,
          name: job.metadata!.name!,
          body: [
            { op: 'test', path: '/metadata/uid', value: job.metadata!.uid! },
            // Released once: the marker still says "not yet" (jobs.ts NOT_RELEASED). A Job
            // created by a version before the marker has none: then a CAS on the version read.
            unreleased
              ? { op: 'test', path: marker, value: NOT_RELEASED }
              : { op: 'test', path: '/metadata/resourceVersion', value: job.metadata!.resourceVersion! },
            ...guards.map((g) => ({ op: 'test', path: g.path, value: g.value })),
            { op: 'replace', path: '/spec/suspend', value: false },
            // In the same request: a released Job, suspended again later by someone else, is told apart from one never released.
            { op: 'add', path: marker, value: new Date().toISOString() },
          ],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
      return true;
    } catch (err) {
      // Gone, or changed since it was read (a failed test is 422; a lost
      // optimistic-concurrency race 409): the next pass reads it and decides.
      if (isNotFound(err) || isConflict(err) || statusCode(err) === 422) return false;
      throw err;
    }
  }
}

export class KubePodControl implements PodControl {
  private readonly api: CoreV1Api;

  constructor(api: CoreV1Api) {
    this.api = api;
  }

  async list(namespace: string): Promise<V1Pod[]> {
    return (await this.api.listNamespacedPod({ namespace })).items;
  }

  async delete(pods: V1Pod[]): Promise<void> {
    for (const pod of pods) {
      try {
        await this.api.deleteNamespacedPod({
          namespace: pod.metadata!.namespace!,
          name: pod.metadata!.name!,
          body: { preconditions: { uid: pod.metadata!.uid! } },
        });
      } catch (err) {
        if (!isNotFound(err) && !isConflict(err)) throw err;
      }
    }
  }
}
