// The recorder: watches the Jobs, Pods and SingletonJobs of the namespace
// under test from before the first fault to the end, on the admin identity
// and straight to the API server (never through a replica's fault proxy).
// Each watch resumes from the last resourceVersion it saw, so an API-server or
// etcd restart loses no event; only a 410 Gone forces a relist, which is
// recorded as a gap (the checker then refuses to call the history complete).
// The audit log is read at the end.
import { existsSync, readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { Keys, GROUP, VERSION, PLURAL } from '../../src/api/v1alpha1/singletonjob.ts';
import { Env } from '../../src/controller/rules/jobs.ts';
import type { AuditWrite, History, JobRecord, PodRecord, RequestCost, SingletonJobInfo } from './history.ts';

/** Keys.attempt, spelled out so the recorder also reads histories of operators that predate it. */
const ATTEMPT = 'singleton.dev/attempt';

type Obj = {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    ownerReferences?: Array<{ kind: string; name: string; uid: string }>;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
};

interface WatchTarget {
  resource: string;
  path: string;
  list: () => Promise<unknown>;
  onEvent: (type: string, obj: Obj, at: number) => void;
}

export class Recorder {
  private readonly kc: k8s.KubeConfig;
  private readonly history: History;
  private readonly namespace: string;
  private readonly jobs = new Map<string, JobRecord>();
  private readonly pods = new Map<string, PodRecord>();
  private readonly sjs = new Map<string, SingletonJobInfo>();
  private stopped = false;
  private aborts = new Set<AbortController>();
  private running: Promise<void>[] = [];
  /** Called for every change the recorder sees (the harness logs runs from it). */
  onJob: ((job: JobRecord, type: string) => void) | undefined;

  constructor(kc: k8s.KubeConfig, namespace: string, history: History) {
    this.kc = kc;
    this.namespace = namespace;
    this.history = history;
  }

  async start(): Promise<void> {
    const namespace = this.namespace;
    const batch = this.kc.makeApiClient(k8s.BatchV1Api);
    const core = this.kc.makeApiClient(k8s.CoreV1Api);
    const custom = this.kc.makeApiClient(k8s.CustomObjectsApi);
    const targets: WatchTarget[] = [
      {
        resource: 'jobs',
        path: `/apis/batch/v1/namespaces/${namespace}/jobs`,
        list: () => batch.listNamespacedJob({ namespace }),
        onEvent: (t, o, at) => this.onJobEvent(t, o, at),
      },
      {
        resource: 'pods',
        path: `/api/v1/namespaces/${namespace}/pods`,
        list: () => core.listNamespacedPod({ namespace }),
        onEvent: (t, o, at) => this.onPodEvent(t, o, at),
      },
      {
        resource: PLURAL,
        path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
        list: () => custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL }),
        onEvent: (t, o, at) => this.onSingletonJobEvent(t, o, at),
      },
    ];
    // List first so every watch starts at a known resourceVersion before any fault.
    const initial = await Promise.all(targets.map((t) => this.listWithRetry(t, 60_000)));
    this.running = targets.map((t, i) => this.loop(t, (initial[i] as { rv: string }).rv));
  }

  /** A fresh CRD answers 429 "storage is (re)initializing" for a moment; so does a restarting API server. */
  private async listWithRetry(t: WatchTarget, timeoutMs: number): Promise<{ rv: string; seen: Set<string> }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.list(t);
      } catch (err) {
        if (this.stopped || Date.now() > deadline) throw err;
        await sleep(500);
      }
    }
  }

  private async list(t: WatchTarget): Promise<{ rv: string; seen: Set<string> }> {
    const list = (await t.list()) as { metadata?: { resourceVersion?: string }; items: Obj[] };
    const at = Date.now();
    const seen = new Set<string>();
    for (const item of list.items) {
      if (item.metadata?.uid) seen.add(item.metadata.uid);
      t.onEvent('LISTED', item, at);
    }
    return { rv: list.metadata?.resourceVersion ?? '0', seen };
  }

  /** What the recorder knew of each Job/Pod before a relist: uid → "terminal/deleted" state. */
  private snapshot(resource: string): Map<string, string> {
    const records: Array<{ uid: string; terminalRv?: string; deletedRv?: string }> =
      resource === 'jobs' ? [...this.jobs.values()] : resource === 'pods' ? [...this.pods.values()] : [];
    return new Map(records.map((r) => [r.uid, `${r.terminalRv ?? ''}/${r.deletedRv ?? ''}`]));
  }

  /**
   * After a relist: counts objects that appeared while the watch was down —
   * their creation's place in etcd's order is unknown (the list gives only an
   * upper bound), and the checks order by it. Marks the ones that vanished as
   * deleted at the list's resourceVersion. An end (terminal, deleted) seen
   * only by the relist is not counted: its upper bound can only make a Pod
   * look alive longer (a stricter check), and no check orders by a Job's end.
   */
  private reconcileGap(resource: string, before: Map<string, string>, seen: Set<string>, rv: string): number {
    const records: Array<{ uid: string; terminalRv?: string; deletedRv?: string; deletedAt?: number }> =
      resource === 'jobs' ? [...this.jobs.values()] : resource === 'pods' ? [...this.pods.values()] : [];
    let missed = 0;
    for (const r of records) {
      const was = before.get(r.uid);
      if (was === undefined) missed++;
      else if (!r.deletedRv && !seen.has(r.uid)) {
        r.deletedRv = rv;
        r.deletedAt = Date.now();
      }
    }
    return missed;
  }

  private async loop(t: WatchTarget, fromRv: string): Promise<void> {
    let rv = fromRv;
    const watch = new k8s.Watch(this.kc);
    while (!this.stopped) {
      const result = await new Promise<'gone' | 'closed'>((resolve) => {
        let gone = false;
        watch
          .watch(
            t.path,
            { resourceVersion: rv, allowWatchBookmarks: true },
            (type: string, obj: Obj) => {
              if (type === 'ERROR') {
                if ((obj as { code?: number }).code === 410) gone = true;
                return;
              }
              const newRv = obj.metadata?.resourceVersion;
              if (newRv) rv = newRv;
              if (type !== 'BOOKMARK') t.onEvent(type, obj, Date.now());
            },
            () => resolve(gone ? 'gone' : 'closed'),
          )
          .then(
            (abort) => {
              this.aborts.add(abort);
              if (this.stopped) abort.abort();
            },
            () => resolve('closed'),
          );
      });
      if (this.stopped) return;
      if (result === 'gone') {
        const from = Date.now();
        const before = this.snapshot(t.resource);
        let seen: Set<string>;
        try {
          ({ rv, seen } = await this.listWithRetry(t, Infinity));
        } catch {
          return;
        }
        this.history.gaps.push({
          resource: t.resource,
          from,
          to: Date.now(),
          missed: this.reconcileGap(t.resource, before, seen, rv),
        });
      } else {
        await sleep(100); // back soon after an API server restart: writes between its start and our relist are what a gap misses
      }
    }
  }

  private onJobEvent(type: string, obj: Obj, at: number): void {
    const m = obj.metadata ?? {};
    const owner = m.ownerReferences?.find((o) => o.kind === 'SingletonJob');
    if (!m.uid || !m.name || !owner) return;
    let job = this.jobs.get(m.uid);
    if (!job) {
      const spec = obj.spec as
        { template?: { spec?: { containers?: Array<{ env?: Array<{ name: string; value?: string }> }> } } } | undefined;
      const templateTokens = (spec?.template?.spec?.containers ?? []).flatMap((c) =>
        (c.env ?? []).filter((e) => e.name === Env.token).map((e) => e.value ?? ''),
      );
      job = {
        namespace: m.namespace ?? this.namespace,
        name: m.name,
        uid: m.uid,
        owner: owner.name,
        ownerUid: owner.uid,
        slot: m.annotations?.[Keys.slot],
        token: m.annotations?.[Keys.token],
        ...(m.annotations?.[ATTEMPT] ? { attempt: Number(m.annotations[ATTEMPT]) } : {}),
        ...(m.annotations?.[Keys.requestId] !== undefined ? { requestId: m.annotations[Keys.requestId] } : {}),
        templateTokens,
        createdRv: m.resourceVersion ?? '0',
        createdAt: at,
      };
      this.jobs.set(m.uid, job);
      this.history.jobs.push(job);
      this.onJob?.(job, 'created');
    }
    if (!job.started) {
      job.started = (obj.spec as { suspend?: boolean } | undefined)?.suspend !== true;
      if (job.started) job.startedAt = at;
    }
    const conditions =
      (obj.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? [];
    const end = conditions.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
    if (!job.terminalRv && end) {
      job.outcome = end.type as 'Complete' | 'Failed';
      job.terminalRv = m.resourceVersion;
      job.terminalAt = at;
      this.onJob?.(job, 'finished');
    }
    if (type === 'DELETED' && !job.deletedRv) {
      job.deletedRv = m.resourceVersion;
      job.deletedAt = at;
    }
  }

  private onPodEvent(type: string, obj: Obj, at: number): void {
    const m = obj.metadata ?? {};
    const owner = m.ownerReferences?.find((o) => o.kind === 'Job');
    if (!m.uid || !m.name) return;
    let pod = this.pods.get(m.uid);
    // A Pod orphaned from its Job (its owner reference removed) keeps being followed; one that never had
    // a Job is recorded when it carries the singletonjob annotation (the operator counts it as a run's).
    if (!pod && !owner && !m.annotations?.[Keys.singletonJob]) return;
    if (!pod) {
      pod = {
        namespace: m.namespace ?? this.namespace,
        name: m.name,
        uid: m.uid,
        jobName: owner?.name ?? '',
        jobUid: owner?.uid ?? '',
        ...(m.annotations?.[Keys.token] ? { token: m.annotations[Keys.token] } : {}),
        ...(m.annotations?.[Keys.singletonJob] ? { singletonJob: m.annotations[Keys.singletonJob] } : {}),
        createdRv: m.resourceVersion ?? '0',
        createdAt: at,
        runLabel: m.labels?.[Keys.run] ?? '',
      };
      this.pods.set(m.uid, pod);
      this.history.pods.push(pod);
    }
    const phase = (obj.status as { phase?: string } | undefined)?.phase;
    if (phase) pod.phase = phase;
    if (m.deletionTimestamp && !pod.terminatingRv) pod.terminatingRv = m.resourceVersion;
    if (!pod.terminalRv && (phase === 'Succeeded' || phase === 'Failed')) {
      pod.terminalRv = m.resourceVersion;
      pod.terminalAt = at;
    }
    if (type === 'DELETED' && !pod.deletedRv) {
      pod.deletedRv = m.resourceVersion;
      pod.deletedAt = at;
    }
  }

  private onSingletonJobEvent(type: string, obj: Obj, at: number): void {
    const m = obj.metadata ?? {};
    if (!m.uid || !m.name) return;
    let info = this.sjs.get(m.uid);
    if (!info) {
      const spec = (obj.spec ?? {}) as {
        schedule?: string;
        timeZone?: string;
        startingDeadlineSeconds?: number;
        suspend?: boolean;
        jobTemplate?: { spec?: { backoffLimit?: number } };
      };
      info = {
        namespace: m.namespace ?? this.namespace,
        name: m.name,
        uid: m.uid,
        schedule: spec.schedule ?? '',
        ...(spec.timeZone ? { timeZone: spec.timeZone } : {}),
        ...(spec.startingDeadlineSeconds ? { startingDeadlineSeconds: spec.startingDeadlineSeconds } : {}),
        ...(spec.suspend ? { suspend: true } : {}),
        ...(spec.jobTemplate?.spec?.backoffLimit ? { backoffLimit: spec.jobTemplate.spec.backoffLimit } : {}),
        createdAt: at,
        requests: [],
        conditions: [],
      };
      this.sjs.set(m.uid, info);
      this.history.singletonJobs.push(info);
    }
    const request = m.annotations?.[Keys.runNow];
    const requests = (info.requests ??= []);
    if (request !== undefined && requests[requests.length - 1]?.id !== request) requests.push({ id: request, at });
    const conditions = (info.conditions ??= []);
    const now =
      (
        obj.status as
          { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } | undefined
      )?.conditions ?? [];
    const lastOf = (t: string) => [...conditions].reverse().find((x) => x.type === t);
    for (const c of now) {
      const last = lastOf(c.type);
      if (last && last.status === c.status && last.reason === c.reason) continue;
      conditions.push({
        type: c.type,
        status: c.status,
        ...(c.reason ? { reason: c.reason } : {}),
        ...(c.message ? { message: c.message.slice(0, 300) } : {}),
        at,
      });
    }
    // A condition that went away (e.g. Contended once the other installation is gone).
    for (const t of new Set(conditions.map((c) => c.type))) {
      if (!now.some((c) => c.type === t) && lastOf(t)?.status !== 'Absent')
        conditions.push({ type: t, status: 'Absent', at });
    }
    const st = (obj.status ?? {}) as { leaderTerm?: number; currentToken?: number };
    const fences = (info.fences ??= []);
    const lastFence = fences[fences.length - 1];
    if (
      m.resourceVersion &&
      type !== 'DELETED' &&
      (lastFence?.leaderTerm !== st.leaderTerm || lastFence?.currentToken !== st.currentToken)
    ) {
      fences.push({
        rv: m.resourceVersion,
        at,
        ...(st.leaderTerm !== undefined ? { leaderTerm: st.leaderTerm } : {}),
        ...(st.currentToken !== undefined ? { currentToken: st.currentToken } : {}),
      });
    }
    if (type === 'DELETED' && info.deletedAt === undefined) info.deletedAt = at;
  }

  /** The live record of a SingletonJob (by UID), for the harness's actions. */
  singletonJob(uid: string): SingletonJobInfo | undefined {
    return this.sjs.get(uid);
  }

  /** SingletonJobs the checker must not judge (the bad-input corpus). */
  forget(names: Set<string>): void {
    this.history.singletonJobs = this.history.singletonJobs.filter((s) => !names.has(s.name));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const a of this.aborts) a.abort();
    await Promise.race([Promise.all(this.running), sleep(3000)]);
  }
}

interface AuditEvent {
  verb?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number; message?: string };
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
  stage?: string;
  /** Logged for SingletonJob status writes only (test/controlplane's audit policy). */
  requestObject?: {
    metadata?: { uid?: string; resourceVersion?: string };
    status?: { leaderTerm?: number; currentToken?: number; activeRun?: { name?: string } };
  };
}

/** The completed requests of one of `users` received since `sinceMs`, as AuditWrite records, that `keep` selects. */
function readAudit(file: string, users: Set<string>, sinceMs: number, keep: (e: AuditEvent) => boolean): AuditWrite[] {
  if (!existsSync(file)) return [];
  const out: AuditWrite[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"verb"')) continue;
    let e: AuditEvent;
    try {
      e = JSON.parse(line) as AuditEvent;
    } catch {
      continue; // a line cut by a SIGKILLed API server
    }
    const user = e.user?.username;
    if (!user || !users.has(user) || !e.verb || (e.stage && e.stage !== 'ResponseComplete') || !keep(e)) continue;
    const receivedUs = microseconds(e.requestReceivedTimestamp);
    if (receivedUs / 1000 < sinceMs) continue;
    out.push({
      user,
      verb: e.verb,
      resource: e.objectRef?.resource ?? '',
      ...(e.objectRef?.subresource ? { subresource: e.objectRef.subresource } : {}),
      ...(e.objectRef?.namespace ? { namespace: e.objectRef.namespace } : {}),
      ...(e.objectRef?.name ? { name: e.objectRef.name } : {}),
      code: e.responseStatus?.code ?? 0,
      receivedUs,
      completedUs: microseconds(e.stageTimestamp),
      ...(e.objectRef?.subresource === 'status' && e.requestObject ? { status: statusOf(e.requestObject) } : {}),
    });
  }
  return out;
}

function statusOf(o: NonNullable<AuditEvent['requestObject']>): NonNullable<AuditWrite['status']> {
  const s = o.status ?? {};
  return {
    ...(o.metadata?.uid ? { uid: o.metadata.uid } : {}),
    ...(o.metadata?.resourceVersion ? { resourceVersion: o.metadata.resourceVersion } : {}),
    ...(s.leaderTerm !== undefined ? { leaderTerm: s.leaderTerm } : {}),
    ...(s.currentToken !== undefined ? { currentToken: s.currentToken } : {}),
    ...(s.activeRun?.name ? { activeRun: s.activeRun.name } : {}),
  };
}

/** What `users` asked of the API server (watches not counted): totals for the report. */
export function readAuditCost(file: string, users: Set<string>, sinceMs: number): RequestCost {
  const every = readAudit(file, users, sinceMs, (e) => e.verb !== 'watch');
  const all = every.filter((w) => w.resource !== 'leases' && w.resource !== 'events');
  const writes = all.filter((w) => w.verb !== 'get' && w.verb !== 'list');
  return {
    total: all.length,
    writes: writes.length,
    conflicts: all.filter((w) => w.code === 409).length,
    refused: all.filter((w) => w.code === 422).length,
    leases: every.filter((w) => w.resource === 'leases').length,
    events: every.filter((w) => w.resource === 'events').length,
  };
}

/** Every mutating request in the audit log made by one of `users`. */
export function readAuditWrites(file: string, users: Set<string>, sinceMs: number): AuditWrite[] {
  return readAudit(file, users, sinceMs, (e) => e.verb !== 'get' && e.verb !== 'list' && e.verb !== 'watch');
}

/**
 * Every request of one of `users` the API server refused with 403, reads
 * included: the replicas run with the chart's RBAC, so a permission the chart
 * lacks shows up here even where the operator only degrades. A terminating
 * namespace refuses creates with 403 too; that is not RBAC and is left out.
 */
export function readAuditForbidden(file: string, users: Set<string>, sinceMs: number): AuditWrite[] {
  return readAudit(
    file,
    users,
    sinceMs,
    (e) => e.responseStatus?.code === 403 && !e.responseStatus.message?.includes('because it is being terminated'),
  );
}

/** RFC 3339 with up to nanoseconds → epoch microseconds (Date.parse keeps only ms). */
export function microseconds(ts: string | undefined): number {
  if (!ts) return 0;
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!match) return Date.parse(ts) * 1000;
  const whole = Date.parse(`${match[1]}${match[3]}`);
  const frac = (match[2] ?? '').padEnd(6, '0').slice(0, 6);
  return whole * 1000 + Number(frac);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
