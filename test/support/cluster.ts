// How a test reaches the cluster: the local control plane started by jest's
// global setup, or an existing cluster when USE_EXISTING_CLUSTER=true.
import * as k8s from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { ControlPlane } from '../controlplane/controlplane.ts';

export interface TestCluster {
  kubeconfig: string;
  /** The local control plane, when the tests started one (audit log, processes). */
  local?: ControlPlane;
  kubeConfig(): k8s.KubeConfig;
}

export function testCluster(): TestCluster {
  const dir = process.env.SINGLETON_TEST_CLUSTER_DIR;
  if (dir) {
    const local = ControlPlane.attach(dir);
    return { kubeconfig: local.state.kubeconfig, local, kubeConfig: () => local.kubeConfig() };
  }
  if (process.env.USE_EXISTING_CLUSTER !== 'true') {
    throw new Error(
      'no cluster: run the integration tests through jest (global setup starts one) or set USE_EXISTING_CLUSTER=true',
    );
  }
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const file = process.env.KUBECONFIG ?? `${process.env.HOME}/.kube/config`;
  return { kubeconfig: file, kubeConfig: () => kc };
}

/** `it` when the local control plane runs, `it.skip` on an existing cluster. */
export const itLocal: jest.It = process.env.SINGLETON_TEST_CLUSTER_DIR ? it : it.skip;

/** A unique namespace per test file, deleted afterwards. */
export async function withNamespace(
  kc: k8s.KubeConfig,
  prefix: string,
): Promise<{ name: string; cleanup: () => Promise<void> }> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return { name, cleanup: async () => void (await core.deleteNamespace({ name }).catch(() => undefined)) };
}

export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}
