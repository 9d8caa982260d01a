// Whose object is this? The decisions of lease-liveness.ts's rule, per object and
// pass: act, stand by for another installation (saying so once on the
// object), or take over from one that has gone — or that, its Lease alive,
// no longer acts on this object (it stopped watching the namespace) —
// raising this leader's term above the one recorded. Owns the term for the
// leadership's whole life.
import type { Logger } from 'pino';
import { singletonJobSchema } from '../../api/v1alpha1/singletonjob.ts';
import type { SingletonJob, SingletonJobStatus } from '../../api/v1alpha1/singletonjob.ts';
import { isConflict, isInvalid } from '../../kube/errors.ts';
import { DEFAULT_POD_START_DEADLINE_SECONDS } from '../rules/run-state.ts';
import { newBackfillRequest, nextBackfillSlot } from '../rules/backfill.ts';
import { leaseKey } from '../cluster/lease-liveness.ts';
import type { Liveness } from '../cluster/lease-liveness.ts';
import { jobOutcome, wasReleased } from '../rules/jobs.ts';
import { POLL_MS } from './pass.ts';
import type { Pass, ReconcilerDeps, Result } from './pass.ts';
import type { JobControl } from '../cluster/ports.ts';
import { started } from '../rules/stall.ts';
import { Conditions, setCondition, templateCondition, toDate } from '../rules/status.ts';
import { dueAt, REQUEUE_MARGIN_MS } from '../rules/timing.ts';
import { manualRequest } from '../rules/action.ts';

/**
 * An installation whose Lease is alive but that has left work due on an
 * object unwritten for this many lease durations (the longer of its and
 * ours), as seen on the observer's monotonic clock, no longer acts on it —
 * it was restarted with watchNamespaces that leave the object out — and the
 * object is taken over. Counted only while work the actor writes about at
 * once is due (owedWork), never while a run simply runs.
 */
export const CLAIM_LEASE_DURATIONS = 6;

/** Work due on an object that its acting installation records with a status write (or a Job release) as soon as it sees it. */
export interface Owed {
  /** What kind of work: a change of kind without a write (a Job released, a run that started) is progress too. */
  kind: 'start' | 'observe' | 'record' | 'release' | 'finish' | 'end' | 'stall' | 'queue' | 'replace';
  /** In words, for the takeover's Event and log. */
  what: string;
}

export class Claims {
  private readonly d: ReconcilerDeps;
  private current: number;
  /** Objects this installation stands by for (another installation acts on them): the contended gauge. */
  private readonly standingBy = new Set<string>();
  /** Monotonic ms since a term above ours with no Lease recorded was first seen, per key. */
  private readonly unclaimedSince = new Map<string, number>();
  /**
   * Per key we stand by for: the work due on it that its acting installation
   * has not written yet, with the status it was seen in (less our own note),
   * and since when (monotonic ms).
   */
  private readonly unanswered = new Map<string, { print: string; since: number }>();

  constructor(d: ReconcilerDeps) {
    this.d = d;
    this.current = d.leadership.term;
  }

  /**
   * This leader's fencing term: the acquisition's, raised to the revision of
   * its newest Lease renew when it takes an object over from a gone
   * installation whose term was higher. Only ever raised.
   */
  get term(): number {
    return this.current;
  }

  /** Returns a result when this leader must not act on the object now; undefined when it may. */
  async claim(pass: Pass, key: string, sj: SingletonJob, log: Logger): Promise<Result | undefined> {
    // Test-only: every replica acts on every object; the fences decide.
    if (this.d.hooks?.fencesOnly) return undefined;
    const status = sj.status ?? {};
    const theirTerm = status.leaderTerm ?? 0;
    const theirs = status.leaderLease;
    const mine = this.d.lease ? leaseKey(this.d.lease) : undefined;
    if (mine && theirs && theirs !== mine && this.d.leases) {
      const other = await this.d.leases.check(theirs);
      if (other.alive) {
        const silence = this.silence(key, sj, theirs, other);
        if (!silence.overdue) return this.standBy(pass, key, sj, theirs, other, log, silence.waitMs);
        this.setStandingBy(key, false);
        return this.takeOver(pass, key, sj, theirTerm, silence.overdue, log);
      }
      this.setStandingBy(key, false);
      this.unanswered.delete(key);
      return this.takeOver(
        pass,
        key,
        sj,
        theirTerm,
        `the installation of Lease ${theirs} that last wrote it has gone: ${other.why}`,
        log,
      );
    }
    this.setStandingBy(key, false);
    this.unanswered.delete(key);
    if (theirTerm <= this.current) {
      this.unclaimedSince.delete(key);
      return undefined;
    }
    if (!mine || theirs === mine) {
      // A newer leader of this installation has written: we are deposed, and
      // anything we wrote would be refused anyway.
      log.warn({ leaderTerm: theirTerm }, 'Left alone: a newer leader has written this object');
      return {};
    }
    // A term above ours and no Lease named (written before status.leaderLease
    // existed, or by hand): if a newer leader of ours wrote it we lose our
    // Lease within one lease duration; if we still lead after that, nobody
    // live wrote it and we take it over.
    const now = (this.d.monotonicNow ?? (() => performance.now()))();
    const since = this.unclaimedSince.get(key) ?? now;
    this.unclaimedSince.set(key, since);
    const left = this.d.lease!.durationMs - (now - since);
    if (left > 0) return { requeueAfterMs: left + REQUEUE_MARGIN_MS };
    return this.takeOver(
      pass,
      key,
      sj,
      theirTerm,
      `status.leaderTerm ${theirTerm} names no Lease, and no newer leader of this installation has appeared for a lease duration`,
      log,
    );
  }

  /** We act on the object; a contender named in it that has gone leaves a stale Contended condition: remove it. */
  async clearStaleContender(pass: Pass, key: string, sj: SingletonJob): Promise<boolean> {
    const contender = sj.status?.contender;
    if (!contender || !this.d.leases || (this.d.lease && contender === leaseKey(this.d.lease))) return false;
    if ((await this.d.leases.check(contender)).alive) return false;
    await pass.write(key, sj, clearContention);
    return true;
  }

  /** What every status write of ours records: our term and Lease; a stand-by notice of ours is over. */
  stamp(status: SingletonJobStatus): void {
    status.leaderTerm = this.current;
    if (!this.d.lease) return;
    const mine = leaseKey(this.d.lease);
    status.leaderLease = mine;
    if (status.contender === mine) clearContention(status);
  }

  /** The object is gone. */
  forget(key: string): void {
    this.unclaimedSince.delete(key);
    this.unanswered.delete(key);
    this.setStandingBy(key, false);
  }

  /**
   * Whether the installation named on the object, its Lease alive, still acts
   * on it. Its Lease says it runs, not that it watches this namespace: one
   * restarted with narrower watchNamespaces renews its Lease and never looks
   * at the object again. So we count, on our monotonic clock, how long work
   * that it would write about at once has been due (owedWork) while it did
   * not write the object (its status, less any stand-by note, unchanged);
   * past CLAIM_LEASE_DURATIONS lease durations it has let the object go.
   * Nothing counts while nothing is due (an idle on-demand object) or while
   * a run simply runs (slots held by Forbid), so a slow but watching actor
   * keeps its objects; a takeover it did not deserve is still safe (the
   * term is raised, CAS and CEL refuse its late writes, and it then stands
   * by for us).
   */
  private silence(
    key: string,
    sj: SingletonJob,
    theirs: string,
    other: Liveness,
  ): { overdue?: string; waitMs?: number } {
    const owed = owedWork(sj, this.d.now(), this.d.jobs);
    if (!owed) {
      this.unanswered.delete(key);
      return {};
    }
    const now = (this.d.monotonicNow ?? (() => performance.now()))();
    const print = `${owed.kind}\n${statusPrint(sj.status ?? {})}`;
    let seen = this.unanswered.get(key);
    if (seen?.print !== print) {
      seen = { print, since: now };
      this.unanswered.set(key, seen);
    }
    const bound = claimBoundMs(this.d.lease!.durationMs, other.durationMs);
    const quiet = now - seen.since;
    if (quiet < bound) return { waitMs: bound - quiet + REQUEUE_MARGIN_MS };
    // Kept until the takeover is written (a term still to pass keeps it overdue).
    return {
      overdue: `the installation of Lease ${theirs} (${other.why}) has not written it for ${Math.round(quiet / 1000)} s while ${owed.what}: it no longer acts on this object (are its watchNamespaces without namespace ${sj.metadata?.namespace}?)`,
    };
  }

  /** Another installation acts on it: leave it, and say so on the object once. */
  private async standBy(
    pass: Pass,
    key: string,
    sj: SingletonJob,
    theirs: string,
    other: Liveness,
    log: Logger,
    untilOverdueMs?: number,
  ): Promise<Result> {
    const mine = leaseKey(this.d.lease!);
    if (!this.standingBy.has(key))
      log.warn(
        { otherLease: theirs, otherHolder: other.holder },
        'Another installation claims this object; leaving it to that installation while its Lease is alive',
      );
    this.setStandingBy(key, true);
    const status = sj.status ?? {};
    const bound = Math.round(claimBoundMs(this.d.lease!.durationMs, other.durationMs) / 1000);
    const message = `Also claimed by the installation of Lease ${mine} (leader ${this.d.leadership.identity}), which leaves it to the installation of Lease ${theirs} that acts on it (${other.why}), unless that one leaves work due on it unwritten for ${bound} s. Run one installation per namespace: give installations disjoint --watch-namespaces.`;
    const noted = status.conditions?.find((c) => c.type === Conditions.contended);
    if (status.contender !== mine || noted?.status !== 'True' || noted.message !== message) {
      // A bystander's note: leaderTerm and leaderLease stay as they are (the
      // CEL rule allows an equal term), run state is not touched, and the CAS
      // makes it harmless to the actor (it re-reads on 409).
      const next: SingletonJobStatus = structuredClone(status);
      next.contender = mine;
      setCondition(
        next,
        { type: Conditions.contended, status: 'True', reason: 'ClaimedByAnotherInstallation', message },
        sj.metadata?.generation,
        this.d.now(),
      );
      try {
        await this.d.status.replaceStatus({ ...sj, status: next });
      } catch (err) {
        if (!isConflict(err) && !isInvalid(err)) throw err;
      }
      await pass.announceOnce(sj, `contended:${theirs}`, 'Warning', 'ClaimedByAnotherInstallation', message);
    }
    return { requeueAfterMs: Math.min(Math.max(POLL_MS, other.recheckMs), untilOverdueMs ?? Infinity) };
  }

  /** Acts on an object another (gone) installation or an unknown writer last wrote, raising our term above theirs. */
  private async takeOver(
    pass: Pass,
    key: string,
    sj: SingletonJob,
    theirTerm: number,
    why: string,
    log: Logger,
  ): Promise<Result> {
    if (theirTerm >= this.current) {
      const latest = this.d.leadership.latestRevision?.();
      if (latest !== undefined && latest > this.current) this.current = latest;
    }
    if (theirTerm >= this.current) {
      // Our next renew is later than any real term; a term above every
      // revision this cluster has issued never will be (written by hand).
      await pass.announceOnce(
        sj,
        `term-above:${theirTerm}`,
        'Warning',
        'TermAboveLeader',
        `Cannot act yet: status.leaderTerm ${theirTerm} is above this leader's newest Lease revision ${this.current} (${why}). A real term is passed at this leader's next Lease renew; if this persists, the term was not written by a leader of this cluster — delete and re-create the SingletonJob (tokens stay increasing per namespace/name).`,
      );
      return { requeueAfterMs: 2000 };
    }
    const id = `takeover:${sj.status?.leaderLease}`;
    if (pass.announcedFor(key) !== id) {
      log.info({ leaderTerm: theirTerm, term: this.current, why }, 'Taking this object over');
      await pass.announceOnce(
        sj,
        id,
        'Normal',
        'TakenOver',
        `The installation of Lease ${leaseKey(this.d.lease!)} (term ${this.current}) takes this object over: ${why}`,
      );
    }
    this.unclaimedSince.delete(key);
    this.unanswered.delete(key);
    // Record the claim at once (our term and Lease): the gone installation's
    // writes are refused from here on, and a pass that writes nothing else (a
    // run held by Forbid) does not take the object over again on every pass.
    await pass.write(key, sj, () => {});
    return { requeueAfterMs: 0 };
  }

  private setStandingBy(key: string, on: boolean): void {
    const had = this.standingBy.has(key);
    if (on === had) return;
    if (on) this.standingBy.add(key);
    else this.standingBy.delete(key);
    this.d.metrics.contended.set(this.standingBy.size);
  }
}

/** How long an installation with a live Lease may leave due work on an object unwritten (ms): CLAIM_LEASE_DURATIONS of the longer lease duration. */
export function claimBoundMs(ourDurationMs: number, theirDurationMs: number | undefined): number {
  return CLAIM_LEASE_DURATIONS * Math.max(ourDurationMs, theirDurationMs ?? 0);
}

/**
 * The work due on an object that its acting installation, watching it,
 * writes about at once (a status write, or the release of a recorded Job) —
 * judged from the object and the Job cache as the actor's own pass would.
 * Undefined when nothing is, or when the actor may rightly wait without a
 * write: a run that runs (a slot due meanwhile is held by Forbid with an
 * Event only), a retry's backoff, a template the API server refused (held,
 * re-probed without a write), an invalid spec (reported once).
 */
export function owedWork(sj: SingletonJob, now: Date, jobs: Pick<JobControl, 'cached'>): Owed | undefined {
  const status = sj.status ?? {};
  const run = status.activeRun;
  // As the actor's pass judges them: nothing is due of an invalid spec or schedule (reported once through Ready).
  let due: ReturnType<typeof dueAt>;
  let valid = singletonJobSchema.safeParse(sj).success;
  try {
    due = valid ? dueAt(sj, now) : undefined;
  } catch {
    valid = false;
  }
  const manual = manualRequest(sj, !valid);
  if (run) {
    if (!run.jobUID) {
      const notBefore = toDate(run.notBefore);
      if (notBefore && notBefore > now) return undefined;
      return { kind: 'record', what: `run ${run.name} is reserved and its Job not recorded` };
    }
    const cached = jobs.cached(sj.metadata!.namespace!, run.name);
    const job = cached?.metadata?.uid === run.jobUID ? cached : undefined;
    if (!job) return { kind: 'finish', what: `the Job of run ${run.name} is gone` };
    if (jobOutcome(job)) {
      // The actor waits without a write while Pods of it still count (a Pod stuck terminating).
      if ((job.status?.active ?? 0) > 0 || (job.status?.terminating ?? 0) > 0) return undefined;
      return { kind: 'finish', what: `the Job of run ${run.name} has finished` };
    }
    if ((run.replacing || run.stalled) && !job.metadata?.deletionTimestamp)
      return { kind: 'end', what: `run ${run.name} is being ended and its Job is not deleted` };
    if (job.spec?.suspend && !run.replacing) {
      return wasReleased(job)
        ? { kind: 'finish', what: `the Job of run ${run.name} was suspended again` }
        : { kind: 'release', what: `the Job of run ${run.name} is recorded and not released` };
    }
    const policy = sj.spec.concurrencyPolicy ?? 'Forbid';
    if (policy === 'Replace' && !run.replacing && (due?.slot || manual))
      return { kind: 'replace', what: `run ${run.name} is to be replaced (concurrencyPolicy Replace)` };
    if (policy === 'Queue' && due?.slot)
      return { kind: 'queue', what: `slot ${due.slot.toISOString()} is to be queued behind run ${run.name}` };
    const releasedAt = toDate(job.status?.startTime);
    const deadlineMs = (sj.spec.podStartDeadlineSeconds ?? DEFAULT_POD_START_DEADLINE_SECONDS) * 1000;
    if (!run.stalled && releasedAt && !started(job, []) && now.getTime() >= releasedAt.getTime() + deadlineMs) {
      return { kind: 'stall', what: `run ${run.name} has not started within podStartDeadlineSeconds` };
    }
    return undefined;
  }
  if (!valid || templateCondition(sj)?.status === 'False') return undefined;
  if (status.queuedSlot) return { kind: 'start', what: `queued slot ${status.queuedSlot} is due` };
  if (due?.slot) return { kind: 'start', what: `slot ${due.slot.toISOString()} is due` };
  if (due && due.skipped > 0) return { kind: 'start', what: `${due.skipped} skipped slot(s) are to be recorded` };
  if (manual) return { kind: 'start', what: `manual request "${manual}" is due` };
  if (newBackfillRequest(sj, now) || nextBackfillSlot(sj)) return { kind: 'start', what: 'a backfill is due' };
  if (sj.metadata?.generation !== undefined && status.observedGeneration !== sj.metadata.generation) {
    return { kind: 'observe', what: `generation ${sj.metadata.generation} of its spec is not observed yet` };
  }
  return undefined;
}

/**
 * The object's status as its actor wrote it: everything but a stand-by note
 * (status.contender and the Contended condition, written by bystanders like
 * us), as JSON with sorted keys (the API server re-orders them).
 */
function statusPrint(status: SingletonJobStatus): string {
  const { contender: _note, ...rest } = status;
  const actors = { ...rest, conditions: rest.conditions?.filter((c) => c.type !== Conditions.contended) };
  return JSON.stringify(actors, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .filter(([, x]) => x !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

function clearContention(status: SingletonJobStatus): void {
  delete status.contender;
  status.conditions = status.conditions?.filter((c) => c.type !== Conditions.contended);
}
