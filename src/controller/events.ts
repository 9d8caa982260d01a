// Events about a SingletonJob (core/v1, so `kubectl describe sj` shows them).
// Written only by the leader, through the fenced client.
//
// Off the critical path, like client-go's event broadcaster: emit() logs the
// Event at once and queues it; a background writer sends the queue while the
// controller has no reconcile work waiting, so in a stampede the Jobs go
// first and their Events follow (each at most `maxDelayMs` late). The same
// Event repeated for an object while it waits is sent once with its count,
// like client-go's correlator. The queue is bounded: beyond `maxPending` the
// oldest Event is dropped (and counted), never the controller's memory.
import type { CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { API_VERSION, KIND } from '../api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../api/v1alpha1/singletonjob.ts';
import { objectKey } from '../kube/object-key.ts';
import { describeError } from '../kube/errors.ts';

export const COMPONENT = 'singleton-operator';

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
}

interface Pending {
  sj: SingletonJob;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  first: Date;
  last: Date;
  count: number;
  queuedAt: number;
}

export interface EventMetrics {
  pending: Gauge;
  dropped: Counter;
}

export function eventMetrics(registry: Registry): EventMetrics {
  const registers = [registry];
  return {
    pending: new Gauge({ name: 'singleton_operator_events_pending', help: 'Events queued for writing (written while no reconcile work waits)', registers }),
    dropped: new Counter({ name: 'singleton_operator_events_dropped_total', help: 'Events dropped because the queue of pending Events was full', registers }),
  };
}

export class EventRecorder {
  private readonly core: CoreV1Api;
  private readonly logger: Logger;
  private readonly instance: string;
  private readonly o: Required<Omit<EventRecorderOptions, 'metrics'>> & { metrics?: EventMetrics };
  /** Insertion order = send order; keyed for aggregation. */
  private readonly pending = new Map<string, Pending>();
  private writers = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(core: CoreV1Api, logger: Logger, instance: string, options: EventRecorderOptions = {}) {
    this.core = core;
    this.logger = logger;
    this.instance = instance;
    this.o = { busy: () => false, maxDelayMs: 30_000, maxPending: 10_000, concurrency: 2, ...options };
  }

  /** Logs the Event now and queues it for the API server; never throws, never waits for the write. */
  async emit(sj: SingletonJob, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    this.logger.info({ object: objectKey(sj), reason, type }, message);
    if (this.stopped) return;
    const now = new Date();
    const key = `${sj.metadata?.uid}\u0000${type}\u0000${reason}\u0000${message}`;
    const same = this.pending.get(key);
    if (same) {
      same.count++;
      same.last = now;
      same.sj = sj;
      return;
    }
    if (this.pending.size >= this.o.maxPending) {
      const oldest = this.pending.keys().next().value as string;
      this.pending.delete(oldest);
      this.o.metrics?.dropped.inc();
    }
    this.pending.set(key, { sj, type, reason, message, first: now, last: now, count: 1, queuedAt: performance.now() });
    this.o.metrics?.pending.set(this.pending.size);
    this.pump();
  }

  /** Pending Events are dropped (the fenced client would refuse them once leadership is lost). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.pending.size) this.logger.info({ events: this.pending.size }, 'Dropped pending Events: no longer leading');
    this.pending.clear();
    this.o.metrics?.pending.set(0);
  }

  /** Resolves once nothing is pending or in flight (tests, shutdown). */
  async flush(timeoutMs = 10_000): Promise<void> {
    const until = performance.now() + timeoutMs;
    while ((this.pending.size || this.writers) && performance.now() < until) {
      this.send();
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private pump(): void {
    if (this.stopped || this.timer) return;
    const oldest = this.pending.values().next().value as Pending | undefined;
    if (!oldest) return;
    const overdue = performance.now() - oldest.queuedAt >= this.o.maxDelayMs;
    if (!overdue && this.o.busy()) {
      // Reconcile work first; look again shortly.
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, 100);
      this.timer.unref?.();
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
      void this.write(ev).finally(() => {
        this.writers--;
        this.pump();
      });
      if (this.o.busy()) break;
    }
  }

  /** Best effort: an Event that cannot be written is logged, never retried into a hot loop. */
  private async write(ev: Pending): Promise<void> {
    const meta = ev.sj.metadata!;
    try {
      await this.core.createNamespacedEvent({
        namespace: meta.namespace!,
        body: {
          metadata: { name: `${meta.name!.slice(0, 200)}.${randomBytes(8).toString('hex')}`, namespace: meta.namespace! },
          involvedObject: { apiVersion: API_VERSION, kind: KIND, name: meta.name!, namespace: meta.namespace!, uid: meta.uid!, resourceVersion: meta.resourceVersion! },
          reason: ev.reason,
          message: ev.message.slice(0, 1024),
          type: ev.type,
          source: { component: COMPONENT },
          reportingComponent: COMPONENT,
          reportingInstance: this.instance,
          firstTimestamp: ev.first,
          lastTimestamp: ev.last,
          count: ev.count,
        },
      });
    } catch (err) {
      if (!this.stopped) this.logger.warn({ object: objectKey(ev.sj), reason: ev.reason, err: describeError(err) }, 'Event was not recorded');
    }
  }
}
