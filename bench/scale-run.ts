// Part (c): scale and memory of our operator at 100 / 1,000 / 10,000
// SingletonJobs. For each size, in a fresh namespace:
//  1. create N SingletonJobs (no schedule due during the run) and give each a
//     history in its status (recent finished runs, a token, a term) — what a
//     long-lived object carries;
//  2. start 3 replicas (a lease of at least 60 s, longer for many objects, so
//     the benchmark has time to change every object while the leader is paused);
//     cold start = process start → the first leader's status write on every
//     object (audit log);
//  3. RSS of every replica (VmRSS) once idle;
//  4. SIGSTOP the leader, change every object's spec (generation + 1) — the
//     standbys see it on their warm caches — then wait for a standby to take
//     over: resume = its first Lease write → its status write on the last
//     object (audit log), throughput = N / that time; SIGKILL the old leader;
//  5. check every object reports status.observedGeneration == generation.
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../test/controlplane/controlplane.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../src/api/v1alpha1/singletonjob.ts';
import { AuditReader, isWrite, succeeded, uniqueRequests, type AuditEvent } from './lib/audit.ts';
import { mapLimit } from './lib/kube.ts';
import { rssOf, sleep } from './lib/proc.ts';
import { installCrds, OPERATOR_LEASE, OPERATOR_NAMESPACE, operatorPrerequisites, scrapeGauge, startOperator } from './operator.ts';
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

interface Listed {
  items: Array<{ metadata: { name: string; generation?: number }; status?: { observedGeneration?: number } }>;
  metadata?: { continue?: string };
}

function history(i: number): Record<string, unknown> {
  // Daily runs of the last five days (the schedule itself is never due during the run).
  const base = Math.floor(Date.now() / 86_400_000) * 86_400_000 + (i % 97) * 60_000;
  const runs = Array.from({ length: 5 }, (_, k) => {
    const slot = new Date(base - (k + 1) * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    return { name: `sj-${i}-${k}`, token: 5 - k, term: 1, kind: 'Scheduled', slot, outcome: k === 3 ? 'Failed' : 'Succeeded', finishedTime: slot };
  });
  return { currentToken: 5, leaderTerm: 1, lastScheduleTime: runs[0]!.slot, lastSuccessfulTime: runs[0]!.finishedTime, recentRuns: runs };
}

async function createObjects(kc: k8s.KubeConfig, namespace: string, n: number): Promise<void> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
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
            spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'registry.local/payroll:1', command: ['run', '--night'], env: [{ name: 'MODE', value: 'batch' }] }] } } },
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
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  await mapLimit(n, 32, async (i) => {
    await custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name: `sj-${String(i).padStart(5, '0')}`, body: { spec: { jobTemplate: { metadata: { annotations: { 'bench.singleton.dev/rev': '1' } } } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  });
}

async function unreconciled(kc: k8s.KubeConfig, namespace: string): Promise<number> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let behind = 0;
  let cont: string | undefined;
  do {
    const page = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, limit: 2000, _continue: cont })) as Listed;
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
      if (e.namespace !== namespace || e.resource !== PLURAL || e.subresource !== 'status' || e.user !== user || !isWrite(e) || !succeeded(e) || e.received < since || !e.name) continue;
      if (!first.has(e.name)) first.set(e.name, e);
    }
    if (first.size >= n) break;
    if (Date.now() > deadline) throw new Error(`${user} wrote the status of only ${first.size} of ${n} SingletonJobs within ${Math.round(timeoutMs / 1000)} s`);
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
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as { bareMiB: number; clientNodeMiB: number; allDepsMiB: number };
}

export async function runScale(cp: ControlPlane, o: { counts: number[]; workDir: string; log: (m: string) => void }): Promise<ScaleResult> {
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
      env: { WATCH_NAMESPACES: namespace, LEASE_DURATION: `${lease.durationS}s`, RENEW_DEADLINE: `${lease.renewS}s`, RETRY_PERIOD: `${lease.retryS}s` },
    });
    try {
      const leader = await op.waitLeader(120_000);
      const cold = await waitStatusWrites(audit, namespace, leader, n, started, 600_000, o.log);
      const coldReconcileMs = cold[cold.length - 1]!.stageAt - started;
      o.log(`scale ${n}: ${leader} reconciled all ${n} ${Math.round(coldReconcileMs)} ms after the replicas started`);
      await sleep(Math.min(30_000, 5_000 + n)); // idle, caches warm, GC settled
      const rss = op.identities.map((id) => rssOf(op.byIdentity.get(id)!.pid) / MiB);
      const heapUsedMiB = await Promise.all(op.identities.map(async (id) => (await scrapeGauge(op.byIdentity.get(id)!, 'nodejs_heap_size_used_bytes')) / MiB));
      const rssLeaderMiB = rss[op.identities.indexOf(leader)]!;
      const rssMaxStandbyMiB = Math.max(...rss.filter((_, i) => op.identities[i] !== leader));
      o.log(`scale ${n}: RSS (V8 heap used) ${op.identities.map((id, i) => `${id}${id === leader ? ' (leader)' : ''} ${rss[i]!.toFixed(1)} MiB (${heapUsedMiB[i]!.toFixed(1)})`).join(', ')}`);

      // Takeover with work to do.
      const old = op.byIdentity.get(leader)!;
      audit.readNew();
      const pausedAt = audit.position;
      const t0 = old.signal('SIGSTOP');
      o.log(`scale ${n}: SIGSTOP ${leader}; changing the spec of all ${n} SingletonJobs`);
      await bumpGeneration(kc, namespace, n);
      const bumpedAt = Date.now();
      o.log(`scale ${n}: changed all in ${bumpedAt - t0} ms; waiting for a standby to take over`);
      let takeover: AuditEvent | undefined;
      const deadline = Date.now() + 180_000;
      const leaseAudit: AuditEvent[] = [];
      const statusAudit: AuditEvent[] = [];
      while (!takeover) {
        if (Date.now() > deadline) throw new Error('no standby took over within 180 s of pausing the leader');
        await sleep(100);
        for (const e of uniqueRequests(audit.readNew())) {
          if (e.received < t0) continue;
          if (e.resource === 'leases' && e.namespace === OPERATOR_NAMESPACE && e.name === OPERATOR_LEASE) leaseAudit.push(e);
          else if (e.namespace === namespace && e.resource === PLURAL && e.subresource === 'status') statusAudit.push(e);
        }
        takeover = leaseAudit.find((e) => e.user !== leader && isWrite(e) && succeeded(e));
      }
      const successor = takeover.user;
      if (takeover.stageAt < bumpedAt) notes.push(`the takeover (${takeover.stageAt - t0} ms after the pause) came before all ${n} spec changes were written (${bumpedAt - t0} ms)`);
      o.log(`scale ${n}: ${successor} took over ${Math.round(takeover.stageAt - t0)} ms after the pause`);
      // The successor's status writes already read while waiting for the takeover count too.
      const seen = new Map<string, AuditEvent>();
      for (const e of statusAudit) if (e.user === successor && isWrite(e) && succeeded(e) && e.name && !seen.has(e.name)) seen.set(e.name, e);
      const writes = await waitStatusWrites(audit, namespace, successor, n, takeover.received, 600_000, o.log, seen);
      const done = writes[writes.length - 1]!.stageAt;
      const resumeMs = done - takeover.stageAt;
      const throughputPerSec = n / Math.max(0.001, (done - Math.max(takeover.stageAt, writes[0]!.received)) / 1000);
      old.signal('SIGKILL');
      await old.waitExit();
      // What the new leader sent per object while catching up.
      const again = new AuditReader(cp.state.auditLog);
      again.seek(pausedAt);
      const byKind: Record<string, number> = {};
      for (const e of uniqueRequests(again.readNew())) {
        if (e.user !== successor || e.received < takeover.received || e.received > done) continue;
        const k = `${e.verb} ${e.resource ?? e.requestURI.split('?')[0]}${e.subresource ? `/${e.subresource}` : ''}`;
        byKind[k] = (byKind[k] ?? 0) + 1;
      }
      const total = Object.values(byKind).reduce((a, b) => a + b, 0);
      notes.push(
        `the new leader sent ${total} requests while catching up (${(total / n).toFixed(1)} per object): ${Object.entries(byKind)
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
      const behind = await unreconciled(kc, namespace);
      if (behind > 0) notes.push(`${behind} objects did not report observedGeneration == generation at the end`);
      const rssAfter = op.identities.filter((id) => id !== leader).map((id) => `${id}${id === successor ? ' (new leader)' : ''} ${(rssOf(op.byIdentity.get(id)!.pid) / MiB).toFixed(1)} MiB`);
      notes.push(`RSS after the takeover: ${rssAfter.join(', ')}`);
      o.log(`scale ${n}: takeover → all reconciled ${resumeMs} ms (${throughputPerSec.toFixed(0)}/s); ${behind} behind`);
      points.push({ objects: n, rssMiB: rss, heapUsedMiB, rssLeaderMiB, rssMaxStandbyMiB, createMs, coldReconcileMs, takeoverMs: takeover.stageAt - t0, resumeMs, throughputPerSec, notes });
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
      `Objects carry a status history (5 recent runs, token, term) and a schedule never due during the run. Lease duration / renew deadline / retry here (not the defaults: ${leases.join('; ')}) so every object can be changed while the leader is paused (SIGSTOP); ` +
      'the standbys see those changes on their warm caches and the new leader must reconcile every object. "Reconciled" = the new leader\'s status write on that object (audit log); "takeover" = pause → successor\'s first Lease write.',
    notes: [],
  };
}
