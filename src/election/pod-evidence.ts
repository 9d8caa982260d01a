// The kubelet's word on the Lease holder: a list + watch of this
// installation's Pods (one namespace, the chart's label selector), reduced to
// what evidence.ts judges. Least RBAC: get/list/watch on Pods in the release
// namespace. The watch is optional: when it cannot list (a 403 from an RBAC
// that predates it, an outage) there is simply no evidence, and the lease's
// expiry stays the rule — it never delays or blocks an election.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { makeClient } from '../kube/client.ts';
import type { RequestMetrics } from '../kube/client-metrics.ts';
import { Informer } from '../kube/informer.ts';
import {
  judgeHolder,
  podOfIdentity,
  type ContainerView,
  type HolderEvidence,
  type PodKnowledge,
  type PodView,
} from './evidence.ts';

export interface PodEvidenceOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  /** The label selector of the installation's replica Pods (the chart passes its selector labels). */
  labelSelector: string;
  /** The container the operator runs in. */
  container: string;
  logger: Logger;
  requestTimeoutMs: number;
  metrics?: RequestMetrics;
}

/** How many removed Pods are remembered (a Deployment's replicas plus a few rolls). */
const GONE_KEPT = 64;

/** The Pod as the rules read it; everything else is dropped before it is cached. */
export function podView(pod: k8s.V1Pod): PodView {
  const time = (t: Date | string | undefined) =>
    t === undefined ? undefined : t instanceof Date ? t.toISOString() : String(t);
  const containers: ContainerView[] = (pod.status?.containerStatuses ?? []).map((s) => {
    const c: ContainerView = { name: s.name, restartCount: s.restartCount ?? 0 };
    if (s.state?.running) c.running = { startedAt: time(s.state.running.startedAt) };
    if (s.state?.terminated)
      c.terminated = { finishedAt: time(s.state.terminated.finishedAt), containerID: s.state.terminated.containerID };
    if (s.state?.waiting) c.waiting = true;
    if (s.lastState?.terminated)
      c.lastTerminated = {
        finishedAt: time(s.lastState.terminated.finishedAt),
        containerID: s.lastState.terminated.containerID,
      };
    return c;
  });
  const view: PodView = { name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '', containers };
  if (pod.status?.phase) view.phase = pod.status.phase;
  if (pod.metadata?.deletionTimestamp) view.deletionTimestamp = time(pod.metadata.deletionTimestamp);
  return view;
}

type CachedPod = k8s.V1Pod & { view: PodView };

export class PodEvidence implements HolderEvidence {
  private readonly informer: Informer<CachedPod>;
  private readonly listeners = new Set<() => void>();
  /** Pods seen and then removed from the API: name → uid. */
  private readonly gone = new Map<string, string>();
  private readonly o: PodEvidenceOptions;

  constructor(options: PodEvidenceOptions) {
    this.o = options;
    const core = makeClient(options.kubeConfig, k8s.CoreV1Api, {
      timeoutMs: options.requestTimeoutMs,
      userAgent: 'singleton-operator/leader-election',
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
    this.informer = new Informer<CachedPod>({
      kubeConfig: options.kubeConfig,
      path: `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/pods`,
      labelSelector: options.labelSelector,
      list: async (page) =>
        (await core.listNamespacedPod({ namespace: options.namespace, ...page })) as { items: CachedPod[] },
      logger: options.logger.child({ evidence: 'pods' }),
      // Only the metadata the informer needs (name, namespace, resourceVersion) and the view.
      transform: (pod) => ({
        metadata: {
          name: pod.metadata?.name,
          namespace: pod.metadata?.namespace,
          resourceVersion: pod.metadata?.resourceVersion,
          uid: pod.metadata?.uid,
        },
        view: podView(pod),
      }),
    });
    this.informer.on((type, pod) => {
      const name = pod.metadata?.name ?? '';
      if (type === 'delete') {
        this.gone.delete(name);
        this.gone.set(name, pod.metadata?.uid ?? '');
        if (this.gone.size > GONE_KEPT) this.gone.delete(this.gone.keys().next().value!);
      } else this.gone.delete(name);
      for (const listener of [...this.listeners]) listener();
    });
  }

  /** Lists and watches until `signal` aborts. Never rejects: without Pods there is no evidence. */
  start(signal: AbortSignal): void {
    this.informer.start(signal).then(
      () =>
        this.o.logger.info(
          { namespace: this.o.namespace, labelSelector: this.o.labelSelector },
          'Watching the replica Pods for evidence of a dead Lease holder',
        ),
      () => undefined,
    );
  }

  knowledge(podName: string): PodKnowledge {
    const pod = this.informer.get(`${this.o.namespace}/${podName}`);
    if (pod) return { state: 'present', pod: pod.view };
    const uid = this.gone.get(podName);
    return uid !== undefined ? { state: 'gone', name: podName, uid } : { state: 'unknown' };
  }

  deathOf(record: { holderIdentity: string; acquireTime?: string }): string | undefined {
    const podName = podOfIdentity(record.holderIdentity);
    if (!podName || !this.informer.hasSynced()) return undefined;
    return judgeHolder(record, this.knowledge(podName), this.o.container);
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
