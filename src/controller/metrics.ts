// Controller metrics, registered on the operator's registry.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface ControllerMetrics {
  runsStarted: Counter;
  runsFinished: Counter<'outcome'>;
  slotsSkipped: Counter;
  reconciles: Counter<'result'>;
  reconcileSeconds: Histogram;
  queueDepth: Gauge;
  firstPassSeconds: Gauge;
  contended: Gauge;
}

export function controllerMetrics(registry: Registry): ControllerMetrics {
  const registers = [registry];
  return {
    runsStarted: new Counter({ name: 'singletonjob_runs_started_total', help: 'Jobs created for reserved runs.', registers }),
    runsFinished: new Counter({ name: 'singletonjob_runs_finished_total', help: 'Runs recorded as finished, by outcome.', labelNames: ['outcome'], registers }),
    slotsSkipped: new Counter({ name: 'singletonjob_slots_skipped_total', help: 'Schedule slots that will never run (missed deadline, catch-up).', registers }),
    reconciles: new Counter({ name: 'singletonjob_reconciles_total', help: 'Reconcile passes, by result.', labelNames: ['result'], registers }),
    reconcileSeconds: new Histogram({ name: 'singletonjob_reconcile_duration_seconds', help: 'Duration of one reconcile pass.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
    queueDepth: new Gauge({ name: 'singletonjob_workqueue_depth', help: 'Keys waiting in the work queue.', registers }),
    contended: new Gauge({
      name: 'singletonjob_contended_objects',
      help: 'SingletonJobs this leader leaves to another installation that also claims them (status.leaderLease names a live Lease that is not ours). Should be 0: give installations disjoint --watch-namespaces.',
      registers,
    }),
    firstPassSeconds: new Gauge({
      name: 'singletonjob_leader_first_pass_seconds',
      help: 'Since this replica last became leader: seconds until every SingletonJob had completed one reconcile pass (unset until then).',
      registers,
    }),
  };
}
