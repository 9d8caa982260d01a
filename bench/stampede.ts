// Part (b): the midnight stampede. N CronJobs (kube-controller-manager's
// CronJob controller) and N SingletonJobs (our leader), each side in its own
// namespace and due at its own minute — never both at once. Measured from the
// audit log: the API server's commit time (stageTimestamp) of every Job
// create in that namespace, relative to the slot.
import * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../test/controlplane/controlplane.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../src/api/v1alpha1/singletonjob.ts';
import { AuditReader, succeeded, uniqueRequests, type AuditEvent } from './lib/audit.ts';
import { sleep } from './lib/proc.ts';
import { summarize, type Summary } from './lib/stats.ts';
import { mapLimit } from './lib/kube.ts';

export interface StampedeSide {
  side: 'cronjob' | 'singletonjob';
  label: string;
  namespace: string;
  count: number;
  slot: string;
  /** Who created the Jobs (audit usernames) and how many each. */
  creators: Record<string, number>;
  jobsCreated: number;
  /** Slot → each Job's create committed, ms, in creation order. */
  offsetsMs: number[];
  firstMs: number;
  lastMs: number;
  dist: Summary;
  /** Jobs per second between the first and the last create. */
  jobsPerSecond: number;
  rateLimit: string;
  /** Requests the creating identity sent between the slot and its last Job create, by verb and resource. */
  requestsByKind?: Record<string, number>;
  /**
   * When each run could start, slot → ms: a CronJob's Job runs once created;
   * ours is created suspended and runs once the operator released it (the
   * unsuspend patch, after the status write that records it).
   */
  releasedMs?: number[];
  /** Requests per run by the creating identity until its last release. */
  requestsPerRunToRelease?: number;
  error?: string;
}

export interface StampedeResult {
  count: number;
  sides: StampedeSide[];
  notes: string[];
}

export interface StampedeOptions {
  count: number;
  log: (m: string) => void;
  /** How long to wait for the last Job after the slot. */
  timeoutMs: number;
}

const podTemplate = {
  spec: {
    restartPolicy: 'Never',
    containers: [{ name: 'main', image: 'registry.local/bench:1', command: ['true'] }],
  },
};

/** The next minute boundary at least `leadMs` from now, and its 5-field cron (UTC). */
export function nextSlot(leadMs: number): { at: Date; cron: string } {
  const at = new Date(Math.ceil((Date.now() + leadMs) / 60_000) * 60_000);
  return { at, cron: `${at.getUTCMinutes()} ${at.getUTCHours()} * * *` };
}

export interface SideSetup {
  side: 'cronjob' | 'singletonjob';
  label: string;
  namespace: string;
  rateLimit: string;
  /** Creates the N due objects. */
  create: (kc: k8s.KubeConfig, namespace: string, cron: string, count: number) => Promise<void>;
}

export const cronJobSide: SideSetup = {
  side: 'cronjob',
  label: 'CronJob (kube-controller-manager)',
  namespace: 'bench-stampede-cron',
  rateLimit:
    'kube-controller-manager defaults: --kube-api-qps=20 --kube-api-burst=30 per controller client (--use-service-account-credentials), --concurrent-cron-job-syncs=5',
  create: async (kc, namespace, cron, count) => {
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    await mapLimit(count, 32, async (i) => {
      await batch.createNamespacedCronJob({
        namespace,
        body: {
          metadata: { name: `cj-${String(i).padStart(5, '0')}` },
          spec: sharedSpec(cron),
        },
      });
    });
  },
};

/** One spec for both sides, so the CronJobs and SingletonJobs compared are configured alike. */
function sharedSpec(cron: string) {
  return {
    schedule: cron,
    timeZone: 'Etc/UTC',
    concurrencyPolicy: 'Forbid',
    startingDeadlineSeconds: 600,
    successfulJobsHistoryLimit: 3,
    failedJobsHistoryLimit: 1,
    jobTemplate: { spec: { backoffLimit: 0, template: podTemplate } },
  };
}

export function singletonJobSide(rateLimit: string): SideSetup {
  return {
    side: 'singletonjob',
    label: 'SingletonJob (ours)',
    namespace: 'bench-stampede-sj',
    rateLimit,
    create: async (kc, namespace, cron, count) => {
      const custom = kc.makeApiClient(k8s.CustomObjectsApi);
      await mapLimit(count, 32, async (i) => {
        await custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          body: {
            apiVersion: API_VERSION,
            kind: KIND,
            metadata: { name: `sj-${String(i).padStart(5, '0')}` },
            spec: sharedSpec(cron),
          },
        });
      });
    },
  };
}

/** Runs one side: create N objects due at the next free minute, then wait for N Jobs. */
export async function runStampedeSide(cp: ControlPlane, setup: SideSetup, o: StampedeOptions): Promise<StampedeSide> {
  const kc = cp.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: setup.namespace } } });
  // Enough lead for creating N objects at ~50/s on a loaded laptop, plus margin.
  const slot = nextSlot(20_000 + o.count * 40);
  o.log(`${setup.label}: creating ${o.count} objects due at ${slot.at.toISOString()} (${slot.cron} UTC)`);
  const t = Date.now();
  await setup.create(kc, setup.namespace, slot.cron, o.count);
  o.log(
    `${setup.label}: created ${o.count} in ${Date.now() - t} ms; ${Math.round((slot.at.getTime() - Date.now()) / 1000)} s to the slot`,
  );
  if (Date.now() > slot.at.getTime() - 3000)
    throw new Error(`creating ${o.count} objects took too long: the slot ${slot.at.toISOString()} came first`);

  const audit = new AuditReader(cp.state.auditLog);
  audit.skipToEnd();
  const creates: AuditEvent[] = [];
  const releases: AuditEvent[] = [];
  const all: AuditEvent[] = [];
  const deadline = slot.at.getTime() + o.timeoutMs;
  await sleep(slot.at.getTime() - Date.now());
  let lastReport = Date.now();
  const releasing = setup.side === 'singletonjob';
  while ((creates.length < o.count || (releasing && releases.length < o.count)) && Date.now() < deadline) {
    await sleep(500);
    for (const e of uniqueRequests(audit.readNew())) {
      if (e.received >= slot.at.getTime()) all.push(e);
      // A dry-run create (the operator checks a template on every spec change) stores nothing: not a Job.
      if (
        e.namespace === setup.namespace &&
        e.resource === 'jobs' &&
        e.verb === 'create' &&
        !e.subresource &&
        !/[?&]dryRun=/.test(e.requestURI) &&
        succeeded(e)
      )
        creates.push(e);
      // Our only Job patch on the start path is the release (unsuspend).
      if (
        releasing &&
        e.namespace === setup.namespace &&
        e.resource === 'jobs' &&
        e.verb === 'patch' &&
        !e.subresource &&
        succeeded(e) &&
        e.received >= slot.at.getTime()
      )
        releases.push(e);
    }
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      o.log(
        `${setup.label}: ${creates.length}/${o.count} Jobs created ${Math.round((Date.now() - slot.at.getTime()) / 1000)} s after the slot`,
      );
    }
  }
  const offsets = creates.map((e) => e.stageAt - slot.at.getTime()).sort((a, b) => a - b);
  const creators: Record<string, number> = {};
  for (const e of creates) creators[e.user] = (creators[e.user] ?? 0) + 1;
  const first = offsets[0] ?? Number.NaN;
  const mainCreator = Object.entries(creators).sort((a, b) => b[1] - a[1])[0]?.[0];
  const lastAt = slot.at.getTime() + (offsets[offsets.length - 1] ?? 0);
  const requestsByKind: Record<string, number> = {};
  for (const e of all) {
    if (e.user !== mainCreator || e.received > lastAt) continue;
    const k = `${e.verb} ${e.resource ?? e.requestURI.split('?')[0]}${e.subresource ? `/${e.subresource}` : ''}`;
    requestsByKind[k] = (requestsByKind[k] ?? 0) + 1;
  }
  const last = offsets[offsets.length - 1] ?? Number.NaN;
  const released = releasing ? releases.map((e) => e.stageAt - slot.at.getTime()).sort((a, b) => a - b) : offsets;
  const lastReleaseAt = slot.at.getTime() + (released[released.length - 1] ?? 0);
  const untilRelease = all.filter((e) => e.user === mainCreator && e.received <= lastReleaseAt).length;
  const result: StampedeSide = {
    releasedMs: released,
    requestsPerRunToRelease: untilRelease / Math.max(1, creates.length),
    side: setup.side,
    label: setup.label,
    namespace: setup.namespace,
    count: o.count,
    slot: slot.at.toISOString(),
    creators,
    jobsCreated: creates.length,
    offsetsMs: offsets,
    firstMs: first,
    lastMs: last,
    dist: summarize(offsets),
    jobsPerSecond: offsets.length > 1 ? (offsets.length - 1) / ((last - first) / 1000) : Number.NaN,
    rateLimit: setup.rateLimit,
    requestsByKind,
  };
  if (creates.length < o.count)
    result.error = `only ${creates.length} of ${o.count} Jobs were created within ${Math.round(o.timeoutMs / 1000)} s of the slot`;
  o.log(
    `${setup.label}: ${creates.length} Jobs, first ${Math.round(first)} ms, last ${Math.round(last)} ms after the slot`,
  );
  return result;
}

/** Waits until every Job in `namespace` has finished and no Pod there is pending or running. */
export async function waitPodsSettled(
  cp: ControlPlane,
  namespace: string,
  timeoutMs: number,
  log: (m: string) => void,
): Promise<void> {
  const kc = cp.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const jobs = await batch.listNamespacedJob({ namespace });
    const running = jobs.items.filter(
      (j) =>
        !(j.status?.conditions ?? []).some(
          (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
        ),
    ).length;
    const pods = await core.listNamespacedPod({ namespace });
    const busy = pods.items.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed').length;
    if (running === 0 && busy === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `${namespace}: ${running} Jobs and ${busy} Pods still not finished after ${Math.round(timeoutMs / 1000)} s`,
      );
    log(`${namespace}: waiting for ${running} Jobs / ${busy} Pods to finish before the next side`);
    await sleep(10_000);
  }
}
