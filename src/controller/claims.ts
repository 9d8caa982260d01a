// Whose object is this? The decisions of contention.ts's rule, per object and
// pass: act, stand by for another installation (saying so once on the
// object), or take over from one that has gone — raising this leader's term
// above the one recorded. Owns the term for the leadership's whole life.
import type { Logger } from 'pino';
import type { SingletonJob, SingletonJobStatus } from '../api/v1alpha1/singletonjob.ts';
import { isConflict, isInvalid } from '../kube/errors.ts';
import { leaseKey } from './contention.ts';
import type { Liveness } from './contention.ts';
import { POLL_MS } from './pass.ts';
import type { Pass, ReconcilerDeps, Result } from './pass.ts';
import { Conditions, setCondition } from './status.ts';

export class Claims {
  private readonly d: ReconcilerDeps;
  private current: number;
  /** Objects this installation stands by for (another installation acts on them): the contended gauge. */
  private readonly standingBy = new Set<string>();
  /** Monotonic ms since a term above ours with no Lease recorded was first seen, per key. */
  private readonly unclaimedSince = new Map<string, number>();

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
    const status = sj.status ?? {};
    const theirTerm = status.leaderTerm ?? 0;
    const theirs = status.leaderLease;
    const mine = this.d.lease ? leaseKey(this.d.lease) : undefined;
    if (mine && theirs && theirs !== mine && this.d.leases) {
      const other = await this.d.leases.check(theirs);
      if (other.alive) return this.standBy(pass, key, sj, theirs, other, log);
      this.setStandingBy(key, false);
      return this.takeOver(pass, key, sj, theirTerm, `the installation of Lease ${theirs} that last wrote it has gone: ${other.why}`, log);
    }
    this.setStandingBy(key, false);
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
    if (left > 0) return { requeueAfterMs: left + 5 };
    return this.takeOver(pass, key, sj, theirTerm, `status.leaderTerm ${theirTerm} names no Lease, and no newer leader of this installation has appeared for a lease duration`, log);
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
    this.setStandingBy(key, false);
  }

  /** Another installation acts on it: leave it, and say so on the object once. */
  private async standBy(pass: Pass, key: string, sj: SingletonJob, theirs: string, other: Liveness, log: Logger): Promise<Result> {
    const mine = leaseKey(this.d.lease!);
    if (!this.standingBy.has(key)) log.warn({ otherLease: theirs, otherHolder: other.holder }, 'Another installation claims this object; leaving it to that installation while its Lease is alive');
    this.setStandingBy(key, true);
    const status = sj.status ?? {};
    const message = `Also claimed by the installation of Lease ${mine} (leader ${this.d.leadership.identity}), which leaves it to the installation of Lease ${theirs} that acts on it (${other.why}). Run one installation per namespace: give installations disjoint --watch-namespaces.`;
    const noted = status.conditions?.find((c) => c.type === Conditions.contended);
    if (status.contender !== mine || noted?.status !== 'True' || noted.message !== message) {
      // A bystander's note: leaderTerm and leaderLease stay as they are (the
      // CEL rule allows an equal term), run state is not touched, and the CAS
      // makes it harmless to the actor (it re-reads on 409).
      const next: SingletonJobStatus = structuredClone(status);
      next.contender = mine;
      setCondition(next, { type: Conditions.contended, status: 'True', reason: 'ClaimedByAnotherInstallation', message }, sj.metadata?.generation, this.d.now());
      try {
        await this.d.status.replaceStatus({ ...sj, status: next });
      } catch (err) {
        if (!isConflict(err) && !isInvalid(err)) throw err;
      }
      await pass.announceOnce(sj, `contended:${theirs}`, 'Warning', 'ClaimedByAnotherInstallation', message);
    }
    return { requeueAfterMs: Math.max(POLL_MS, other.recheckMs) };
  }

  /** Acts on an object another (gone) installation or an unknown writer last wrote, raising our term above theirs. */
  private async takeOver(pass: Pass, key: string, sj: SingletonJob, theirTerm: number, why: string, log: Logger): Promise<Result> {
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
      await pass.announceOnce(sj, id, 'Normal', 'TakenOver', `The installation of Lease ${leaseKey(this.d.lease!)} (term ${this.current}) takes this object over: ${why}`);
    }
    this.unclaimedSince.delete(key);
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

function clearContention(status: SingletonJobStatus): void {
  delete status.contender;
  status.conditions = status.conditions?.filter((c) => c.type !== Conditions.contended);
}
