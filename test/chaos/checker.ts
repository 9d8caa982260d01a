// The history checker: pure functions over a recorded History, one per
// promised invariant. Each returns the violations it found, with a sentence a
// person can act on; `checkHistory` runs them all and orders the violations by
// when they happened, so the first one is the root to look at.
import { CronExpressionParser } from 'cron-parser';
import {
  compareRv,
  type AuditWrite,
  type FaultRecord,
  type History,
  type Installation,
  type JobRecord,
  type PodRecord,
  type SingletonJobInfo,
} from './history.ts';
import {
  attemptOf,
  describeRun,
  installationsOf,
  jobsByKey,
  ok,
  podsByKey,
  ref,
  rel,
  runsOf,
  usToMs,
  wasStarted,
  WRITE_VERBS,
  type CheckName,
  type Violation,
} from './check-common.ts';
import {
  checkExpectations,
  checkInstallations,
  checkPodTokens,
  checkRequests,
  checkRetries,
  checkStrayJobs,
  checkWedged,
} from './checker-actions.ts';

export { wasStarted, type CheckName, type Violation };

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

/** When a Job's run began: its release (first seen let run), else its creation (never released, or an older history). */
function startOf(job: JobRecord): number {
  return job.startedAt ?? job.createdAt;
}

function podEnd(p: PodRecord): string | undefined {
  if (p.terminalRv && p.deletedRv) return compareRv(p.terminalRv, p.deletedRv) <= 0 ? p.terminalRv : p.deletedRv;
  return p.terminalRv ?? p.deletedRv;
}

/**
 * Guarantee 1: never two non-terminal Pods of one SingletonJob at once, judged
 * on etcd's commit order and per namespace/name — across delete and re-create
 * of the object, and for Pods whose Job was deleted or orphaned.
 */
export function checkOneInFlight(h: History): Violation[] {
  const violations: Violation[] = [];
  const jobOf = new Map(h.jobs.map((j) => [j.uid, j]));
  for (const [key, pods] of podsByKey(h)) {
    const open: typeof pods = [];
    for (const pod of pods) {
      // Pods still non-terminal when this one was created.
      const overlapping = open.filter((o) => {
        const end = podEnd(o);
        return end === undefined || compareRv(pod.createdRv, end) < 0;
      });
      const first = overlapping[0];
      if (first) {
        const jobA = jobOf.get(first.jobUid);
        const jobB = jobOf.get(pod.jobUid);
        violations.push({
          check: 'one-in-flight',
          at: pod.createdAt,
          message:
            `SingletonJob ${key} had two non-terminal Pods at once: ` +
            `Pod ${first.name} (Job ${jobA?.name}, token ${first.token ?? jobA?.token ?? '?'}, created at rv ${first.createdRv} ${rel(h, first.createdAt)}, ` +
            `terminal at ${podEnd(first) ? `rv ${podEnd(first)} ${rel(h, first.terminalAt ?? first.deletedAt)}` : 'never'}` +
            `${first.terminatingRv ? `, marked for deletion at rv ${first.terminatingRv}` : ''}, last phase ${first.phase ?? '?'}, run label "${first.runLabel ?? '?'}") was still there when ` +
            `Pod ${pod.name} (Job ${jobB?.name}, token ${pod.token ?? jobB?.token ?? '?'}) was created at rv ${pod.createdRv} ${rel(h, pod.createdAt)}.`,
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
  const it = CronExpressionParser.parse(schedule, {
    currentDate: new Date(from),
    endDate: new Date(to),
    ...(timeZone ? { tz: timeZone } : {}),
  });
  while (it.hasNext()) {
    const next = it.next().getTime();
    if (next > to) break;
    slots.push(next);
    if (slots.length > 100_000) throw new Error(`schedule "${schedule}" yields too many slots to check`);
  }
  return slots;
}

function isSlotOf(schedule: string, timeZone: string | undefined, slot: number): boolean {
  const it = CronExpressionParser.parse(schedule, {
    currentDate: new Date(slot - 1),
    ...(timeZone ? { tz: timeZone } : {}),
  });
  return it.next().getTime() === slot;
}

/**
 * Guarantee 2: each due slot is run at most once, and exactly once when the
 * cluster was healthy around it — per namespace/name: a slot run by an object
 * and again by its re-created successor ran twice. The attempts of one run
 * (a failed attempt retried as a new Job, see `runsOf`) are one run.
 */
export function checkSlots(h: History, options: CheckOptions): Violation[] {
  const violations: Violation[] = [];
  const byKey = jobsByKey(h);
  const pods = podsByKey(h);
  const incarnations = new Map<string, SingletonJobInfo[]>();
  for (const sj of h.singletonJobs) incarnations.set(ref(sj), [...(incarnations.get(ref(sj)) ?? []), sj]);
  for (const [key, sjs] of incarnations) {
    const jobs = byKey.get(key) ?? [];
    const runs = runsOf(jobs, h);
    const bySlot = new Map<number, typeof runs>();
    for (const run of runs) {
      const job = run.attempts[0] as JobRecord;
      if (!job.slot) continue;
      const sj = sjs.find((s) => s.uid === job.ownerUid) ?? (sjs[0] as SingletonJobInfo);
      const slot = Date.parse(job.slot);
      if (Number.isNaN(slot)) {
        violations.push({
          check: 'slot-off-schedule',
          at: job.createdAt,
          message: `Job ${ref(job)} carries an unreadable slot "${job.slot}".`,
        });
        continue;
      }
      bySlot.set(slot, [...(bySlot.get(slot) ?? []), run]);
      if (!sj.schedule || !isSlotOf(sj.schedule, sj.timeZone, slot)) {
        violations.push({
          check: 'slot-off-schedule',
          at: job.createdAt,
          message: `Job ${ref(job)} runs slot ${job.slot}, which is not a time of SingletonJob ${key}'s schedule "${sj.schedule}"${sj.timeZone ? ` (${sj.timeZone})` : ''}.`,
        });
      }
    }
    for (const [slot, slotRuns] of bySlot) {
      // A run starts at its release (a prepared run's Job exists, suspended, up to
      // prepareAheadSeconds before): the recorder sees the release after it
      // happened, so "let run before its slot" means "released early" — and
      // so does any Pod of the run created before the slot.
      for (const job of slotRuns.flatMap((r) => r.attempts)) {
        const released = startOf(job);
        const firstPod = Math.min(...h.pods.filter((p) => p.jobUid === job.uid).map((p) => p.createdAt), Infinity);
        const early = Math.min(released, firstPod);
        if (early >= slot - EARLY_TOLERANCE_MS) continue;
        violations.push({
          check: 'slot-early',
          at: early,
          message: `Job ${ref(job)} for slot ${new Date(slot).toISOString()} of SingletonJob ${key} was let run (released, or its Pod created) at ${rel(h, early)}, ${((slot - early) / 1000).toFixed(1)} s before the slot was due.`,
        });
      }
      const [, second] = slotRuns;
      if (second) {
        violations.push({
          check: 'slot-at-most-once',
          at: (second.attempts[0] as JobRecord).createdAt,
          message: `Slot ${new Date(slot).toISOString()} of SingletonJob ${key} ran ${slotRuns.length} times: ${slotRuns.map((r) => describeRun(h, r)).join('; ')}.`,
        });
      }
    }
    // A run occupies its SingletonJob from its first attempt's reservation to its last attempt's end
    // (between attempts the operator holds the run while it backs off).
    const lead = options.reserveLeadMs ?? 0;
    const spans: Array<[number, number]> = jobs.map((j) => [
      startOf(j) - lead,
      j.terminalAt ?? j.deletedAt ?? Infinity,
    ]);
    // …and until every Pod of it is terminal, also one whose Job was deleted or orphaned.
    for (const pod of pods.get(key) ?? []) spans.push([pod.createdAt, pod.terminalAt ?? pod.deletedAt ?? Infinity]);
    const budget = new Map(h.singletonJobs.map((s) => [s.uid, s.backoffLimit ?? 0]));
    for (const run of runs) {
      const first = run.attempts[0] as JobRecord;
      const last = run.attempts[run.attempts.length - 1] as JobRecord;
      let end = last.terminalAt ?? last.deletedAt ?? Infinity;
      // A failed attempt with retry budget left is followed by the next one after a backoff: the run
      // holds its object until then — until the next Job of the object, or the end of the history.
      if (last.outcome === 'Failed' && attemptOf(last) <= (budget.get(last.ownerUid) ?? 0)) {
        end = Math.min(
          ...jobs.filter((j) => j.createdAt > last.createdAt && !run.attempts.includes(j)).map((j) => j.createdAt),
          Infinity,
        );
      }
      spans.push([startOf(first) - lead, end]);
    }
    for (const sj of sjs) {
      if (sj.suspend || !sj.schedule) continue;
      let due: number[];
      try {
        due = scheduleSlots(
          sj.schedule,
          sj.timeZone,
          Math.max(sj.createdAt, h.startedAt),
          Math.min(sj.deletedAt ?? Infinity, h.endedAt - options.settleMs),
        );
      } catch (err) {
        violations.push({
          check: 'slot-exactly-once',
          at: sj.createdAt,
          message: `SingletonJob ${key} is judged but its schedule "${sj.schedule}" cannot be evaluated: ${(err as Error).message}`,
        });
        continue;
      }
      for (const slot of due) {
        if (bySlot.has(slot)) continue;
        if (!healthyAround(h, slot, options.settleMs)) continue;
        // Forbid: a slot may be skipped while the previous run is still in flight. A run is in flight
        // from its reservation, which precedes its Job's creation by up to reserveLeadMs (the
        // pause-after-reserve test hook delays every create): a held slot reserved just before the
        // next slot occupies that next slot even though its Job appears just after it.
        if (spans.some(([from, to]) => from <= slot && to >= slot)) continue;
        violations.push({
          check: 'slot-exactly-once',
          at: slot,
          message:
            `Slot ${new Date(slot).toISOString()} (${rel(h, slot)}) of SingletonJob ${key} was due while the cluster was healthy ` +
            `(no fault within ±${options.settleMs / 1000}s) but no run was created for it.`,
        });
      }
    }
  }
  return violations;
}

/**
 * Guarantee 3: tokens strictly increase per SingletonJob namespace/name in
 * creation order (across delete and re-create, and per attempt), stay below
 * 2^53 and reach the workload.
 */
export function checkTokens(h: History): Violation[] {
  const violations: Violation[] = [];
  for (const [key, jobs] of jobsByKey(h)) {
    let previous: { job: JobRecord; token: bigint } | undefined;
    for (const job of jobs) {
      if (!job.token || !/^\d+$/.test(job.token)) {
        violations.push({
          check: 'tokens-increase',
          at: job.createdAt,
          message: `Job ${ref(job)} carries no readable fencing token (got ${JSON.stringify(job.token)}).`,
        });
        continue;
      }
      const token = BigInt(job.token);
      if (token <= 0n || token >= TOKEN_LIMIT) {
        violations.push({
          check: 'tokens-increase',
          at: job.createdAt,
          message: `Job ${ref(job)} carries token ${job.token}, outside 1 … 2^53−1.`,
        });
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
            `Tokens of SingletonJob ${key} went from ${previous.token} (Job ${previous.job.name}${previous.job.ownerUid !== job.ownerUid ? ` of an earlier object of that name, uid ${previous.job.ownerUid}` : ''}, rv ${previous.job.createdRv} ${rel(h, previous.job.createdAt)}) ` +
            `to ${token} (Job ${job.name}, attempt ${attemptOf(job)}, rv ${job.createdRv} ${rel(h, job.createdAt)}): not strictly increasing in creation order.`,
        });
      }
      if (wasStarted(job, h) && (!previous || token > previous.token)) previous = { job, token };
    }
  }
  return violations;
}

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
 * Guarantee 4 (from the audit log), per installation: once a successor has
 * written — its Lease acquisition is its first write in the new term — no
 * write of another replica of that installation to fenced state succeeds. A
 * write counts only when the API server received it after the successor's
 * acquisition had completed (concurrent requests are undecidable from the
 * log). A replica that never held its installation's Lease must not write at
 * all.
 *
 * What a deposed leader's late bytes may still do (a request that passed the
 * client-side lease check, then was held — a pause, a partition, a queue —
 * and reached the API server after the successor wrote), and what is
 * therefore not a violation:
 * - create the Job of a run it had reserved (an accepted status write of that
 *   SingletonJob) before the successor acquired: the run exists from its
 *   reservation on, its Job has one deterministic name and the reserved
 *   token, so whoever creates it first creates the same run (the successor
 *   adopts it). Recreating a name after the run's Job was deleted counts only
 *   if that Job never ran;
 * - create any other Job that is never let run (every Job is created
 *   suspended) and is deleted as a stray: it must have been deleted by the end;
 * - unsuspend (patch) the Job of a run it had reserved before the successor
 *   acquired: the patch tests the UID the run recorded, so it can only release
 *   the run's own Job, which the successor releases too;
 * - delete a Job or Pod that existed before the successor acquired: deletes
 *   carry a UID precondition, so a late one removes only the object it was
 *   decided for — never one created (or re-created under that name) since.
 * Everything else it writes stays judged (README, "A deposed leader's late
 * writes break nothing").
 */
export function checkDeposedWrites(h: History): Violation[] {
  return installationsOf(h).flatMap((inst, i) => deposedWritesOf(h, inst, i === 0));
}

function deposedWritesOf(h: History, inst: Installation, main: boolean): Violation[] {
  const violations: Violation[] = [];
  const replicas = new Set(inst.replicas);
  const all = h.writes
    .filter((w) => replicas.has(w.user) && WRITE_VERBS.has(w.verb) && ok(w))
    .sort((a, b) => a.receivedUs - b.receivedUs || a.completedUs - b.completedUs);
  const writes = all.filter((w) => FENCED_RESOURCES.has(w.resource));
  const reserved = (user: string, job: JobRecord, acquiredUs: number): boolean =>
    all.some(
      (r) =>
        r.user === user &&
        r.resource === 'singletonjobs' &&
        r.subresource === 'status' &&
        r.verb === 'update' &&
        r.namespace === job.namespace &&
        r.name === job.owner &&
        r.completedUs <= acquiredUs,
    );
  /** Why a late write is harmless, or undefined when it is not. */
  const excuse = (w: AuditWrite, acquiredUs: number): string | undefined => {
    if (w.verb === 'delete' && !w.subresource && (w.resource === 'jobs' || w.resource === 'pods')) {
      // The object it removed: the latest of that name seen before the request completed.
      const records: Array<{ namespace: string; name: string; createdAt: number }> =
        w.resource === 'jobs' ? h.jobs : h.pods;
      const target = records
        .filter((r) => r.namespace === w.namespace && r.name === w.name && r.createdAt <= usToMs(w.completedUs) + 1)
        .sort((a, b) => b.createdAt - a.createdAt)[0];
      return target && target.createdAt <= usToMs(acquiredUs) + 200 ? 'decided before' : undefined;
    }
    if (w.resource !== 'jobs' || w.subresource) return undefined;
    const named = h.jobs.filter((j) => j.namespace === w.namespace && j.name === w.name && j.token !== undefined);
    if (w.verb === 'create') {
      // The Job this create made: the first record of that name seen after the request arrived.
      const job = named
        .filter((j) => j.createdAt >= usToMs(w.receivedUs) - 1)
        .sort((a, b) => a.createdAt - b.createdAt)[0];
      if (!job) return undefined;
      const recreated = named.some((j) => j.createdAt < job.createdAt);
      if (!(recreated && wasStarted(job, h)) && reserved(w.user, job, acquiredUs)) return 'reserved';
      if (!wasStarted(job, h) && job.deletedAt !== undefined) return 'stray';
      return undefined;
    }
    if (w.verb === 'patch') {
      // The Job it patched: the latest of that name created before the request arrived.
      const job = named
        .filter((j) => j.createdAt <= usToMs(w.completedUs) + 1)
        .sort((a, b) => b.createdAt - a.createdAt)[0];
      return job && reserved(w.user, job, acquiredUs) ? 'reserved' : undefined;
    }
    return undefined;
  };
  const isLease = (w: AuditWrite) =>
    w.resource === 'leases' && w.namespace === inst.lease.namespace && w.name === inst.lease.name && !w.subresource;
  const who = main ? '' : ` of installation ${inst.name}`;
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
        message: `Replica ${w.user}${who} wrote ${what} at ${rel(h, usToMs(w.receivedUs))} although no replica had acquired the Lease ${ref(inst.lease)} yet.`,
      });
    } else if (leader.user !== w.user && w.receivedUs > leader.completedUs && !excuse(w, leader.completedUs)) {
      violations.push({
        check: 'deposed-writes',
        at: usToMs(w.receivedUs),
        message:
          `Replica ${w.user}${who} wrote ${what} at ${rel(h, usToMs(w.receivedUs))}, after replica ${leader.user} had taken the Lease ` +
          `${ref(inst.lease)} at ${rel(h, usToMs(leader.completedUs))}: a deposed (or never-elected) replica's write was accepted.`,
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

/**
 * The status fences themselves: in every version of one SingletonJob (by
 * UID) the recorder saw, status.leaderTerm and status.currentToken never go
 * down and are never removed once set (the CRD's CEL transition rules). Checked
 * from the objects, not from the operator's word: a CRD installed without its
 * rules, or a writer that found a way around them, shows up here even when no
 * run overlapped because of it.
 */
export function checkStatusFences(h: History): Violation[] {
  const violations: Violation[] = [];
  for (const sj of h.singletonJobs) {
    const seen: { leaderTerm?: number; currentToken?: number; rv?: string } = {};
    for (const v of sj.fences ?? []) {
      for (const field of ['leaderTerm', 'currentToken'] as const) {
        const before = seen[field];
        const now = v[field];
        if (before !== undefined && (now === undefined || now < before)) {
          violations.push({
            check: 'status-fences',
            at: v.at,
            message: `SingletonJob ${sj.namespace}/${sj.name} (uid ${sj.uid}): status.${field} went from ${before} (rv ${seen.rv}) to ${now ?? 'absent'} (rv ${v.rv}) — the API server accepted a lower ${field === 'leaderTerm' ? 'term' : 'token'}.`,
          });
        }
      }
      if (v.leaderTerm !== undefined) seen.leaderTerm = Math.max(seen.leaderTerm ?? 0, v.leaderTerm);
      if (v.currentToken !== undefined) seen.currentToken = Math.max(seen.currentToken ?? 0, v.currentToken);
      seen.rv = v.rv;
    }
  }
  return violations;
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

/**
 * "As installed": the replicas run with the chart's RBAC, and nothing they ask
 * for is refused. Except right after an API server restart: until its RBAC
 * caches have synced it answers 403 to requests it will allow a moment later
 * (the replicas retry, as against any transient error).
 */
export function checkForbidden(h: History): Violation[] {
  const warmingUp = h.faults
    .filter((f) => f.kind === 'apiserver-restart' && !f.skipped)
    .map((f) => [f.startedAt, (f.recoveredAt ?? f.healedAt) + APISERVER_WARMUP_MS] as const);
  const during = (at: number) => warmingUp.some(([from, to]) => at >= from && at <= to);
  return (h.forbidden ?? [])
    .filter((r) => !during(r.receivedUs / 1000))
    .map((r) => ({
      check: 'forbidden' as const,
      at: r.receivedUs / 1000,
      message: `The API server refused ${r.user}'s ${r.verb} of ${r.resource}${r.subresource ? `/${r.subresource}` : ''}${r.namespace ? ` in ${r.namespace}` : ''}${r.name ? ` (${r.name})` : ''} with 403 at ${rel(h, r.receivedUs / 1000)}: the chart's RBAC lacks a permission the operator uses.`,
    }));
}

/** How long after an API server restart recovered its 403s are still its warm-up. */
const APISERVER_WARMUP_MS = 5000;

export function checkHistory(h: History, options: CheckOptions): Violation[] {
  return [
    ...checkOneInFlight(h),
    ...checkSlots(h, options),
    ...checkTokens(h),
    ...checkStatusFences(h),
    ...checkPodTokens(h),
    ...checkRetries(h),
    ...checkRequests(h),
    ...checkWedged(h),
    ...checkDeposedWrites(h),
    // Without an election nothing promises one actor per object; the guarantees are judged all the same.
    ...(h.fencesOnly ? [] : checkInstallations(h)),
    ...checkStrayJobs(h),
    ...checkExpectations(h),
    ...checkRecovery(h),
    ...checkCrashLoops(h),
    ...checkHistoryComplete(h),
    ...checkBadInput(h),
    ...checkForbidden(h),
  ].sort((a, b) => a.at - b.at);
}

/** A readable account: the first violation in full, then one line per further one. */
export function describeViolations(h: History, violations: Violation[]): string {
  const [first, ...rest] = violations;
  if (!first) return 'No violations.';
  const lines = [
    `${violations.length} violation(s). First, at ${rel(h, first.at)} [${first.check}]:`,
    `  ${first.message.replace(/\n/g, '\n  ')}`,
  ];
  const faults = h.faults.filter(
    (f) => !f.skipped && f.startedAt <= first.at && (f.recoveredAt ?? h.endedAt) + h.leaseDurationMs >= first.at,
  );
  if (faults.length > 0)
    lines.push(
      `  Faults active around it: ${faults.map((f) => `${f.kind} on ${f.target} (${rel(h, f.startedAt)}–${rel(h, f.healedAt)})`).join('; ')}`,
    );
  for (const v of rest.slice(0, 20)) lines.push(`- ${rel(h, v.at)} [${v.check}] ${v.message.split('\n')[0]}`);
  if (rest.length > 20) lines.push(`- … and ${rest.length - 20} more`);
  lines.push(`Reproduce with --seed ${h.seed}.`);
  return lines.join('\n');
}
