// Per-SingletonJob health, read from the informer cache at scrape time (a
// prom-client collect callback): what each object's status says, in
// kube-state-metrics style, with no bookkeeping in the reconciler. Only the
// leader exports them, so a scrape of all replicas yields each object once.
// Cardinality: per object 5 series, plus one per condition and one per
// outcome among its recent runs (docs/operations.md, "Metrics").
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SingletonJob } from '../api/v1alpha1/singletonjob.ts';

export interface ObjectMetricsSource {
  /** The SingletonJobs in the cache. */
  list(): SingletonJob[];
  /** Whether this replica exports them (it leads). */
  exporting(): boolean;
  /** Monotonic milliseconds, for the per-scrape snapshot's age (default performance.now; tests inject one). */
  now?: () => number;
}

const PREFIX = 'singleton_operator_singletonjob_';

export function objectMetrics(registry: Registry, source: ObjectMetricsSource): void {
  const registers = [registry];
  const labelNames = ['namespace', 'name'] as const;
  // One snapshot per scrape, shared by every series of this module.
  let snapshot: { at: number; objects: SingletonJob[] } | undefined;
  const objects = (): SingletonJob[] => {
    const now = source.now ? source.now() : performance.now();
    if (!snapshot || now - snapshot.at > 1000) snapshot = { at: now, objects: source.exporting() ? source.list() : [] };
    return snapshot.objects;
  };
  const timestamp = (name: string, help: string, field: (sj: SingletonJob) => string | undefined) =>
    new Gauge({
      name: PREFIX + name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const sj of objects()) {
          const value = field(sj);
          const ms = value === undefined ? NaN : Date.parse(value);
          if (Number.isFinite(ms)) this.set(labelsOf(sj), ms / 1000);
        }
      },
    });
  timestamp(
    'last_successful_run_timestamp_seconds',
    'When the last successful run finished (status.lastSuccessfulTime), Unix seconds.',
    (sj) => sj.status?.lastSuccessfulTime,
  );
  timestamp(
    'last_schedule_timestamp_seconds',
    'Latest slot that was started, queued or skipped (status.lastScheduleTime), Unix seconds.',
    (sj) => sj.status?.lastScheduleTime,
  );
  timestamp(
    'next_schedule_timestamp_seconds',
    'The next slot the operator will act on (status.nextScheduleTime), Unix seconds; absent without a schedule or while suspended.',
    (sj) => statusField(sj, 'nextScheduleTime'),
  );
  new Gauge({
    name: PREFIX + 'current_token',
    help: 'Highest fencing token issued for the SingletonJob (status.currentToken).',
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const sj of objects())
        if (sj.status?.currentToken !== undefined) this.set(labelsOf(sj), sj.status.currentToken);
    },
  });
  new Gauge({
    name: PREFIX + 'active_run',
    help: '1 while the SingletonJob has a run in flight (status.activeRun; a prepared run only once its release time has come), else 0.',
    labelNames,
    registers,
    collect() {
      this.reset();
      const now = Date.now();
      for (const sj of objects()) this.set(labelsOf(sj), sj.status?.activeRun && !waiting(sj, now) ? 1 : 0);
    },
  });
  new Gauge({
    name: PREFIX + 'prepared_run',
    help: '1 while a prepared run of the SingletonJob waits for its release (status.activeRun.releaseTime still ahead: its Job exists, suspended), else 0.',
    labelNames,
    registers,
    collect() {
      this.reset();
      const now = Date.now();
      for (const sj of objects()) this.set(labelsOf(sj), waiting(sj, now) ? 1 : 0);
    },
  });
  new Gauge({
    name: PREFIX + 'consecutive_failures',
    help: 'Runs that failed in a row, reset by a success (status.consecutiveFailures).',
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const sj of objects()) this.set(labelsOf(sj), sj.status?.consecutiveFailures ?? 0);
    },
  });
  new Counter({
    name: PREFIX + 'skipped_slots_total',
    help: 'Schedule slots skipped so far (status.skippedSlots: missed deadline, Forbid, suspend catch-up).',
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const sj of objects()) this.inc(labelsOf(sj), sj.status?.skippedSlots ?? 0);
    },
  });
  new Gauge({
    name: PREFIX + 'recent_runs',
    help: 'Finished runs among the most recent ones kept in status.recentRuns (at most 10), by outcome.',
    labelNames: [...labelNames, 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const sj of objects()) {
        const counts = new Map<string, number>();
        for (const run of sj.status?.recentRuns ?? []) counts.set(run.outcome, (counts.get(run.outcome) ?? 0) + 1);
        for (const [outcome, n] of counts) this.set({ ...labelsOf(sj), outcome }, n);
      }
    },
  });
  new Gauge({
    name: PREFIX + 'status_condition',
    help: '1 for each condition the SingletonJob has, with its type and status (True, False, Unknown).',
    labelNames: [...labelNames, 'type', 'status'],
    registers,
    collect() {
      this.reset();
      for (const sj of objects())
        for (const c of sj.status?.conditions ?? []) this.set({ ...labelsOf(sj), type: c.type, status: c.status }, 1);
    },
  });
}

function labelsOf(sj: SingletonJob): { namespace: string; name: string } {
  return { namespace: sj.metadata?.namespace ?? '', name: sj.metadata?.name ?? '' };
}

/** A status field that may not be in the schema this build was generated with. */
function statusField(sj: SingletonJob, field: string): string | undefined {
  const value = (sj.status as Record<string, unknown> | undefined)?.[field];
  return typeof value === 'string' ? value : undefined;
}

/** A prepared run whose release time is still ahead (this process's clock: a gauge, not a decision). */
function waiting(sj: SingletonJob, now: number): boolean {
  const at = sj.status?.activeRun?.releaseTime;
  return at !== undefined && Date.parse(at) > now;
}
