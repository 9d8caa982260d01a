// Part `slot-takeover`: a leader lost just before a slot. On a real node (its
// own control plane with containerd and a kubelet, as crash-realnode.ts) the
// chart installs the operator as shipped (3 Pods, pod evidence on); N
// SingletonJobs (100 by default) are due at one slot with
// prepareAheadSeconds 60, so the leader prepares their runs (Job created
// suspended, recorded) a minute ahead. 5 s before the slot the leader's
// operator container is SIGKILLed through containerd. Measured from the audit
// log: kill → the successor's first committed Lease write; slot → each run's
// release (first / median / last), who released them (the Pod of the
// ServiceAccount token), and that every Job was released exactly once.
// Target: the prepared runs are released on time by the successor.
import * as k8s from '@kubernetes/client-node';
import { mkdirSync } from 'node:fs';
import { ControlPlane } from '../test/controlplane/controlplane.ts';
import { resolveHelm } from '../test/controlplane/binaries.ts';
import { importImage, realNodeUnavailable } from '../test/controlplane/realnode.ts';
import { buildImage } from '../scripts/image.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../src/api/v1alpha1/singletonjob.ts';
import { AuditReader, isWrite, succeeded, uniqueRequests, type AuditEvent } from './lib/audit.ts';
import { mapLimit } from './lib/kube.ts';
import { sleep } from './lib/proc.ts';
import { fmtMs } from './lib/stats.ts';
import { RunLedger, type ReleaseSummary } from './lib/runs.ts';
import { installOperatorChart } from './lib/realnode-chart.ts';
import { nextSlot, prepareAheadServed } from './stampede.ts';

export const SLOT_TAKEOVER_DEFAULT_COUNT = 100;
const PREPARE_AHEAD_S = 60;
/** The leader is killed this long before the slot. */
const KILL_BEFORE_SLOT_MS = 5_000;
/**
 * "On time" for the takeover target: the successor's last release within this long after the slot. 100 releases
 * (one JSON patch each) take well under a second at the ≥ 140 releases/s that the stampede's target implies
 * (1,000 in ≤ 0.5× the CronJob controller's ~14 s); the rest is margin for a new leader's first pass.
 */
export const SLOT_TAKEOVER_ON_TIME_MS = 2_000;

export interface SlotTakeoverResult {
  count: number;
  prepareAheadSeconds: number;
  prepareAheadServed?: boolean;
  image: string;
  slot: string;
  /** The leader's Pod whose operator container was killed, and how long before the slot. */
  killedPod: string;
  killBeforeSlotMs: number;
  /** The Pod whose Lease write came first after the kill, and kill → that write (audit stageTimestamp). */
  successorPod?: string;
  takeoverMs: number;
  runs: ReleaseSummary;
  /** Requests of the operator's Pods received from the slot until the last release, by verb and resource. */
  requestsAfterSlot: Record<string, number>;
  onTimeMs: number;
  notes: string[];
}

export async function runSlotTakeover(o: {
  count: number;
  workDir: string;
  log: (m: string) => void;
}): Promise<SlotTakeoverResult> {
  const unavailable = realNodeUnavailable();
  if (unavailable) throw new Error(`no real node here: ${unavailable}`);
  o.log('slot takeover: building the image (cached by content)');
  const image = await buildImage({ log: () => {} });
  mkdirSync(o.workDir, { recursive: true });
  // Its default folder (a short /tmp path): containerd's sockets live in it, and a unix socket path has at most 104 bytes.
  const cp = await ControlPlane.start({ realNode: true, log: (m) => o.log(`  ${m}`) });
  try {
    importImage(cp.state.realNode!, image.archive);
    const kc = cp.kubeConfig();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const namespace = 'slot-takeover';
    const apps = 'slot-takeover-apps';
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespace({ body: { metadata: { name: apps } } });
    const chart = await installOperatorChart({
      cp,
      helmBin: resolveHelm(),
      image,
      workDir: o.workDir,
      release: 'slot',
      namespace,
      watchNamespaces: [apps],
      crds: true,
      podEvidence: true,
    });
    await chart.settle();
    const leaderDeadline = Date.now() + 60_000;
    while (!(await chart.holderPod())) {
      if (Date.now() > leaderDeadline) throw new Error('slot takeover: nobody leads after 60 s');
      await sleep(200);
    }
    o.log(`slot takeover: ${await chart.holderPod()} leads`);

    const audit = new AuditReader(cp.state.auditLog);
    audit.skipToEnd();
    const ledger = new RunLedger(apps, (e) => e.user === chart.user);
    const leaseWrites: AuditEvent[] = [];
    const consume = () => {
      for (const e of uniqueRequests(audit.readNew())) {
        ledger.add(e);
        if (
          e.resource === 'leases' &&
          e.namespace === namespace &&
          e.name === chart.fullname &&
          isWrite(e) &&
          succeeded(e)
        )
          leaseWrites.push(e);
      }
    };
    // Created before the prepare window opens (slot − 60 s), so the leader prepares them in one go when it does.
    const slot = nextSlot(PREPARE_AHEAD_S * 1000 + 15_000);
    const slotMs = slot.at.getTime();
    o.log(
      `slot takeover: creating ${o.count} SingletonJobs due at ${slot.at.toISOString()}, prepareAheadSeconds ${PREPARE_AHEAD_S}`,
    );
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await mapLimit(o.count, 16, async (i) => {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: apps,
        plural: PLURAL,
        body: {
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name: `t-${String(i).padStart(4, '0')}` },
          spec: {
            schedule: slot.cron,
            timeZone: 'Etc/UTC',
            concurrencyPolicy: 'Forbid',
            startingDeadlineSeconds: 600,
            jitterSeconds: 0,
            prepareAheadSeconds: PREPARE_AHEAD_S,
            // The Pods go to the control plane's kwok node (the real node is tainted): only the releases matter here.
            jobTemplate: {
              spec: {
                backoffLimit: 0,
                template: {
                  spec: {
                    restartPolicy: 'Never',
                    containers: [{ name: 'main', image: 'registry.local/bench:1', command: ['true'] }],
                  },
                },
              },
            },
          },
        },
      });
    });
    const served = await prepareAheadServed(kc, apps);
    const notes: string[] = [];
    if (served === false)
      notes.push(
        'the CRD served in this run has no spec.prepareAheadSeconds (the API server pruned it): this build does not prepare runs, so the successor creates every Job at the slot',
      );

    const killAt = slotMs - KILL_BEFORE_SLOT_MS;
    while (Date.now() < killAt - 1000) {
      await sleep(Math.min(1000, killAt - 1000 - Date.now()));
      consume();
    }
    const killedPod = await chart.holderPod();
    if (!killedPod) throw new Error('slot takeover: nobody leads 6 s before the slot');
    o.log(
      `slot takeover: ${ledger.createdCount(slotMs)}/${o.count} runs prepared; killing ${killedPod} 5 s before the slot`,
    );
    await sleep(Math.max(0, killAt - Date.now()));
    const t0 = Date.now();
    await chart.killOperator(killedPod);

    const deadline = slotMs + 120_000;
    let takeover: AuditEvent | undefined;
    let report = Date.now();
    while ((ledger.releasedCount(slotMs) < o.count || !takeover) && Date.now() < deadline) {
      await sleep(250);
      consume();
      takeover ??= leaseWrites.find((e) => e.stageAt >= t0 && e.pod !== killedPod);
      if (Date.now() - report > 10_000) {
        report = Date.now();
        o.log(
          `slot takeover: ${ledger.releasedCount(slotMs)}/${o.count} released ${Math.round((Date.now() - slotMs) / 1000)} s after the slot`,
        );
      }
    }
    await sleep(2000); // a late second release (the killed Pod's restarted container, say) would show here
    consume();
    const runs = ledger.summary(slotMs);
    if (!takeover) notes.push('no other Pod wrote the Lease within 120 s of the slot');
    if (runs.releasedMs.length < o.count)
      notes.push(`only ${runs.releasedMs.length} of ${o.count} runs were released within 120 s of the slot`);
    const result: SlotTakeoverResult = {
      count: o.count,
      prepareAheadSeconds: PREPARE_AHEAD_S,
      prepareAheadServed: served,
      image: image.ref,
      slot: slot.at.toISOString(),
      killedPod,
      killBeforeSlotMs: slotMs - t0,
      ...(takeover?.pod ? { successorPod: takeover.pod } : {}),
      takeoverMs: takeover ? takeover.stageAt - t0 : Number.NaN,
      runs,
      requestsAfterSlot: ledger.requests((w) => w.startsWith(`${chart.fullname}-`), slotMs, runs.lastReleaseAt),
      onTimeMs: SLOT_TAKEOVER_ON_TIME_MS,
      notes,
    };
    o.log(
      `slot takeover: kill → ${result.successorPod ?? 'nobody'}'s first Lease write ${fmtMs(result.takeoverMs)}; ${runs.createdBeforeSlot} runs prepared, ${runs.createdAfterSlot} created after the slot; ` +
        `released first ${fmtMs(runs.released.best)}, median ${fmtMs(runs.released.median)}, last ${fmtMs(runs.released.worst)} by ${JSON.stringify(runs.releasers)}; ${runs.releasedMoreThanOnce.length} released twice`,
    );
    return result;
  } finally {
    await cp.stop().catch(() => undefined);
  }
}
