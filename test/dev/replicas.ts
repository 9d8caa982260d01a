// Running the operator as local processes that authenticate exactly like the
// chart's Deployment would: as its ServiceAccount, with a token from the
// TokenRequest API, so the chart's RBAC is what they are allowed to do.
// Shared by the one-command demo (test/dev/demo.ts) and the end-to-end test.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { freePort, isAlive, startProcess, stopProcess, type RunningProcess } from '../controlplane/process.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const mainScript = path.join(root, 'src', 'main.ts');

/** A kubeconfig file that authenticates with a bearer token against the cluster of `base`. */
export function writeTokenKubeconfig(file: string, base: k8s.KubeConfig, user: string, token: string): string {
  const cluster = base.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: cluster.name, user }],
    currentContext: user,
  });
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return file;
}

/** A token for a ServiceAccount from the TokenRequest API (what the kubelet mounts into a Pod). */
export async function serviceAccountToken(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  seconds = 3600,
): Promise<string> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: seconds } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  return token;
}

export interface ReplicaOptions {
  /** The replica's name (its POD_NAME). */
  name: string;
  kubeconfig: string;
  namespace: string;
  leaseName: string;
  logDir: string;
  /** Extra environment, e.g. faster lease timings; the settings above win. */
  env?: Record<string, string>;
  /** What node runs: src/main.ts by default; the shipped bundle with the image's flags in the e2e test. */
  nodeArgs?: string[];
}

export interface Replica {
  name: string;
  port: number;
  log: string;
  process: RunningProcess;
}

/** Starts one operator process (src/main.ts on this Node 24 unless nodeArgs says otherwise) with its health server on a free loopback port. */
export async function startReplica(o: ReplicaOptions): Promise<Replica> {
  const port = await freePort();
  const log = path.join(o.logDir, `${o.name}.log`);
  mkdirSync(o.logDir, { recursive: true });
  const proc = startProcess({
    name: o.name,
    command: process.execPath,
    args: o.nodeArgs ?? [mainScript],
    log,
    env: {
      ...o.env,
      KUBECONFIG: o.kubeconfig,
      POD_NAME: o.name,
      POD_NAMESPACE: o.namespace,
      LEASE_NAME: o.leaseName,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
    },
  });
  return { name: o.name, port, log, process: proc };
}

/** Resolves once /readyz answers 200 (caches synced), or throws after timeoutMs. */
export async function waitReady(replica: Replica, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(replica.process.pid)) throw new Error(`replica ${replica.name} exited; see ${replica.log}`);
    try {
      const res = await fetch(`http://127.0.0.1:${replica.port}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`replica ${replica.name} not ready after ${timeoutMs} ms; see ${replica.log}`);
}

/** SIGTERM (graceful: the leader releases the Lease), SIGKILL after graceMs. */
export function stopReplica(replica: Replica, graceMs = 25_000): Promise<void> {
  return stopProcess(replica.process.pid, graceMs);
}

/** Runs kubectl with the given kubeconfig; returns stdout. */
export function kubectl(kubeconfig: string, args: string[], input?: string): string {
  return execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs helm (built into the cache, see test/controlplane/binaries.ts) against a kubeconfig; returns stdout. */
export function helm(helmBin: string, kubeconfig: string, args: string[]): string {
  const home = path.join(path.dirname(kubeconfig), 'helm-home');
  try {
    return execFileSync(helmBin, [...args, '--kubeconfig', kubeconfig], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        HELM_CACHE_HOME: path.join(home, 'cache'),
        HELM_CONFIG_HOME: path.join(home, 'config'),
        HELM_DATA_HOME: path.join(home, 'data'),
      },
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}
