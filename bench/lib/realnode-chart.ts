// The operator on a real node (test/controlplane/realnode.ts) as a user
// installs it: one Helm release of the chart with the image built from the
// repository, its Pods placed on the real node, watching one namespace.
// Shared by the real-node parts (crash-realnode.ts, slot-takeover.ts).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../../test/controlplane/controlplane.ts';
import { ctr, realNodePlacement } from '../../test/controlplane/realnode.ts';
import { helm } from '../../test/dev/replicas.ts';
import { chartDir } from '../../scripts/generate-manifests.ts';
import { sleep } from './proc.ts';

export interface ChartRelease {
  release: string;
  namespace: string;
  /** The chart's fullname: the Lease's, the ServiceAccount's. */
  fullname: string;
  /** The operator's audit username (its ServiceAccount). */
  user: string;
  /** The release's Pods, not being deleted. */
  pods(): Promise<k8s.V1Pod[]>;
  /** The Pod named in the Lease (holderIdentity is `<pod>_<suffix>`), or undefined. */
  holderPod(): Promise<string | undefined>;
  /** SIGKILL of the Pod's operator container through containerd (the kubelet restarts it). */
  killOperator(pod: string): Promise<void>;
  /** Resolves once all `replicas` Pods run and are Ready. */
  settle(timeoutMs?: number): Promise<void>;
}

/** The Pod of a Lease holder identity (`<pod>_<suffix>`). */
export const podOfHolder = (identity: string) => identity.slice(0, identity.lastIndexOf('_'));

export async function installOperatorChart(o: {
  cp: ControlPlane;
  helmBin: string;
  image: { repository: string; tag: string };
  workDir: string;
  release: string;
  namespace: string;
  watchNamespaces: string[];
  crds: boolean;
  podEvidence: boolean;
  replicas?: number;
}): Promise<ChartRelease> {
  const kc = o.cp.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const coord = kc.makeApiClient(k8s.CoordinationV1Api);
  const fullname = `${o.release}-singleton-operator`;
  const replicas = o.replicas ?? 3;
  const values = path.join(o.workDir, `values-${o.release}.yaml`);
  writeFileSync(
    values,
    JSON.stringify({
      image: { repository: o.image.repository, tag: o.image.tag, pullPolicy: 'Never' },
      ...realNodePlacement,
      rbac: { aggregateToDefaultRoles: false },
      crds: { enabled: o.crds },
      watchNamespaces: o.watchNamespaces,
      leaderElection: { podEvidence: o.podEvidence },
      ...(o.replicas === undefined ? {} : { replicaCount: o.replicas }),
    }),
  );
  helm(o.helmBin, o.cp.state.kubeconfig, [
    'install',
    o.release,
    chartDir,
    '-n',
    o.namespace,
    '-f',
    values,
    '--wait',
    '--timeout',
    '5m',
  ]);
  const pods = async () =>
    (
      await core.listNamespacedPod({ namespace: o.namespace, labelSelector: `app.kubernetes.io/instance=${o.release}` })
    ).items.filter((p) => !p.metadata?.deletionTimestamp);
  return {
    release: o.release,
    namespace: o.namespace,
    fullname,
    user: `system:serviceaccount:${o.namespace}:${fullname}`,
    pods,
    holderPod: async () => {
      try {
        const h = (await coord.readNamespacedLease({ name: fullname, namespace: o.namespace })).spec?.holderIdentity;
        return h ? podOfHolder(h) : undefined;
      } catch {
        return undefined;
      }
    },
    killOperator: async (pod) => {
      const p = await core.readNamespacedPod({ name: pod, namespace: o.namespace });
      const id = p.status?.containerStatuses
        ?.find((c) => c.name === 'operator')
        ?.containerID?.replace('containerd://', '');
      if (!id) throw new Error(`${pod} has no running operator container`);
      ctr(o.cp.state.realNode!, ['tasks', 'kill', '--signal', 'SIGKILL', id]);
    },
    settle: async (timeoutMs = 180_000) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const ps = await pods();
        if (
          ps.length === replicas &&
          ps.every((p) => p.status?.containerStatuses?.every((c) => c.ready && c.state?.running))
        )
          return;
        await sleep(250);
      }
      throw new Error(
        `${o.release}: the operator Pods did not all become Ready again within ${Math.round(timeoutMs / 1000)} s`,
      );
    },
  };
}
