// User actions (issue 12): what people and tools do to the objects — not
// failures, but each must keep every guarantee and never stop scheduling.
// Like the faults, each one acts, "heals" (stops acting) and says what it did;
// what must follow it is left as expectations for the checker.
import * as k8s from '@kubernetes/client-node';
import { GROUP, Keys, PLURAL, VERSION } from '../../src/api/v1alpha1/singletonjob.ts';
import { statusCode } from '../../src/kube/errors.ts';
import { sleep } from '../controlplane/process.ts';
import type { Expectation, FaultKind, JobRecord } from './history.ts';
import type { FaultContext, Injection } from './faults.ts';
import { readLease, type Replica } from './replicas.ts';

type Action = (ctx: FaultContext) => Promise<Injection>;
type Obj = { metadata?: k8s.V1ObjectMeta; spec?: Record<string, unknown>; status?: Record<string, unknown> };

const skip = (target: string, why: string): Injection => ({
  target,
  detail: why,
  startedAt: Date.now(),
  healedAt: Date.now(),
  skipped: why,
});
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

function apis(ctx: FaultContext) {
  return {
    custom: ctx.kc.makeApiClient(k8s.CustomObjectsApi),
    batch: ctx.kc.makeApiClient(k8s.BatchV1Api),
    coord: ctx.kc.makeApiClient(k8s.CoordinationV1Api),
  };
}

async function getSj(ctx: FaultContext, name: string): Promise<Obj | undefined> {
  try {
    return (await apis(ctx).custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ctx.namespace,
      plural: PLURAL,
      name,
    })) as Obj;
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw err;
  }
}

/** Polls `probe` every 250 ms until it returns a time (met) or the deadline passes. */
async function waitFor(
  deadline: number,
  probe: () => Promise<number | undefined> | number | undefined,
): Promise<number | undefined> {
  for (;;) {
    const at = await probe();
    if (at !== undefined) return at;
    if (Date.now() > deadline) return undefined;
    await sleep(250);
  }
}

/** Waits until a read says the object is gone (404). */
async function gone(read: () => Promise<unknown>, ms: number): Promise<boolean> {
  return (
    (await waitFor(Date.now() + ms, async () =>
      read().then(
        () => undefined,
        (err) => (statusCode(err) === 404 ? Date.now() : undefined),
      ),
    )) !== undefined
  );
}

/** A copy of an object fit to be created again: no identity, version, status or server-set fields. */
function recreatable(o: Obj): Obj {
  const m = o.metadata ?? {};
  return {
    ...o,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      labels: m.labels,
      annotations: m.annotations,
      ownerReferences: m.ownerReferences,
    } as k8s.V1ObjectMeta,
    status: undefined,
  } as Obj;
}

const startedJobOf = (ctx: FaultContext, pred: (j: JobRecord) => boolean): number | undefined =>
  ctx.history.jobs.find((j) => pred(j) && (j.started !== false || ctx.history.pods.some((p) => p.jobUid === j.uid)))
    ?.createdAt;

/**
 * Waits for a started run of each SingletonJob after `after` and returns the
 * expectations (met or not): "acted on again within lease duration + margin".
 */
async function runsAgain(ctx: FaultContext, names: string[], after: number, why: string): Promise<Expectation[]> {
  const expectations = names.map((name) => {
    const period = ctx.schedules[name] ?? 30_000;
    return {
      name,
      e: {
        what: `a new run of ${ctx.namespace}/${name} ${why}`,
        deadline: after + ctx.timings.leaseDurationMs + 2 * period + 15_000,
      } as Expectation,
    };
  });
  await waitFor(Math.max(...expectations.map((x) => x.e.deadline)), () => {
    for (const { name, e } of expectations) {
      e.metAt ??= startedJobOf(ctx, (j) => j.owner === name && j.createdAt > after);
    }
    return expectations.every((x) => x.e.metAt !== undefined) ? Date.now() : undefined;
  });
  return expectations.map((x) => x.e);
}

/** Within 30 s, a SingletonJob of the workload whose recorded run's Job (`wanted` of it) exists: the run and its Job. */
async function startedRun(
  ctx: FaultContext,
  wanted: (job: k8s.V1Job) => boolean,
): Promise<{ sj: string; job: k8s.V1Job } | undefined> {
  const { batch } = apis(ctx);
  let found: { sj: string; job: k8s.V1Job } | undefined;
  await waitFor(Date.now() + 30_000, async () => {
    for (const sj of ctx.rng.shuffle(['slow', 'replace', 'tick', 'retry'])) {
      // activeRun.name is the run's Job name; jobUID is recorded before the Job is let run.
      const run = (await getSj(ctx, sj))?.status?.activeRun as { name?: string; jobUID?: string } | undefined;
      if (!run?.name || !run.jobUID) continue;
      const job = await batch.readNamespacedJob({ namespace: ctx.namespace, name: run.name }).catch(() => undefined);
      if (job?.metadata?.uid === run.jobUID && wanted(job)) {
        found = { sj, job };
        return Date.now();
      }
    }
    return undefined;
  });
  return found;
}

/** Item 1: while a run is in flight, its Job is deleted and a Job with the same name, owner and token appears (suspended). */
const recreateJob: Action = async (ctx) => {
  const { batch } = apis(ctx);
  const found = await startedRun(ctx, (job) => job.spec?.suspend !== true);
  if (!found) return skip('-', 'no run with a started Job within 30 s');
  const { job } = found;
  const name = job.metadata?.name as string;
  const orphan = ctx.rng.next() < 0.3;
  const startedAt = Date.now();
  // The policy goes in the body: with a body the API server ignores the query parameter (and batch/v1 Jobs orphan by default).
  try {
    await batch.deleteNamespacedJob({
      namespace: ctx.namespace,
      name,
      body: {
        propagationPolicy: orphan ? 'Orphan' : 'Background',
        preconditions: { uid: job.metadata?.uid as string },
      },
    });
  } catch (err) {
    // The run ended or was replaced between the pick and the delete (its Job gone, or another UID): nothing was done.
    const code = statusCode(err);
    if (code === 404 || code === 409)
      return skip(`${ctx.namespace}/${name}`, `the Job was gone or replaced before the delete (${code})`);
    throw err;
  }
  await gone(() => batch.readNamespacedJob({ namespace: ctx.namespace, name }), 15_000);
  // What a deposed leader's delayed create (or a person's re-apply) would send: same name, owner
  // reference and token, created suspended. The selector and its labels are the API server's to set.
  const copy = recreatable(job as Obj) as k8s.V1Job;
  const spec = { ...(job.spec as k8s.V1JobSpec), suspend: true, selector: undefined, manualSelector: undefined };
  const labels = { ...(spec.template.metadata?.labels ?? {}) };
  for (const k of ['controller-uid', 'batch.kubernetes.io/controller-uid', 'job-name', 'batch.kubernetes.io/job-name'])
    delete labels[k];
  spec.template = { ...spec.template, metadata: { ...spec.template.metadata, labels } };
  copy.spec = spec;
  const created = await batch.createNamespacedJob({ namespace: ctx.namespace, body: copy });
  const uid = created.metadata?.uid as string;
  // The operator must delete it (never adopt it); give it the time a pass takes.
  const deleted = await gone(async () => {
    const j = await batch.readNamespacedJob({ namespace: ctx.namespace, name });
    if (j.metadata?.uid !== uid) throw Object.assign(new Error('replaced'), { code: 404 });
  }, 15_000);
  return {
    target: `${ctx.namespace}/${name}`,
    detail: `deleted the running Job (${orphan ? 'Orphan' : 'Background'}), re-created it suspended with token ${job.metadata?.annotations?.[Keys.token]}; ${deleted ? 'the operator deleted the copy' : 'the copy was still there after 15 s'}`,
    startedAt,
    healedAt: Date.now(),
    strayJobs: [{ namespace: ctx.namespace, name, uid }],
  };
};

/**
 * Issue 21 item 1b: a person (`kubectl patch job … suspend: true`) or another
 * controller (Kueue preemption) suspends a run's released Job. The Job
 * controller deletes its Pods; releasing it again would give a new Pod the
 * killed one's token (the checker's pod-tokens), so the operator ends the
 * attempt instead and the schedule goes on.
 */
const resuspendJob: Action = async (ctx) => {
  const { batch } = apis(ctx);
  const found = await startedRun(ctx, (job) => job.spec?.suspend !== true && (job.status?.active ?? 0) > 0);
  if (!found) return skip('-', 'no run with an active Pod within 30 s');
  const name = found.job.metadata!.name!;
  const startedAt = Date.now();
  try {
    await batch.patchNamespacedJob(
      {
        namespace: ctx.namespace,
        name,
        body: [
          { op: 'test', path: '/metadata/uid', value: found.job.metadata!.uid },
          { op: 'replace', path: '/spec/suspend', value: true },
        ],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
  } catch (err) {
    // The run ended (its Job deleted by Replace or history pruning) or was replaced between the pick and
    // the patch: nothing was suspended.
    const code = statusCode(err);
    if (code === 404 || code === 422)
      return skip(`${ctx.namespace}/${name}`, `the Job was gone or replaced before the patch (${code})`);
    throw err;
  }
  const expectations = await runsAgain(
    ctx,
    [found.sj],
    startedAt,
    `after its running Job ${name} was suspended by hand`,
  );
  return {
    target: `${ctx.namespace}/${name}`,
    detail: `suspended the released Job of run ${name} (token ${found.job.metadata?.annotations?.[Keys.token]})`,
    startedAt,
    healedAt: Date.now(),
    expectations,
  };
};

/**
 * Issue 26: someone with `edit` changes a prepared run's Job while it waits
 * for its slot — suspended and never released, its parallelism and Pod-template
 * labels are mutable: parallelism raised, or the template's singleton.dev
 * marks stripped (so its Pods would not be known as the object's). It must
 * never be released: withdrawn (JobModified), the slot run by a Job of its
 * own, never two Pods at once.
 */
const tamperPreparedJob: Action = async (ctx) => {
  const { batch } = apis(ctx);
  const found = await startedRun(
    ctx,
    (job) => job.spec?.suspend === true && job.metadata?.annotations?.[Keys.released] === '' && !job.status?.startTime,
  );
  if (!found) return skip('-', 'no prepared run within 30 s');
  const name = found.job.metadata!.name!;
  const strip = ctx.rng.next() < 0.5;
  const startedAt = Date.now();
  try {
    await batch.patchNamespacedJob(
      {
        namespace: ctx.namespace,
        name,
        body: [
          { op: 'test', path: '/metadata/uid', value: found.job.metadata!.uid },
          { op: 'test', path: '/spec/suspend', value: true },
          strip
            ? { op: 'remove', path: `/spec/template/metadata/annotations/${Keys.singletonJob.replace('/', '~1')}` }
            : { op: 'replace', path: '/spec/parallelism', value: 3 },
        ],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
  } catch (err) {
    // Released, withdrawn or replaced between the pick and the patch: nothing was changed.
    const code = statusCode(err);
    if (code === 404 || code === 422)
      return skip(`${ctx.namespace}/${name}`, `the prepared Job was gone or released before the patch (${code})`);
    throw err;
  }
  const expectations = await runsAgain(ctx, [found.sj], startedAt, `after its prepared Job ${name} was edited`);
  return {
    target: `${ctx.namespace}/${name}`,
    detail: `${strip ? "stripped the Pod template's singletonjob annotation of" : 'raised parallelism to 3 on'} the prepared Job of run ${name} (token ${found.job.metadata?.annotations?.[Keys.token]})`,
    startedAt,
    healedAt: Date.now(),
    expectations,
  };
};

let requestSeq = 0;

/** Item 2: run-now ids a, b, a (and a repeated a, which must start nothing) on a scheduled SingletonJob. */
const repeatRequest: Action = async (ctx) => {
  const { custom } = apis(ctx);
  const name = 'requests';
  const n = ++requestSeq;
  const [a, b] = [`again-${n}-a`, `again-${n}-b`];
  const sequence = ctx.rng.next() < 0.5 ? [a, b, a, a] : [a, a, b, a];
  const startedAt = Date.now();
  for (const [i, id] of sequence.entries()) {
    const body = { metadata: { annotations: { [Keys.runNow]: id, 'chaos.singleton.dev/touch': `${n}-${i}` } } };
    await custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: ctx.namespace, plural: PLURAL, name, body },
      mergePatch,
    );
    await sleep(ctx.rng.int(500, 5000));
  }
  const last = sequence[sequence.length - 1] as string;
  const healedAt = Date.now();
  const taken: Expectation = {
    what: `${ctx.namespace}/${name} took request "${last}" into account (status.lastManualRequestId) and has no run left hanging`,
    deadline: healedAt + 45_000,
  };
  taken.metAt = await waitFor(taken.deadline, async () => {
    const status = (await getSj(ctx, name))?.status as
      { lastManualRequestId?: string; activeRun?: unknown } | undefined;
    return status?.lastManualRequestId === last && !status.activeRun ? Date.now() : undefined;
  });
  // The action ends once its outcome is known (recovery is measured from there).
  return {
    target: `${ctx.namespace}/${name}`,
    detail: `run-now ${sequence.join(', ')}`,
    startedAt,
    healedAt: Math.max(healedAt, Date.now()),
    expectations: [taken],
  };
};

/** Item 4: delete a SingletonJob (sometimes orphaning its Job and Pods) and create it again under the same name. */
const recreateSingletonJob: Action = async (ctx) => {
  const { custom } = apis(ctx);
  const orphan = ctx.rng.next() < 0.5;
  const name = orphan ? ctx.rng.pick(['slow', 'replace']) : ctx.rng.pick(['tick', 'slow']);
  const sj = await getSj(ctx, name);
  if (!sj) return skip(name, `${name} is not there`);
  const startedAt = Date.now();
  await custom.deleteNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ctx.namespace,
    plural: PLURAL,
    name,
    propagationPolicy: orphan ? 'Orphan' : 'Background',
    body: { propagationPolicy: orphan ? 'Orphan' : 'Background' },
  });
  const read = () =>
    custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ctx.namespace,
      plural: PLURAL,
      name,
    });
  if (!(await gone(read, 20_000)))
    return {
      target: `${ctx.namespace}/${name}`,
      detail: 'deleted, but still there after 20 s',
      startedAt,
      healedAt: Date.now(),
      skipped: 'not gone',
    };
  await sleep(ctx.rng.int(0, 3000));
  const created = (await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ctx.namespace,
    plural: PLURAL,
    body: recreatable(sj),
  })) as Obj;
  const uid = created.metadata?.uid as string;
  const healedAt = Date.now();
  // Its first run waits until the predecessor's Pods are terminal (an orphaned one runs to its end).
  const first: Expectation = {
    what: `the re-created ${ctx.namespace}/${name} runs`,
    deadline: healedAt + ctx.timings.leaseDurationMs + 2 * (ctx.schedules[name] ?? 30_000) + 45_000,
  };
  first.metAt = await waitFor(first.deadline, () => startedJobOf(ctx, (j) => j.ownerUid === uid));
  return {
    target: `${ctx.namespace}/${name}`,
    detail: `deleted (${orphan ? 'Orphan: Job and Pods left running' : 'Background'}) and re-created`,
    startedAt,
    healedAt: Date.now(),
    expectations: [first],
  };
};

/**
 * Item 3: a second installation (its own Lease) watching the same namespace
 * for a while. It must leave the objects alone while this one is alive (and
 * say so with a Contended condition); sometimes this installation is paused
 * past its Lease so the other takes over, then resumed. Then the second one is
 * killed (sometimes its Lease deleted too): every object must run again within
 * a lease duration plus its schedule.
 */
const secondInstallation: Action = async (ctx) => {
  const { custom, coord } = apis(ctx);
  const second = ctx.installations[1];
  if (!second) return skip('-', 'no second installation configured');
  const size = ctx.rng.int(1, 2);
  const startedAt = Date.now();
  const others: Replica[] = [];
  for (const name of second.replicas.slice(0, size))
    others.push(await ctx.extraReplica({ name, leaseNamespace: second.lease.namespace }));
  const expectations: Expectation[] = [];
  try {
    const elected: Expectation = { what: `installation ${second.name} elects a leader`, deadline: Date.now() + 30_000 };
    elected.metAt = await waitFor(elected.deadline, async () => {
      const lease = await readLease(ctx.kc, second.lease.namespace, second.lease.name);
      return others.some((r) => r.name === lease?.holder && r.running) ? Date.now() : undefined;
    });
    expectations.push(elected);
    const contended: Expectation = {
      what: `a SingletonJob shows Contended/ClaimedByAnotherInstallation while both installations run`,
      deadline: Date.now() + 20_000,
    };
    contended.metAt = await waitFor(contended.deadline, async () => {
      const list = (await custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ctx.namespace,
        plural: PLURAL,
      })) as { items: Obj[] };
      const hit = list.items.some((o) =>
        ((o.status?.conditions ?? []) as Array<{ type: string; status: string; reason?: string }>).some(
          (c) => c.type === 'Contended' && c.status === 'True' && c.reason === 'ClaimedByAnotherInstallation',
        ),
      );
      return hit ? Date.now() : undefined;
    });
    expectations.push(contended);
    await sleep(ctx.rng.int(2000, 6000));
    const takeover = ctx.rng.next() < 0.5;
    if (takeover) {
      // This installation goes silent past its Lease: the other must take the objects over.
      const paused = ctx.replicas.filter((r) => r.running);
      const from = Date.now();
      for (const r of paused) r.signal('SIGSTOP');
      expectations.push(
        ...(await runsAgain(ctx, ['tick'], from, `by installation ${second.name} while this one is paused`)),
      );
      for (const r of paused) r.signal('SIGCONT');
      await sleep(ctx.rng.int(3000, 8000));
    }
    for (const r of others) await r.kill();
    const deleteLease = ctx.rng.next() < 0.5;
    if (deleteLease) {
      await coord
        .deleteNamespacedLease({ namespace: second.lease.namespace, name: second.lease.name })
        .catch(() => undefined);
      (second.leaseDeletedAt ??= []).push(Date.now());
    }
    const healedAt = Date.now();
    expectations.push(...(await runsAgain(ctx, ctx.scheduled, healedAt, `after installation ${second.name} is gone`)));
    return {
      target: `installation ${second.name} (${others.length} replica(s), Lease ${second.lease.namespace}/${second.lease.name})`,
      detail: `ran ${((healedAt - startedAt) / 1000).toFixed(1)} s${takeover ? ', took over while this installation was paused' : ''}, then killed${deleteLease ? ' and its Lease deleted' : ''}`,
      startedAt,
      healedAt: Date.now(),
      expectations,
    };
  } finally {
    for (const r of others) await r.shutdown();
  }
};

/** Item 6: the leader's requests held after they left the client, longer than the Lease, then delivered. */
const delayedRequests: Action = async (ctx) => {
  const ms = ctx.timings.leaseDurationMs + ctx.rng.int(1000, 4000);
  let target: Replica | undefined;
  let when = 'at a random moment';
  if (ctx.rng.next() < 0.5) {
    // Right after a reservation: the Job create that follows is held (and the renewals with it).
    target = await ctx.stopAtReserveHook(30_000, 'hold');
    when = 'right after a reservation';
  }
  if (!target) {
    target = await ctx.leader();
    target?.tcp.holdRequests();
    when = 'at a random moment';
  }
  if (!target) return skip('-', 'no leader');
  const startedAt = Date.now();
  await sleep(ms);
  target.tcp.heal();
  return {
    target: target.name,
    detail: `requests held ${(ms / 1000).toFixed(1)} s ${when}, then delivered`,
    startedAt,
    healedAt: Date.now(),
  };
};

/** Item 7: a second process with the leader's identity for a while; no two replicas may act at once. */
const duplicateIdentity: Action = async (ctx) => {
  const leader = await ctx.leader();
  if (!leader) return skip('-', 'no leader');
  const name = ctx.installations[0]?.replicas.find((r) => r.endsWith('-dup'));
  if (!name) return skip('-', 'no duplicate identity configured');
  const startedAt = Date.now();
  const dup = await ctx.extraReplica({
    name,
    leaseNamespace: ctx.installations[0]!.lease.namespace,
    identity: leader.name,
  });
  const ms = ctx.rng.int(8000, 15000);
  const crash = ctx.rng.next() < 0.5;
  try {
    await sleep(ms);
    if (crash) await dup.kill();
  } finally {
    await dup.shutdown();
  }
  return {
    target: leader.name,
    detail: `a second process ${name} with identity ${leader.name} for ${(ms / 1000).toFixed(1)} s, then ${crash ? 'SIGKILL' : 'SIGTERM'}`,
    startedAt,
    healedAt: Date.now(),
  };
};

export const actions: Record<
  Extract<
    FaultKind,
    | 'recreate-job'
    | 'resuspend-job'
    | 'tamper-prepared-job'
    | 'repeat-request'
    | 'recreate-singletonjob'
    | 'second-installation'
    | 'delayed-requests'
    | 'duplicate-identity'
  >,
  Action
> = {
  'recreate-job': recreateJob,
  'resuspend-job': resuspendJob,
  'tamper-prepared-job': tamperPreparedJob,
  'repeat-request': repeatRequest,
  'recreate-singletonjob': recreateSingletonJob,
  'second-installation': secondInstallation,
  'delayed-requests': delayedRequests,
  'duplicate-identity': duplicateIdentity,
};
