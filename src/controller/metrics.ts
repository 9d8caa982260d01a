// Controller metrics, registered on the operator's registry. What we share
// with controller-runtime carries its names and labels (controller_runtime_*,
// workqueue_*{name}), so the dashboards and alerts platform teams already run
// for their controllers apply; what is ours alone is singleton_operator_*.
// The table of every series is generated into docs/reference/metrics.md.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { workQueueMetrics } from '../kube/queue-metrics.ts';
import type { QueueMetrics } from '../kube/queue-metrics.ts';

/** The controller (and work queue) name in controller-runtime's labels. */
export const CONTROLLER_NAME = 'singletonjob';

export interface ControllerMetrics {
  runsStarted: Counter;
  /** Runs prepared ahead of their slot (rules/prepare.ts). */
  runsPrepared: Counter;
  /** Prepared runs withdrawn before their release, by reason. */
  runsWithdrawn: Counter<'reason'>;
  runsFinished: Counter<'outcome'>;
  slotsSkipped: Counter;
  /** controller_runtime_reconcile_total{controller,result}: result is success, requeue_after or error. */
  reconciles: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  reconcileSeconds: Histogram<'controller'>;
  activeWorkers: Gauge<'controller'>;
  maxConcurrentReconciles: Gauge<'controller'>;
  /** workqueue_depth{name}. */
  queueDepth: Gauge<'name'>;
  /** The work queue's own instrumentation (workqueue_*{name}). */
  queue: QueueMetrics;
  firstPassSeconds: Gauge;
  contended: Gauge;
}

const registered = new WeakMap<Registry, ControllerMetrics>();

export function controllerMetrics(registry: Registry): ControllerMetrics {
  const existing = registered.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const controller = CONTROLLER_NAME;
  const reconciles = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'],
    registers,
  });
  const reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller',
    labelNames: ['controller'],
    registers,
  });
  for (const result of ['success', 'requeue_after', 'error']) reconciles.inc({ controller, result }, 0);
  reconcileErrors.inc({ controller }, 0);
  const maxConcurrentReconciles = new Gauge({
    name: 'controller_runtime_max_concurrent_reconciles',
    help: 'Maximum number of concurrent reconciles per controller',
    labelNames: ['controller'],
    registers,
  });
  const activeWorkers = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller',
    labelNames: ['controller'],
    registers,
  });
  activeWorkers.set({ controller }, 0);
  const metrics: ControllerMetrics = {
    runsStarted: new Counter({
      name: 'singleton_operator_runs_started_total',
      help: 'Runs started: a Job created and recorded at its time, or a prepared run released.',
      registers,
    }),
    runsPrepared: new Counter({
      name: 'singleton_operator_runs_prepared_total',
      help: 'Runs prepared ahead of their time: the Job created suspended and recorded before its slot (or before the end of a retry backoff).',
      registers,
    }),
    runsWithdrawn: new Counter({
      name: 'singleton_operator_runs_withdrawn_total',
      help: 'Prepared runs withdrawn before their release (their Job never ran), by reason: SpecChanged, SchedulingStopped, ManualRequest, DeadlineMissed, JobModified.',
      labelNames: ['reason'],
      registers,
    }),
    runsFinished: new Counter({
      name: 'singleton_operator_runs_finished_total',
      help: 'Runs recorded as finished, by outcome.',
      labelNames: ['outcome'],
      registers,
    }),
    slotsSkipped: new Counter({
      name: 'singleton_operator_slots_skipped_total',
      help: 'Schedule slots that will never run (missed deadline, catch-up).',
      registers,
    }),
    reconciles,
    reconcileErrors,
    reconcileSeconds: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      // controller-runtime's buckets.
      buckets: [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5,
        1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
      ],
      registers,
    }),
    activeWorkers,
    maxConcurrentReconciles,
    ...workQueueMetrics(registry, CONTROLLER_NAME),
    contended: new Gauge({
      name: 'singleton_operator_contended_objects',
      help: 'SingletonJobs this leader leaves to another installation that also claims them (status.leaderLease names a live Lease that is not ours). Should be 0: give installations disjoint --watch-namespaces.',
      registers,
    }),
    firstPassSeconds: new Gauge({
      name: 'singleton_operator_leader_first_pass_seconds',
      help: 'Since this replica last became leader: seconds until every SingletonJob had completed one reconcile pass (unset until then).',
      registers,
    }),
  };
  registered.set(registry, metrics);
  return metrics;
}
