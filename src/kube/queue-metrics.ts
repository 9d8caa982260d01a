// client-go's workqueue metrics (workqueue_*{name}), for a WorkQueue
// (workqueue.ts): the names and buckets client-go registers, so dashboards
// built for controllers in Go read ours too.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** What a WorkQueue reports, in client-go's workqueue terms. */
export interface QueueMetrics {
  /** A key was added (not already waiting). */
  added(): void;
  depth(keys: number): void;
  /** A key left the queue for a worker after waiting this long. */
  queued(seconds: number): void;
  /** A worker finished a key after this long. */
  worked(seconds: number): void;
  /** A key was re-added with backoff after a failure. */
  retried(): void;
  /** Where to read, at scrape time, for how many seconds each key in process has been. */
  inProcess(source: () => number[]): void;
}

/** client-go's workqueue metrics for the queue `name`. */
export function workQueueMetrics(registry: Registry, name: string): { queueDepth: Gauge<'name'>; queue: QueueMetrics } {
  const registers = [registry];
  const labelNames = ['name'] as const;
  // client-go's buckets: 10 ns … 10 s in powers of ten.
  const buckets = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10];
  const depth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames, registers });
  const adds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames,
    registers,
  });
  const retries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames,
    registers,
  });
  const queueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames,
    buckets,
    registers,
  });
  const workDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes.',
    labelNames,
    buckets,
    registers,
  });
  let inProcess: () => number[] = () => [];
  new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
    labelNames,
    registers,
    collect() {
      this.set(
        { name },
        inProcess().reduce((sum, s) => sum + s, 0),
      );
    },
  });
  new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running.',
    labelNames,
    registers,
    collect() {
      this.set({ name }, Math.max(0, ...inProcess()));
    },
  });
  depth.set({ name }, 0);
  adds.inc({ name }, 0);
  retries.inc({ name }, 0);
  return {
    queueDepth: depth,
    queue: {
      added: () => adds.inc({ name }),
      depth: (keys) => depth.set({ name }, keys),
      queued: (seconds) => queueDuration.observe({ name }, seconds),
      worked: (seconds) => workDuration.observe({ name }, seconds),
      retried: () => retries.inc({ name }),
      inProcess: (source) => {
        inProcess = source;
      },
    },
  };
}
