// Failover on the kubelet's evidence (issue 24) against the real API server:
// two in-process LeaderElectors, each with the real PodEvidence watching the
// replica Pods, where each replica "runs" in a Pod object the test owns and
// whose status the test writes as a kubelet would (the Pods are bound to a
// node that does not exist, so no kubelet or kwok touches them). What a
// standby reads is the API server's own Pod JSON, through the informer.
// The real kubelet, containerd and a SIGKILL: operator-realnode.test.ts.
import * as k8s from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { testCluster, withNamespace, eventually } from '../support/cluster.ts';
import { LeaderElector, type Leadership } from '../../src/election/index.ts';
import { PodEvidence } from '../../src/election/pod-evidence.ts';
import { LeadershipLostError } from '../../src/election/leadership.ts';

const cluster = testCluster();
const kc = cluster.kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const coordination = kc.makeApiClient(k8s.CoordinationV1Api);

const LEASE_MS = 6_000;
const SELECTOR = { app: 'evidence-replica' };

interface Replica {
  identity: string;
  pod: string;
  leaderships: Leadership[];
  stop(): Promise<void>;
}

let ns: { name: string; cleanup: () => Promise<void> };
const running: Replica[] = [];

beforeEach(async () => {
  ns = await withNamespace(kc, 'evidence');
});

afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
  // A Pod still held by the test's finalizer would keep the namespace terminating.
  await core
    .patchNamespacedPod(
      { namespace: ns.name, name: 'replica-a', body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    )
    .catch(() => undefined);
  await ns.cleanup();
});

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/** A replica's Pod as a kubelet would report it: the operator container running since `startedAt`. */
async function replicaPod(name: string, startedAt: string, finalizer = false): Promise<void> {
  await core.createNamespacedPod({
    namespace: ns.name,
    body: {
      metadata: { name, labels: SELECTOR, ...(finalizer ? { finalizers: ['test.singleton.dev/hold'] } : {}) },
      // Bound to a node nobody runs: no kubelet, kwok or scheduler writes its status but the test.
      spec: { nodeName: 'no-such-node', containers: [{ name: 'operator', image: 'singleton-operator' }] },
    },
  });
  await writeStatus(name, { running: { startedAt: new Date(startedAt) } });
}

async function writeStatus(
  name: string,
  state: k8s.V1ContainerState,
  extra: Partial<k8s.V1ContainerStatus> = {},
  phase = 'Running',
): Promise<void> {
  const pod = await core.readNamespacedPodStatus({ namespace: ns.name, name });
  pod.status = {
    ...pod.status,
    phase,
    containerStatuses: [
      {
        name: 'operator',
        image: 'singleton-operator',
        imageID: '',
        ready: !!state.running,
        restartCount: 0,
        containerID: 'containerd://abc',
        state,
        ...extra,
      },
    ],
  };
  await core.replaceNamespacedPodStatus({ namespace: ns.name, name, body: pod });
}

function replica(pod: string, releaseOnCancel = true): Replica {
  const identity = `${pod}_${randomBytes(5).toString('hex')}`;
  const logger = pino({ level: 'silent' });
  const evidence = new PodEvidence({
    kubeConfig: kc,
    namespace: ns.name,
    labelSelector: 'app=evidence-replica',
    container: 'operator',
    logger,
    requestTimeoutMs: 5_000,
  });
  const leaderships: Leadership[] = [];
  const elector = new LeaderElector(
    {
      kubeConfig: kc,
      namespace: ns.name,
      name: 'evidence',
      identity,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: 4_000,
      retryPeriodMs: 1_000,
      logger,
      evidence,
      releaseOnCancel,
    },
    {
      onStartedLeading: async (leadership) => {
        leaderships.push(leadership);
        await new Promise<void>((resolve) =>
          leadership.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
      },
    },
  );
  const controller = new AbortController();
  evidence.start(controller.signal);
  const done = elector.run(controller.signal);
  const r = { identity, pod, leaderships, stop: async () => (controller.abort(), await done) };
  running.push(r);
  return r;
}

const holder = async () =>
  (await coordination.readNamespacedLease({ namespace: ns.name, name: 'evidence' }).catch(() => undefined))?.spec
    ?.holderIdentity || undefined;

/** Two replicas; resolves with [leader, standby] once one leads and the other watches. */
async function pair(o: { finalizer?: boolean; leaderReleases?: boolean } = {}): Promise<[Replica, Replica]> {
  const started = now();
  await replicaPod('replica-a', started, o.finalizer);
  await replicaPod('replica-b', started);
  const a = replica('replica-a', o.leaderReleases ?? true);
  const h = await eventually('a leader', holder, 15_000, 50);
  expect(h).toBe(a.identity);
  const b = replica('replica-b');
  // Give the standby's Pod watch time to list (the evidence needs the Pod seen).
  await new Promise((r) => setTimeout(r, 1_500));
  return [a, b];
}

async function takeover(from: string): Promise<{ to: string; ms: number }> {
  const t0 = Date.now();
  const to = await eventually(
    'another holder',
    async () => {
      const h = await holder();
      return h && h !== from ? h : undefined;
    },
    LEASE_MS * 3,
    25,
  );
  return { to, ms: Date.now() - t0 };
}

describe('failover on evidence from the replica Pods (real API server)', () => {
  it('the leader’s container reported terminated: the standby takes the Lease at once; the holder, alive after all, steps down and is fenced', async () => {
    const [a, b] = await pair();
    const termA = a.leaderships[0]!.term;
    // The kubelet's report — wrong here: a's process still runs (a slow leader judged dead).
    await writeStatus('replica-a', {
      terminated: { exitCode: 137, reason: 'Error', finishedAt: new Date(), containerID: 'containerd://abc' },
    });
    const { to, ms } = await takeover(a.identity);
    expect(to).toBe(b.identity);
    expect(ms).toBeLessThan(LEASE_MS / 2);
    expect(b.leaderships[0]!.term).toBeGreaterThan(termA);
    // The judged-dead leader learns it at once from its watch: its work is aborted and every guarded write refused.
    const lost = a.leaderships[0]!;
    await eventually('a stepped down', async () => lost.signal.aborted, 5_000, 25);
    expect((lost.signal.reason as LeadershipLostError).reason).toBe('taken');
    expect(() => lost.assertValid()).toThrow(LeadershipLostError);
    // It does not take it back: b renews, and a has no evidence against b.
    await new Promise((r) => setTimeout(r, LEASE_MS + 2_000));
    expect(await holder()).toBe(b.identity);
  });

  it('the leader’s container restarted after it acquired: the standby takes over at once', async () => {
    const [a, b] = await pair();
    await new Promise((r) => setTimeout(r, 1_100)); // a new second: the restart is after the acquisition
    await writeStatus(
      'replica-a',
      { running: { startedAt: new Date() } },
      {
        restartCount: 1,
        lastState: { terminated: { exitCode: 137, finishedAt: new Date(), containerID: 'containerd://abc' } },
      },
    );
    const { to, ms } = await takeover(a.identity);
    expect(to).toBe(b.identity);
    expect(ms).toBeLessThan(LEASE_MS / 2);
  });

  it('a leader that crashed: its Pod only marked for deletion (the grace period) is no evidence; once the Pod is removed, the standby takes over at once, long before the lease runs out', async () => {
    const [a, b] = await pair({ finalizer: true, leaderReleases: false });
    // a "crashes": it stops renewing and does not release (releaseOnCancel false), its record stays.
    await a.stop();
    const stoppedAt = Date.now();
    // Deleted, held by a finalizer: a deletionTimestamp and nothing else.
    await core.deleteNamespacedPod({ namespace: ns.name, name: 'replica-a' });
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await holder()).toBe(a.identity);
    // The kubelet is done with it: it deletes the Pod with grace period 0 once its containers stopped (here: the test, after removing its finalizer).
    await core.patchNamespacedPod(
      { namespace: ns.name, name: 'replica-a', body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    await core.deleteNamespacedPod({ namespace: ns.name, name: 'replica-a', gracePeriodSeconds: 0 });
    const { to } = await takeover(a.identity);
    expect(to).toBe(b.identity);
    // By expiry b could not have acquired before LEASE_MS after a's last renew (≥ LEASE_MS − 1 s after the stop).
    expect(Date.now() - stoppedAt).toBeLessThan(LEASE_MS - 1_500);
  });

  it('a crashed leader whose Pod says nothing (still running as far as the API knows): the standby waits the lease out', async () => {
    const [a, b] = await pair({ leaderReleases: false });
    await a.stop();
    const stoppedAt = Date.now();
    const { to } = await takeover(a.identity);
    expect(to).toBe(b.identity);
    // a's last renew was at most one retry period (1 s) before the stop.
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(LEASE_MS - 1_000 - 100);
  });
});
