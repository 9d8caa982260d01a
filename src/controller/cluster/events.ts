// Events about a SingletonJob, as events.k8s.io/v1: `regarding` the
// SingletonJob, `related` the run's Job where there is one, an `action`, and
// reportingController/reportingInstance (what controller-runtime ≥ 0.23's
// recorder writes), so `kubectl events --for singletonjob/<name>` (and
// `kubectl describe sj`) tell a run's story. Written only by the leader,
// through the fenced client.
//
// Off the critical path, like client-go's event broadcaster: emit() logs the
// Event at once and queues it; a background writer sends the queue while the
// controller has no reconcile work waiting, so in a stampede the Jobs go
// first and their Events follow (each at most `maxDelayMs` late). The same
// Event repeated for an object is aggregated as client-go's events.k8s.io
// broadcaster does: repeats while it waits are sent with it, and a repeat
// within SERIES_WINDOW_MS of a sent Event patches that Event's `series`
// (count, lastObservedTime) instead of creating another. The queue is
// bounded: beyond `maxPending` the oldest Event is dropped (and counted),
// never the controller's memory.
import type { EventsV1Api, EventsV1Event, V1ObjectReference } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions, V1MicroTime } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { API_VERSION, KIND } from '../../api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { objectKey } from '../../kube/object-key.ts';
import { describeError, isNotFound } from '../../kube/errors.ts';

export const COMPONENT = 'singleton-operator';
/** events.k8s.io/v1 `reportingController`: a qualified name, as the API server requires. */
export const REPORTING_CONTROLLER = 'singleton.dev/singleton-operator';

/** A repeat of a sent Event within this long becomes its series (client-go's events broadcaster: 6 min). */
export const SERIES_WINDOW_MS = 6 * 60_000;
/** Sent Events remembered for series, at most (the oldest are forgotten first). */
const SENT_MAX = 4096;

/** The Job an Event is also about (`related`). */
export interface RelatedJob {
  name: string;
  uid?: string;
}

/**
 * What the operator did or tried (events.k8s.io `action`), by reason; reasons
 * not listed are a readiness verdict of a pass (`Reconcile`).
 */
const ACTIONS: Record<string, string> = {
  RunStarted: 'StartRun',
  RunQueued: 'QueueRun',
  RunHeld: 'HoldRun',
  RunReplacing: 'ReplaceRun',
  RunStalled: 'WatchRun',
  RunJobDeleted: 'WatchRun',
  RunJobSuspended: 'WatchRun',
  RunRetrying: 'RetryRun',
  RunFinished: 'FinishRun',
  SlotsSkipped: 'SkipSlots',
  JobRejected: 'CreateJob',
  JobNameTaken: 'CreateJob',
  JobAccepted: 'CheckTemplate',
  DuplicateJobDeleted: 'DeleteJob',
  StrayJobDeleted: 'DeleteJob',
  PredecessorJobDeleted: 'DeleteJob',
  PausedAfterFailures: 'Pause',
  Resumed: 'Resume',
  BackfillRequested: 'Backfill',
  BackfillRefused: 'Backfill',
  BackfillCompleted: 'Backfill',
  ClaimedByAnotherInstallation: 'Claim',
  TakenOver: 'Claim',
  TermAboveLeader: 'Claim',
};

export function actionOf(reason: string): string {
  return ACTIONS[reason] ?? 'Reconcile';
}

export interface EventRecorderOptions {
  /** True while reconcile work waits: Events wait for it (up to maxDelayMs). */
  busy?: () => boolean;
  /** An Event is sent at the latest this long after emit(), busy or not. Default 30 s. */
  maxDelayMs?: number;
  /** Pending Events kept at most; default 10,000. */
  maxPending?: number;
  /** Writes in flight at once; default 2. */
  concurrency?: number;
  metrics?: EventMetrics;
  /** Monotonic and wall-clock time and the timer of the busy wait; default the real ones (tests pass a clock they move). */
  clock?: EventClock;
}

/** What the EventRecorder reads of time (src/election/clock.ts's Clock is one). */
export interface EventClock {
  now(): number;
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: EventClock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    // Never the reason the process stays up.
    timer.unref?.();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Pending {
  sj: SingletonJob;
  related: RelatedJob | undefined;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  first: Date;
  last: Date;
  count: number;
  queuedAt: number;
}

/** A written Event that a repeat extends (its series). */
interface Sent {
  name: string;
  namespace: string;
  count: number;
  at: number;
}

export interface EventMetrics {
  pending: Gauge;
  dropped: Counter;
}

export function eventMetrics(registry: Registry): EventMetrics {
  const registers = [registry];
  return {
    pending: new Gauge({
      name: 'singleton_operator_events_pending',
      help: 'Events queued for writing (written while no reconcile work waits)',
      registers,
    }),
    dropped: new Counter({
      name: 'singleton_operator_events_dropped_total',
      help: 'Events dropped because the queue of pending Events was full',
      registers,
    }),
  };
}

export class EventRecorder {
  private readonly api: EventsV1Api;
  private readonly logger: Logger;
  private readonly instance: string;
  private readonly o: Required<Omit<EventRecorderOptions, 'metrics'>> & { metrics?: EventMetrics };
  private readonly clock: EventClock;
  /** Insertion order = send order; keyed for aggregation. */
  private readonly pending = new Map<string, Pending>();
  /** Written Events by the same key, oldest first (insertion order), for series. */
  private readonly sent = new Map<string, Sent>();
  private writers = 0;
  private timer: unknown;
  private stopped = false;

  constructor(api: EventsV1Api, logger: Logger, instance: string, options: EventRecorderOptions = {}) {
    this.api = api;
    this.logger = logger;
    this.instance = instance;
    this.o = {
      busy: () => false,
      maxDelayMs: 30_000,
      maxPending: 10_000,
      concurrency: 2,
      clock: realClock,
      ...options,
    };
    this.clock = this.o.clock;
  }

  /**
   * Logs the Event now and queues it for the API server; never throws, never
   * waits for the write. `related`: the Job it is also about; by default the
   * active run's Job of `sj` (none without an active run), `null` for none.
   */
  async emit(
    sj: SingletonJob,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    related?: RelatedJob | null,
  ): Promise<void> {
    this.logger.info({ object: objectKey(sj), reason, type }, message);
    if (this.stopped) return;
    const run = sj.status?.activeRun;
    const job =
      related === null
        ? undefined
        : (related ?? (run ? { name: run.name, ...(run.jobUID ? { uid: run.jobUID } : {}) } : undefined));
    const now = new Date(this.clock.wallNow());
    const key = [sj.metadata?.uid, type, reason, message, job?.name ?? ''].join('\u0000');
    const same = this.pending.get(key);
    if (same) {
      same.count++;
      same.last = now;
      same.sj = sj;
      if (job?.uid) same.related = job;
      return;
    }
    if (this.pending.size >= this.o.maxPending) {
      const oldest = this.pending.keys().next().value as string;
      this.pending.delete(oldest);
      this.o.metrics?.dropped.inc();
    }
    this.pending.set(key, {
      sj,
      related: job,
      type,
      reason,
      message,
      first: now,
      last: now,
      count: 1,
      queuedAt: this.clock.now(),
    });
    this.o.metrics?.pending.set(this.pending.size);
    this.pump();
  }

  /** Pending Events are dropped (the fenced client would refuse them once leadership is lost). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    if (this.pending.size) this.logger.info({ events: this.pending.size }, 'Dropped pending Events: no longer leading');
    this.pending.clear();
    this.sent.clear();
    this.o.metrics?.pending.set(0);
  }

  /** Resolves once nothing is pending or in flight (tests, shutdown); waits on real time, as the writes do. */
  async flush(timeoutMs = 10_000): Promise<void> {
    const until = performance.now() + timeoutMs;
    while ((this.pending.size || this.writers) && performance.now() < until) {
      this.send();
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private pump(): void {
    if (this.stopped || this.timer !== undefined) return;
    const oldest = this.pending.values().next().value as Pending | undefined;
    if (!oldest) return;
    const overdue = this.clock.now() - oldest.queuedAt >= this.o.maxDelayMs;
    if (!overdue && this.o.busy()) {
      // Reconcile work first; look again shortly.
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, 100);
      return;
    }
    this.send();
  }

  private send(): void {
    while (!this.stopped && this.writers < this.o.concurrency) {
      const next = this.pending.entries().next().value as [string, Pending] | undefined;
      if (!next) break;
      const [key, ev] = next;
      this.pending.delete(key);
      this.o.metrics?.pending.set(this.pending.size);
      this.writers++;
      void this.write(key, ev).finally(() => {
        this.writers--;
        this.pump();
      });
      if (this.o.busy()) break;
    }
  }

  /** Best effort: an Event that cannot be written is logged, never retried into a hot loop. */
  private async write(key: string, ev: Pending): Promise<void> {
    const meta = ev.sj.metadata!;
    try {
      const earlier = this.sent.get(key);
      if (earlier && this.clock.now() - earlier.at < SERIES_WINDOW_MS && (await this.extend(key, earlier, ev))) return;
      const body: EventsV1Event = {
        metadata: { name: `${meta.name!.slice(0, 200)}.${randomBytes(8).toString('hex')}`, namespace: meta.namespace! },
        eventTime: new V1MicroTime(ev.first),
        action: actionOf(ev.reason),
        reason: ev.reason,
        note: ev.message.slice(0, 1024),
        type: ev.type,
        regarding: {
          apiVersion: API_VERSION,
          kind: KIND,
          name: meta.name!,
          namespace: meta.namespace!,
          uid: meta.uid!,
          resourceVersion: meta.resourceVersion!,
        },
        reportingController: REPORTING_CONTROLLER,
        reportingInstance: this.instance.slice(0, 128),
      };
      if (ev.related) body.related = jobReference(meta.namespace!, ev.related);
      if (ev.count > 1) body.series = { count: ev.count, lastObservedTime: new V1MicroTime(ev.last) };
      const created = await this.api.createNamespacedEvent({ namespace: meta.namespace!, body });
      this.remember(key, {
        name: created.metadata?.name ?? body.metadata!.name!,
        namespace: meta.namespace!,
        count: ev.count,
        at: this.clock.now(),
      });
    } catch (err) {
      if (!this.stopped)
        this.logger.warn(
          { object: objectKey(ev.sj), reason: ev.reason, err: describeError(err) },
          'Event was not recorded',
        );
    }
  }

  /** A repeat of a sent Event: its series grows (a merge patch). False when that Event is gone (expired): write a new one. */
  private async extend(key: string, earlier: Sent, ev: Pending): Promise<boolean> {
    const count = earlier.count + ev.count;
    try {
      await this.api.patchNamespacedEvent(
        {
          name: earlier.name,
          namespace: earlier.namespace,
          body: { series: { count, lastObservedTime: new V1MicroTime(ev.last).toISOString() } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.sent.delete(key);
      return false;
    }
    this.remember(key, { ...earlier, count, at: this.clock.now() });
    return true;
  }

  private remember(key: string, sent: Sent): void {
    this.sent.delete(key);
    this.sent.set(key, sent);
    if (this.sent.size > SENT_MAX) this.sent.delete(this.sent.keys().next().value as string);
  }
}

function jobReference(namespace: string, job: RelatedJob): V1ObjectReference {
  return { apiVersion: 'batch/v1', kind: 'Job', name: job.name, namespace, ...(job.uid ? { uid: job.uid } : {}) };
}
