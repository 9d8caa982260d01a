// Part `common10k`: N SingletonJobs (10,000 by default) in one namespace, all
// due at one slot with jitterSeconds 0, concurrencyPolicy Forbid, and
// spec.prepareAheadSeconds large enough that preparing every run (its Job
// created suspended and recorded) fits before the slot; two replicas of the
// operator as bench/operator.ts runs them. Measured, all from the audit log
// except memory:
//  - each run's release (its Job's first successful unsuspend patch by a
//    replica), slot → commit: first / median / p90 / last; target: all within 15 s;
//  - the API server's committed writes per second, every identity, over the
//    release window (slot → the last release);
//  - prepared Jobs per object: created by the operator and neither released
//    nor deleted, at any one time (bench/lib/runs.ts); target: at most one;
//  - each replica's VmRSS while the N runs are prepared and idle before the
//    slot (once every run was prepared and the operator had not written for
//    IDLE_MS, or RSS_LATEST_MS before the slot at the latest); target ≤ 150 MB.
// A build that does not prepare runs still runs this part: its Jobs are all
// created at the slot, and the report says so.
import * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../test/controlplane/controlplane.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../src/api/v1alpha1/singletonjob.ts';
import { AuditReader, uniqueRequests } from './lib/audit.ts';
import { mapLimit } from './lib/kube.ts';
import { rssOf, sleep } from './lib/proc.ts';
import { fmtMs, fmtNum } from './lib/stats.ts';
import { RunLedger, totalOf, type ReleaseSummary } from './lib/runs.ts';
import { nextSlot, prepareAheadServed, sharedSpec } from './stampede.ts';
import { installCrds, operatorPrerequisites, startOperator } from './operator.ts';

export const COMMON_DEFAULT_COUNT = 10_000;
/** Target: every run released within this long after the slot. */
export const COMMON_RELEASE_TARGET_MS = 15_000;
/** "Idle": the operator has written nothing but its Lease for this long (its heap compactor acts after a quiet 10 s; as scale-run.ts). */
const IDLE_MS = 30_000;
/** The memory sample is taken no later than this before the slot. */
const RSS_LATEST_MS = 10_000;
const MiB = 1024 * 1024;

/**
 * What one prepare costs the API server: about three committed writes — the Job's create and the status write
 * recording it (the operator's), and the Job controller's status update of a new suspended Job. Measured before
 * prepared runs landed (docs/benchmarks.md, "Prepared runs"): in this part's two trials at 1,000 on the shared
 * 2-core VM with another test run going (load 5–6) the API server committed 96 and 132 writes/s of everyone over
 * the release window; at the slower rate, 3 writes per prepare are 31 ms.
 */
const PREPARE_MS_PER_RUN = 31;

/**
 * Default spec.prepareAheadSeconds of the common slot for N runs: PREPARE_MS_PER_RUN with a 1.5× margin, plus
 * IDLE_MS of quiet before the memory sample and 10 s: 505 s at 10,000, 87 s at 1,000.
 */
export function commonPrepareAhead(count: number): number {
  return Math.ceil((count * PREPARE_MS_PER_RUN * 1.5 + IDLE_MS + 10_000) / 1000);
}

export interface CommonSlotResult {
  count: number;
  replicas: number;
  namespace: string;
  slot: string;
  prepareAheadSeconds: number;
  /** Whether the served CRD kept spec.prepareAheadSeconds (false: pruned, the build does not prepare). */
  prepareAheadServed?: boolean;
  /** Creating the N objects (the benchmark's client, 32 at a time). */
  createMs: number;
  /** The last object created → the slot. */
  createdBeforeSlotMs: number;
  runs: ReleaseSummary;
  /** The operator's first → last Job create before the slot (preparing), ms; NaN when none. */
  prepareSpanMs: number;
  /** The last Job created before the slot → the slot, ms; NaN when none. */
  preparedBeforeSlotMs: number;
  /** Slot → the last release, and the committed writes of everyone in it. */
  releaseWindowMs: number;
  writes: { total: number; perSecond: number; byUser: Record<string, number> };
  /** Per replica, at the memory sample. */
  rss: Array<{ identity: string; leader: boolean; rssMiB: number; hwmMiB: number }>;
  /** When the memory was sampled: this long before the slot, after this long without a write of ours, with this many runs prepared. */
  rssSample: { beforeSlotMs: number; quietMs: number; prepared: number };
  /** Requests of both replicas, by verb and resource: slot → the last release, and the first object's create → then. */
  requestsAfterSlot: Record<string, number>;
  requestsInAll: Record<string, number>;
  notes: string[];
}

/** Waits (up to `timeoutMs`) for namespaces an earlier part deleted to be gone, so their deletion does not compete. */
async function waitNamespacesGone(core: k8s.CoreV1Api, timeoutMs: number, log: (m: string) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const terminating = (await core.listNamespace()).items.filter((n) => n.status?.phase === 'Terminating');
    if (terminating.length === 0 || Date.now() > deadline) return;
    log(`common slot: waiting for ${terminating.map((n) => n.metadata!.name).join(', ')} to be deleted`);
    await sleep(10_000);
  }
}

export async function runCommonSlot(
  cp: ControlPlane,
  o: { count: number; prepareAheadSeconds: number; workDir: string; log: (m: string) => void },
): Promise<CommonSlotResult> {
  operatorPrerequisites();
  await installCrds(cp);
  const kc = cp.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const namespace = 'bench-common';
  const notes: string[] = [];
  await waitNamespacesGone(core, 300_000, o.log);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const op = await startOperator(cp, {
    replicas: 2,
    workDir: o.workDir,
    tag: 'common',
    env: { WATCH_NAMESPACES: namespace },
  });
  try {
    const leader = await op.waitLeader(120_000);
    o.log(`common slot: operator leader ${leader}`);
    // Creating (~25–50/s on this machine, 40 ms each when it is loaded), then the whole prepare window, then a
    // margin: the runs are prepared in one burst when the window opens, as for objects that existed long before
    // their slot (when creating takes longer, the report notes the overlap).
    const slot = nextSlot(o.count * 40 + o.prepareAheadSeconds * 1000 + 20_000);
    const slotMs = slot.at.getTime();
    const isOp = (u: string) => op.identities.includes(u);
    const audit = new AuditReader(cp.state.auditLog);
    audit.skipToEnd();
    const ledger = new RunLedger(namespace, (e) => isOp(e.user));
    let firstObjectAt = Number.NaN;
    const consume = () => {
      for (const e of uniqueRequests(audit.readNew())) {
        ledger.add(e);
        if (Number.isNaN(firstObjectAt) && e.namespace === namespace && e.resource === PLURAL && e.verb === 'create')
          firstObjectAt = e.received;
      }
    };
    o.log(
      `common slot: creating ${o.count} SingletonJobs due at ${slot.at.toISOString()}, prepareAheadSeconds ${o.prepareAheadSeconds}`,
    );
    const t0 = Date.now();
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    let created = 0;
    const progress = setInterval(() => {
      consume();
      o.log(`common slot: ${created}/${o.count} created, ${ledger.createdCount()} Jobs of ours so far`);
    }, 20_000);
    try {
      await mapLimit(o.count, 32, async (i) => {
        await custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          body: {
            apiVersion: API_VERSION,
            kind: KIND,
            metadata: { name: `c-${String(i).padStart(5, '0')}` },
            // The stampede's spec (the peer's too), due all at once and prepared ahead.
            spec: { ...sharedSpec(slot.cron), jitterSeconds: 0, prepareAheadSeconds: o.prepareAheadSeconds },
          },
        });
        created++;
      });
    } finally {
      clearInterval(progress);
    }
    const createMs = Date.now() - t0;
    const createdBeforeSlotMs = slotMs - Date.now();
    const served = await prepareAheadServed(kc, namespace);
    o.log(`common slot: created ${o.count} in ${createMs} ms; ${Math.round(createdBeforeSlotMs / 1000)} s to the slot`);
    if (createdBeforeSlotMs < o.prepareAheadSeconds * 1000)
      notes.push(
        `creating the objects ran ${fmtMs(o.prepareAheadSeconds * 1000 - createdBeforeSlotMs)} into the prepare window: preparing overlapped creating`,
      );
    if (served === false)
      notes.push(
        'the CRD served in this run has no spec.prepareAheadSeconds (the API server pruned it): this build does not prepare runs, so every Job is created at the slot',
      );

    // Memory while the runs are prepared and waiting: once all are prepared and the operator has been quiet, or at the latest RSS_LATEST_MS before the slot.
    let report = Date.now();
    for (;;) {
      await sleep(1000);
      consume();
      const prepared = ledger.createdCount(slotMs);
      const quietMs = Date.now() - ledger.lastWriteAt(isOp);
      if ((prepared >= o.count && quietMs >= IDLE_MS) || Date.now() >= slotMs - RSS_LATEST_MS) break;
      if (Date.now() - report > 20_000) {
        report = Date.now();
        o.log(
          `common slot: ${prepared}/${o.count} runs prepared, ${Math.round((slotMs - Date.now()) / 1000)} s to the slot`,
        );
      }
    }
    const holder = await op.holder();
    const rss = op.identities.map((id) => {
      const pid = op.byIdentity.get(id)!.pid;
      return { identity: id, leader: id === holder, rssMiB: rssOf(pid) / MiB, hwmMiB: rssOf(pid, 'VmHWM') / MiB };
    });
    const rssSample = {
      beforeSlotMs: slotMs - Date.now(),
      quietMs: Date.now() - ledger.lastWriteAt(isOp),
      prepared: ledger.createdCount(slotMs),
    };
    o.log(
      `common slot: RSS ${rss.map((r) => `${r.identity}${r.leader ? ' (leader)' : ''} ${r.rssMiB.toFixed(1)} MiB`).join(', ')}; ${rssSample.prepared} runs prepared, ${Math.round(rssSample.beforeSlotMs / 1000)} s before the slot`,
    );

    while (Date.now() < slotMs) {
      await sleep(Math.min(1000, slotMs - Date.now()));
      consume();
    }
    const deadline = slotMs + Math.max(300_000, o.count * 60);
    report = Date.now();
    while (ledger.releasedCount(slotMs) < o.count && Date.now() < deadline) {
      await sleep(500);
      consume();
      if (Date.now() - report > 10_000) {
        report = Date.now();
        o.log(
          `common slot: ${ledger.releasedCount(slotMs)}/${o.count} released ${Math.round((Date.now() - slotMs) / 1000)} s after the slot`,
        );
      }
    }
    await sleep(1500); // a late second release would show here
    consume();
    const runs = ledger.summary(slotMs);
    if (runs.releasedMs.length < o.count)
      notes.push(
        `only ${runs.releasedMs.length} of ${o.count} runs were released within ${Math.round((deadline - slotMs) / 1000)} s of the slot`,
      );
    const releaseWindowMs = runs.lastReleaseAt - slotMs;
    const w = ledger.writes(slotMs, runs.lastReleaseAt);
    const writes = { ...w, perSecond: w.total / Math.max(0.001, releaseWindowMs / 1000) };
    const requestsAfterSlot = ledger.requests(isOp, slotMs, runs.lastReleaseAt);
    const requestsInAll = ledger.requests(isOp, firstObjectAt, runs.lastReleaseAt);
    // Preparing: our Job creates before the slot.
    const preparedAt = ledger.jobCreateTimes().filter((t) => t < slotMs);
    const prepareSpanMs = preparedAt.length ? preparedAt.at(-1)! - preparedAt[0]! : Number.NaN;
    const preparedBeforeSlotMs = preparedAt.length ? slotMs - preparedAt.at(-1)! : Number.NaN;
    o.log(
      `common slot: ${runs.createdBeforeSlot} prepared, ${runs.createdAfterSlot} created after the slot; released first ${fmtMs(runs.released.best)}, median ${fmtMs(runs.released.median)}, last ${fmtMs(runs.released.worst)}; ` +
        `${writes.total} writes in the release window (${fmtNum(writes.perSecond, 0)}/s); requests per run after the slot ${fmtNum(totalOf(requestsAfterSlot) / Math.max(1, runs.releasedMs.length), 2)}; most prepared Jobs of one object ${runs.maxPreparedPerObject}`,
    );
    return {
      count: o.count,
      replicas: op.identities.length,
      namespace,
      slot: slot.at.toISOString(),
      prepareAheadSeconds: o.prepareAheadSeconds,
      prepareAheadServed: served,
      createMs,
      createdBeforeSlotMs,
      runs,
      prepareSpanMs,
      preparedBeforeSlotMs,
      releaseWindowMs,
      writes,
      rss,
      rssSample,
      requestsAfterSlot,
      requestsInAll,
      notes,
    };
  } finally {
    // The namespace stays (10,000 Jobs, their Pods still being made by the Job controller at its 20 qps): this part
    // runs last on the shared control plane, and deleting them would be minutes of churn before it stops.
    await op.stop();
  }
}
