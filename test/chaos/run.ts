// One chaos run, start to verdict: a control plane (started here or shared),
// the CRD and the chart's RBAC bound to three replica identities, the
// recorder, the SingletonJobs under test, the bad-input corpus, then faults
// in a seeded random order until the time is up, a quiet tail, and the check.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import YAML from 'yaml';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { applyCrdWithKubectl } from '../support/crd.ts';
import { sleep } from '../controlplane/process.ts';
import { makeClient } from '../../src/kube/client.ts';
import { GROUP, VERSION, PLURAL, KIND, API_VERSION, Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import { checkHistory, describeViolations, type Violation } from './checker.ts';
import { emptyHistory, type ExitRecord, type FaultKind, type FaultRecord, type History } from './history.ts';
import { Recorder, readAuditCost, readAuditForbidden, readAuditWrites } from './recorder.ts';
import { HOOK_MESSAGE, Replica, readLease, type ReplicaTimings } from './replicas.ts';
import { ALL_FAULTS, injectors, type FaultContext } from './faults.ts';
import { Rng } from './rng.ts';
import { formatReport, reportRows, type ReportRow } from './report.ts';
import { runBadInput, badInputNames } from './bad-input.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Profile {
  name: string;
  /** Fault phase length; setup and the quiet tail come on top. */
  durationMs: number;
  /** Pause between a recovery and the next fault. */
  gapMs: [number, number];
  /** Let a replica with a skewed wall clock become the leader (see faults.ts, clock-skew). */
  skewedLeader: boolean;
  /** Keep going past the duration until every fault kind was tried once (CI: each action at least once). */
  fullPass?: boolean;
  /**
   * No election (issue 23): every replica has its own Lease, acts on every
   * object at once, never fences itself, and gives its Lease up every
   * FENCES_ONLY_ROTATE_MS to take it again with a higher term — only the
   * fences keep the guarantees. Faults that test the election itself
   * (second installation, duplicate identity) are left out.
   */
  fencesOnly?: boolean;
}

export const PROFILES: Record<string, Profile> = {
  ci: { name: 'ci', durationMs: 150_000, gapMs: [1000, 3000], skewedLeader: false, fullPass: true },
  medium: { name: 'medium', durationMs: 8 * 60_000, gapMs: [2000, 6000], skewedLeader: true },
  soak: { name: 'soak', durationMs: 30 * 60_000, gapMs: [1000, 4000], skewedLeader: true },
  'no-election': {
    name: 'no-election',
    durationMs: 8 * 60_000,
    gapMs: [2000, 6000],
    skewedLeader: true,
    fencesOnly: true,
  },
  'no-election-soak': {
    name: 'no-election-soak',
    durationMs: 30 * 60_000,
    gapMs: [1000, 4000],
    skewedLeader: true,
    fencesOnly: true,
  },
  'ci-no-election': {
    name: 'ci-no-election',
    durationMs: 120_000,
    gapMs: [1000, 3000],
    skewedLeader: true,
    fencesOnly: true,
  },
};

/** Faults that test the election itself: meaningless without one. */
const ELECTION_FAULTS: FaultKind[] = ['second-installation', 'duplicate-identity'];
/** How long each no-election leadership lasts before its replica gives the Lease up and takes it again (ms). */
export const FENCES_ONLY_ROTATE_MS: [number, number] = [2000, 8000];

export interface ChaosOptions {
  seed: number;
  profile: Profile;
  faults?: FaultKind[];
  /** Use this control plane (shared with other tests); otherwise one is started and stopped. */
  cp?: ControlPlane;
  outDir?: string;
  log?: (line: string) => void;
}

export interface ChaosResult {
  history: History;
  violations: Violation[];
  rows: ReportRow[];
  report: string;
  account: string;
  outDir: string;
}

export const TIMINGS: ReplicaTimings = { leaseDurationMs: 6000, renewDeadlineMs: 4000, retryPeriodMs: 1000 };
const REPLICAS = 3;
/** A slot is judged "healthy" when no fault window comes within this of it. */
const SETTLE_MS = 10_000;
/** Every reservation is followed by this pause before its Job is created (the controller's test hook). */
const PAUSE_AFTER_RESERVE_MS = 1500;

function template(
  name: string,
  o: { runSeconds?: number; fail?: boolean; backoffLimit?: number } = {},
): Record<string, unknown> {
  const annotations: Record<string, string> = {};
  const labels: Record<string, string> = {};
  if (o.runSeconds) {
    // kwok draws the delay between `delay` and `jitter-delay`: set both.
    annotations['pod-complete.stage.kwok.x-k8s.io/delay'] = `${o.runSeconds}s`;
    annotations['pod-complete.stage.kwok.x-k8s.io/jitter-delay'] = `${o.runSeconds}s`;
  }
  if (o.fail) labels['pod-container-running-failed.stage.kwok.x-k8s.io'] = 'true';
  return {
    spec: {
      backoffLimit: o.backoffLimit ?? 0,
      template: {
        metadata: { annotations, labels },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: name.slice(0, 20).replace(/-+$/, '') || 'main', image: 'busybox', command: ['true'] }],
        },
      },
    },
  };
}

/** The well-formed SingletonJobs every run keeps busy; each exercises a different path. */
function workload(): Array<Record<string, unknown>> {
  const sj = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name },
    spec,
  });
  return [
    sj('tick', { schedule: '*/10 * * * * *', jobTemplate: template('tick') }),
    sj('slow', { schedule: '*/20 * * * * *', jobTemplate: template('slow', { runSeconds: 25 }) }),
    sj('replace', {
      schedule: '*/15 * * * * *',
      concurrencyPolicy: 'Replace',
      jobTemplate: template('replace', { runSeconds: 40 }),
    }),
    sj('flaky', { schedule: '5/30 * * * * *', jobTemplate: template('flaky', { fail: true }) }),
    // A hostile but valid name: 253 characters, so every Job name must be shortened with a hash.
    sj(`long-${'n'.repeat(243)}-z`, {
      schedule: '*/30 * * * * *',
      timeZone: 'Asia/Kolkata',
      jobTemplate: template('long'),
    }),
    sj('manual', { jobTemplate: template('manual', { runSeconds: 3 }) }),
    // Every attempt fails: the operator retries twice, each attempt a new Job with its own token.
    sj('retry', { schedule: '15/30 * * * * *', jobTemplate: template('retry', { fail: true, backoffLimit: 2 }) }),
    // Target of repeat-request (run-now a, b, a): it must keep its schedule.
    sj('requests', { schedule: '*/20 * * * * *', jobTemplate: template('requests', { runSeconds: 2 }) }),
  ];
}

/** The period of each scheduled SingletonJob of the workload (ms): how long "its next run" may take. */
const SCHEDULES: Record<string, number> = {
  tick: 10_000,
  slow: 20_000,
  replace: 15_000,
  flaky: 30_000,
  [`long-${'n'.repeat(243)}-z`]: 30_000,
  retry: 30_000,
  requests: 20_000,
};

/**
 * Binds the replica users to the chart's own rules (from the rendered
 * manifests/install.yaml), so a missing permission shows up here as it would
 * in a cluster. Returns the Lease name the chart's Role allows.
 */
async function applyRbac(
  kc: k8s.KubeConfig,
  id: string,
  namespace: string,
  installs: Array<{ leaseNamespace: string; users: string[] }>,
  log: (l: string) => void,
): Promise<{ cleanup: () => Promise<void>; leaseName: string }> {
  const rbac = makeClient(kc, k8s.RbacAuthorizationV1Api, { timeoutMs: 10_000 });
  const toSubjects = (users: string[]) =>
    users.map((name) => ({ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name }));
  const subjects = toSubjects(installs.flatMap((i) => i.users));
  const file = path.join(repoRoot, 'manifests', 'install.yaml');
  if (!existsSync(file)) {
    log('manifests/install.yaml is missing: binding the replicas to cluster-admin instead of the chart RBAC');
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `${id}-admin` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects,
      },
    });
    return {
      leaseName: 'singleton-operator',
      cleanup: async () => void (await rbac.deleteClusterRoleBinding({ name: `${id}-admin` }).catch(() => undefined)),
    };
  }
  const docs = YAML.parseAllDocuments(readFileSync(file, 'utf8')).map(
    (d) => d.toJSON() as { kind?: string; metadata?: { name?: string }; rules?: k8s.V1PolicyRule[] } | null,
  );
  const controller = docs.find((d) => d?.kind === 'ClusterRole' && d.metadata?.name?.endsWith('-controller'));
  const election = docs.find((d) => d?.kind === 'Role' && d.metadata?.name?.endsWith('-leader-election'));
  if (!controller?.rules || !election?.rules)
    throw new Error('manifests/install.yaml has no controller ClusterRole or leader-election Role');
  const leaseName = election.rules.flatMap((r) => r.resourceNames ?? [])[0] ?? 'singleton-operator';
  // Reading other installations' Leases (cluster-wide get), when the chart grants it.
  const leaseReader = docs.find((d) => d?.kind === 'ClusterRole' && d.metadata?.name?.endsWith('-lease-reader'));
  if (leaseReader?.rules) {
    await rbac.createClusterRole({ body: { metadata: { name: `${id}-lease-reader` }, rules: leaseReader.rules } });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `${id}-lease-reader` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${id}-lease-reader` },
        subjects,
      },
    });
  }
  await rbac.createClusterRole({ body: { metadata: { name: `${id}-controller` }, rules: controller.rules } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: `${id}-controller` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${id}-controller` },
      subjects,
    },
  });
  // Each installation may use only the Lease of its own namespace, as with two releases of the chart.
  for (const { leaseNamespace, users } of installs) {
    await rbac.createNamespacedRole({
      namespace: leaseNamespace,
      body: { metadata: { name: `${id}-leader-election` }, rules: election.rules },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: leaseNamespace,
      body: {
        metadata: { name: `${id}-leader-election` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${id}-leader-election` },
        subjects: toSubjects(users),
      },
    });
  }
  return {
    leaseName,
    cleanup: async () => {
      await rbac.deleteClusterRole({ name: `${id}-controller` }).catch(() => undefined);
      if (leaseReader) {
        await rbac.deleteClusterRoleBinding({ name: `${id}-lease-reader` }).catch(() => undefined);
        await rbac.deleteClusterRole({ name: `${id}-lease-reader` }).catch(() => undefined);
      }
    },
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const rng = new Rng(options.seed);
  const fencesOnly = options.profile.fencesOnly === true;
  const faults = (options.faults ?? ALL_FAULTS).filter((f) => !(fencesOnly && ELECTION_FAULTS.includes(f)));
  const id = `chaos-${options.seed.toString(16)}-${randomBytes(2).toString('hex')}`;
  const outDir = options.outDir ?? path.join(tmpdir(), id);
  mkdirSync(outDir, { recursive: true });
  log(
    `Chaos run ${id}: profile ${options.profile.name}, seed ${options.seed}, faults ${faults.join(', ')}; logs and history in ${outDir}`,
  );

  const ownCp = !options.cp;
  const cp = options.cp ?? (await ControlPlane.start({ log }));
  const kc = cp.kubeConfig();
  const core = makeClient(kc, k8s.CoreV1Api, { timeoutMs: 10_000 });
  const custom = makeClient(kc, k8s.CustomObjectsApi, { timeoutMs: 10_000 });
  const namespace = id;
  const leaseNamespace = `${id}-op`;
  /** A second installation's Lease lives here (another release of the chart, watching the same namespace). */
  const secondLeaseNamespace = `${id}-op2`;
  const history = emptyHistory(options.seed, options.profile.name);
  const replicaNames = Array.from({ length: REPLICAS }, (_, i) => `${id}-replica-${i}`);
  /** Without an election, each replica is an installation of its own, with its own Lease. */
  const ownLeaseNamespaces = fencesOnly ? replicaNames.map((_, i) => `${id}-op-${i}`) : [];
  const leaseNamespaceOf = (i: number) => ownLeaseNamespaces[i] ?? leaseNamespace;
  /** Identities only the actions start: a process with a leader's identity, and the second installation's replicas. */
  const dupName = `${id}-replica-dup`;
  const secondNames = [`${id}-second-0`, `${id}-second-1`];
  let replicas: Replica[] = [];
  let recorder: Recorder | undefined;
  let rbacCleanup: (() => Promise<void>) | undefined;
  let stopTriggers = false;
  let triggers: Promise<void> | undefined;
  let hookWaiter: ((r: Replica) => void) | undefined;
  let hookMode: 'stop' | 'hold' = 'stop';
  let failed = true;
  const keep = () => !ownCp && (failed || process.env.CHAOS_KEEP === '1');

  try {
    try {
      applyCrdWithKubectl(cp.state.kubeconfig);
      for (const name of [namespace, leaseNamespace, secondLeaseNamespace, ...ownLeaseNamespaces])
        await core.createNamespace({ body: { metadata: { name } } });
      const installs = fencesOnly
        ? replicaNames.map((name, i) => ({ leaseNamespace: leaseNamespaceOf(i), users: [name] }))
        : [
            { leaseNamespace, users: [...replicaNames, dupName] },
            { leaseNamespace: secondLeaseNamespace, users: secondNames },
          ];
      const rbac = await applyRbac(kc, id, namespace, installs, log);
      rbacCleanup = rbac.cleanup;
      Object.assign(history, {
        replicas: replicaNames,
        lease: { namespace: leaseNamespaceOf(0), name: rbac.leaseName },
        installations: fencesOnly
          ? replicaNames.map((name, i) => ({
              name: `own-lease-${i}`,
              lease: { namespace: leaseNamespaceOf(i), name: rbac.leaseName },
              replicas: [name],
            }))
          : [
              {
                name: 'main',
                lease: { namespace: leaseNamespace, name: rbac.leaseName },
                replicas: [...replicaNames, dupName],
              },
              {
                name: 'second',
                lease: { namespace: secondLeaseNamespace, name: rbac.leaseName },
                replicas: secondNames,
              },
            ],
        ...(fencesOnly ? { fencesOnly: true } : {}),
        leaseDurationMs: TIMINGS.leaseDurationMs,
        recoveryBoundMs: 2 * TIMINGS.leaseDurationMs + 10_000,
      });

      const replicaOptions = {
        cp,
        dir: outDir,
        leaseNamespace,
        leaseName: rbac.leaseName,
        watchNamespace: namespace,
        timings: TIMINGS,
        pauseAfterReserveMs: PAUSE_AFTER_RESERVE_MS,
        rng,
        log,
        onExit: (e: ExitRecord) => history.exits.push(e),
      };
      replicas = await Promise.all(
        replicaNames.map((name, i) =>
          Replica.create(name, {
            ...replicaOptions,
            leaseNamespace: leaseNamespaceOf(i),
            ...(fencesOnly ? { fencesOnly: FENCES_ONLY_ROTATE_MS } : {}),
            onLine: (replica, line) => {
              if (hookWaiter && line.includes(HOOK_MESSAGE)) {
                // Synchronously: the reservation is written, the Job is not.
                if (hookMode === 'hold') replica.tcp.holdRequests();
                else replica.signal('SIGSTOP');
                const resolve = hookWaiter;
                hookWaiter = undefined;
                resolve(replica);
              }
            },
          }),
        ),
      );
      const leaderOf = async (): Promise<Replica | undefined> => {
        if (!fencesOnly) {
          const lease = await readLease(kc, leaseNamespace, rbac.leaseName);
          return replicas.find((r) => r.name === lease?.holder && r.running);
        }
        // Without an election: the running holder of the most recently written Lease (the newest term, or the one renewing).
        const leases = await Promise.all(replicas.map((_, i) => readLease(kc, leaseNamespaceOf(i), rbac.leaseName)));
        return replicas
          .map((r, i) => ({ r, lease: leases[i] }))
          .filter(({ r, lease }) => lease?.holder === r.name && lease.resourceVersion && r.running && !r.stopped)
          .sort((a, b) => Number(b.lease!.resourceVersion) - Number(a.lease!.resourceVersion))[0]?.r;
      };

      recorder = new Recorder(kc, namespace, history);
      recorder.onJob = (job, what) =>
        log(
          `  run ${what}: ${job.name.length > 40 ? `${job.name.slice(0, 37)}…` : job.name} token ${job.token ?? '?'}${job.slot ? ` slot ${job.slot}` : ''}`,
        );
      await recorder.start();
      history.startedAt = Date.now();
      for (const r of replicas) r.start();

      const recovered = async (deadlineMs: number): Promise<number | undefined> => {
        let baseRv: string | undefined;
        let lastProblem = '';
        const deadline = Date.now() + deadlineMs;
        while (Date.now() < deadline) {
          const lease = fencesOnly
            ? await leaderOf().then((r) =>
                r ? readLease(kc, leaseNamespaceOf(replicas.indexOf(r)), rbac.leaseName) : undefined,
              )
            : await readLease(kc, leaseNamespace, rbac.leaseName);
          if (lease?.resourceVersion && baseRv === undefined) baseRv = lease.resourceVersion;
          const health = await Promise.all(replicas.map((r) => r.health()));
          const holder = replicas.find((r) => r.name === lease?.holder && r.running && !r.stopped);
          if (
            holder &&
            baseRv !== undefined &&
            lease?.resourceVersion !== baseRv &&
            health.every((x) => x.live && x.ready)
          )
            return Date.now();
          // Say what recovery waits for, once per change (a slow recovery is then explained in the log).
          const problem = [
            holder ? '' : `no running holder (Lease holder ${lease?.holder ?? 'none'})`,
            ...health.map((x, i) =>
              x.live && x.ready
                ? ''
                : `${replicas[i]?.name.slice(id.length + 1)} ${x.live ? '' : 'not live '}${x.ready ? '' : 'not ready'}`.trim(),
            ),
          ]
            .filter(Boolean)
            .join(', ');
          if (problem && problem !== lastProblem) log(`  waiting for recovery: ${problem}`);
          lastProblem = problem;
          await sleep(250);
        }
        return undefined;
      };
      const up = await recovered(60_000);
      if (up === undefined)
        throw new Error(`the replicas did not become healthy with a leader within 60 s; see ${outDir}/*.log`);
      log(
        `Replicas up with leader ${(await leaderOf())?.name} after ${((up - history.startedAt) / 1000).toFixed(1)} s`,
      );

      for (const body of workload())
        await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, body });
      history.badInput = await runBadInput(custom, namespace, log);

      triggers = (async () => {
        let n = 0;
        while (!stopTriggers) {
          await sleep(rng.int(15_000, 25_000));
          if (stopTriggers) break;
          const patch = { metadata: { annotations: { [Keys.runNow]: `chaos-${++n}` } } };
          await custom
            .patchNamespacedCustomObject(
              { group: GROUP, version: VERSION, namespace, plural: PLURAL, name: 'manual', body: patch },
              k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
            )
            .catch(() => undefined);
        }
      })();

      const ctx: FaultContext = {
        cp,
        replicas,
        rng,
        timings: TIMINGS,
        skewedLeader: options.profile.skewedLeader,
        leader: leaderOf,
        kc,
        namespace,
        history,
        installations: history.installations ?? [],
        scheduled: Object.keys(SCHEDULES),
        schedules: SCHEDULES,
        extraReplica: async ({ name, leaseNamespace: ns, identity }) => {
          const r = await Replica.create(name, {
            ...replicaOptions,
            leaseNamespace: ns,
            ...(identity ? { identity } : {}),
          });
          r.start();
          return r;
        },
        stopAtReserveHook: (timeoutMs, mode = 'stop') =>
          new Promise((resolve) => {
            hookMode = mode;
            const timer = setTimeout(() => {
              hookWaiter = undefined;
              resolve(undefined);
            }, timeoutMs);
            hookWaiter = (r) => {
              clearTimeout(timer);
              resolve(r);
            };
          }),
        log,
      };
      const faultsEnd = Date.now() + options.profile.durationMs;
      let queue: FaultKind[] = [];
      let passes = 0;
      while (Date.now() < faultsEnd || (options.profile.fullPass && passes === 1 && queue.length > 0)) {
        if (queue.length === 0) {
          queue = rng.shuffle(faults);
          passes++;
        }
        const kind = queue.shift() as FaultKind;
        log(
          `Fault ${history.faults.length + 1}: ${kind} at +${((Date.now() - history.startedAt) / 1000).toFixed(1)} s`,
        );
        const injection = await injectors[kind](ctx);
        const record: FaultRecord = { kind, ...injection };
        if (!injection.skipped) {
          const at = await recovered(history.recoveryBoundMs + 20_000);
          if (at !== undefined) record.recoveredAt = at;
        }
        history.faults.push(record);
        log(
          `  ${kind} on ${record.target}: ${record.detail}` +
            (record.skipped
              ? ' (skipped)'
              : `; recovered ${record.recoveredAt ? `${((record.recoveredAt - record.healedAt) / 1000).toFixed(1)} s after heal` : 'NEVER'}`),
        );
        await sleep(rng.int(...options.profile.gapMs));
      }
      log(
        `Faults done; quiet tail of ${(SETTLE_MS + 15_000) / 1000} s so the last slots are judged on a healthy cluster`,
      );
      await sleep(SETTLE_MS + 15_000);
    } finally {
      stopTriggers = true;
      history.endedAt = Date.now();
      await recorder?.stop();
      await Promise.all(replicas.map((r) => r.shutdown()));
      await triggers?.catch(() => undefined);
    }

    history.writes = readAuditWrites(
      cp.state.auditLog,
      new Set([...replicaNames, dupName, ...secondNames]),
      history.startedAt - 60_000,
    );
    history.requests = readAuditCost(
      cp.state.auditLog,
      new Set([...replicaNames, dupName, ...secondNames]),
      history.startedAt - 60_000,
    );
    history.forbidden = readAuditForbidden(
      cp.state.auditLog,
      new Set([...replicaNames, dupName, ...secondNames]),
      history.startedAt - 60_000,
    );
    recorder.forget(badInputNames(history.badInput));
    const violations = checkHistory(history, { settleMs: SETTLE_MS, reserveLeadMs: PAUSE_AFTER_RESERVE_MS + 1000 });
    const account = describeViolations(history, violations);
    const rows = reportRows(history, violations, SETTLE_MS);
    const report = formatReport(history, rows, violations, account);
    writeFileSync(path.join(outDir, 'history.json'), JSON.stringify(history, null, 1));
    writeFileSync(path.join(outDir, 'report.txt'), `${report}\n`);
    log(report);
    log(`History: ${path.join(outDir, 'history.json')}; replica logs: ${outDir}/${id}-replica-*.log`);
    failed = violations.length > 0;
    return { history, violations, rows, report, account, outDir };
  } finally {
    // Kept after a violation (or with CHAOS_KEEP=1) so the objects can be inspected.
    const namespaces = [namespace, leaseNamespace, secondLeaseNamespace, ...ownLeaseNamespaces];
    if (keep()) log(`Kept namespaces ${namespaces.join(', ')} for inspection`);
    else for (const name of namespaces) await core.deleteNamespace({ name }).catch(() => undefined);
    await rbacCleanup?.();
    if (ownCp) await cp.stop();
  }
}
