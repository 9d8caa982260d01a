// Orchestrates part (b): the CronJob controller as shipped (kube-controller-
// manager defaults: 20 qps / burst 30), our operator as shipped, and the
// CronJob controller again with its client rate limit raised so that neither
// side is throttled on the client — each in its own namespace and minute,
// with the previous side's Jobs and Pods finished in between.
import type { ControlPlane } from '../test/controlplane/controlplane.ts';
import { sleep } from './lib/proc.ts';
import {
  cronJobSide,
  runStampedeSide,
  singletonJobSide,
  waitPodsSettled,
  type SideSetup,
  type StampedeResult,
  type StampedeSide,
} from './stampede.ts';
import { controllerWorkers, installCrds, operatorPrerequisites, startOperator } from './operator.ts';

export const FAST_KCM = { qps: 1000, burst: 2000 };

/** Restarts kube-controller-manager with other client rate limits (undefined = its defaults). */
async function setKcmRateLimit(cp: ControlPlane, limit: { qps: number; burst: number } | undefined): Promise<void> {
  const proc = cp.state.processes['kube-controller-manager'];
  if (!proc) throw new Error('no kube-controller-manager');
  proc.args = proc.args.filter((a) => !a.startsWith('--kube-api-qps=') && !a.startsWith('--kube-api-burst='));
  if (limit) proc.args.push(`--kube-api-qps=${limit.qps}`, `--kube-api-burst=${limit.burst}`);
  await cp.restartComponent('kube-controller-manager');
  await sleep(5000); // informers sync, leader-elect is off
}

export const STAMPEDE_SIDES = ['cronjob', 'ours', 'cronjob-fast'] as const;
export type StampedeSideName = (typeof STAMPEDE_SIDES)[number];

export async function runStampede(
  cp: ControlPlane,
  o: { count: number; workDir: string; log: (m: string) => void; sides?: StampedeSideName[] },
): Promise<StampedeResult> {
  const run = new Set<StampedeSideName>(o.sides ?? STAMPEDE_SIDES);
  const sides: StampedeSide[] = [];
  const notes: string[] = [];
  const timeoutMs = Math.max(300_000, o.count * 400);
  const measure = async (setup: SideSetup, last = false) => {
    const side = await runStampedeSide(cp, setup, { count: o.count, log: o.log, timeoutMs });
    sides.push(side);
    if (last) return;
    // Let the side's Jobs and Pods finish so they do not compete with the next
    // side. The namespace stays: deleting 1,000 Jobs takes the namespace
    // controller minutes of churn, while finished Jobs cost nothing (no
    // CronJob or SingletonJob is due again during the run).
    await waitPodsSettled(cp, setup.namespace, 300_000, o.log).catch((err: unknown) =>
      o.log(`not settled: ${String(err)}`),
    );
  };

  if (run.has('cronjob')) await measure(cronJobSide, !run.has('ours') && !run.has('cronjob-fast'));

  let oursError: string | undefined;
  try {
    operatorPrerequisites();
  } catch (err) {
    oursError = (err as Error).message;
  }
  if (!run.has('ours')) {
    // Only part of the comparison was asked for (--stampede-sides).
  } else if (oursError === undefined) {
    await installCrds(cp);
    const op = await startOperator(cp, { replicas: 3, workDir: o.workDir, tag: 'stampede' });
    try {
      const leader = await op.waitLeader(60_000);
      o.log(`operator leader: ${leader}`);
      await measure(
        singletonJobSide(
          `our operator as shipped: no client-side rate limit (client-node has none), ${controllerWorkers()} reconcile workers (--max-concurrent-reconciles), 3 replicas`,
          op.identities,
        ),
        !run.has('cronjob-fast'),
      );
    } finally {
      await op.stop();
    }
  } else {
    notes.push(`SingletonJob side not measured: ${oursError}`);
    o.log(`SingletonJob side skipped: ${oursError}`);
  }

  // The peer again, unthrottled on the client like ours.
  if (!run.has('cronjob-fast')) return { count: o.count, sides, notes };
  await setKcmRateLimit(cp, FAST_KCM);
  try {
    await measure(
      {
        ...cronJobSide,
        namespace: 'bench-stampede-cron-fast',
        label: `CronJob, kcm qps ${FAST_KCM.qps}`,
        rateLimit: `kube-controller-manager restarted with --kube-api-qps=${FAST_KCM.qps} --kube-api-burst=${FAST_KCM.burst} (client limit effectively off, like ours), --concurrent-cron-job-syncs=5`,
      },
      true,
    );
  } finally {
    await setKcmRateLimit(cp, undefined);
  }
  return { count: o.count, sides, notes };
}
