// Runs our operator for the stampede and scale benchmarks: the CRD from
// manifests/crds, then N replicas of the operator, each a separate process
// with its own client-certificate identity (so the audit log tells them
// apart), electing on one Lease. The operator runs as the container image
// runs it: the bundle (scripts/bundle.ts) with the node flags of the
// Dockerfile's ENTRYPOINT (read from it, so the two cannot drift apart).
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { applyCrdWithKubectl } from '../test/support/crd.ts';
import * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../test/controlplane/controlplane.ts';
import { shippedImage } from '../scripts/bundle.ts';
import { DEFAULT_CONCURRENT_RECONCILES } from '../src/config/config.ts';
import { repoRoot } from './electors.ts';
import { Child, sleep } from './lib/proc.ts';

export const OPERATOR_NAMESPACE = 'bench-operator';
export const OPERATOR_LEASE = 'singleton-operator';

/** Throws "needs …" when the pieces the operator benchmarks rely on have not landed. */
export function operatorPrerequisites(): void {
  const missing: string[] = [];
  if (!existsSync(path.join(repoRoot, 'src', 'main.ts'))) missing.push('the operator process (src/main.ts)');
  const crds = path.join(repoRoot, 'manifests', 'crds');
  if (!existsSync(crds) || readdirSync(crds).filter((f) => f.endsWith('.yaml')).length === 0)
    missing.push('the CRD (manifests/crds/)');
  if (
    !existsSync(path.join(repoRoot, 'src', 'controller', 'controller.ts')) &&
    !existsSync(path.join(repoRoot, 'src', 'controller', 'index.ts'))
  ) {
    missing.push('the SingletonJob controller (src/controller/)');
  }
  if (missing.length > 0) throw new Error(`needs ${missing.join(' and ')}, which has not landed yet`);
}

/** The CRD as a user installs it, CEL rules included (test/support/crd.ts says why not client-node's typed create). */
export async function installCrds(cp: ControlPlane): Promise<void> {
  applyCrdWithKubectl(cp.state.kubeconfig);
}

export interface Operator {
  replicas: Child[];
  identities: string[];
  byIdentity: Map<string, Child>;
  holder(): Promise<string | undefined>;
  waitLeader(timeoutMs: number): Promise<string>;
  start(identity: string): Child;
  stop(): Promise<void>;
}

/** The controller's default number of reconcile workers, read from its source (for the report). */
export function controllerWorkers(): string {
  return process.env.MAX_CONCURRENT_RECONCILES ?? String(DEFAULT_CONCURRENT_RECONCILES);
}

export async function startOperator(
  cp: ControlPlane,
  o: { replicas: number; workDir: string; tag: string; env?: Record<string, string> },
): Promise<Operator> {
  operatorPrerequisites();
  // The image's layout in the run's work folder (built once per run; not dist/, which belongs to the checkout).
  const image = await shippedImage(path.join(o.workDir, 'operator-image'));
  const kc = cp.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const coord = kc.makeApiClient(k8s.CoordinationV1Api);
  await core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } }).catch(() => undefined);
  const identities = Array.from({ length: o.replicas }, (_, i) => `singleton-operator-${o.tag}-${i + 1}`);
  const byIdentity = new Map<string, Child>();
  const start = (identity: string): Child => {
    const kubeconfig = cp.kubeconfigFor(identity, ['system:masters']);
    const child = new Child({
      name: identity,
      command: process.execPath,
      // As the image runs it: node <ENTRYPOINT flags> dist/main.js, with the image's ENV.
      args: [
        ...image.nodeArgs,
        `--kubeconfig=${kubeconfig}`,
        `--identity=${identity}`,
        `--pod-name=${identity}`,
        `--lease-namespace=${OPERATOR_NAMESPACE}`,
        `--lease-name=${OPERATOR_LEASE}`,
        '--http-host=127.0.0.1',
        '--http-port=0',
        '--log-level=info',
      ],
      env: {
        ...image.env,
        POD_NAMESPACE: OPERATOR_NAMESPACE,
        ...(process.env.MAX_CONCURRENT_RECONCILES
          ? { MAX_CONCURRENT_RECONCILES: process.env.MAX_CONCURRENT_RECONCILES }
          : {}),
        ...o.env,
      },
      log: path.join(o.workDir, `${identity}.log`),
      cwd: repoRoot,
    });
    byIdentity.set(identity, child);
    return child;
  };
  for (const id of identities) start(id);
  const holder = async () => {
    try {
      const lease = await coord.readNamespacedLease({ name: OPERATOR_LEASE, namespace: OPERATOR_NAMESPACE });
      return lease.spec?.holderIdentity || undefined;
    } catch {
      return undefined;
    }
  };
  const op: Operator = {
    get replicas() {
      return identities.map((id) => byIdentity.get(id)!);
    },
    identities,
    byIdentity,
    holder,
    start,
    waitLeader: async (timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const h = await holder();
        if (h && byIdentity.get(h)?.alive) return h;
        for (const c of byIdentity.values()) {
          if (!c.alive && c.exited && c.exited.code !== 0 && c.exited.signal === null)
            throw new Error(
              `operator replica ${c.name} exited with code ${c.exited.code}; see ${path.join(o.workDir, `${c.name}.log`)}`,
            );
        }
        await sleep(200);
      }
      throw new Error(`no operator replica became leader within ${timeoutMs} ms`);
    },
    stop: async () => {
      await Promise.all([...byIdentity.values()].map((c) => c.stop(25_000).then(() => c.close())));
    },
  };
  return op;
}

/** The replica's metrics port, from its "Serving /livez, /readyz and /metrics" log line. */
export function metricsPort(child: Child): number | undefined {
  const e = child.events.find((x) => typeof x.port === 'number' && String(x.event).includes('/metrics'));
  return e ? (e.port as number) : undefined;
}

/** One gauge from the replica's /metrics (prom-client default metrics), or NaN. */
export async function scrapeGauge(child: Child, name: string): Promise<number> {
  const port = metricsPort(child);
  if (port === undefined) return Number.NaN;
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
