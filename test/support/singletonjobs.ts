// Helpers for the SingletonJob API and controller tests: install the CRD the
// way a user would (kubectl apply of the committed manifest), hand out fake
// Leadership objects (the elector is tested on its own), run controllers, and
// watch Pods to measure how many runs of one SingletonJob were alive at once.
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { API_VERSION, GROUP, KIND, Keys, PLURAL, VERSION } from '../../src/api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';
import { SingletonJobController } from '../../src/controller/index.ts';
import type { ControllerOptions } from '../../src/controller/controller.ts';
import type { Leadership } from '../../src/election/index.ts';
import { eventually, testCluster, withNamespace } from './cluster.ts';
import { applyCrdWithKubectl } from './crd.ts';
import { expectNoForbidden, forbiddenWatch, installedKubeConfig, type RbacScope } from './installed.ts';

// Every test that runs a controller through these helpers fails when that
// controller logged a 403 (see installed.ts): the chart's RBAC is what users run.
afterEach(() => expectNoForbidden());

export function kubectl(kubeconfig: string, args: string[], input?: string): string {
  return execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** kubectl's exit status and output, for commands expected to fail. */
export function kubectlResult(kubeconfig: string, args: string[], input?: string): { ok: boolean; out: string } {
  try {
    return { ok: true, out: kubectl(kubeconfig, args, input) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

export async function installCrd(kubeconfig: string): Promise<void> {
  applyCrdWithKubectl(kubeconfig);
  // Established can precede discovery; wait until a list is served.
  await eventually('the SingletonJob API to be served', async () => {
    kubectl(kubeconfig, ['get', PLURAL, '-A']);
    return true;
  });
}

export interface FakeLeadership extends Leadership {
  lose(): void;
}

/** A Leadership that holds until lose(); assertValid mirrors the elector's self-fence. */
export function fakeLeadership(term: number, identity = `test-${term}`, latestRevision?: () => number): FakeLeadership {
  const ac = new AbortController();
  return {
    identity,
    term,
    ...(latestRevision ? { latestRevision } : {}),
    signal: ac.signal,
    assertValid() {
      if (ac.signal.aborted) throw new Error(`leadership of ${identity} (term ${term}) was lost`);
    },
    lose: () => ac.abort(new Error('leadership lost')),
  };
}

export interface RunningController {
  controller: SingletonJobController;
  /** Runs lead() with this leadership; resolves when it returned. stop() ends it. */
  lead(leadership: FakeLeadership): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions extends Partial<Pick<ControllerOptions, 'lease' | 'retryBackoffMs' | 'hooks'>> {
  /**
   * Whose credentials the controller runs with: the chart's ServiceAccount and
   * RBAC with watchNamespaces set to `namespaces` (`namespaced`, the default)
   * or unset (`cluster`); `admin` only for tests that are about something else
   * than the operator's permissions and say why.
   */
  rbac?: RbacScope | 'admin';
  /** A kubeconfig to run with instead: a test's own restricted identity, whose 403s are expected (a test about RBAC). */
  kubeConfig?: k8s.KubeConfig;
  /** Chart values the RBAC is rendered with (`--set`), e.g. `kueue.enabled=true`. */
  chartValues?: string[];
}

/**
 * Starts a controller in this process the way it runs installed: as the
 * chart's ServiceAccount (test/support/installed.ts), logging through the 403
 * watcher. `kc` is the admin config the test set up the cluster with.
 */
export async function startController(
  kc: k8s.KubeConfig,
  namespaces: string[],
  options: StartOptions = {},
): Promise<RunningController> {
  const { rbac = 'namespaced', kubeConfig, chartValues, ...controllerOptions } = options;
  const runAs =
    kubeConfig ??
    (rbac === 'admin'
      ? kc
      : await installedKubeConfig(kc, testCluster().kubeconfig, rbac, namespaces, undefined, chartValues));
  const controller = new SingletonJobController({
    kubeConfig: runAs,
    namespaces,
    logger: forbiddenWatch({ rbac: kubeConfig ? 'custom' : rbac }, kubeConfig !== undefined),
    ...controllerOptions,
  });
  const stopCaches = new AbortController();
  const caches = controller.startCaches(stopCaches.signal);
  await eventually('the controller caches to sync', async () => controller.hasSynced());
  const leads: Promise<void>[] = [];
  const leaderships: FakeLeadership[] = [];
  return {
    controller,
    lead: (leadership) => {
      const p = controller.lead(leadership);
      leads.push(p);
      leaderships.push(leadership);
      return p;
    },
    stop: async () => {
      for (const l of leaderships) l.lose();
      stopCaches.abort();
      await caches;
      await Promise.allSettled(leads);
    },
  };
}

export function singletonJob(
  name: string,
  spec: Record<string, unknown>,
  podTemplate: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
  metadata: Record<string, unknown> = {},
): SingletonJob {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, ...metadata },
    spec: {
      jobTemplate: {
        spec: {
          template: {
            metadata: podTemplate,
            spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] },
          },
        },
      },
      ...spec,
    },
  } as SingletonJob;
}

export class Api {
  readonly custom: k8s.CustomObjectsApi;
  readonly batch: k8s.BatchV1Api;
  readonly core: k8s.CoreV1Api;
  readonly ns: string;

  constructor(kc: k8s.KubeConfig, ns: string) {
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.batch = kc.makeApiClient(k8s.BatchV1Api);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.ns = ns;
  }

  create(sj: SingletonJob): Promise<SingletonJob> {
    return this.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: this.ns,
      body: sj,
    }) as Promise<SingletonJob>;
  }

  get(name: string): Promise<SingletonJob> {
    return this.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: this.ns,
      name,
    }) as Promise<SingletonJob>;
  }

  patch(name: string, body: unknown): Promise<SingletonJob> {
    return this.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: this.ns, name, body },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    ) as Promise<SingletonJob>;
  }

  replaceStatus(sj: SingletonJob): Promise<SingletonJob> {
    return this.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: this.ns,
      name: sj.metadata!.name!,
      body: sj,
    }) as Promise<SingletonJob>;
  }

  /** Jobs of one SingletonJob, oldest token first. */
  async jobs(sj: SingletonJob): Promise<k8s.V1Job[]> {
    const list = await this.batch.listNamespacedJob({
      namespace: this.ns,
      labelSelector: `${Keys.ownerUid}=${sj.metadata!.uid}`,
    });
    return list.items.sort((a, b) => token(a) - token(b));
  }

  async events(name: string): Promise<k8s.CoreV1Event[]> {
    const list = await this.core.listNamespacedEvent({
      namespace: this.ns,
      fieldSelector: `involvedObject.name=${name},involvedObject.kind=${KIND}`,
    });
    return list.items;
  }
}

export function token(job: k8s.V1Job): number {
  return Number(job.metadata?.annotations?.[Keys.token]);
}

export function isComplete(job: k8s.V1Job): boolean {
  return (job.status?.conditions ?? []).some((c) => c.type === 'Complete' && c.status === 'True');
}

/**
 * Watches the namespace's Pods and records, per SingletonJob (Pod annotation),
 * the largest number of its Pods that were non-terminal at the same time — in
 * the API server's own order of events.
 */
export async function podOverlapMonitor(
  kc: k8s.KubeConfig,
  ns: string,
): Promise<{ max(owner: string): number; pods(owner: string): number; stop(): void }> {
  const live = new Map<string, string>(); // pod → owner, while non-terminal
  const seen = new Map<string, Set<string>>();
  const max = new Map<string, number>();
  const watch = new k8s.Watch(kc);
  (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 600_000;
  const ac = await watch.watch(
    `/api/v1/namespaces/${ns}/pods`,
    {},
    (type: string, pod: k8s.V1Pod) => {
      const owner = pod.metadata?.annotations?.[Keys.singletonJob];
      const name = pod.metadata!.name!;
      if (!owner) return;
      if (!seen.has(owner)) seen.set(owner, new Set());
      seen.get(owner)!.add(name);
      const terminal = type === 'DELETED' || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
      if (terminal) live.delete(name);
      else live.set(name, owner);
      const count = [...live.values()].filter((o) => o === owner).length;
      max.set(owner, Math.max(max.get(owner) ?? 0, count));
    },
    () => undefined,
  );
  return { max: (owner) => max.get(owner) ?? 0, pods: (owner) => seen.get(owner)?.size ?? 0, stop: () => ac.abort() };
}

/**
 * What every controller test file sets up: the shared control plane with the
 * CRD installed (beforeAll), throwaway namespaces and controllers, all
 * removed in reverse order after the file (afterAll).
 */
export function controllerTestEnv() {
  const cluster = testCluster();
  const kc = cluster.kubeConfig();
  const cleanups: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    await installCrd(cluster.kubeconfig);
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  return {
    cluster,
    kc,
    /** Runs `fn` after the file's tests. */
    onCleanup: (fn: () => Promise<void>) => void cleanups.push(fn),
    async namespace(prefix: string): Promise<{ name: string; api: Api }> {
      const ns = await withNamespace(kc, prefix);
      cleanups.push(ns.cleanup);
      return { name: ns.name, api: new Api(kc, ns.name) };
    },
    async controller(ns: string, options: StartOptions = {}): Promise<RunningController> {
      const c = await startController(kc, [ns], options);
      cleanups.push(c.stop);
      return c;
    },
  };
}

/** The condition `type` of the object's status. */
export const conditionOf = (sj: SingletonJob, type: string) => sj.status?.conditions?.find((c) => c.type === type);

/** The object, read live, once its condition `type` is True. */
export const whenConditionTrue = (
  api: Api,
  name: string,
  type: string,
  timeoutMs: number,
  what = `the ${type} condition`,
): Promise<SingletonJob> =>
  eventually(
    what,
    async () => {
      const sj = await api.get(name);
      return conditionOf(sj, type)?.status === 'True' && sj;
    },
    timeoutMs,
  );

/** A manual request: the run-now annotation set to `id`. */
export const requestRun = (api: Api, name: string, id: string) =>
  api.patch(name, { metadata: { annotations: { [Keys.runNow]: id } } });
