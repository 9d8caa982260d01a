// Our runs' Jobs as the audit log shows them, for the parts that time releases
// (the stampede, the common slot, the takeover before a slot). A run's Job is
// created suspended — at the slot, or up to spec.prepareAheadSeconds before it
// (a "prepared" run) — and starts when the operator releases it: the
// unsuspend, a JSON patch of the Job (src/controller/cluster/kube.ts
// unsuspend). At Metadata level the audit log has no bodies, so a release is
// "a successful patch of the Job by the operator's identity": the operator
// sends no other Job patch outside Kueue, which the benchmark does not use. A
// second successful patch of the same Job is counted and reported (a second
// release would be a bug).
import { isWrite, succeeded, type AuditEvent } from './audit.ts';
import { summarize, type Summary } from './stats.ts';

/** "verb resource[/subresource][ (dry run)]" of a request, the key of the per-kind request counts. */
export const requestKind = (e: AuditEvent) =>
  `${e.verb} ${e.resource ?? e.requestURI.split('?')[0]}${e.subresource ? `/${e.subresource}` : ''}${/[?&]dryRun=/.test(e.requestURI) ? ' (dry run)' : ''}`;

/** A stored Job create: a dry-run create (the operator's template check) stores nothing. */
export const isJobCreate = (e: AuditEvent) =>
  e.resource === 'jobs' && e.verb === 'create' && !e.subresource && !/[?&]dryRun=/.test(e.requestURI) && succeeded(e);

/** The SingletonJob a run's Job belongs to, from its name `<sj>-<slot unix seconds>[-<attempt>]`. */
export function ownerOf(job: string): string {
  const m = /^(.+)-\d{9,11}(?:-\d{1,3})?$/.exec(job);
  return m ? m[1]! : job;
}

interface JobRecord {
  name: string;
  createdAt?: number;
  creator?: string;
  /** Successful patches of the Job by the operator (releases), in commit order. */
  releases: Array<{ at: number; by: string }>;
  deletedAt?: number;
}

/** One request of anyone, kept small: the window sums are taken at the end. */
interface Req {
  received: number;
  stageAt: number;
  /** The identity, or the Pod of a ServiceAccount token (as `who` in add). */
  user: string;
  kind: string;
  write: boolean;
  ok: boolean;
}

export interface ReleaseSummary {
  /** Jobs of ours created (stored) in the namespace. */
  created: number;
  createdBeforeSlot: number;
  createdAfterSlot: number;
  /** Slot → each Job's first release, ms, sorted; releases before the slot are left out here and counted apart. */
  releasedMs: number[];
  released: Summary;
  /** Jobs whose first release was committed before the slot (an early start: a bug). */
  releasedBeforeSlot: string[];
  /** Jobs with more than one successful release patch, and how many (a bug). */
  releasedMoreThanOnce: Array<{ job: string; patches: number }>;
  /** Who created how many of the Jobs (the identity, or the Pod of a ServiceAccount token). */
  creators: Record<string, number>;
  /** Who released how many (the identity, or the Pod of a ServiceAccount token). */
  releasers: Record<string, number>;
  /** The most Jobs of one object that were created and neither released nor deleted at any one time. */
  maxPreparedPerObject: number;
  /** Objects that ever had more than one such Job. */
  objectsWithSeveralPrepared: string[];
  /** Commit time of the last first-release (unix ms), NaN when none. */
  lastReleaseAt: number;
}

export class RunLedger {
  readonly namespace: string;
  private readonly isOurs: (e: AuditEvent) => boolean;
  private readonly jobs = new Map<string, JobRecord>();
  private readonly reqs: Req[] = [];

  /** `isOurs`: whether a request came from the operator (any replica). */
  constructor(namespace: string, isOurs: (e: AuditEvent) => boolean) {
    this.namespace = namespace;
    this.isOurs = isOurs;
  }

  private job(name: string): JobRecord {
    let j = this.jobs.get(name);
    if (!j) {
      j = { name, releases: [] };
      this.jobs.set(name, j);
    }
    return j;
  }

  /**
   * Feeds one audit event (each request once: uniqueRequests). `who` names the sender in the counts below: the
   * identity, or the Pod of a ServiceAccount token (on the real node, where the replicas share one).
   */
  add(e: AuditEvent, who = e.pod ?? e.user): void {
    this.reqs.push({
      received: e.received,
      stageAt: e.stageAt,
      user: who,
      kind: requestKind(e),
      write: isWrite(e),
      ok: succeeded(e),
    });
    if (e.namespace !== this.namespace || e.resource !== 'jobs' || e.subresource || !e.name) return;
    if (isJobCreate(e) && this.isOurs(e)) {
      const j = this.job(e.name);
      j.createdAt = e.stageAt;
      j.creator = who;
    } else if (e.verb === 'patch' && succeeded(e) && this.isOurs(e)) {
      this.job(e.name).releases.push({ at: e.stageAt, by: who });
    } else if (e.verb === 'delete' && succeeded(e) && this.jobs.has(e.name)) {
      this.job(e.name).deletedAt ??= e.stageAt;
    }
  }

  /** Jobs of ours created so far, and how many of them before `beforeMs`. */
  createdCount(beforeMs = Infinity): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.createdAt !== undefined && j.createdAt < beforeMs) n++;
    return n;
  }

  /** Commit times of our Job creates, sorted. */
  jobCreateTimes(): number[] {
    const out: number[] = [];
    for (const j of this.jobs.values()) if (j.createdAt !== undefined) out.push(j.createdAt);
    return out.sort((a, b) => a - b);
  }

  /** Distinct Jobs released at or after `sinceMs`. */
  releasedCount(sinceMs = -Infinity): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.releases[0] && j.releases[0].at >= sinceMs) n++;
    return n;
  }

  /** Commit time of the matching senders' last successful write other than a Lease's (its renews go on while idle), or NaN. */
  lastWriteAt(user: (u: string) => boolean): number {
    let at = Number.NaN;
    for (const r of this.reqs)
      if (r.write && r.ok && user(r.user) && !r.kind.endsWith(' leases') && !(r.stageAt <= at)) at = r.stageAt;
    return at;
  }

  /** Requests of the matching senders received in [fromMs, toMs], by verb and resource. */
  requests(user: (u: string) => boolean, fromMs: number, toMs: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.reqs)
      if (user(r.user) && r.received >= fromMs && r.received <= toMs) out[r.kind] = (out[r.kind] ?? 0) + 1;
    return out;
  }

  /** Successful writes of everyone committed in [fromMs, toMs], and by sender. */
  writes(fromMs: number, toMs: number): { total: number; byUser: Record<string, number> } {
    const byUser: Record<string, number> = {};
    let total = 0;
    for (const r of this.reqs) {
      if (!r.write || !r.ok || r.stageAt < fromMs || r.stageAt > toMs) continue;
      total++;
      byUser[r.user] = (byUser[r.user] ?? 0) + 1;
    }
    return { total, byUser };
  }

  summary(slotMs: number): ReleaseSummary {
    const ours = [...this.jobs.values()].filter((j) => j.createdAt !== undefined || j.releases.length > 0);
    const released = ours.filter((j) => j.releases.length > 0);
    const releasers: Record<string, number> = {};
    for (const j of released) releasers[j.releases[0]!.by] = (releasers[j.releases[0]!.by] ?? 0) + 1;
    const onTime = released.filter((j) => j.releases[0]!.at >= slotMs);
    const releasedMs = onTime.map((j) => j.releases[0]!.at - slotMs).sort((a, b) => a - b);
    // Prepared (created, not yet released, not deleted) Jobs per object over time, in commit order.
    const steps: Array<{ at: number; owner: string; d: number }> = [];
    for (const j of ours) {
      if (j.createdAt === undefined) continue;
      const owner = ownerOf(j.name);
      steps.push({ at: j.createdAt, owner, d: 1 });
      const end = Math.min(j.releases[0]?.at ?? Infinity, j.deletedAt ?? Infinity);
      if (Number.isFinite(end)) steps.push({ at: end, owner, d: -1 });
    }
    // At equal times the end goes first: a Job released in the instant another is created is not two at once.
    steps.sort((a, b) => a.at - b.at || a.d - b.d);
    const open = new Map<string, number>();
    const several = new Set<string>();
    let maxPrepared = 0;
    for (const s of steps) {
      const n = (open.get(s.owner) ?? 0) + s.d;
      open.set(s.owner, n);
      if (n > maxPrepared) maxPrepared = n;
      if (n > 1) several.add(s.owner);
    }
    const created = ours.filter((j) => j.createdAt !== undefined);
    const creators: Record<string, number> = {};
    for (const j of created) creators[j.creator!] = (creators[j.creator!] ?? 0) + 1;
    return {
      creators,
      created: created.length,
      createdBeforeSlot: created.filter((j) => j.createdAt! < slotMs).length,
      createdAfterSlot: created.filter((j) => j.createdAt! >= slotMs).length,
      releasedMs,
      released: summarize(releasedMs),
      releasedBeforeSlot: released.filter((j) => j.releases[0]!.at < slotMs).map((j) => j.name),
      releasedMoreThanOnce: released
        .filter((j) => j.releases.length > 1)
        .map((j) => ({ job: j.name, patches: j.releases.length })),
      releasers,
      maxPreparedPerObject: maxPrepared,
      objectsWithSeveralPrepared: [...several],
      lastReleaseAt: releasedMs.length ? slotMs + releasedMs[releasedMs.length - 1]! : Number.NaN,
    };
  }
}

/** Sum of a per-kind count. */
export const totalOf = (byKind: Record<string, number> | undefined) =>
  Object.values(byKind ?? {}).reduce((a, b) => a + b, 0);

/** "get jobs 3, patch jobs 1000, …", largest first. */
export const fmtKinds = (byKind: Record<string, number> | undefined) =>
  Object.entries(byKind ?? {})
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';
