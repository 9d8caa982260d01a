// End to end, the way a platform team runs it: helm install, three replicas
// authenticated as the chart's ServiceAccount and configured exactly like the
// chart's Deployment (its container env), kubectl apply of the examples, runs
// that complete with fencing tokens, a killed leader, a successor whose next
// run carries a higher token, and a helm uninstall that leaves only the CRD.
//
// There is no container runtime here: kwok "runs" the Deployment's Pods, so
// the real operator processes run locally — the image's artifact, run the way
// its ENTRYPOINT runs it (the bundle from scripts/bundle.ts, the Dockerfile's
// node flags, no node_modules beside it) — with the same token the kubelet
// would mount (TokenRequest) and the same environment.
//
// On a control plane of its own when the tests run locally: installed with the
// chart's defaults (no watchNamespaces), the operator acts on every
// SingletonJob in the cluster — on the shared control plane also on the other
// test files' objects (a run of controller-fencing.test.ts's object, made
// under this leader's term, 4314 instead of the 3000 that file set). With
// USE_EXISTING_CLUSTER=true it installs into $KUBECONFIG's cluster.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { resolveHelm } from '../controlplane/binaries.ts';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { isAlive } from '../controlplane/process.ts';
import { chartDir } from '../../scripts/generate-manifests.ts';
import { imageNodeFlags, shippedImage } from '../../scripts/bundle.ts';
import { Keys, type SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';
import { eventually, testCluster } from '../support/cluster.ts';
import { installCrd } from '../support/singletonjobs.ts';
import {
  helm,
  kubectl,
  root,
  serviceAccountToken,
  startReplica,
  stopReplica,
  waitReady,
  writeTokenKubeconfig,
  type Replica,
} from '../dev/replicas.ts';

const helmBin = resolveHelm();
/** This file's own control plane (local runs), else the existing cluster. */
let cp: ControlPlane | undefined;
let cluster: { kubeconfig: string };
let kc: k8s.KubeConfig;
const suffix = Date.now().toString(36);
const release = 'so-e2e';
const namespace = `so-e2e-${suffix}`;
const apps = `so-e2e-apps-${suffix}`;
const fullname = `${release}-singleton-operator`;
const workDir = mkdtempSync(path.join(tmpdir(), 'so-e2e-'));

let core: k8s.CoreV1Api;
let appsApi: k8s.AppsV1Api;
let batch: k8s.BatchV1Api;
let custom: k8s.CustomObjectsApi;
let coordination: k8s.CoordinationV1Api;

const replicas: Replica[] = [];

async function readSj(name: string): Promise<SingletonJob> {
  return (await custom.getNamespacedCustomObject({
    group: 'singleton.dev',
    version: 'v1alpha1',
    plural: 'singletonjobs',
    namespace: apps,
    name,
  })) as SingletonJob;
}

async function holder(): Promise<string | undefined> {
  const lease = await coordination.readNamespacedLease({ name: fullname, namespace }).catch(() => undefined);
  return lease?.spec?.holderIdentity || undefined;
}

const replicaOf = (identity: string | undefined) => replicas.find((r) => identity?.startsWith(`${r.name}_`));

/** Requests a manual run and waits until it finished successfully; returns the run. */
async function runNow(name: string, requestId: string): Promise<{ name: string; token: number; term: number }> {
  kubectl(cluster.kubeconfig, ['annotate', 'sj', name, '-n', apps, `${Keys.runNow}=${requestId}`, '--overwrite']);
  return eventually(
    `manual run ${requestId} of ${name} to succeed`,
    async () =>
      (await readSj(name)).status?.recentRuns?.find((r) => r.requestId === requestId && r.outcome === 'Succeeded'),
    60_000,
    250,
  );
}

/** The environment the chart's Deployment gives its container (values only; the downward API is set per replica). */
async function chartEnv(): Promise<Record<string, string>> {
  const deployment = await appsApi.readNamespacedDeployment({ name: fullname, namespace });
  const env: Record<string, string> = {};
  for (const e of deployment.spec?.template.spec?.containers[0]?.env ?? [])
    if (e.value !== undefined) env[e.name] = e.value;
  return env;
}

beforeAll(async () => {
  if (process.env.SINGLETON_TEST_CLUSTER_DIR) {
    cp = await ControlPlane.start();
    cluster = { kubeconfig: cp.state.kubeconfig };
    kc = cp.kubeConfig();
  } else {
    const existing = testCluster();
    cluster = existing;
    kc = existing.kubeConfig();
  }
  core = kc.makeApiClient(k8s.CoreV1Api);
  appsApi = kc.makeApiClient(k8s.AppsV1Api);
  batch = kc.makeApiClient(k8s.BatchV1Api);
  custom = kc.makeApiClient(k8s.CustomObjectsApi);
  coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  // The chart runs with crds.enabled=false (on an existing cluster the CRD is the test harness's):
  // the harness's CRD, installed the way the other test files install it.
  await installCrd(cluster.kubeconfig);
  await core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
  });
  await core.createNamespace({ body: { metadata: { name: apps } } });
}, 180_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => stopReplica(r, 5000)));
  if (cp) {
    // The whole control plane goes: nothing to uninstall.
    await cp.stop();
  } else if (cluster) {
    try {
      helm(helmBin, cluster.kubeconfig, ['uninstall', release, '-n', namespace, '--ignore-not-found']);
    } catch {
      // already uninstalled by the last test
    }
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await core.deleteNamespace({ name: apps }).catch(() => undefined);
  }
  if (!process.env.SINGLETON_KEEP_CLUSTER_DIR) rmSync(workDir, { recursive: true, force: true });
}, 60_000);

it('installs with Helm and runs three replicas as the chart’s ServiceAccount', async () => {
  // Short lease timings keep the crash failover below in seconds; the
  // cluster-wide aggregated ClusterRoles belong to helm.test.ts's release.
  helm(helmBin, cluster.kubeconfig, [
    'install',
    release,
    chartDir,
    '-n',
    namespace,
    '--set',
    'rbac.aggregateToDefaultRoles=false',
    '--set',
    'crds.enabled=false', // the test harness's CRD (on an existing cluster, other tests use it meanwhile)
    '--set',
    'leaderElection.leaseDurationSeconds=4',
    '--set',
    'leaderElection.renewDeadlineSeconds=3',
    '--set',
    'leaderElection.retryPeriodSeconds=1',
    '--set',
    'logLevel=debug',
  ]);
  const env = await chartEnv();
  expect(env).toMatchObject({ LEASE_NAME: fullname, LEASE_DURATION: '4s', RENEW_DEADLINE: '3s', RETRY_PERIOD: '1s' });
  const user = `system:serviceaccount:${namespace}:${fullname}`;
  const token = await serviceAccountToken(kc, namespace, fullname);
  const kubeconfig = writeTokenKubeconfig(path.join(workDir, 'operator.kubeconfig'), kc, user, token);
  // workDir is under the system temp folder: nothing the bundle left out can resolve from the checkout's node_modules.
  const image = await shippedImage(path.join(workDir, 'image'));
  expect(image.nodeArgs).toEqual([...imageNodeFlags(), path.join(workDir, 'image', 'dist', 'main.js')]);
  expect(image.env).toMatchObject({ NODE_ENV: 'production', MALLOC_ARENA_MAX: '2' });
  for (let i = 0; i < 3; i++) {
    replicas.push(
      await startReplica({
        name: `${fullname}-${i}`,
        kubeconfig,
        namespace,
        leaseName: env.LEASE_NAME!,
        logDir: path.join(workDir, 'logs'),
        env: { ...image.env, ...env },
        nodeArgs: image.nodeArgs,
      }),
    );
  }
  await Promise.all(replicas.map((r) => waitReady(r)));
  const leader = await eventually('a leader', holder);
  expect(replicaOf(leader)).toBeDefined();
  const metrics = await (await fetch(`http://127.0.0.1:${replicaOf(leader)!.port}/metrics`)).text();
  expect(metrics).toMatch(new RegExp(`leader_election_master_status\\{name="${fullname}"\\} 1`));
  for (const series of [
    'workqueue_depth{name="singletonjob"}',
    'controller_runtime_reconcile_total{controller="singletonjob"',
    'rest_client_requests_total{code="200"',
    'singleton_operator_runs_started_total',
    'leader_election_renew_duration_seconds',
    'singleton_operator_self_fenced_writes_total',
    'singleton_operator_build_info',
  ]) {
    expect(metrics).toContain(series);
  }
});

let first: { name: string; token: number; term: number };

it('runs the examples, applied with kubectl, with fencing tokens that reach the workload', async () => {
  const out = kubectl(cluster.kubeconfig, ['apply', '-n', apps, '-f', path.join(root, 'manifests/examples')]);
  expect(out).toContain('singletonjob.singleton.dev/nightly-payroll created');
  expect(out).toContain('singletonjob.singleton.dev/orders-backfill created');
  expect(out).toContain('singletonjob.singleton.dev/ledger-export created');
  for (const name of ['nightly-payroll', 'orders-backfill', 'ledger-export']) {
    await eventually(`${name} to be Ready`, async () =>
      (await readSj(name)).status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True'),
    );
  }
  first = await runNow('orders-backfill', 'backfill-1');
  const ledger = await runNow('ledger-export', 'export-1');
  expect(first.token).toBeGreaterThan(0);
  expect(ledger.token).toBeGreaterThan(0);

  const job = await batch.readNamespacedJob({ name: first.name, namespace: apps });
  expect(job.metadata?.annotations?.[Keys.token]).toBe(String(first.token));
  const env = job.spec?.template.spec?.containers[0]?.env ?? [];
  expect(env.find((e) => e.name === 'SINGLETON_FENCING_TOKEN')?.value).toBe(String(first.token));
  expect(kubectl(cluster.kubeconfig, ['get', 'sj', 'orders-backfill', '-n', apps])).toMatch(
    new RegExp(`orders-backfill\\s+(<none>\\s+)?\\S+\\s+.*${first.token}`),
  );
  const described = kubectl(cluster.kubeconfig, ['describe', 'sj', 'orders-backfill', '-n', apps]);
  expect(described).toContain('RunStarted');
  expect(described).toContain(`fencing token ${first.token}`);

  // The kubectl plugin: leader, candidates and every SingletonJob's token and term in one view.
  const view = execFileSync(
    path.join(root, 'bin/kubectl-singleton'),
    ['--kubeconfig', cluster.kubeconfig, '--operator-namespace', namespace, '--lease', fullname, '-n', apps],
    { encoding: 'utf8' },
  );
  expect(view).toContain(`LEADER    ${await holder()}`);
  expect(view).toMatch(new RegExp(`orders-backfill\\s.*\\s${first.token}\\s+${first.term}\\s`));
  expect(view).toMatch(/CANDIDATES[\s\S]*standby/);
});

it('fences the next run with a higher token after the leader is killed', async () => {
  const before = await eventually('a leader', holder);
  const victim = replicaOf(before)!;
  process.kill(victim.process.pid, 'SIGKILL');
  const after = await eventually(
    'another replica to take over',
    async () => {
      const h = await holder();
      return h && h !== before ? h : undefined;
    },
    20_000,
    100,
  );
  expect(replicaOf(after)).not.toBe(victim);

  const second = await runNow('orders-backfill', 'backfill-2');
  expect(second.token).toBeGreaterThan(first.token);
  expect(second.term).toBeGreaterThan(first.term);
  const sj = await readSj('orders-backfill');
  expect(sj.status?.currentToken).toBe(second.token);
  expect(sj.status?.leaderTerm).toBe(second.term);
  const job = await batch.readNamespacedJob({ name: second.name, namespace: apps });
  expect(job.metadata?.annotations?.[Keys.token]).toBe(String(second.token));
});

it('hands over at once on SIGTERM: the leader releases the Lease after its work stopped and exits 0', async () => {
  const before = await eventually('a leader', holder);
  const leader = replicaOf(before)!;
  const sent = Date.now();
  process.kill(leader.process.pid, 'SIGTERM');
  await eventually('the leader to exit', async () => !isAlive(leader.process.pid), 20_000, 20);
  // Well within the chart's 30 s termination grace period.
  expect(Date.now() - sent).toBeLessThan(5_000);
  const log = readFileSync(leader.log, 'utf8');
  const lines = log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; code?: number });
  const order = ['Guarded work stopped', 'Released the Lease', 'Stopped singleton-operator'].map((m) =>
    lines.findIndex((l) => l.msg === m),
  );
  expect(order.every((i) => i >= 0)).toBe(true);
  expect([...order].sort((a, b) => a - b)).toEqual(order);
  expect(lines.find((l) => l.msg === 'Stopped singleton-operator')?.code).toBe(0);
  // Standbys watch the Lease: the released Lease is taken well before it could expire.
  const next = await eventually(
    'a new leader',
    async () => {
      const h = await holder();
      return h && h !== before ? h : undefined;
    },
    3_000,
    50,
  );
  expect(replicaOf(next)).toBeDefined();
});

it('helm uninstall leaves only what the chart documents: the CRD (and the operator-created Lease)', async () => {
  await Promise.all(replicas.map((r) => stopReplica(r)));
  // Installed with the chart's defaults, the admission policies were there all along (the operator ran under them).
  const policies = () =>
    kubectl(cluster.kubeconfig, ['get', 'validatingadmissionpolicies,validatingadmissionpolicybindings', '-o', 'name']);
  expect(
    policies()
      .split('\n')
      .filter((n) => n.includes(fullname)),
  ).toHaveLength(6);
  helm(helmBin, cluster.kubeconfig, ['uninstall', release, '-n', namespace, '--wait']);
  const selector = `app.kubernetes.io/instance=${release}`;
  await eventually(
    'the release objects to be gone',
    async () => {
      const left = kubectl(cluster.kubeconfig, [
        'get',
        'deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets',
        '-n',
        namespace,
        '-l',
        selector,
        '-o',
        'name',
      ]).trim();
      return left === '' ? true : undefined;
    },
    60_000,
  );
  expect(kubectl(cluster.kubeconfig, ['get', 'clusterroles,clusterrolebindings', '-o', 'name'])).not.toContain(
    fullname,
  );
  expect(policies()).not.toContain(fullname);
  const remaining = kubectl(cluster.kubeconfig, [
    'get',
    'all,leases,roles,rolebindings,serviceaccounts',
    '-n',
    namespace,
    '-o',
    'name',
  ])
    .trim()
    .split('\n')
    .filter((n) => n && n !== 'serviceaccount/default');
  expect(remaining).toEqual([`lease.coordination.k8s.io/${fullname}`]);
  expect(kubectl(cluster.kubeconfig, ['get', 'crd', 'singletonjobs.singleton.dev', '-o', 'name']).trim()).toContain(
    'singletonjobs.singleton.dev',
  );
});
