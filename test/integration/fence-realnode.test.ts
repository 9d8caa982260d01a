// The zombie run end to end with real Pods on the real node, for PostgreSQL and
// Redis (issue 13, item 3). The operator (src/main.ts, one replica with real
// leader election) runs a SingletonJob with concurrencyPolicy Replace whose Pod
// runs packages/fence/test/workload.ts on Node 24 (the operator image from
// scripts/image.ts; the fence package and the pg/redis modules mounted from the
// checkout with hostPath) against a store that listens on the real node's
// bridge gateway:
//  1. Run N (token t) connects to the store and waits for its go file.
//  2. It is paused: its container's cgroup frozen (cgroup v1 freezer). Its node
//     can no longer act on it either — the containerd shim of its Pod is
//     SIGSTOPped, so the kubelet's kill never reaches it — which is what a
//     partitioned node looks like from the store's side. Its go file appears
//     while it is frozen.
//  3. A manual request under Replace: the operator deletes run N's Job and waits
//     until its Pods are gone. Run N's Pod cannot terminate; it is force-deleted
//     (`kubectl delete pod --force --grace-period=0`, what is done for a Pod on a
//     lost node), its container still frozen on the node.
//  4. Run N+1 (token t′ > t) starts on the same node and writes.
//  5. Run N is thawed: its write is refused by the store (FencedOutError, exit
//     3), and the store holds only N+1's write.
// Then the shim resumes and the node cleans the zombie up.
//
// Its own control plane with a real node (test/controlplane/realnode.ts).
// Skipped, with the reason, where a real node, the image build or the stores
// cannot run.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import pg from 'pg';
import { createClient } from 'redis';
import { ControlPlane } from '../controlplane/controlplane.ts';
import {
  ctr,
  importImage,
  realNodePlacement,
  realNodeUnavailable,
  type RealNodeState,
} from '../controlplane/realnode.ts';
import { buildImage, type BuiltImage } from '../../scripts/image.ts';
import { Keys, type SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';
import { eventually } from '../support/cluster.ts';
import { installCrd } from '../support/singletonjobs.ts';
import { kubectl, root, startReplica, stopReplica, waitReady, type Replica } from '../dev/replicas.ts';
import {
  findBinaries,
  startPostgres,
  startRedis,
  type PostgresServer,
  type RedisServer,
} from '../../packages/fence/test/stores.ts';
import { fenceSql } from '../../packages/fence/src/index.ts';

const stores = findBinaries();
const missingImageTools = ['podman', 'debootstrap'].filter(
  (t) => spawnSync('bash', ['-c', `command -v ${t}`]).status !== 0,
);
const unavailable =
  realNodeUnavailable() ??
  (missingImageTools.length
    ? `the image build needs ${missingImageTools.join(', ')} (apt-get install podman runc debootstrap)`
    : undefined) ??
  (typeof stores === 'string' ? `the stores are missing (${stores})` : undefined) ??
  (existsSync('/sys/fs/cgroup/freezer/cgroup.procs')
    ? undefined
    : 'pausing a container needs the cgroup v1 freezer (/sys/fs/cgroup/freezer)');
if (unavailable) console.warn(`skipping the fenced zombie runs on a real node: ${unavailable}`);
const describeNode = unavailable ? describe.skip : describe;

const GROUP = { group: 'singleton.dev', version: 'v1alpha1', plural: 'singletonjobs' };
const fencePackage = path.join(root, 'packages', 'fence');
const nodeModules = path.join(root, 'node_modules');

type Store = 'postgres' | 'redis';

/** One JSON line of the workload (packages/fence/test/workload.ts), or the exit code the Pod's shell appends. */
type Said = Record<string, unknown>;

describeNode('a zombie run refused by the store, with real Pods on a real node', () => {
  const apps = 'fence-apps';
  const operatorNs = 'singleton-system';
  const workDir = mkdtempSync(path.join(tmpdir(), 'so-fence-real-'));
  const signals = path.join(workDir, 'signals');
  let cp: ControlPlane;
  let node: RealNodeState;
  let image: BuiltImage;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let operator: Replica | undefined;
  let postgres: PostgresServer | undefined;
  let redis: RedisServer | undefined;
  let pool: pg.Pool;
  let redisClient: ReturnType<typeof createClient>;
  /** What the test paused and must resume whatever happens: frozen cgroups and stopped shims. */
  const frozen = new Set<string>();
  const stoppedShims = new Set<number>();
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    if (typeof stores === 'string') return;
    let t = Date.now();
    image = await buildImage({ log: () => {} });
    timings.imageSeconds = image.seconds;
    t = Date.now();
    cp = await ControlPlane.start({ realNode: true });
    node = cp.state.realNode!;
    timings.clusterMs = Date.now() - t;
    importImage(node, image.archive);
    kc = cp.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);

    // The stores listen on loopback (for this test) and on the node's bridge gateway (for the Pods).
    const listen = { also: { address: node.nodeIp, clients: node.podCidr } };
    [postgres, redis] = await Promise.all([startPostgres(stores, listen), startRedis(stores, listen)]);
    pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
    await pool.query(fenceSql);
    await pool.query(
      'CREATE TABLE outputs (id bigserial PRIMARY KEY, job_key text NOT NULL, output text NOT NULL, token bigint NOT NULL)',
    );
    await pool.query('CREATE TABLE report (job_key text PRIMARY KEY, output text NOT NULL, token bigint NOT NULL)');
    redisClient = createClient({ url: redis.url });
    await redisClient.connect();

    // The Pods (UID 65532) read their go files from and write their reports to this folder.
    mkdirSync(signals, { mode: 0o777 });
    chmodSync(signals, 0o777);

    await installCrd(cp.state.kubeconfig);
    // hostPath volumes: the workloads' namespace is privileged (the operator's own namespace could be restricted).
    await core.createNamespace({
      body: { metadata: { name: apps, labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } },
    });
    await core.createNamespace({ body: { metadata: { name: operatorNs } } });
    operator = await startReplica({
      name: 'fence-operator-0',
      kubeconfig: cp.state.kubeconfig,
      namespace: operatorNs,
      leaseName: 'fence-operator',
      logDir: path.join(workDir, 'logs'),
      env: { WATCH_NAMESPACES: apps, LOG_LEVEL: 'debug' },
    });
    await waitReady(operator, 60_000);
    timings.setupMs = Date.now() - t;
  }, 900_000);

  afterAll(async () => {
    // Whatever the outcome: thaw what was frozen and resume what was stopped, so the node can be taken down.
    for (const dir of frozen) setFreezerState(dir, 'THAWED');
    for (const pid of stoppedShims) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    console.log(`fenced zombie on a real node, timings: ${JSON.stringify(timings)}`);
    if (operator) await stopReplica(operator, 10_000).catch((err: unknown) => console.error(err));
    await pool?.end().catch(() => undefined);
    redisClient?.destroy();
    await Promise.all([postgres?.stop(), redis?.stop()]);
    if (cp) await cp.stop().catch((err: unknown) => console.error(err));
    if (process.env.SINGLETON_KEEP_CLUSTER_DIR) console.log(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }, 180_000);

  // -------------------------------------------------------------------------
  // The node side: a container's init process, its freezer cgroup, its shim.

  /** The container's init process (runc's init.pid in the node's containerd state folder). */
  function initPid(containerId: string): number {
    const file = path.join(
      node.dir,
      'containerd',
      'state',
      'io.containerd.runtime.v2.task',
      'k8s.io',
      containerId,
      'init.pid',
    );
    return Number(readFileSync(file, 'utf8').trim());
  }

  /** The process's cgroup in the v1 freezer hierarchy. */
  function freezerOf(pid: number): string {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.split(':')[1] === 'freezer');
    if (!line) throw new Error(`process ${pid} has no freezer cgroup`);
    return path.join('/sys/fs/cgroup/freezer', line.split(':').slice(2).join(':'));
  }

  function freezerState(dir: string): string {
    return readFileSync(path.join(dir, 'freezer.state'), 'utf8').trim();
  }

  function setFreezerState(dir: string, state: 'FROZEN' | 'THAWED'): void {
    try {
      writeFileSync(path.join(dir, 'freezer.state'), state);
    } catch {
      // the cgroup is gone
    }
  }

  /** Freezes (or thaws) the cgroup and waits until the kernel says so: FREEZING → FROZEN is asynchronous. */
  async function freezer(dir: string, state: 'FROZEN' | 'THAWED'): Promise<void> {
    if (state === 'FROZEN') frozen.add(dir);
    setFreezerState(dir, state);
    await eventually(`the cgroup ${dir} ${state}`, async () => freezerState(dir) === state, 10_000, 20);
    if (state === 'THAWED') frozen.delete(dir);
  }

  /** The containerd shim that runs the container: the parent of its init process (its subreaper). */
  function shimOf(pid: number): number {
    const ppid = Number(
      readFileSync(`/proc/${pid}/stat`, 'utf8')
        .replace(/^.*\) /s, '')
        .split(' ')[1],
    );
    const args = readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0');
    if (!args[0]?.includes('containerd-shim') || args[args.indexOf('-address') + 1] !== node.socket) {
      throw new Error(`the parent of ${pid} (${ppid}: ${args.join(' ')}) is not a shim of the real node's containerd`);
    }
    return ppid;
  }

  const processState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];

  // -------------------------------------------------------------------------
  // The cluster side.

  function fencedSingletonJob(name: string, store: Store): SingletonJob {
    const url =
      store === 'postgres'
        ? `postgres://postgres@${node.nodeIp}:${postgres!.port}/postgres`
        : `redis://${node.nodeIp}:${redis!.port}`;
    // The run's name (SINGLETON_RUN_NAME, from the operator) names its go file and its report.
    const script = [
      'out="/signals/$SINGLETON_RUN_NAME"',
      'FENCE_GO_FILE="$out.go" node /fence/pkg/test/workload.ts >"$out.out" 2>"$out.err"',
      'code=$?',
      'echo "{\\"exit\\":$code}" >>"$out.out"',
      'cat "$out.out"',
      'exit $code',
    ].join('\n');
    return {
      apiVersion: 'singleton.dev/v1alpha1',
      kind: 'SingletonJob',
      metadata: { name, namespace: apps },
      spec: {
        concurrencyPolicy: 'Replace',
        jobTemplate: {
          spec: {
            template: {
              spec: {
                ...realNodePlacement,
                restartPolicy: 'Never',
                terminationGracePeriodSeconds: 5,
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: 65532,
                  runAsGroup: 65532,
                  seccompProfile: { type: 'RuntimeDefault' },
                },
                volumes: [
                  { name: 'fence', hostPath: { path: fencePackage, type: 'Directory' } },
                  { name: 'modules', hostPath: { path: nodeModules, type: 'Directory' } },
                  { name: 'signals', hostPath: { path: signals, type: 'Directory' } },
                ],
                containers: [
                  {
                    name: 'workload',
                    image: image.ref,
                    imagePullPolicy: 'Never',
                    command: ['sh', '-c', script],
                    env: [
                      { name: 'FENCE_STORE', value: store },
                      { name: 'FENCE_STORE_URL', value: url },
                    ],
                    volumeMounts: [
                      { name: 'fence', mountPath: '/fence/pkg', readOnly: true },
                      { name: 'modules', mountPath: '/fence/node_modules', readOnly: true },
                      { name: 'signals', mountPath: '/signals' },
                    ],
                    securityContext: {
                      allowPrivilegeEscalation: false,
                      readOnlyRootFilesystem: true,
                      capabilities: { drop: ['ALL'] },
                    },
                  },
                ],
              },
            },
          },
        },
      },
    } as unknown as SingletonJob;
  }

  const readSj = async (name: string) =>
    (await custom.getNamespacedCustomObject({ ...GROUP, namespace: apps, name })) as SingletonJob;
  const requestRun = (name: string, id: string) =>
    kubectl(cp.state.kubeconfig, ['annotate', 'sj', name, '-n', apps, `${Keys.runNow}=${id}`, '--overwrite']);

  /** The run started for a manual request, once its Job exists. */
  async function runFor(name: string, requestId: string): Promise<{ name: string; token: number }> {
    return eventually(
      `the run for request ${requestId}`,
      async () => {
        const run = (await readSj(name)).status?.activeRun;
        return run?.requestId === requestId && run.jobUID ? { name: run.name, token: run.token } : undefined;
      },
      60_000,
      200,
    );
  }

  async function podOf(runName: string): Promise<k8s.V1Pod | undefined> {
    return (await core.listNamespacedPod({ namespace: apps, labelSelector: `batch.kubernetes.io/job-name=${runName}` }))
      .items[0];
  }

  /** What the run's workload has said so far (its report file on the signals folder). */
  function said(runName: string): Said[] {
    const file = path.join(signals, `${runName}.out`);
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Said);
  }
  const saidErr = (runName: string) =>
    existsSync(path.join(signals, `${runName}.err`))
      ? readFileSync(path.join(signals, `${runName}.err`), 'utf8').slice(-1500)
      : '';

  async function saying(runName: string, key: string, value?: unknown, timeoutMs = 60_000): Promise<Said> {
    return eventually(
      `run ${runName} to say ${key}${value === undefined ? '' : `=${String(value)}`}`,
      async () => {
        const lines = said(runName);
        const line = lines.find((l) => key in l && (value === undefined || l[key] === value));
        if (!line && lines.some((l) => 'exit' in l))
          throw new Error(`run ${runName} exited without saying ${key}: ${JSON.stringify(lines)} ${saidErr(runName)}`);
        return line;
      },
      timeoutMs,
      100,
    );
  }

  async function storeState(store: Store, jobKey: string) {
    if (store === 'postgres') {
      const outputs = (
        await pool.query<{ output: string }>('SELECT output FROM outputs WHERE job_key = $1 ORDER BY id', [jobKey])
      ).rows.map((r) => r.output);
      const report = (await pool.query<{ output: string }>('SELECT output FROM report WHERE job_key = $1', [jobKey]))
        .rows[0]?.output;
      const fence = (
        await pool.query<{ token: string }>('SELECT token FROM singleton_fence WHERE job_key = $1', [jobKey])
      ).rows[0]?.token;
      return { outputs, report, fence: Number(fence) };
    }
    return {
      outputs: await redisClient.lRange(`outputs:{${jobKey}}`, 0, -1),
      report: (await redisClient.hGet(`report:{${jobKey}}`, 'output')) ?? undefined,
      fence: Number(await redisClient.get(`singleton-fence:{${jobKey}}`)),
    };
  }

  const taskIds = () =>
    ctr(node, ['tasks', 'ls', '-q'])
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);

  async function zombieOnTheNode(store: Store) {
    const started = Date.now();
    const name = `fenced-${store}`;
    const jobKey = `${apps}/${name}`;
    await custom.createNamespacedCustomObject({ ...GROUP, namespace: apps, body: fencedSingletonJob(name, store) });

    // 1. Run N starts on the real node, connects to the store and waits for its go file.
    requestRun(name, 'run-n');
    const runN = await runFor(name, 'run-n');
    const podN = await eventually(
      'run N’s Pod running on the real node',
      async () => {
        const pod = await podOf(runN.name);
        return pod?.status?.phase === 'Running' && pod.status.containerStatuses?.[0]?.containerID ? pod : undefined;
      },
      90_000,
      200,
    );
    expect(podN.spec?.nodeName).toBe(node.name);
    expect(podN.metadata?.annotations?.[Keys.token]).toBe(String(runN.token));
    await saying(runN.name, 'state', 'ready');

    // 2. Paused: its cgroup frozen; its node cannot act on it (the shim stopped). Its go signal arrives meanwhile.
    const containerId = podN.status!.containerStatuses![0]!.containerID!.replace('containerd://', '');
    const pidN = initPid(containerId);
    const cgroupN = freezerOf(pidN);
    expect(cgroupN).toContain(node.cgroupRoot);
    const shim = shimOf(pidN);
    await freezer(cgroupN, 'FROZEN');
    process.kill(shim, 'SIGSTOP');
    stoppedShims.add(shim);
    writeFileSync(path.join(signals, `${runN.name}.go`), '');

    // 3. Replace: the operator deletes run N's Job and waits for its Pod, which cannot terminate; it is force-deleted.
    requestRun(name, 'run-n1');
    await eventually(
      'run N’s Pod terminating',
      async () => ((await podOf(runN.name))?.metadata?.deletionTimestamp ? true : undefined),
      30_000,
      200,
    );
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await podOf(runN.name))?.metadata?.name).toBe(podN.metadata!.name); // still there: the operator waits
    expect((await readSj(name)).status?.activeRun).toMatchObject({ name: runN.name, replacing: true });
    kubectl(cp.state.kubeconfig, ['delete', 'pod', podN.metadata!.name!, '-n', apps, '--force', '--grace-period=0']);
    const forcedAt = Date.now();

    // 4. Run N+1, with a higher token, starts on the same node and writes.
    const runN1 = await runFor(name, 'run-n1');
    timings[`${store}ForceDeleteToNextRunMs`] = Date.now() - forcedAt;
    expect(runN1.token).toBeGreaterThan(runN.token);
    writeFileSync(path.join(signals, `${runN1.name}.go`), '');
    expect(await saying(runN1.name, 'outcome')).toEqual({
      outcome: 'written',
      output: `${runN1.name}#1@${runN1.token}`,
    });
    expect(await saying(runN1.name, 'exit')).toEqual({ exit: 0 });
    const finished = await eventually(
      'run N+1 recorded as Succeeded',
      async () => {
        const runs = (await readSj(name)).status?.recentRuns ?? [];
        return runs.some((r) => r.name === runN1.name && r.outcome === 'Succeeded') ? runs : undefined;
      },
      60_000,
      200,
    );
    expect(finished.find((r) => r.name === runN.name)).toMatchObject({ token: runN.token, outcome: 'Replaced' });
    const podN1 = (
      await core.listNamespacedPod({ namespace: apps, labelSelector: `batch.kubernetes.io/job-name=${runN1.name}` })
    ).items[0];
    expect(podN1?.spec?.nodeName).toBe(node.name);

    // Run N was frozen all along and has not written: a zombie whose Pod the API no longer has.
    expect(freezerState(cgroupN)).toBe('FROZEN');
    expect(processState(pidN)).not.toBe('Z');
    expect(await podOf(runN.name)).toBeUndefined();
    expect(said(runN.name).filter((l) => 'outcome' in l)).toEqual([]);
    expect(await storeState(store, jobKey)).toEqual({
      outputs: [`${runN1.name}#1@${runN1.token}`],
      report: `${runN1.name}#1@${runN1.token}`,
      fence: runN1.token,
    });

    // 5. Run N resumes and makes its write: the store refuses it.
    await freezer(cgroupN, 'THAWED');
    const refused = await saying(runN.name, 'outcome', undefined, 30_000);
    expect(refused).toEqual({ outcome: 'fenced', token: runN.token, highest: runN1.token });
    expect(await saying(runN.name, 'exit')).toEqual({ exit: 3 });
    expect(await storeState(store, jobKey)).toEqual({
      outputs: [`${runN1.name}#1@${runN1.token}`],
      report: `${runN1.name}#1@${runN1.token}`,
      fence: runN1.token,
    });

    // The node acts again (the shim resumes): the zombie's container is cleaned up.
    process.kill(shim, 'SIGCONT');
    stoppedShims.delete(shim);
    await eventually(
      'the zombie’s container gone from the node',
      async () => (!taskIds().includes(containerId) ? true : undefined),
      60_000,
      250,
    );
    timings[`${store}ScenarioMs`] = Date.now() - started;
    console.log(
      `${store}: run N ${runN.name} token ${runN.token} refused (highest ${runN1.token}); run N+1 ${runN1.name} token ${runN1.token} wrote`,
    );
  }

  it('PostgreSQL: run N frozen past Replace and force-deleted, run N+1 (higher token) writes, run N thawed is refused; only N+1’s write is stored', async () => {
    await zombieOnTheNode('postgres');
  }, 300_000);

  it('Redis: the same zombie, refused by the Lua fence; only N+1’s write is stored', async () => {
    await zombieOnTheNode('redis');
  }, 300_000);
});
