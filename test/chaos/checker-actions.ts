// Checker rules for what users do (issue 12): retries, repeated run-now
// requests, a second installation, re-created Jobs and SingletonJobs, and the
// expectations an action leaves behind ("the survivor runs every object again
// within a lease duration"). Pure functions over a History, like checker.ts.
import type { AuditWrite, History, JobRecord, PodRecord } from './history.ts';
import {
  attemptOf,
  describeRun,
  installationsOf,
  jobKey,
  jobsByKey,
  ok,
  podsByKey,
  ref,
  rel,
  runsOf,
  usToMs,
  WRITE_VERBS,
  type Violation,
} from './check-common.ts';

/**
 * Every Pod attempt carries its own token: per SingletonJob namespace/name, no
 * two Pods share a token and tokens increase in Pod creation order (a retry
 * inside one Job, or an adopted re-created Job, reuses its token).
 */
export function checkPodTokens(h: History): Violation[] {
  const violations: Violation[] = [];
  for (const [key, pods] of podsByKey(h)) {
    let previous: { pod: PodRecord; token: bigint } | undefined;
    for (const pod of pods) {
      if (!pod.token || !/^\d+$/.test(pod.token)) continue;
      const token = BigInt(pod.token);
      if (previous && token <= previous.token) {
        const same = token === previous.token;
        violations.push({
          check: 'pod-tokens',
          at: pod.createdAt,
          message:
            `Pods of SingletonJob ${key} ${same ? `share token ${token}` : `went from token ${previous.token} to ${token}`}: ` +
            `Pod ${previous.pod.name} (Job ${previous.pod.jobName}, rv ${previous.pod.createdRv} ${rel(h, previous.pod.createdAt)}) and ` +
            `Pod ${pod.name} (Job ${pod.jobName}, rv ${pod.createdRv} ${rel(h, pod.createdAt)})${same ? ': a retry or second Pod was not fenced by a token of its own' : ''}.`,
        });
      }
      if (!previous || token > previous.token) previous = { pod, token };
    }
  }
  return violations;
}

/**
 * Retries: attempt n > 1 of a run follows a failed attempt n − 1 of the same
 * slot or request, and a run has at most backoffLimit + 1 attempts.
 */
export function checkRetries(h: History): Violation[] {
  const violations: Violation[] = [];
  const budget = new Map(h.singletonJobs.map((s) => [s.uid, s.backoffLimit ?? 0]));
  for (const [key, jobs] of jobsByKey(h)) {
    for (const run of runsOf(jobs, h)) {
      for (const job of run.orphans) {
        violations.push({
          check: 'retries',
          at: job.createdAt,
          message: `Job ${ref(job)} of SingletonJob ${key} is attempt ${attemptOf(job)}, but no failed attempt ${attemptOf(job) - 1} of ${job.slot ? `slot ${job.slot}` : `request ${JSON.stringify(job.requestId ?? '')}`} precedes it.`,
        });
      }
      const first = run.attempts[0] as JobRecord;
      const limit = budget.get(first.ownerUid);
      if (limit !== undefined && run.attempts.length > limit + 1) {
        const extra = run.attempts[limit + 1] as JobRecord;
        violations.push({
          check: 'retries',
          at: extra.createdAt,
          message: `A run of SingletonJob ${key} (backoffLimit ${limit}) had ${run.attempts.length} attempts: ${describeRun(h, run)}.`,
        });
      }
    }
  }
  return violations;
}

/**
 * Manual requests: a request runs when the run-now annotation differs from the
 * last request taken into account, so a value runs at most as often as the
 * annotation was changed to it (a, b, a: twice for a). Repeating the same
 * value, or touching the object, starts nothing.
 */
export function checkRequests(h: History): Violation[] {
  const violations: Violation[] = [];
  const asked = new Map<string, Map<string, number>>();
  for (const sj of h.singletonJobs) {
    const counts = asked.get(ref(sj)) ?? new Map<string, number>();
    for (const r of sj.requests ?? []) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
    asked.set(ref(sj), counts);
  }
  for (const [key, jobs] of jobsByKey(h)) {
    const counts = asked.get(key);
    if (!counts) continue; // not a judged SingletonJob (bad input)
    const byId = new Map<string, ReturnType<typeof runsOf>>();
    for (const run of runsOf(jobs, h)) {
      const first = run.attempts[0] as JobRecord;
      if (first.slot || first.requestId === undefined) continue;
      byId.set(first.requestId, [...(byId.get(first.requestId) ?? []), run]);
    }
    for (const [id, runs] of byId) {
      const n = counts.get(id) ?? 0;
      if (runs.length <= n) continue;
      const extra = runs[n] as (typeof runs)[number];
      violations.push({
        check: 'request-at-most-once',
        at: (extra.attempts[0] as JobRecord).createdAt,
        message: `Manual request ${JSON.stringify(id)} of SingletonJob ${key} was asked ${n} time(s) but ran ${runs.length} times: ${runs.map((r) => describeRun(h, r)).join('; ')}.`,
      });
    }
  }
  return violations;
}

/** No user action wedges an object: it is never Ready=False because a run's Job name is taken. */
export function checkWedged(h: History): Violation[] {
  return h.singletonJobs.flatMap((sj) =>
    (sj.conditions ?? [])
      .filter((c) => c.type === 'Ready' && c.status === 'False' && c.reason === 'JobNameTaken')
      .map((c) => ({
        check: 'not-wedged' as const,
        at: c.at,
        message: `SingletonJob ${ref(sj)} became Ready=False/JobNameTaken at ${rel(h, c.at)} (${c.message ?? 'no message'}): a user action stopped its scheduling.`,
      })),
  );
}

/**
 * Two installations (each with its own Lease) never act on one object at the
 * same time: an installation may act on a SingletonJob (create, patch or
 * delete its Jobs or Pods) that the other acted on last only if the other's
 * Lease lapsed (no renewal for a lease duration) or was deleted since that
 * last act.
 */
export function checkInstallations(h: History): Violation[] {
  const installs = installationsOf(h);
  if (installs.length < 2) return [];
  const violations: Violation[] = [];
  const owner = new Map<string, number>();
  installs.forEach((inst, i) => inst.replicas.forEach((r) => owner.set(r, i)));
  const renewals = installs.map((inst) =>
    h.writes
      .filter(
        (w) =>
          ok(w) &&
          (w.verb === 'update' || w.verb === 'create' || w.verb === 'patch') &&
          w.resource === 'leases' &&
          !w.subresource,
      )
      .filter(
        (w) => w.namespace === inst.lease.namespace && w.name === inst.lease.name && inst.replicas.includes(w.user),
      )
      .map((w) => w.completedUs)
      .sort((a, b) => a - b),
  );
  const jobOwner = new Map(h.jobs.map((j) => [`${j.namespace}/${j.name}`, jobKey(j)]));
  const podOwner = new Map<string, string>();
  for (const p of h.pods) {
    const k =
      jobOwner.get(`${p.namespace}/${p.jobName}`) ?? (p.singletonJob ? `${p.namespace}/${p.singletonJob}` : undefined);
    if (k) podOwner.set(`${p.namespace}/${p.name}`, k);
  }
  const keyOf = (w: AuditWrite): string | undefined =>
    w.resource === 'jobs'
      ? jobOwner.get(`${w.namespace}/${w.name}`)
      : w.resource === 'pods'
        ? podOwner.get(`${w.namespace}/${w.name}`)
        : undefined;
  const acting = h.writes
    .filter(
      (w) =>
        owner.has(w.user) &&
        ok(w) &&
        WRITE_VERBS.has(w.verb) &&
        (w.resource === 'jobs' || w.resource === 'pods') &&
        w.name,
    )
    .sort((a, b) => a.receivedUs - b.receivedUs);
  const slackUs = 250_000;
  const last = new Map<string, { inst: number; w: AuditWrite }>();
  for (const w of acting) {
    const key = keyOf(w);
    if (!key) continue;
    const me = owner.get(w.user) as number;
    const before = last.get(key);
    last.set(key, { inst: me, w });
    if (!before || before.inst === me) continue;
    const other = installs[before.inst]!;
    // The handover is legitimate if the other's Lease lapsed at some point since it last acted here:
    // a gap of a lease duration between its renewals, or its deletion. (It may be acquired again since:
    // the object is claimed in its status, so the other then leaves it alone; that is judged when it acts.)
    const own = renewals[before.inst]!;
    const from = own.filter((r) => r <= before.w.receivedUs).pop();
    const times = [
      ...(from === undefined ? [] : [from]),
      ...own.filter((r) => r > before.w.receivedUs && r <= w.receivedUs),
      w.receivedUs,
    ];
    const lapsed =
      from === undefined ||
      times.some((t, i) => i > 0 && t - (times[i - 1] as number) >= h.leaseDurationMs * 1000 - slackUs);
    const deleted = (other.leaseDeletedAt ?? []).some(
      (d) => d * 1000 > before.w.receivedUs && d * 1000 <= w.receivedUs,
    );
    if (lapsed || deleted) continue;
    const renewed = times[times.length - 2] as number;
    violations.push({
      check: 'one-installation',
      at: usToMs(w.receivedUs),
      message:
        `Installation ${installs[me]!.name} (replica ${w.user}) acted on SingletonJob ${key} (${w.verb} ${w.resource} ${w.name}) at ${rel(h, usToMs(w.receivedUs))}, ` +
        `after installation ${other.name} had (replica ${before.w.user}, ${before.w.verb} ${before.w.resource} ${before.w.name} at ${rel(h, usToMs(before.w.receivedUs))}) ` +
        `and ${other.name}'s Lease ${ref(other.lease)} stayed alive in between (last renewed ${((w.receivedUs - renewed) / 1e6).toFixed(1)} s before).`,
    });
  }
  return violations;
}

/** A Job the harness re-created as a deposed leader's late create would is never let run, and is deleted. */
export function checkStrayJobs(h: History): Violation[] {
  const violations: Violation[] = [];
  for (const f of h.faults) {
    for (const s of f.strayJobs ?? []) {
      const job = h.jobs.find((j) => j.uid === s.uid);
      if (!job) continue;
      const pods = h.pods.filter((p) => p.jobUid === s.uid);
      if (job.started !== false || pods.length > 0) {
        violations.push({
          check: 'stray-jobs',
          at: pods[0]?.createdAt ?? job.createdAt,
          message: `Job ${ref(s)} (uid ${s.uid}), re-created by ${f.kind} at ${rel(h, job.createdAt)} with its predecessor's name, owner and token, was let run${pods.length ? ` (Pod ${pods[0]!.name})` : ''}: a Job the run did not record must never be adopted.`,
        });
      } else if (job.deletedAt === undefined) {
        violations.push({
          check: 'stray-jobs',
          at: job.createdAt,
          message: `Job ${ref(s)} (uid ${s.uid}), re-created by ${f.kind} at ${rel(h, job.createdAt)}, was never deleted as a stray.`,
        });
      }
    }
  }
  return violations;
}

/** What an action said must follow it (e.g. the survivor acting on every object again) happened in time. */
export function checkExpectations(h: History): Violation[] {
  return h.faults
    .filter((f) => !f.skipped)
    .flatMap((f) =>
      (f.expectations ?? [])
        .filter((e) => e.metAt === undefined || e.metAt > e.deadline)
        .map((e) => ({
          check: 'expectations' as const,
          at: f.healedAt,
          message: `After ${f.kind} on ${f.target} (${f.detail}): ${e.what} — expected by ${rel(h, e.deadline)}, ${e.metAt === undefined ? 'never happened' : `happened only at ${rel(h, e.metAt)}`}.`,
        })),
    );
}
