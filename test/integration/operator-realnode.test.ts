// End to end on a real node, the way users run it: the image built from the
// repository's Dockerfile (scripts/image.ts), imported into the real node's
// containerd, `helm install`ed into a namespace that enforces the restricted Pod
// Security Standard, three operator Pods run by a real kubelet (in-cluster
// config from the ServiceAccount mount, the downward API, UID 65532, read-only
// root, probes, SIGTERM as PID 1). A SingletonJob's Pod runs for real and prints
// its fencing token from the env and from the downward API; deleting the leader
// Pod hands over at once; killing its container hard fails over on the kubelet's
// evidence (the container terminated) long before the lease expires; `helm upgrade` to another image tag rolls the Deployment without two
// leaders at any moment (Lease holder history + audit log); `helm uninstall`
// keeps the CRD and the SingletonJobs.
//
// Its own control plane with a real node (test/controlplane/realnode.ts).
// Skipped, with the reason, where a real node or the image build cannot run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { resolveHelm } from '../controlplane/binaries.ts';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { isAlive } from '../controlplane/process.ts';
import {
  ctr,
  hostLeftovers,
  hostSnapshot,
  importImage,
  realNodePlacement,
  realNodeUnavailable,
} from '../controlplane/realnode.ts';
import { buildImage, type BuiltImage } from '../../scripts/image.ts';
import { chartDir } from '../../scripts/generate-manifests.ts';
import { Keys, type SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';
import { eventually } from '../support/cluster.ts';
import { helm, kubectl } from '../dev/replicas.ts';

const missingImageTools = ['podman', 'debootstrap'].filter(
  (t) => spawnSync('bash', ['-c', `command -v ${t}`]).status !== 0,
);
const unavailable =
  realNodeUnavailable() ??
  (missingImageTools.length
    ? `the image build needs ${missingImageTools.join(', ')} (apt-get install podman runc debootstrap)`
    : undefined);
if (unavailable) console.warn(`skipping the end-to-end test on a real node: ${unavailable}`);
const describeNode = unavailable ? describe.skip : describe;

// The chart's defaults: the crash failover below is measured against the lease users run with.
const LEASE_SECONDS = 15;
const RENEW_SECONDS = 10;
const RETRY_SECONDS = 2;

interface LeaseSeen {
  at: number;
  type: string;
  holder: string;
  acquireTime?: string;
  renewTime?: string;
  resourceVersion: string;
}

interface AuditEvent {
  stage: string;
  verb: string;
  user: { username: string; extra?: Record<string, string[]> };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  stageTimestamp: string;
}

describeNode('the operator on a real node, installed with Helm', () => {
  const release = 'so-real';
  const namespace = 'singleton-system';
  const apps = 'so-real-apps';
  const fullname = `${release}-singleton-operator`;
  const workDir = mkdtempSync(path.join(tmpdir(), 'so-real-'));
  let cp: ControlPlane;
  let image: BuiltImage;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let appsApi: k8s.AppsV1Api;
  let custom: k8s.CustomObjectsApi;
  let coordination: k8s.CoordinationV1Api;
  let helmBin: string;
  const leaseHistory: LeaseSeen[] = [];
  let stopWatch: (() => void) | undefined;
  const timings: Record<string, number> = {};
  let before: ReturnType<typeof hostSnapshot>;

  const h = (args: string[]) => helm(helmBin, cp.state.kubeconfig, args);
  const k = (args: string[]) => kubectl(cp.state.kubeconfig, args);

  async function holder(): Promise<string | undefined> {
    const lease = await coordination.readNamespacedLease({ name: fullname, namespace }).catch(() => undefined);
    return lease?.spec?.holderIdentity || undefined;
  }
  const podOf = (identity: string) => identity.slice(0, identity.lastIndexOf('_'));

  async function operatorPods(): Promise<k8s.V1Pod[]> {
    return (await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/instance=${release}` })).items;
  }

  async function readyPods(count: number, timeoutMs = 120_000): Promise<k8s.V1Pod[]> {
    return eventually(
      `${count} Ready operator Pods`,
      async () => {
        const pods = (await operatorPods()).filter((p) => !p.metadata?.deletionTimestamp);
        const ready = pods.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        return pods.length === count && ready.length === count ? ready : undefined;
      },
      timeoutMs,
      250,
    );
  }

  async function newHolder(before: string, timeoutMs: number): Promise<string> {
    return eventually(
      'another holder of the Lease',
      async () => {
        const now = await holder();
        return now && now !== before ? now : undefined;
      },
      timeoutMs,
      50,
    );
  }

  beforeAll(async () => {
    helmBin = resolveHelm();
    let t = Date.now();
    image = await buildImage({ log: () => {} });
    timings.imageSeconds = image.seconds;
    t = Date.now();
    before = hostSnapshot();
    cp = await ControlPlane.start({ realNode: true });
    timings.clusterMs = Date.now() - t;
    t = Date.now();
    importImage(cp.state.realNode!, image.archive);
    timings.importMs = Date.now() - t;
    kc = cp.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    appsApi = kc.makeApiClient(k8s.AppsV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    const restricted = {
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/enforce-version': 'latest',
    };
    await core.createNamespace({ body: { metadata: { name: namespace, labels: restricted } } });
    await core.createNamespace({ body: { metadata: { name: apps, labels: restricted } } });

    // Every change of the Lease, as the API server sends it.
    const watch = new k8s.Watch(kc);
    const req = await watch.watch(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      { fieldSelector: `metadata.name=${fullname}` },
      (type: string, lease: k8s.V1Lease) =>
        leaseHistory.push({
          at: Date.now(),
          type,
          holder: lease.spec?.holderIdentity ?? '',
          acquireTime: lease.spec?.acquireTime ? new Date(lease.spec.acquireTime).toISOString() : undefined,
          renewTime: lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : undefined,
          resourceVersion: lease.metadata?.resourceVersion ?? '',
        }),
      () => {},
    );
    stopWatch = () => req.abort();
  }, 900_000);

  afterAll(async () => {
    stopWatch?.();
    console.log(`real-node e2e timings: ${JSON.stringify(timings)}`);
    // Normally stopped by the last test; this is for a failure before it.
    if (cp && cp.state.realNode && isAlive(cp.state.processes['kube-apiserver']?.pid ?? 0))
      await cp.stop().catch((err: unknown) => console.error(err));
    rmSync(workDir, { recursive: true, force: true });
  }, 180_000);

  /** The operator's writes (not Events) in the audit log from `fromIso` (to `toIso`), oldest first, accepted or not. */
  function auditedWrites(fromIso: string, toIso = '9999'): AuditEvent[] {
    const sa = `system:serviceaccount:${namespace}:${fullname}`;
    return readFileSync(cp.state.auditLog, 'utf8')
      .split('\n')
      .filter((l) => l.includes(sa))
      .map((l) => JSON.parse(l) as AuditEvent)
      .filter(
        (e) =>
          e.stage === 'ResponseComplete' &&
          e.user.username === sa &&
          ['create', 'update', 'patch', 'delete'].includes(e.verb),
      )
      .filter((e) => e.stageTimestamp >= fromIso && e.stageTimestamp <= toIso)
      .filter((e) => e.objectRef?.resource !== 'events')
      .sort((a, b) => a.stageTimestamp.localeCompare(b.stageTimestamp));
  }
  const podName = (e: AuditEvent) => e.user.extra?.['authentication.kubernetes.io/pod-name']?.[0] ?? '?';

  /** A SingletonJob whose runs' Pods go to the kwok node (they "run" and succeed in about a second). */
  const kwokSingletonJob = (name: string, schedule: string) => ({
    apiVersion: 'singleton.dev/v1alpha1',
    kind: 'SingletonJob',
    metadata: { name, namespace: apps },
    spec: {
      schedule,
      concurrencyPolicy: 'Forbid',
      successfulJobsHistoryLimit: 2,
      jobTemplate: {
        spec: {
          template: {
            spec: {
              nodeSelector: { type: 'kwok' },
              restartPolicy: 'Never',
              securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
              containers: [
                {
                  name: 'c',
                  image: 'simulated',
                  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                },
              ],
            },
          },
        },
      },
    },
  });

  function values(tag: string): string {
    const file = path.join(workDir, `values-${tag}.yaml`);
    writeFileSync(
      file,
      JSON.stringify({
        image: { repository: image.repository, tag, pullPolicy: 'Never' },
        ...realNodePlacement,
        rbac: { aggregateToDefaultRoles: false },
        leaderElection: {
          leaseDurationSeconds: LEASE_SECONDS,
          renewDeadlineSeconds: RENEW_SECONDS,
          retryPeriodSeconds: RETRY_SECONDS,
        },
      }),
    );
    return file;
  }

  it('helm install: three operator Pods Ready on the real node in a restricted namespace, one holds the Lease', async () => {
    const t = Date.now();
    h(['install', release, chartDir, '-n', namespace, '-f', values(image.tag)]);
    const pods = await readyPods(3);
    timings.installToReadyMs = Date.now() - t;
    for (const pod of pods) {
      expect(pod.spec?.nodeName).toBe(cp.state.realNode!.name);
      expect(pod.spec?.containers[0]?.image).toBe(image.ref);
      expect(pod.status?.containerStatuses?.[0]?.imageID).toContain(image.id.replace('sha256:', ''));
    }
    const leader = await eventually('a Lease holder', holder, 30_000, 100);
    expect(pods.map((p) => p.metadata?.name)).toContain(podOf(leader));
    // The leader's log (through the API server and the kubelet) says it leads, under its Pod's name.
    const log = k(['logs', '-n', namespace, podOf(leader)]);
    expect(log).toContain(podOf(leader));
    const events = await core.listNamespacedEvent({ namespace });
    expect(
      events.items
        .filter((e) => ['FailedCreate', 'FailedScheduling', 'Failed', 'BackOff'].includes(e.reason ?? ''))
        .map((e) => `${e.reason}: ${e.message}`),
    ).toEqual([]);
  });

  it('a SingletonJob runs for real and its Pod prints the fencing token from the env and from the downward API', async () => {
    const token = `metadata.annotations['${Keys.token}']`;
    const sj = {
      apiVersion: 'singleton.dev/v1alpha1',
      kind: 'SingletonJob',
      metadata: { name: 'print-token', namespace: apps },
      spec: {
        concurrencyPolicy: 'Forbid',
        jobTemplate: {
          spec: {
            template: {
              spec: {
                ...realNodePlacement,
                restartPolicy: 'Never',
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: 65532,
                  runAsGroup: 65532,
                  seccompProfile: { type: 'RuntimeDefault' },
                },
                volumes: [{ name: 'run', downwardAPI: { items: [{ path: 'token', fieldRef: { fieldPath: token } }] } }],
                containers: [
                  {
                    name: 'print',
                    image: image.ref,
                    imagePullPolicy: 'Never',
                    command: [
                      'sh',
                      '-c',
                      'echo "env SINGLETON_FENCING_TOKEN=$SINGLETON_FENCING_TOKEN"; echo "downward API token=$(cat /run/singleton/token)"',
                    ],
                    volumeMounts: [{ name: 'run', mountPath: '/run/singleton', readOnly: true }],
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
    };
    await custom.createNamespacedCustomObject({
      group: 'singleton.dev',
      version: 'v1alpha1',
      plural: 'singletonjobs',
      namespace: apps,
      body: sj,
    });
    k(['annotate', 'sj', 'print-token', '-n', apps, `${Keys.runNow}=real-1`, '--overwrite']);
    const run = await eventually(
      'the run to succeed',
      async () => {
        const obj = (await custom.getNamespacedCustomObject({
          group: 'singleton.dev',
          version: 'v1alpha1',
          plural: 'singletonjobs',
          namespace: apps,
          name: 'print-token',
        })) as SingletonJob;
        const r = obj.status?.recentRuns?.find((x) => x.requestId === 'real-1');
        if (r && r.outcome !== 'Succeeded') throw new Error(`run ended ${r.outcome}`);
        return r;
      },
      90_000,
      250,
    );
    const pods = await core.listNamespacedPod({
      namespace: apps,
      labelSelector: `batch.kubernetes.io/job-name=${run.name}`,
    });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    expect(pod.spec?.nodeName).toBe(cp.state.realNode!.name);
    expect(pod.metadata?.annotations?.[Keys.token]).toBe(String(run.token));
    const log = k(['logs', '-n', apps, pod.metadata!.name!]);
    expect(log).toContain(`env SINGLETON_FENCING_TOKEN=${run.token}\n`);
    expect(log).toContain(`downward API token=${run.token}\n`);
  });

  it('a run whose image the kubelet cannot pull (ErrImageNeverPull) is Stalled with that reason, ended at its deadline, and the next run starts — under the chart’s RBAC, end to end', async () => {
    const get = async () =>
      (await custom.getNamespacedCustomObject({
        group: 'singleton.dev',
        version: 'v1alpha1',
        plural: 'singletonjobs',
        namespace: apps,
        name: 'no-image',
      })) as SingletonJob;
    await custom.createNamespacedCustomObject({
      group: 'singleton.dev',
      version: 'v1alpha1',
      plural: 'singletonjobs',
      namespace: apps,
      body: {
        apiVersion: 'singleton.dev/v1alpha1',
        kind: 'SingletonJob',
        metadata: { name: 'no-image', namespace: apps },
        spec: {
          schedule: '*/20 * * * * *',
          podStartDeadlineSeconds: 20,
          jobTemplate: {
            spec: {
              template: {
                spec: {
                  ...realNodePlacement,
                  restartPolicy: 'Never',
                  securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
                  containers: [
                    {
                      name: 'c',
                      image: 'registry.invalid/not-in-the-node-store:1',
                      imagePullPolicy: 'Never',
                      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                    },
                  ],
                },
              },
            },
          },
        },
      },
    });
    const stalled = await eventually(
      'the Stalled condition',
      async () => {
        const sj = await get();
        const c = sj.status?.conditions?.find((x) => x.type === 'RunStalled' && x.status === 'True');
        return c ? { sj, c } : undefined;
      },
      90_000,
      500,
    );
    expect(stalled.c.reason).toBe('ErrImageNeverPull');
    expect(stalled.sj.status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'RunStalled',
    });
    const first = stalled.sj.status!.activeRun!.name;
    const after = await eventually(
      'the stalled run ended and the next one started',
      async () => {
        const sj = await get();
        return sj.status?.recentRuns?.some((r) => r.name === first && r.outcome === 'Stalled') &&
          sj.status.activeRun &&
          sj.status.activeRun.name !== first
          ? sj
          : undefined;
      },
      90_000,
      500,
    );
    expect(after.status!.activeRun!.token).toBeGreaterThan(stalled.sj.status!.activeRun!.token);
    await custom.deleteNamespacedCustomObject({
      group: 'singleton.dev',
      version: 'v1alpha1',
      plural: 'singletonjobs',
      namespace: apps,
      name: 'no-image',
    });
  });

  it('deleting the leader Pod hands the Lease over at once (released on SIGTERM, not expired)', async () => {
    const before = await eventually('a Lease holder', holder, 30_000, 100);
    const t = Date.now();
    await core.deleteNamespacedPod({ name: podOf(before), namespace });
    const after = await newHolder(before, 15_000);
    const ms = Date.now() - t;
    timings.deleteLeaderHandoverMs = ms;
    expect(podOf(after)).not.toBe(podOf(before));
    // Graceful: well before the lease could have expired (README: graceful takeover p99 < 1 s, plus the kubelet's SIGTERM).
    expect(ms).toBeLessThan(3_000);
    expect(leaseHistory.some((e) => e.holder === '' && e.at >= t)).toBe(true);
    await readyPods(3);
  });

  it('killing the leader’s container hard (SIGKILL through containerd): a standby takes over on the kubelet’s evidence long before the 15 s lease, a run due right after the kill starts on time, and the dead holder wrote nothing after its successor’s first Lease write', async () => {
    const sj = 'after-kill';
    await custom.createNamespacedCustomObject({
      group: 'singleton.dev',
      version: 'v1alpha1',
      plural: 'singletonjobs',
      namespace: apps,
      body: kwokSingletonJob(sj, '*/10 * * * * *'),
    });
    const getSj = async () =>
      (await custom.getNamespacedCustomObject({
        group: 'singleton.dev',
        version: 'v1alpha1',
        plural: 'singletonjobs',
        namespace: apps,
        name: sj,
      })) as SingletonJob;
    await eventually(
      'a first run of after-kill finished',
      async () => ((await getSj()).status?.recentRuns?.some((r) => r.outcome === 'Succeeded') ? true : undefined),
      60_000,
      250,
    );
    const before = await eventually('a Lease holder', holder, 30_000, 100);
    const pod = await core.readNamespacedPod({ name: podOf(before), namespace });
    const id = pod.status!.containerStatuses![0]!.containerID!.replace('containerd://', '');
    // Kill one second before a slot (at least three seconds ahead, so the previous run has long started).
    const slot = Math.ceil((Date.now() + 3_000) / 10_000) * 10_000;
    await new Promise((r) => setTimeout(r, slot - 1_000 - Date.now()));
    const killedAt = Date.now();
    ctr(cp.state.realNode!, ['tasks', 'kill', '--signal', 'SIGKILL', id]);
    const after = await newHolder(before, (15 + 10) * 1000);
    expect(podOf(after)).not.toBe(podOf(before));
    // Nobody released it (a SIGKILL runs no shutdown): the successor acted on evidence, not on a release.
    expect(leaseHistory.some((e) => e.holder === '' && e.at >= killedAt)).toBe(false);

    const runOfSlot = (o: SingletonJob) =>
      [...(o.status?.recentRuns ?? []), ...(o.status?.activeRun ? [o.status.activeRun] : [])].filter(
        (r) => r.slot && Date.parse(r.slot) === slot,
      );
    const run = await eventually(
      'the run of the slot right after the kill',
      async () => runOfSlot(await getSj())[0],
      30_000,
      250,
    );
    // The run is recorded before its slot (prepared, by the leader that was killed): wait for its release.
    const releaseOf = (ws: ReturnType<typeof auditedWrites>) =>
      ws.find(
        (e) =>
          e.verb === 'patch' &&
          e.objectRef?.resource === 'jobs' &&
          e.objectRef.name === run.name &&
          (e.responseStatus?.code ?? 500) < 300,
      );
    await eventually(
      'the release of the slot’s run in the audit log',
      async () => releaseOf(auditedWrites(new Date(killedAt - 1000).toISOString())),
      30_000,
      250,
    );
    const writes = auditedWrites(new Date(killedAt - 1000).toISOString());
    const killedPod = podOf(before);
    const firstLeaseWrite = writes.find(
      (e) =>
        e.objectRef?.resource === 'leases' &&
        e.objectRef.name === fullname &&
        podName(e) !== killedPod &&
        (e.responseStatus?.code ?? 500) < 300 &&
        Date.parse(e.stageTimestamp) >= killedAt,
    );
    expect(firstLeaseWrite).toBeDefined();
    const takeoverMs = Date.parse(firstLeaseWrite!.stageTimestamp) - killedAt;
    // The release of the slot's run: the successful unsuspend patch of its Job, by the successor.
    const release = releaseOf(writes);
    expect(release).toBeDefined();
    expect(podName(release!)).toBe(podOf(after));
    const releasedAfterSlotMs = Date.parse(release!.stageTimestamp) - slot;
    timings.killLeaderTakeoverMs = takeoverMs;
    timings.killLeaderRunReleasedAfterSlotMs = releasedAfterSlotMs;
    console.log(
      `crash failover on evidence (15 s lease): Lease taken ${takeoverMs} ms after the SIGKILL; the slot's run released ${releasedAfterSlotMs} ms after its slot`,
    );
    // By expiry it could not be before ~13 s (15 s lease, last renew ≤ 2 s before the kill). The 2 s target is the benchmark's to show (npm run bench: crash takeover p50/worst).
    expect(takeoverMs).toBeLessThan(7_500);
    expect(releasedAfterSlotMs).toBeLessThan(7_500);
    expect(releasedAfterSlotMs).toBeGreaterThanOrEqual(0);
    // The dead holder's Pod sent no write after the successor's first Lease write (its restarted container is a standby).
    const late = writes.filter((e) => podName(e) === killedPod && e.stageTimestamp >= firstLeaseWrite!.stageTimestamp);
    expect(
      late.map(
        (e) => `${e.stageTimestamp} ${e.verb} ${e.objectRef?.resource}/${e.objectRef?.name} ${e.responseStatus?.code}`,
      ),
    ).toEqual([]);
    // One run for that slot, with a token above every earlier one.
    const sjNow = await getSj();
    expect(runOfSlot(sjNow)).toHaveLength(1);
    const earlier = (sjNow.status?.recentRuns ?? [])
      .filter((r) => r.slot && Date.parse(r.slot) < slot)
      .map((r) => r.token);
    expect(earlier.length).toBeGreaterThan(0);
    expect(run.token).toBeGreaterThan(Math.max(...earlier));
    await custom.deleteNamespacedCustomObject({
      group: 'singleton.dev',
      version: 'v1alpha1',
      plural: 'singletonjobs',
      namespace: apps,
      name: sj,
    });
    // The kubelet restarts the killed container; it comes back as a standby.
    await eventually(
      'the killed container restarted and Ready',
      async () => {
        const p = await core.readNamespacedPod({ name: podOf(before), namespace });
        const s = p.status?.containerStatuses?.[0];
        return (s?.restartCount ?? 0) >= 1 && s?.ready ? p : undefined;
      },
      60_000,
      250,
    );
  });

  it('helm upgrade to another image tag rolls the Deployment with never two leaders (Lease history and audit log)', async () => {
    // A scheduled SingletonJob on the kwok node keeps the leader writing during the roll.
    await custom.createNamespacedCustomObject({
      group: 'singleton.dev',
      version: 'v1alpha1',
      plural: 'singletonjobs',
      namespace: apps,
      body: kwokSingletonJob('every-2s', '*/2 * * * * *'),
    });
    const tag = `${image.tag}-upgrade`;
    ctr(cp.state.realNode!, ['images', 'tag', '--force', image.ref, `${image.repository}:${tag}`]);
    const oldPods = new Set((await operatorPods()).map((p) => p.metadata!.name!));
    const from = Date.now();
    const fromIso = new Date(from - 1000).toISOString();
    h(['upgrade', release, chartDir, '-n', namespace, '-f', values(tag)]);
    await eventually(
      'the Deployment rolled to the new tag',
      async () => {
        const d = await appsApi.readNamespacedDeployment({ name: fullname, namespace });
        const pods = (await operatorPods()).filter((p) => !p.metadata?.deletionTimestamp);
        const ok =
          d.status?.observedGeneration === d.metadata?.generation &&
          d.status?.updatedReplicas === 3 &&
          d.status?.readyReplicas === 3 &&
          d.status?.replicas === 3 &&
          pods.length === 3 &&
          pods.every(
            (p) => !oldPods.has(p.metadata!.name!) && p.spec?.containers[0]?.image === `${image.repository}:${tag}`,
          );
        return ok ? d : undefined;
      },
      180_000,
      500,
    );
    timings.upgradeRollMs = Date.now() - from;
    const leader = await eventually(
      'a leader among the new Pods',
      async () => {
        const now = await holder();
        return now && !oldPods.has(podOf(now)) ? now : undefined;
      },
      30_000,
      100,
    );
    // Let the new leader work a little, then read the record.
    const sj = await eventually(
      'a scheduled run under the new leader',
      async () => {
        const obj = (await custom.getNamespacedCustomObject({
          group: 'singleton.dev',
          version: 'v1alpha1',
          plural: 'singletonjobs',
          namespace: apps,
          name: 'every-2s',
        })) as SingletonJob;
        return obj.status?.recentRuns?.some(
          (r) => r.outcome === 'Succeeded' && Date.parse(r.finishedTime) > Date.now() - 5_000,
        )
          ? obj
          : undefined;
      },
      30_000,
      500,
    );
    expect(sj.status?.currentToken).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 2_000));
    const to = new Date().toISOString();

    // 1. The Lease's holder history: every change of holder is a release (empty holder seen in between) or an expiry.
    const seen = leaseHistory.filter((e) => e.at >= from);
    const holders = seen.map((e) => e.holder).filter((x, i, a) => i === 0 || x !== a[i - 1]);
    expect(
      holders
        .filter(Boolean)
        .map(podOf)
        .some((p) => !oldPods.has(p)),
    ).toBe(true);
    for (let i = 1; i < seen.length; i++) {
      const prev = seen[i - 1]!;
      const cur = seen[i]!;
      if (prev.holder && cur.holder && prev.holder !== cur.holder) {
        const gap = Date.parse(cur.acquireTime ?? '') - Date.parse(prev.renewTime ?? '');
        expect({ from: prev.holder, to: cur.holder, expired: gap >= LEASE_SECONDS * 1000 }).toEqual({
          from: prev.holder,
          to: cur.holder,
          expired: true,
        });
      }
    }

    // 2. The audit log: who wrote what, by Pod (the ServiceAccount token each Pod got from the kubelet names its Pod).
    const writes = auditedWrites(fromIso, to).filter((e) => (e.responseStatus?.code ?? 500) < 300);
    expect(writes.every((e) => podName(e) !== '?')).toBe(true);
    const leaseWrites = writes.filter((e) => e.objectRef?.resource === 'leases' && e.objectRef.name === fullname);
    const work = writes.filter((e) => e.objectRef?.resource !== 'leases');
    expect(leaseWrites.length).toBeGreaterThan(0);
    expect(work.filter((e) => e.objectRef?.resource === 'singletonjobs').length).toBeGreaterThan(0);
    // Leadership passes from Pod to Pod and never back to a Pod that lost it (each old Pod was deleted once).
    const lessees = leaseWrites.map(podName).filter((x, i, a) => i === 0 || x !== a[i - 1]);
    expect(new Set(lessees).size).toBe(lessees.length);
    // Every write of the operator's work came from the Pod that wrote the Lease last: one leader at any moment.
    const offenders = work.filter((e) => {
      const last = leaseWrites.filter((l) => l.stageTimestamp <= e.stageTimestamp).at(-1);
      return last !== undefined && podName(last) !== podName(e);
    });
    expect(
      offenders.map(
        (e) =>
          `${e.stageTimestamp} ${podName(e)} ${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource ?? ''} ${e.objectRef?.name}`,
      ),
    ).toEqual([]);
    expect(podOf(leader)).toBe(lessees.at(-1));
    timings.upgradeLeaseHolders = holders.filter(Boolean).length;
    timings.upgradeAuditedLeaseWrites = leaseWrites.length;
    timings.upgradeAuditedWorkWrites = work.length;
  });

  it('helm uninstall leaves the CRD and the SingletonJobs', async () => {
    h(['uninstall', release, '-n', namespace, '--wait']);
    await eventually(
      'the operator Pods to be gone',
      async () => ((await operatorPods()).length === 0 ? true : undefined),
      60_000,
      500,
    );
    expect(k(['get', 'crd', 'singletonjobs.singleton.dev', '-o', 'name']).trim()).toBe(
      'customresourcedefinition.apiextensions.k8s.io/singletonjobs.singleton.dev',
    );
    const left = k(['get', 'sj', '-n', apps, '-o', 'name']).trim().split('\n').sort();
    expect(left).toEqual(['singletonjob.singleton.dev/every-2s', 'singletonjob.singleton.dev/print-token']);
  });

  it('stops (drained through the API: the kubelet tears its Pods down) and leaves the host as it found it', async () => {
    const t = Date.now();
    await cp.stop();
    timings.stopMs = Date.now() - t;
    expect(hostLeftovers(before, hostSnapshot(), cp.state.dir)).toEqual([]);
  }, 120_000);
});
