// The history checker: pure functions over a recorded History, one per
// promised invariant. Each returns the violations it found, with a sentence a
// person can act on; `checkHistory` runs them all and orders the violations by
// when they happened, so the first one is the root to look at.
import { CronExpressionParser } from 'cron-parser';
import { compareRv, type AuditWrite, type FaultRecord, type History, type JobRecord, type PodRecord } from './history.ts';

export type CheckName =
  | 'one-in-flight'
  | 'slot-at-most-once'
  | 'slot-exactly-once'
  | 'slot-off-schedule'
  | 'slot-early'
  | 'tokens-increase'
  | 'deposed-writes'
  | 'recovery'
  | 'crash-loop'
  | 'history-complete'
  | 'bad-input';

export interface Violation {
  check: CheckName;
  /** Harness wall-clock ms when it happened (for ordering and attribution to a fault). */
  at: number;
  message: string;
}

export interface CheckOptions {
  /**
   * A slot counts as "healthy" when no fault window touches [slot − settle,
   * slot + settle]; slots later than endedAt − settle are not yet judged.
   */
  settleMs: number;
  /** How long before its Job's creation a run may have been reserved (the test hook's pause plus slack). */
  reserveLeadMs?: number;
}

const TOKEN_LIMIT = 2n ** 53n;
/** Timer granularity; a run seen this much before its slot is early. */
const EARLY_TOLERANCE_MS = 250;

function rel(h: History, at: number | undefined): string {
  if (at === undefined) return 'never';
  return `+${((at - h.startedAt) / 1000).toFixed(1)}s`;
}

function ref(o: { namespace: string; name: string }): string {
  return `${o.namespace}/${o.name}`;
}

function jobsByOwner(h: History): Map<string, JobRecord[]> {
  const out = new Map<string, JobRecord[]>();
  for (const job of h.jobs) {
    const list = out.get(job.ownerUid) ?? [];
    list.push(job);
    out.set(job.ownerUid, list);
  }
  for (const list of out.values()) list.sort((a, b) => compareRv(a.createdRv, b.createdRv));
  return out;
}

function podEnd(p: PodRecord): string | undefined {
  if (p.terminalRv && p.deletedRv) return compareRv(p.terminalRv, p.deletedRv) <= 0 ? p.terminalRv : p.deletedRv;
  return p.terminalRv ?? p.deletedRv;
}

/** Guarantee 1: never two non-terminal Pods of one SingletonJob at once (judged on etcd's commit order). */
export function checkOneInFlight(h: History): Violation[] {
  const violations: Violation[] = [];
  const jobOwner = new Map(h.jobs.map((j) => [j.uid, j]));
  const podsByOwner = new Map<string, PodRecord[]>();
  for (const pod of h.pods) {
    const job = jobOwner.get(pod.jobUid);
    if (!job) continue;
    const list = podsByOwner.get(job.ownerUid) ?? [];
    list.push(pod);
    podsByOwner.set(job.ownerUid, list);
  }
  for (const pods of podsByOwner.values()) {
    pods.sort((a, b) => compareRv(a.createdRv, b.createdRv));
    const open: PodRecord[] = [];
    for (const pod of pods) {
      // Pods still non-terminal when this one was created.
      const overlapping = open.filter((o) => {
        const end = podEnd(o);
        return end === undefined || compareRv(pod.createdRv, end) < 0;
      });
      const first = overlapping[0];
      if (first) {
        const jobA = jobOwner.get(first.jobUid);
        const jobB = jobOwner.get(pod.jobUid);
        violations.push({
          check: 'one-in-flight',
          at: pod.createdAt,
          message:
            `SingletonJob ${jobB ? `${jobB.namespace}/${jobB.owner}` : '?'} had two non-terminal Pods at once: ` +
            `Pod ${first.name} (Job ${jobA?.name}, created at rv ${first.createdRv} ${rel(h, first.createdAt)}, ` +
            `terminal at ${podEnd(first) ? `rv ${podEnd(first)} ${rel(h, first.terminalAt ?? first.deletedAt)}` : 'never'}` +
            `${first.terminatingRv ? `, marked for deletion at rv ${first.terminatingRv}` : ''}, last phase ${first.phase ?? '?'}, run label "${first.runLabel ?? '?'}") was still there when ` +
            `Pod ${pod.name} (Job ${jobB?.name}) was created at rv ${pod.createdRv} ${rel(h, pod.createdAt)}.`,
        });
      }
      open.push(pod);
    }
  }
  return violations;
}

function faultWindow(h: History, f: FaultRecord): [number, number] {
  return [f.startedAt, f.recoveredAt ?? h.endedAt];
}

/** True when no fault window touches [t − settle, t + settle]. */
export function healthyAround(h: History, t: number, settleMs: number): boolean {
  return h.faults.every((f) => {
    if (f.skipped) return true;
    const [from, to] = faultWindow(h, f);
    return to < t - settleMs || from > t + settleMs;
  });
}

function scheduleSlots(schedule: string, timeZone: string | undefined, from: number, to: number): number[] {
  const slots: number[] = [];
  if (to <= from) return slots;
  const it = CronExpressionParser.parse(schedule, { currentDate: new Date(from), endDate: new Date(to), ...(timeZone ? { tz: timeZone } : {}) });
  while (it.hasNext()) {
    const next = it.next().getTime();
    if (next > to) break;
    slots.push(next);
    if (slots.length > 100_000) throw new Error(`schedule "${schedule}" yields too many slots to check`);
  }
  return slots;
}

function isSlotOf(schedule: string, timeZone: string | undefined, slot: number): boolean {
  const it = CronExpressionParser.parse(schedule, { currentDate: new Date(slot - 1), ...(timeZone ? { tz: timeZone } : {}) });
  return it.next().getTime() === slot;
}

/** Guarantee 2: each due slot is run at most once, and exactly once when the cluster was healthy around it. */
/**
 * A Job is a run once it was let run. The operator creates every Job suspended
 * and unsuspends it only after the run recorded the Job's UID (a fenced status
 * write), so a deposed leader's create delivered late — after the run's Job
 * was deleted and its name freed — yields a Job that never gets a Pod and is
 * deleted as a stray: that is not a second run of the slot. Whether such a Job
 * ever got a Pod is judged by the Pod checks regardless.
 */
export const wasStarted = (job: JobRecord, h?: History): boolean => job.started !== false || (h?.pods.some((p) => p.jobUid === job.uid) ?? false);

export function checkSlots(h: History, options: CheckOptions): Violation[] {
  const violations: Violation[] = [];
  const byOwner = jobsByOwner(h);
  for (const sj of h.singletonJobs) {
    const jobs = byOwner.get(sj.uid) ?? [];
    const bySlot = new Map<number, JobRecord[]>();
    for (const job of jobs) {
      if (!job.slot) continue;
      if (!wasStarted(job, h)) continue;
      const slot = Date.parse(job.slot);
      if (Number.isNaN(slot)) {
        violations.push({ check: 'slot-off-schedule', at: job.createdAt, message: `Job ${ref(job)} carries an unreadable slot "${job.slot}".` });
        continue;
      }
      bySlot.set(slot, [...(bySlot.get(slot) ?? []), job]);
      if (!isSlotOf(sj.schedule, sj.timeZone, slot)) {
        violations.push({
          check: 'slot-off-schedule',
          at: job.createdAt,
          message: `Job ${ref(job)} runs slot ${job.slot}, which is not a time of SingletonJob ${ref(sj)}'s schedule "${sj.schedule}"${sj.timeZone ? ` (${sj.timeZone})` : ''}.`,
        });
      }
    }
    for (const [slot, runs] of bySlot) {
      // The recorder sees a Job after it was created, so "seen before its slot" means "created early".
      for (const run of runs.filter((r) => r.createdAt < slot - EARLY_TOLERANCE_MS)) {
        violations.push({
          check: 'slot-early',
          at: run.createdAt,
          message: `Job ${ref(run)} for slot ${new Date(slot).toISOString()} of SingletonJob ${ref(sj)} already existed at ${rel(h, run.createdAt)}, ${((slot - run.createdAt) / 1000).toFixed(1)} s before the slot was due.`,
        });
      }
      const [first, second] = runs;
      if (first && second) {
        violations.push({
          check: 'slot-at-most-once',
          at: second.createdAt,
          message:
            `Slot ${new Date(slot).toISOString()} of SingletonJob ${ref(sj)} ran ${runs.length} times: ` +
            runs.map((r) => `Job ${r.name} (token ${r.token ?? '?'}, created at rv ${r.createdRv} ${rel(h, r.createdAt)})`).join(', ') +
            '.',
        });
      }
    }
    if (sj.suspend) continue;
    let due: number[];
    try {
      due = scheduleSlots(sj.schedule, sj.timeZone, Math.max(sj.createdAt, h.startedAt), h.endedAt - options.settleMs);
    } catch (err) {
      violations.push({ check: 'slot-exactly-once', at: sj.createdAt, message: `SingletonJob ${ref(sj)} is judged but its schedule "${sj.schedule}" cannot be evaluated: ${(err as Error).message}` });
      continue;
    }
    for (const slot of due) {
      if (bySlot.has(slot)) continue;
      if (!healthyAround(h, slot, options.settleMs)) continue;
      // Forbid: a slot may be skipped while the previous run is still in flight. A run is in flight
      // from its reservation, which precedes its Job's creation by up to reserveLeadMs (the
      // pause-after-reserve test hook delays every create): a held slot reserved just before the
      // next slot occupies that next slot even though its Job appears just after it.
      const lead = options.reserveLeadMs ?? 0;
      const busy = jobs.some((j) => j.createdAt - lead <= slot && (j.terminalAt ?? j.deletedAt ?? Infinity) >= slot);
      if (busy) continue;
      violations.push({
        check: 'slot-exactly-once',
        at: slot,
        message:
          `Slot ${new Date(slot).toISOString()} (${rel(h, slot)}) of SingletonJob ${ref(sj)} was due while the cluster was healthy ` +
          `(no fault within ±${options.settleMs / 1000}s) but no run was created for it.`,
      });
    }
  }
  return violations;
}

/** Guarantee 3: tokens strictly increase per SingletonJob in creation order, stay below 2^53 and reach the workload. */
export function checkTokens(h: History): Violation[] {
  const violations: Violation[] = [];
  for (const jobs of jobsByOwner(h).values()) {
    let previous: { job: JobRecord; token: bigint } | undefined;
    for (const job of jobs) {
      if (!job.token || !/^\d+$/.test(job.token)) {
        violations.push({ check: 'tokens-increase', at: job.createdAt, message: `Job ${ref(job)} carries no readable fencing token (got ${JSON.stringify(job.token)}).` });
        continue;
      }
      const token = BigInt(job.token);
      if (token <= 0n || token >= TOKEN_LIMIT) {
        violations.push({ check: 'tokens-increase', at: job.createdAt, message: `Job ${ref(job)} carries token ${job.token}, outside 1 … 2^53−1.` });
      }
      if (job.templateTokens.length === 0 || job.templateTokens.some((t) => t !== job.token)) {
        violations.push({
          check: 'tokens-increase',
          at: job.createdAt,
          message: `Job ${ref(job)} has token ${job.token} in its annotation but [${job.templateTokens.join(', ')}] in its containers' env.`,
        });
      }
      if (previous && token <= previous.token && wasStarted(job, h)) {
        violations.push({
          check: 'tokens-increase',
          at: job.createdAt,
          message:
            `Tokens of SingletonJob ${job.namespace}/${job.owner} went from ${previous.token} (Job ${previous.job.name}, rv ${previous.job.createdRv} ${rel(h, previous.job.createdAt)}) ` +
            `to ${token} (Job ${job.name}, rv ${job.createdRv} ${rel(h, job.createdAt)}): not strictly increasing in creation order.`,
        });
      }
      if (wasStarted(job, h) && (!previous || token > previous.token)) previous = { job, token };
    }
  }
  return violations;
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const ok = (w: AuditWrite) => w.code >= 200 && w.code < 300;
const usToMs = (us: number) => Math.floor(us / 1000);

/**
 * The state guarantee 4 is about: what fencing protects. SingletonJob status
 * (CAS + CEL on the term and token), Jobs (deterministic names, reserved
 * first), Pods (deleted only with a UID precondition) and the Lease. Events
 * are deliberately not judged: core/v1 Events are informational (`kubectl
 * describe`), every create is a new object with a random name, so the API
 * server has nothing to compare a precondition against and cannot refuse a
 * deposed leader's delayed Event create (a request sent before a partition and
 * delivered after it). No decision reads them; they cannot break guarantees
 * 1–3. Everything else a replica writes stays judged.
 */
export const FENCED_RESOURCES = new Set(['singletonjobs', 'jobs', 'pods', 'leases']);

/**
 * Guarantee 4 (from the audit log): once a successor has written — its Lease
 * acquisition is its first write in the new term — no write of another replica
 * to fenced state succeeds. A write counts only when the API server received it
 * after the successor's acquisition had completed (concurrent requests are
 * undecidable from the log). A replica that never held the Lease must not
 * write at all.
 *
 * One late write is by design harmless and not a violation: the create of the
 * Job of a run that the same replica had reserved (an accepted status write of
 * that SingletonJob) before the successor acquired. The run exists from its
 * reservation on; its Job has one deterministic name and carries the reserved
 * token, so whoever creates it first creates the same run (the successor's own
 * create is then AlreadyExists, and it adopts the Job). A Job create without
 * such a reservation is a genuinely new run and stays a violation.
 */
export function checkDeposedWrites(h: History): Violation[] {
  const violations: Violation[] = [];
  const replicas = new Set(h.replicas);
  const all = h.writes
    .filter((w) => replicas.has(w.user) && WRITE_VERBS.has(w.verb) && ok(w))
    .sort((a, b) => a.receivedUs - b.receivedUs || a.completedUs - b.completedUs);
  const writes = all.filter((w) => FENCED_RESOURCES.has(w.resource));
  const reservedBefore = (w: AuditWrite, acquiredUs: number): boolean => {
    if (w.verb !== 'create' || w.resource !== 'jobs' || w.subresource) return false;
    // The Job this create made: the first record of that name seen after the request arrived.
    const named = h.jobs.filter((j) => j.namespace === w.namespace && j.name === w.name && j.token !== undefined);
    const job = named.filter((j) => j.createdAt >= usToMs(w.receivedUs) - 1).sort((a, b) => a.createdAt - b.createdAt)[0];
    if (!job) return false;
    // Recreating a name after the run's Job was deleted is harmless only if that Job never ran.
    const recreated = named.some((j) => j.createdAt < job.createdAt);
    if (recreated && wasStarted(job, h)) return false;
    return all.some(
      (r) =>
        r.user === w.user &&
        r.resource === 'singletonjobs' &&
        r.subresource === 'status' &&
        r.verb === 'update' &&
        r.namespace === job.namespace &&
        r.name === job.owner &&
        r.completedUs <= acquiredUs,
    );
  };
  const isLease = (w: AuditWrite) => w.resource === 'leases' && w.namespace === h.lease.namespace && w.name === h.lease.name && !w.subresource;
  let lastLeaseWriter: string | undefined;
  let leader: { user: string; completedUs: number } | undefined;
  for (const w of writes) {
    if (isLease(w) && w.verb !== 'delete') {
      if (w.user !== lastLeaseWriter) leader = { user: w.user, completedUs: w.completedUs };
      lastLeaseWriter = w.user;
      continue;
    }
    const what = `${w.verb} ${w.resource}${w.subresource ? `/${w.subresource}` : ''} ${w.namespace ? `${w.namespace}/` : ''}${w.name ?? ''} (HTTP ${w.code})`;
    if (!leader) {
      violations.push({
        check: 'deposed-writes',
        at: usToMs(w.receivedUs),
        message: `Replica ${w.user} wrote ${what} at ${rel(h, usToMs(w.receivedUs))} although no replica had acquired the Lease ${ref(h.lease)} yet.`,
      });
    } else if (leader.user !== w.user && w.receivedUs > leader.completedUs && !reservedBefore(w, leader.completedUs)) {
      violations.push({
        check: 'deposed-writes',
        at: usToMs(w.receivedUs),
        message:
          `Replica ${w.user} wrote ${what} at ${rel(h, usToMs(w.receivedUs))}, after replica ${leader.user} had taken the Lease ` +
          `${ref(h.lease)} at ${rel(h, usToMs(leader.completedUs))}: a deposed (or never-elected) replica's write was accepted.`,
      });
    }
  }
  return violations;
}

/** Every replica healthy again (and a leader renewing) within the bound after each fault. */
export function checkRecovery(h: History): Violation[] {
  const violations: Violation[] = [];
  for (const f of h.faults) {
    if (f.skipped) continue;
    if (f.recoveredAt === undefined) {
      violations.push({
        check: 'recovery',
        at: f.healedAt,
        message: `After fault ${f.kind} on ${f.target} (${f.detail}), healed at ${rel(h, f.healedAt)}, the replicas never became healthy again with a renewing leader.`,
      });
    } else if (f.recoveredAt - f.healedAt > h.recoveryBoundMs) {
      violations.push({
        check: 'recovery',
        at: f.healedAt,
        message:
          `After fault ${f.kind} on ${f.target} (${f.detail}), recovery took ${((f.recoveredAt - f.healedAt) / 1000).toFixed(1)} s ` +
          `(healed ${rel(h, f.healedAt)}, recovered ${rel(h, f.recoveredAt)}), over the bound of ${h.recoveryBoundMs / 1000} s.`,
      });
    }
  }
  return violations;
}

/** No replica exits on its own: under a Deployment every such exit is a step towards CrashLoopBackOff. */
export function checkCrashLoops(h: History): Violation[] {
  return h.exits
    .filter((e) => !e.expected)
    .map((e) => ({
      check: 'crash-loop' as const,
      at: e.at,
      message:
        `Replica ${e.replica} exited on its own at ${rel(h, e.at)} (code ${e.code ?? '-'}, signal ${e.signal ?? '-'}).` +
        (e.logTail ? `\nLast lines of its log:\n${e.logTail}` : ''),
    }));
}

/** No Job or Pod changed while a watch had lost continuity; otherwise the exact checks above could have missed something. */
export function checkHistoryComplete(h: History): Violation[] {
  return h.gaps
    .filter((g) => g.missed > 0)
    .map((g) => ({
      check: 'history-complete' as const,
      at: g.from,
      message: `The recorder's ${g.resource} watch lost continuity from ${rel(h, g.from)} to ${rel(h, g.to)} and ${g.missed} object(s) changed meanwhile: their commit order is not exactly known.`,
    }));
}

/** Guarantee 6: every malformed SingletonJob was refused or surfaced as Ready=False. */
export function checkBadInput(h: History): Violation[] {
  return h.badInput
    .filter((b) => b.outcome === 'accepted')
    .map((b) => ({
      check: 'bad-input' as const,
      at: h.startedAt,
      message: `Malformed SingletonJob "${b.name}" (${b.description}) was neither rejected by the API server nor marked Ready=False: ${b.message}`,
    }));
}

export function checkHistory(h: History, options: CheckOptions): Violation[] {
  return [
    ...checkOneInFlight(h),
    ...checkSlots(h, options),
    ...checkTokens(h),
    ...checkDeposedWrites(h),
    ...checkRecovery(h),
    ...checkCrashLoops(h),
    ...checkHistoryComplete(h),
    ...checkBadInput(h),
  ].sort((a, b) => a.at - b.at);
}

/** A readable account: the first violation in full, then one line per further one. */
export function describeViolations(h: History, violations: Violation[]): string {
  const [first, ...rest] = violations;
  if (!first) return 'No violations.';
  const lines = [`${violations.length} violation(s). First, at ${rel(h, first.at)} [${first.check}]:`, `  ${first.message.replace(/\n/g, '\n  ')}`];
  const faults = h.faults.filter((f) => !f.skipped && f.startedAt <= first.at && (f.recoveredAt ?? h.endedAt) + h.leaseDurationMs >= first.at);
  if (faults.length > 0) lines.push(`  Faults active around it: ${faults.map((f) => `${f.kind} on ${f.target} (${rel(h, f.startedAt)}–${rel(h, f.healedAt)})`).join('; ')}`);
  for (const v of rest.slice(0, 20)) lines.push(`- ${rel(h, v.at)} [${v.check}] ${v.message.split('\n')[0]}`);
  if (rest.length > 20) lines.push(`- … and ${rest.length - 20} more`);
  lines.push(`Reproduce with --seed ${h.seed}.`);
  return lines.join('\n');
}
