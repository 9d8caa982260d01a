// Part (b): the midnight stampede. N CronJobs (kube-controller-manager's
// CronJob controller) and N SingletonJobs (our leader), each side in its own
// namespace and due at its own minute — never both at once. Measured from the
// audit log (the API server's commit time, stageTimestamp, relative to the
// slot): a CronJob's run starts when its Job is created; ours when the
// operator releases its Job (the unsuspend), which it may have created — and
// recorded — up to spec.prepareAheadSeconds before the slot (a prepared run)
// or at the slot (bench/lib/runs.ts).
import * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../test/controlplane/controlplane.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../src/api/v1alpha1/singletonjob.ts';
import { AuditReader, succeeded, uniqueRequests, type AuditEvent } from './lib/audit.ts';
import { sleep } from './lib/proc.ts';
import { fmtMs, fmtNum, summarize, type Summary } from './lib/stats.ts';
import { mapLimit } from './lib/kube.ts';
import { isJobCreate, RunLedger, totalOf, type ReleaseSummary } from './lib/runs.ts';

export interface StampedeSide {
  side: 'cronjob' | 'singletonjob';
  label: string;
  namespace: string;
  count: number;
  slot: string;
  /** Who created the Jobs (audit usernames) and how many each. */
  creators: Record<string, number>;
  jobsCreated: number;
  /** Slot → each Job's create committed, ms, sorted (negative: before the slot, a prepared run of ours). */
  offsetsMs: number[];
  firstMs: number;
  lastMs: number;
  dist: Summary;
  /** Jobs per second between the first and the last create. */
  jobsPerSecond: number;
  rateLimit: string;
  /**
   * Critical path: requests of the side's identity (the CronJob controller's; every replica of ours) received from
   * the slot until its last run started, by verb and resource.
   */
  requestsByKind?: Record<string, number>;
  /**
   * When each run could start, slot → ms, sorted: a CronJob's Job runs once
   * created; ours is created suspended and runs once the operator released it
   * (its first successful unsuspend patch at or after the slot).
   */
  releasedMs?: number[];
  /** requestsByKind per run (runs started). */
  requestsPerRunToRelease?: number;
  /** In all: the same identity's requests from the first object's create until its last run started. */
  totalByKind?: Record<string, number>;
  totalPerRun?: number;
  /**
   * A run's own cost: the same identity's requests from the prepare window's
   * opening (slot − prepareAheadSeconds; for CronJob, the slot) until the last
   * run started — without what a new object costs once (its first status
   * write, its template's dry run), which the objects' creation, before the
   * window, sends.
   */
  runByKind?: Record<string, number>;
  runPerRun?: number;
  /** Jobs created (stored) before / at or after the slot. */
  createdBeforeSlot?: number;
  createdAfterSlot?: number;
  /** Ours: the release accounting (bench/lib/runs.ts). */
  runs?: ReleaseSummary;
  /** Ours: spec.prepareAheadSeconds as set on every object, and whether the served CRD kept it (false: pruned). */
  prepareAheadSeconds?: number;
  prepareAheadServed?: boolean;
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

/** spec.prepareAheadSeconds of the stampede's SingletonJobs (set explicitly: it is also the default). */
export const STAMPEDE_PREPARE_AHEAD_S = 60;

/**
 * How far ahead of the slot the objects are created (at least; nextSlot rounds up to the minute): creating them
 * (~50/s here, 20 ms each) and then preparing every run (a Job create and a status write, ~100 runs/s when the API
 * server does nothing else: another 20 ms each), plus 20 s of margin — 60 s at 1,000, so 1,000 objects exist at
 * least 40 s before the slot and the prepare window (60 s) opens before or while they are created.
 */
export function stampedeLeadMs(count: number): number {
  return 20_000 + count * (20 + 20);
}

export interface SideSetup {
  side: 'cronjob' | 'singletonjob';
  label: string;
  namespace: string;
  rateLimit: string;
  /** Creates the N due objects. */
  create: (kc: k8s.KubeConfig, namespace: string, cron: string, count: number) => Promise<void>;
  /** Ours: whose requests are the operator's, and whether the served CRD keeps spec.prepareAheadSeconds. */
  operator?: {
    isOurs: (user: string) => boolean;
    prepareAheadSeconds: number;
    served: (kc: k8s.KubeConfig, namespace: string) => Promise<boolean | undefined>;
  };
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
export function sharedSpec(cron: string) {
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

/** Whether the served CRD kept spec.prepareAheadSeconds on a created object (undefined: none to read). */
export async function prepareAheadServed(kc: k8s.KubeConfig, namespace: string): Promise<boolean | undefined> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const list = (await custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    limit: 1,
  })) as {
    items: Array<{ spec?: { prepareAheadSeconds?: number } }>;
  };
  const one = list.items[0];
  return one ? one.spec?.prepareAheadSeconds !== undefined : undefined;
}

export function singletonJobSide(rateLimit: string, identities: readonly string[]): SideSetup {
  return {
    side: 'singletonjob',
    label: 'SingletonJob (ours)',
    namespace: 'bench-stampede-sj',
    rateLimit,
    operator: {
      isOurs: (user) => identities.includes(user),
      prepareAheadSeconds: STAMPEDE_PREPARE_AHEAD_S,
      served: prepareAheadServed,
    },
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
            spec: { ...sharedSpec(cron), prepareAheadSeconds: STAMPEDE_PREPARE_AHEAD_S },
          },
        });
      });
    },
  };
}

/** Runs one side: create N objects due at the next free minute, then wait for N Jobs (ours: N releases). */
export async function runStampedeSide(cp: ControlPlane, setup: SideSetup, o: StampedeOptions): Promise<StampedeSide> {
  const kc = cp.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: setup.namespace } } });
  const slot = nextSlot(stampedeLeadMs(o.count));
  o.log(`${setup.label}: creating ${o.count} objects due at ${slot.at.toISOString()} (${slot.cron} UTC)`);
  // From before the first create: a prepared run's Job is created before the slot, perhaps while objects are still being created.
  const audit = new AuditReader(cp.state.auditLog);
  audit.skipToEnd();
  const ours = setup.operator;
  const ledger = new RunLedger(setup.namespace, (e) => ours?.isOurs(e.user) ?? false);
  const creates: AuditEvent[] = [];
  let firstObjectAt = Number.NaN;
  const consume = () => {
    for (const e of uniqueRequests(audit.readNew())) {
      ledger.add(e);
      if (
        Number.isNaN(firstObjectAt) &&
        e.namespace === setup.namespace &&
        e.verb === 'create' &&
        (e.resource === 'cronjobs' || e.resource === PLURAL) &&
        succeeded(e)
      )
        firstObjectAt = e.received;
      if (e.namespace === setup.namespace && isJobCreate(e)) creates.push(e);
    }
  };
  const t = Date.now();
  await setup.create(kc, setup.namespace, slot.cron, o.count);
  o.log(
    `${setup.label}: created ${o.count} in ${Date.now() - t} ms; ${Math.round((slot.at.getTime() - Date.now()) / 1000)} s to the slot`,
  );
  if (Date.now() > slot.at.getTime() - 3000)
    throw new Error(`creating ${o.count} objects took too long: the slot ${slot.at.toISOString()} came first`);
  const served = ours ? await ours.served(kc, setup.namespace) : undefined;

  const slotMs = slot.at.getTime();
  const deadline = slotMs + o.timeoutMs;
  while (Date.now() < slotMs) {
    await sleep(Math.min(1000, slotMs - Date.now()));
    consume();
  }
  if (ours)
    o.log(
      `${setup.label}: ${ledger.createdCount(slotMs)}/${o.count} runs prepared (Jobs created) before the slot${served === false ? ' (this CRD has no spec.prepareAheadSeconds)' : ''}`,
    );
  let lastReport = Date.now();
  const done = () => (ours ? ledger.releasedCount(slotMs) >= o.count : creates.length >= o.count);
  while (!done() && Date.now() < deadline) {
    await sleep(500);
    consume();
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      o.log(
        `${setup.label}: ${creates.length}/${o.count} Jobs created${ours ? `, ${ledger.releasedCount(slotMs)} released` : ''} ${Math.round((Date.now() - slotMs) / 1000)} s after the slot`,
      );
    }
  }
  await sleep(1000); // a late second release of a Job would show here
  consume();
  const offsets = creates.map((e) => e.stageAt - slotMs).sort((a, b) => a - b);
  const creators: Record<string, number> = {};
  for (const e of creates) creators[e.user] = (creators[e.user] ?? 0) + 1;
  const first = offsets[0] ?? Number.NaN;
  const last = offsets[offsets.length - 1] ?? Number.NaN;
  const result: StampedeSide = {
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
  };
  if (ours) {
    const runs = ledger.summary(slotMs);
    const isOp = (u: string) => ours.isOurs(u);
    const critical = ledger.requests(isOp, slotMs, runs.lastReleaseAt);
    const total = ledger.requests(isOp, firstObjectAt, runs.lastReleaseAt);
    const windowOpens = Math.max(firstObjectAt, slotMs - ours.prepareAheadSeconds * 1000);
    const own = ledger.requests(isOp, windowOpens, runs.lastReleaseAt);
    const perRun = Math.max(1, runs.releasedMs.length);
    Object.assign(result, {
      runs,
      releasedMs: runs.releasedMs,
      requestsByKind: critical,
      requestsPerRunToRelease: totalOf(critical) / perRun,
      totalByKind: total,
      totalPerRun: totalOf(total) / perRun,
      runByKind: own,
      runPerRun: totalOf(own) / perRun,
      createdBeforeSlot: runs.createdBeforeSlot,
      createdAfterSlot: runs.createdAfterSlot,
      prepareAheadSeconds: ours.prepareAheadSeconds,
      prepareAheadServed: served,
    } satisfies Partial<StampedeSide>);
    if (runs.releasedMs.length < o.count)
      result.error = `only ${runs.releasedMs.length} of ${o.count} runs were released within ${Math.round(o.timeoutMs / 1000)} s of the slot`;
    o.log(
      `${setup.label}: ${runs.created} Jobs (${runs.createdBeforeSlot} before the slot), released first ${fmtMs(runs.released.best)}, last ${fmtMs(runs.released.worst)} after the slot; ` +
        `requests per run ${fmtNum(result.requestsPerRunToRelease!, 2)} after the slot, ${fmtNum(result.runPerRun!, 2)} from the prepare window's opening, ${fmtNum(result.totalPerRun!, 2)} in all`,
    );
  } else {
    // The CronJob controller's Job runs once created: released = created; its requests from the slot (critical path)
    // and from the first CronJob's create (in all) until its last Job create.
    const mainCreator = Object.entries(creators).sort((a, b) => b[1] - a[1])[0]?.[0];
    const isCreator = (u: string) => u === mainCreator;
    const lastAt = slotMs + (Number.isFinite(last) ? last : 0);
    result.releasedMs = offsets;
    result.requestsByKind = ledger.requests(isCreator, slotMs, lastAt);
    result.requestsPerRunToRelease = totalOf(result.requestsByKind) / Math.max(1, creates.length);
    result.totalByKind = ledger.requests(isCreator, firstObjectAt, lastAt);
    result.totalPerRun = totalOf(result.totalByKind) / Math.max(1, creates.length);
    // CronJob prepares nothing: its runs' own requests are those after the slot.
    result.runByKind = result.requestsByKind;
    result.runPerRun = result.requestsPerRunToRelease;
    result.createdBeforeSlot = offsets.filter((x) => x < 0).length;
    result.createdAfterSlot = offsets.filter((x) => x >= 0).length;
    if (creates.length < o.count)
      result.error = `only ${creates.length} of ${o.count} Jobs were created within ${Math.round(o.timeoutMs / 1000)} s of the slot`;
    o.log(`${setup.label}: ${creates.length} Jobs, first ${fmtMs(first)}, last ${fmtMs(last)} after the slot`);
  }
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
