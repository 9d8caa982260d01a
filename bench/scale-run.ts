// Part (c): scale and memory of our operator at 100 / 1,000 / 10,000
// SingletonJobs. For each size, in a fresh namespace:
//  1. create N SingletonJobs (no schedule due during the run) and give each a
//     history in its status (recent finished runs, a token, a term) — what a
//     long-lived object carries;
//  2. start 3 replicas (a lease of at least 60 s, longer for many objects, so
//     the benchmark has time to change every object while the leader is paused);
//     cold start = process start → the first leader's status write on every
//     object (audit log);
//  3. RSS of every replica (VmRSS) once idle (IDLE_SETTLE_MS after the last write);
//  4. quiet takeover (the usual case): SIGSTOP the leader, change nothing;
//     a standby takes over when the Lease expires; resume = its first Lease
//     write → its log line "Reconciled every SingletonJob once since taking
//     over" (every object has had a pass; nothing needed a write); SIGKILL
//     the old leader;
//  5. busy takeover (the worst case): SIGSTOP the new leader, change every
//     object's spec (generation + 1) — the last standby sees it on its warm
//     cache — then wait for it to take over: first pass as above, and its
//     status write on every object (audit log), throughput = N / that time;
//  6. check every object reports status.observedGeneration == generation;
//  7. RSS of that leader at its last write, IDLE_SETTLE_MS later (idle again)
//     and its peak (VmHWM).
import { FIRST_PASS_MESSAGE } from '../src/controller/controller.ts';
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../test/controlplane/controlplane.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../src/api/v1alpha1/singletonjob.ts';
import { AuditReader, isWrite, succeeded, uniqueRequests, type AuditEvent } from './lib/audit.ts';
import { mapLimit } from './lib/kube.ts';
import { rssOf, sleep, type Child } from './lib/proc.ts';
import { makeClient } from '../src/kube/client.ts';
import {
  installCrds,
  OPERATOR_LEASE,
  OPERATOR_NAMESPACE,
  operatorPrerequisites,
  scrapeGauge,
  startOperator,
} from './operator.ts';
import type { ScalePoint, ScaleResult } from './scale.ts';
import { repoRoot } from './electors.ts';

/**
 * Lease timings for the scale runs: long enough that changing every object
 * (estimated from how long creating them took: two requests each) fits
 * between pausing the leader and a standby taking over.
 */
function leaseFor(createMs: number): { durationS: number; renewS: number; retryS: number } {
  const durationS = Math.min(900, Math.max(60, Math.ceil(((createMs / 2) * 1.5 + 20_000) / 1000)));
  return { durationS, renewS: Math.ceil((durationS * 2) / 3), retryS: 2 };
}
const MiB = 1024 * 1024;
/**
 * "Idle": this long after the last write of a burst (the cold start's or the busy takeover's). The
 * operator gives its heap back once it has seen a whole quiet 10-s interval (src/runtime/heap-compactor.ts).
 */
const IDLE_SETTLE_MS = 30_000;
const FIRST_PASS = FIRST_PASS_MESSAGE;

/** The benchmark's own client: pooled connections like the operator's, a generous timeout, no rate limit. */
function adminClient(kc: k8s.KubeConfig): k8s.CustomObjectsApi {
  return makeClient(kc, k8s.CustomObjectsApi, { timeoutMs: 60_000 });
}

interface Listed {
  items: Array<{ metadata: { name: string; generation?: number }; status?: { observedGeneration?: number } }>;
  metadata?: { continue?: string };
}

function history(i: number): Record<string, unknown> {
  // Daily runs of the last five days (the schedule itself is never due during the run).
  const base = Math.floor(Date.now() / 86_400_000) * 86_400_000 + (i % 97) * 60_000;
  const runs = Array.from({ length: 5 }, (_, k) => {
    const slot = new Date(base - (k + 1) * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    return {
      name: `sj-${i}-${k}`,
      token: 5 - k,
      term: 1,
      kind: 'Scheduled',
      slot,
      outcome: k === 3 ? 'Failed' : 'Succeeded',
      finishedTime: slot,
    };
  });
  return {
    currentToken: 5,
    leaderTerm: 1,
    lastScheduleTime: runs[0]!.slot,
    lastSuccessfulTime: runs[0]!.finishedTime,
    recentRuns: runs,
  };
}

async function createObjects(kc: k8s.KubeConfig, namespace: string, n: number): Promise<void> {
  const custom = adminClient(kc);
  await mapLimit(n, 32, async (i) => {
    const name = `sj-${String(i).padStart(5, '0')}`;
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      body: {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name, labels: { app: 'bench', shard: String(i % 10) } },
        spec: {
          // 1 January 03:17 — never due while the benchmark runs.
          schedule: '17 3 1 1 *',
          timeZone: 'Europe/Berlin',
          startingDeadlineSeconds: 300,
          jobTemplate: {
            metadata: { annotations: { 'bench.singleton.dev/rev': '0' } },
            spec: {
              backoffLimit: 0,
              template: {
                spec: {
                  restartPolicy: 'Never',
                  containers: [
                    {
                      name: 'main',
                      image: 'registry.local/payroll:1',
                      command: ['run', '--night'],
                      env: [{ name: 'MODE', value: 'batch' }],
                    },
                  ],
                },
              },
            },
          },
        },
      },
    });
    await custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { status: history(i) } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  });
}

async function bumpGeneration(kc: k8s.KubeConfig, namespace: string, n: number): Promise<void> {
  const custom = adminClient(kc);
  await mapLimit(n, 32, async (i) => {
    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: `sj-${String(i).padStart(5, '0')}`,
        body: { spec: { jobTemplate: { metadata: { annotations: { 'bench.singleton.dev/rev': '1' } } } } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  });
}

async function unreconciled(kc: k8s.KubeConfig, namespace: string): Promise<number> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let behind = 0;
  let cont: string | undefined;
  do {
    const page = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      limit: 2000,
      _continue: cont,
    })) as Listed;
    for (const o of page.items) if (o.status?.observedGeneration !== o.metadata.generation) behind++;
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return behind;
}

/**
 * Waits until `user` has written the status of `n` distinct objects in
 * `namespace` (counting those already in `first`); returns each object's first write.
 */
async function waitStatusWrites(
  audit: AuditReader,
  namespace: string,
  user: string,
  n: number,
  since: number,
  timeoutMs: number,
  log: (m: string) => void,
  first = new Map<string, AuditEvent>(),
): Promise<AuditEvent[]> {
  const deadline = Date.now() + timeoutMs;
  let report = Date.now();
  while (first.size < n) {
    for (const e of uniqueRequests(audit.readNew())) {
      if (
        e.namespace !== namespace ||
        e.resource !== PLURAL ||
        e.subresource !== 'status' ||
        e.user !== user ||
        !isWrite(e) ||
        !succeeded(e) ||
        e.received < since ||
        !e.name
      )
        continue;
      if (!first.has(e.name)) first.set(e.name, e);
    }
    if (first.size >= n) break;
    if (Date.now() > deadline)
      throw new Error(
        `${user} wrote the status of only ${first.size} of ${n} SingletonJobs within ${Math.round(timeoutMs / 1000)} s`,
      );
    if (Date.now() - report > 10_000) {
      report = Date.now();
      log(`  ${user}: ${first.size}/${n} SingletonJobs reconciled`);
    }
    await sleep(250);
  }
  return [...first.values()].sort((a, b) => a.stageAt - b.stageAt);
}

/** RSS of a fresh Node process before and after importing the operator's runtime dependencies. */
function baselineRss(): { bareMiB: number; clientNodeMiB: number; allDepsMiB: number } {
  const script = `
    const r0 = process.memoryUsage().rss;
    await import('@kubernetes/client-node');
    const r1 = process.memoryUsage().rss;
    for (const m of ['pino', 'prom-client', 'zod', 'cron-parser', 'yaml']) await import(m);
    const r2 = process.memoryUsage().rss;
    console.log(JSON.stringify({ bareMiB: r0 / 2 ** 20, clientNodeMiB: r1 / 2 ** 20, allDepsMiB: r2 / 2 ** 20 }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as { bareMiB: number; clientNodeMiB: number; allDepsMiB: number };
}

interface Takeover {
  successor: string;
  /** Pause of the old leader → the successor's first Lease write (audit log). */
  takeoverMs: number;
  /** The successor's first Lease write (API server's stage timestamp, ms). */
  at: number;
  /** Takeover → the successor's "every object had a pass" log line. */
  firstPassMs: number;
  /** The same, as the operator measured it (from its own start of leading). */
  firstPassOwnMs: number;
}

/**
 * Pauses `leader` (SIGSTOP), runs `meanwhile` (e.g. changing every object),
 * waits for another replica's first Lease write and its first-pass log line.
 * The old leader stays paused; the caller kills it.
 */
async function pauseAndTakeOver(
  audit: AuditReader,
  op: Awaited<ReturnType<typeof startOperator>>,
  leader: string,
  meanwhile: () => Promise<void>,
  onAudit: (e: AuditEvent) => void,
): Promise<Takeover & { changedMs: number }> {
  const old = op.byIdentity.get(leader)!;
  const marks = new Map(op.identities.map((id) => [id, op.byIdentity.get(id)!.events.length]));
  audit.readNew();
  const t0 = old.signal('SIGSTOP');
  await meanwhile();
  const changedMs = Date.now() - t0;
  let takeover: AuditEvent | undefined;
  const deadline = Date.now() + 900_000;
  while (!takeover) {
    if (Date.now() > deadline) throw new Error('no standby took over within 900 s of pausing the leader');
    await sleep(100);
    for (const e of uniqueRequests(audit.readNew())) {
      if (e.received < t0) continue;
      onAudit(e);
      if (
        !takeover &&
        e.resource === 'leases' &&
        e.namespace === OPERATOR_NAMESPACE &&
        e.name === OPERATOR_LEASE &&
        e.user !== leader &&
        isWrite(e) &&
        succeeded(e)
      )
        takeover = e;
    }
  }
  const successor = takeover.user;
  const child: Child = op.byIdentity.get(successor)!;
  const pass = await child.waitEvent((e) => e.event === FIRST_PASS, 900_000, marks.get(successor) ?? 0);
  return {
    successor,
    takeoverMs: takeover.stageAt - t0,
    at: takeover.stageAt,
    firstPassMs: pass.t - takeover.stageAt,
    firstPassOwnMs: Number(pass.ms),
    changedMs,
  };
}

export async function runScale(
  cp: ControlPlane,
  o: { counts: number[]; workDir: string; log: (m: string) => void },
): Promise<ScaleResult> {
  operatorPrerequisites();
  await installCrds(cp);
  const kc = cp.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const points: ScalePoint[] = [];
  const leases: string[] = [];
  for (const n of o.counts) {
    const namespace = `bench-scale-${n}`;
    const notes: string[] = [];
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    o.log(`scale ${n}: creating ${n} SingletonJobs with status history in ${namespace}`);
    const c0 = Date.now();
    await createObjects(kc, namespace, n);
    const createMs = Date.now() - c0;
    o.log(`scale ${n}: created in ${createMs} ms`);

    const lease = leaseFor(createMs);
    leases.push(`${n}: ${lease.durationS} s / ${lease.renewS} s / ${lease.retryS} s`);
    const audit = new AuditReader(cp.state.auditLog);
    audit.skipToEnd();
    const started = Date.now();
    const op = await startOperator(cp, {
      replicas: 3,
      workDir: o.workDir,
      tag: `scale${n}`,
      env: {
        WATCH_NAMESPACES: namespace,
        LEASE_DURATION: `${lease.durationS}s`,
        RENEW_DEADLINE: `${lease.renewS}s`,
        RETRY_PERIOD: `${lease.retryS}s`,
      },
    });
    try {
      const leader = await op.waitLeader(120_000);
      const cold = await waitStatusWrites(audit, namespace, leader, n, started, 900_000, o.log);
      const coldReconcileMs = cold[cold.length - 1]!.stageAt - started;
      o.log(`scale ${n}: ${leader} reconciled all ${n} ${Math.round(coldReconcileMs)} ms after the replicas started`);
      await sleep(IDLE_SETTLE_MS); // idle, caches warm
      const rss = op.identities.map((id) => rssOf(op.byIdentity.get(id)!.pid) / MiB);
      const heapUsedMiB = await Promise.all(
        op.identities.map(
          async (id) => (await scrapeGauge(op.byIdentity.get(id)!, 'nodejs_heap_size_used_bytes')) / MiB,
        ),
      );
      const rssLeaderMiB = rss[op.identities.indexOf(leader)]!;
      const rssMaxStandbyMiB = Math.max(...rss.filter((_, i) => op.identities[i] !== leader));
      o.log(
        `scale ${n}: RSS (V8 heap used) ${op.identities.map((id, i) => `${id}${id === leader ? ' (leader)' : ''} ${rss[i]!.toFixed(1)} MiB (${heapUsedMiB[i]!.toFixed(1)})`).join(', ')}`,
      );

      // 1. Quiet takeover: nothing changed while the leader was gone.
      o.log(`scale ${n}: SIGSTOP ${leader}; nothing changes; waiting for a standby to take over`);
      const quiet = await pauseAndTakeOver(
        audit,
        op,
        leader,
        async () => undefined,
        () => undefined,
      );
      o.log(
        `scale ${n}: quiet takeover by ${quiet.successor} ${quiet.takeoverMs} ms after the pause; every object had a pass ${quiet.firstPassMs} ms later`,
      );
      op.byIdentity.get(leader)!.signal('SIGKILL');
      await op.byIdentity.get(leader)!.waitExit();

      // 2. Busy takeover: every object changed while the leader was gone.
      o.log(`scale ${n}: SIGSTOP ${quiet.successor}; changing the spec of all ${n} SingletonJobs`);
      const statusAudit: AuditEvent[] = [];
      const pausedAt = audit.position;
      const busy = await pauseAndTakeOver(
        audit,
        op,
        quiet.successor,
        () => bumpGeneration(kc, namespace, n),
        (e) => {
          if (e.namespace === namespace && e.resource === PLURAL && e.subresource === 'status') statusAudit.push(e);
        },
      );
      if (busy.takeoverMs < busy.changedMs)
        notes.push(
          `the busy takeover (${busy.takeoverMs} ms after the pause) came before all ${n} spec changes were written (${busy.changedMs} ms)`,
        );
      o.log(
        `scale ${n}: busy takeover by ${busy.successor} ${busy.takeoverMs} ms after the pause; first pass ${busy.firstPassMs} ms`,
      );
      const seen = new Map<string, AuditEvent>();
      for (const e of statusAudit)
        if (e.user === busy.successor && isWrite(e) && succeeded(e) && e.name && !seen.has(e.name)) seen.set(e.name, e);
      const writes = await waitStatusWrites(audit, namespace, busy.successor, n, busy.at - 1000, 900_000, o.log, seen);
      const done = writes[writes.length - 1]!.stageAt;
      const resumeMs = done - busy.at;
      const throughputPerSec = n / Math.max(0.001, (done - Math.max(busy.at, writes[0]!.received)) / 1000);
      op.byIdentity.get(quiet.successor)!.signal('SIGKILL');
      await op.byIdentity.get(quiet.successor)!.waitExit();
      // What the new leader sent per object while catching up.
      const again = new AuditReader(cp.state.auditLog);
      again.seek(pausedAt);
      const byKind: Record<string, number> = {};
      for (const e of uniqueRequests(again.readNew())) {
        if (e.user !== busy.successor || e.received < busy.at - 1000 || e.received > done) continue;
        const k = `${e.verb} ${e.resource ?? e.requestURI.split('?')[0]}${e.subresource ? `/${e.subresource}` : ''}`;
        byKind[k] = (byKind[k] ?? 0) + 1;
      }
      const total = Object.values(byKind).reduce((a, b) => a + b, 0);
      notes.push(
        `busy takeover: the new leader sent ${total} requests while catching up (${(total / n).toFixed(1)} per object): ${Object.entries(
          byKind,
        )
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
      const behind = await unreconciled(kc, namespace);
      if (behind > 0) notes.push(`${behind} objects did not report observedGeneration == generation at the end`);
      const successorPid = op.byIdentity.get(busy.successor)!.pid;
      const rssAtLastWriteMiB = rssOf(successorPid) / MiB;
      await sleep(IDLE_SETTLE_MS); // the burst is over: what the leader keeps while idle
      const rssAfterMiB = rssOf(successorPid) / MiB;
      const rssPeakMiB = rssOf(successorPid, 'VmHWM') / MiB;
      notes.push(
        `RSS of the last leader after the busy takeover: ${rssAtLastWriteMiB.toFixed(1)} MiB at its last write, ${rssAfterMiB.toFixed(1)} MiB ${IDLE_SETTLE_MS / 1000} s later; peak over its life ${rssPeakMiB.toFixed(1)} MiB`,
      );
      o.log(
        `scale ${n}: busy takeover → all written ${resumeMs} ms (${throughputPerSec.toFixed(0)}/s); ${behind} behind; RSS ${rssAtLastWriteMiB.toFixed(1)} → ${rssAfterMiB.toFixed(1)} MiB (peak ${rssPeakMiB.toFixed(1)})`,
      );
      // How often the heap compactor's forced GC ran over this point, on every replica, and its pauses.
      const lifeMin = (Date.now() - started) / 60_000;
      const perReplica = await Promise.all(
        op.identities.map(async (id) => {
          const child = op.byIdentity.get(id)!;
          return {
            count: await scrapeGauge(child, 'singleton_operator_heap_compactions_total'),
            seconds: await scrapeGauge(child, 'singleton_operator_heap_compaction_duration_seconds_sum'),
          };
        }),
      );
      const counted = perReplica.filter((r) => Number.isFinite(r.count));
      const gcs = counted.reduce((a, r) => a + r.count, 0);
      const pauseSum = counted.reduce((a, r) => a + (Number.isFinite(r.seconds) ? r.seconds : 0), 0);
      const compactions = {
        total: gcs,
        meanPauseMs: gcs ? (pauseSum * 1000) / gcs : 0,
        replicaMinutes: lifeMin * counted.length,
      };
      notes.push(
        `heap compactor: ${gcs} forced GC(s) over ${compactions.replicaMinutes.toFixed(0)} replica-minutes (${counted.length} replicas, cold start, two takeovers and the idle waits), mean pause ${compactions.meanPauseMs.toFixed(0)} ms`,
      );
      points.push({
        objects: n,
        compactions,
        rssMiB: rss,
        heapUsedMiB,
        rssLeaderMiB,
        rssMaxStandbyMiB,
        rssAfterBusyMiB: rssAfterMiB,
        rssAtLastWriteMiB,
        rssPeakMiB,
        createMs,
        coldReconcileMs,
        takeoverMs: quiet.takeoverMs,
        quietFirstPassMs: quiet.firstPassMs,
        busyFirstPassMs: busy.firstPassMs,
        resumeMs,
        throughputPerSec,
        notes,
      });
    } finally {
      await op.stop();
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    }
  }
  return {
    replicas: 3,
    baseline: baselineRss(),
    points,
    method:
      `Objects carry a status history (5 recent runs, token, term) and a schedule never due during the run. Lease duration / renew deadline / retry here (not the defaults: ${leases.join('; ')}) so every object can be changed while a leader is paused (SIGSTOP). ` +
      "Two takeovers per size: quiet (nothing changed; the usual failover) and busy (every object's spec changed while the leader was paused; the standby sees the changes on its warm cache, and every object needs a status write). " +
      '"First pass" = takeover (the successor\'s first Lease write, audit log) → its log line saying every object has completed a reconcile pass; "all written" = takeover → its status write on the last object (audit log). ' +
      "Replicas run with the node flags of the image's ENTRYPOINT.",
    notes: [],
  };
}
