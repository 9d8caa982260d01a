// The resource lock: a coordination.k8s.io/v1 Lease read and written with
// optimistic concurrency. Like client-go's resourcelock.Interface, it knows
// nothing about leadership; the elector decides, the lock only talks to the
// API server. The interface is small so unit tests can use an in-memory lock.
import * as k8s from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { makeClient } from '../kube/client.ts';
import { statusCode } from '../kube/errors.ts';
import type { RequestMetrics } from '../kube/client-metrics.ts';
import { objectKey } from '../kube/object-key.ts';
import { watchOnce } from '../kube/watch.ts';

/** What the elector reads and writes in Lease.spec (client-go's LeaderElectionRecord). */
export interface LeaseRecord {
  /** "" when released. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** MicroTime strings, e.g. 2030-01-01T00:00:00.123456Z. */
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions: number;
}

export interface LeaseSnapshot {
  record: LeaseRecord;
  resourceVersion: string;
  /** The full object as read, so an update keeps labels, annotations and fields we do not manage. */
  object?: k8s.V1Lease;
}

export type LeaseEvent =
  | { type: 'upsert'; lease: LeaseSnapshot }
  | { type: 'deleted'; resourceVersion: string }
  | { type: 'bookmark'; resourceVersion: string };

export interface LeaseWatch {
  stop(): void;
}

export interface LeaseLock {
  /** namespace/name, for logs. */
  describe(): string;
  /** The Lease (if any) and the resourceVersion to start a watch from. */
  list(): Promise<{ lease: LeaseSnapshot | undefined; resourceVersion: string }>;
  /** undefined when the Lease does not exist. */
  get(): Promise<LeaseSnapshot | undefined>;
  /** Fails with HTTP 409 (AlreadyExists) when the Lease exists. */
  create(record: LeaseRecord): Promise<LeaseSnapshot>;
  /** Compare-and-swap on base.resourceVersion: fails with 409 when the Lease changed, 404/409 when it is gone. */
  update(record: LeaseRecord, base: LeaseSnapshot): Promise<LeaseSnapshot>;
  /**
   * Streams changes after `resourceVersion`. `onClose` is called exactly once:
   * without an error when the server ended the watch normally, with an error
   * otherwise (an error with code 410 means: list again).
   */
  watch(resourceVersion: string, onEvent: (event: LeaseEvent) => void, onClose: (err?: unknown) => void): LeaseWatch;
  /**
   * Records a core/v1 Event (type Normal, reason `LeaderElection`) on the
   * Lease, as client-go's resourcelock.RecordEvent: message
   * "<identity> <what>", e.g. "replica-a became leader". Optional; the caller
   * does not wait for it and only logs a failure.
   */
  recordEvent?(lease: LeaseSnapshot, identity: string, what: string): Promise<void>;
}

/** A failed compare-and-swap: the Lease changed (409) or is gone (404/409). */
export const isCasFailure = (err: unknown) => statusCode(err) === 409 || statusCode(err) === 404;

/** An error for the log (HTTP status, the API server's reason and message): kube/errors.ts. */
export { describeError } from '../kube/errors.ts';

/** Formats epoch milliseconds as a Kubernetes MicroTime (RFC 3339, six fractional digits, UTC). */
export function formatMicroTime(epochMs: number): string {
  const whole = Math.floor(epochMs);
  const micros = Math.floor((epochMs - whole) * 1000);
  const iso = new Date(whole).toISOString(); // 2030-01-01T00:00:00.123Z
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

/**
 * The acquireTime of a new acquisition: the wall clock's millisecond, with random microsecond
 * digits 001–999 as a nonce (never 000, which every whole-millisecond writer — this operator before
 * the nonce, a hand-written record — produces). It tells apart two acquisitions under one identity
 * made in the same millisecond by two processes. acquireTime and not an annotation: acquireTime is
 * the one field every elector rewrites when it acquires (client-go: now, with its real microseconds;
 * this elector: this) and keeps while it renews that acquisition, whereas an annotation survives
 * every foreign write (client-go's LeaseLock.Update replaces only the spec of the object it read,
 * and so does this lock), so another process's acquisition would carry our nonce on. See the
 * election README's "Two processes with one identity" for what neither can tell.
 */
export function acquisitionTime(epochMs: number, random: () => number = Math.random): string {
  const micros = 1 + Math.min(998, Math.floor(random() * 999));
  const iso = new Date(Math.floor(epochMs)).toISOString(); // 2030-01-01T00:00:00.123Z
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

// client-node passes MicroTime through as the string the server sent (its
// type says Date); accept either.
function microTimeString(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (value instanceof Date) return formatMicroTime(value.getTime());
  return String(value);
}

export function recordFromLease(lease: k8s.V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  const record: LeaseRecord = {
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
  const acquireTime = microTimeString(spec.acquireTime);
  const renewTime = microTimeString(spec.renewTime);
  if (acquireTime !== undefined) record.acquireTime = acquireTime;
  if (renewTime !== undefined) record.renewTime = renewTime;
  return record;
}

function snapshot(lease: k8s.V1Lease): LeaseSnapshot {
  const resourceVersion = lease.metadata?.resourceVersion;
  if (!resourceVersion) throw new Error(`Lease ${objectKey(lease)} has no resourceVersion`);
  return { record: recordFromLease(lease), resourceVersion, object: lease };
}

function specFromRecord(record: LeaseRecord, base: k8s.V1LeaseSpec = {}): k8s.V1LeaseSpec {
  // MicroTime strings go out unchanged: client-node serialises unknown types as they are.
  const asMicroTime = (s: string | undefined) => s as unknown as k8s.V1MicroTime | undefined;
  const spec: k8s.V1LeaseSpec = {
    ...base,
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    leaseTransitions: record.leaseTransitions,
  };
  if (record.acquireTime !== undefined) spec.acquireTime = asMicroTime(record.acquireTime);
  else delete spec.acquireTime;
  if (record.renewTime !== undefined) spec.renewTime = asMicroTime(record.renewTime);
  else delete spec.renewTime;
  return spec;
}

export interface KubernetesLeaseLockOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  name: string;
  /** Per-request timeout for get/list/create/update. */
  requestTimeoutMs: number;
  userAgent?: string;
  /** Counts the lock's requests (rest_client_* metrics). */
  metrics?: RequestMetrics;
  /** Server-side timeout of one watch request; it is resumed from the last resourceVersion afterwards. */
  watchTimeoutSeconds?: () => number;
}

// client-node's default inactivity timeout is 30 s. A Lease renewed less often than that — long
// retry periods — would make standbys re-list every 30 s, i.e. poll. The API server sends bookmarks
// about once a minute, so 90 s of silence still means a dead connection; a standby never depends on
// the watch for safety (expiry is a local timer).
const WATCH_INACTIVITY_TIMEOUT_MS = 90_000;

/** The Events' reason, as client-go's leader election. */
export const LEADER_ELECTION_REASON = 'LeaderElection';
/** source.component and reportingComponent of the Events on the Lease. */
const EVENT_COMPONENT = 'singleton-operator';

export class KubernetesLeaseLock implements LeaseLock {
  private readonly api: k8s.CoordinationV1Api;
  private readonly core: k8s.CoreV1Api;
  private readonly options: KubernetesLeaseLockOptions;

  constructor(options: KubernetesLeaseLockOptions) {
    this.options = options;
    const clientOptions = {
      timeoutMs: options.requestTimeoutMs,
      userAgent: options.userAgent ?? 'singleton-operator/leader-election',
      ...(options.metrics ? { metrics: options.metrics } : {}),
    };
    this.api = makeClient(options.kubeConfig, k8s.CoordinationV1Api, clientOptions);
    this.core = makeClient(options.kubeConfig, k8s.CoreV1Api, clientOptions);
  }

  async recordEvent(lease: LeaseSnapshot, identity: string, what: string): Promise<void> {
    const { namespace, name } = this.options;
    const now = new Date();
    const meta = lease.object?.metadata;
    await this.core.createNamespacedEvent({
      namespace,
      body: {
        // client-go's recorder names Events <object>.<unique suffix> too.
        metadata: {
          name: `${name.slice(0, 200)}.${now.getTime().toString(16)}${randomBytes(4).toString('hex')}`,
          namespace,
        },
        involvedObject: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          name,
          namespace,
          resourceVersion: lease.resourceVersion,
          ...(meta?.uid ? { uid: meta.uid } : {}),
        },
        reason: LEADER_ELECTION_REASON,
        message: `${identity} ${what}`.slice(0, 1024),
        type: 'Normal',
        source: { component: EVENT_COMPONENT },
        reportingComponent: EVENT_COMPONENT,
        reportingInstance: identity.slice(0, 128),
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }

  describe(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  async list(): Promise<{ lease: LeaseSnapshot | undefined; resourceVersion: string }> {
    const list = await this.api.listNamespacedLease({
      namespace: this.options.namespace,
      fieldSelector: `metadata.name=${this.options.name}`,
    });
    const item = list.items[0];
    const resourceVersion = list.metadata?.resourceVersion;
    if (!resourceVersion) throw new Error('Lease list has no resourceVersion');
    return { lease: item ? snapshot(item) : undefined, resourceVersion };
  }

  async get(): Promise<LeaseSnapshot | undefined> {
    try {
      return snapshot(
        await this.api.readNamespacedLease({ namespace: this.options.namespace, name: this.options.name }),
      );
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord): Promise<LeaseSnapshot> {
    const body: k8s.V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.options.name, namespace: this.options.namespace },
      spec: specFromRecord(record),
    };
    return snapshot(await this.api.createNamespacedLease({ namespace: this.options.namespace, body }));
  }

  async update(record: LeaseRecord, base: LeaseSnapshot): Promise<LeaseSnapshot> {
    const object = base.object ?? { metadata: { name: this.options.name, namespace: this.options.namespace } };
    const body: k8s.V1Lease = {
      ...object,
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        ...object.metadata,
        name: this.options.name,
        namespace: this.options.namespace,
        resourceVersion: base.resourceVersion,
      },
      spec: specFromRecord(record, object.spec),
    };
    return snapshot(
      await this.api.replaceNamespacedLease({ namespace: this.options.namespace, name: this.options.name, body }),
    );
  }

  watch(resourceVersion: string, onEvent: (event: LeaseEvent) => void, onClose: (err?: unknown) => void): LeaseWatch {
    const onWatchEvent = (type: string, object: unknown) => {
      const obj = object as k8s.V1Lease;
      switch (type) {
        case 'ADDED':
        case 'MODIFIED':
          onEvent({ type: 'upsert', lease: snapshot(obj) });
          return;
        case 'DELETED':
          onEvent({ type: 'deleted', resourceVersion: obj.metadata?.resourceVersion ?? '' });
          return;
        case 'BOOKMARK':
          if (obj.metadata?.resourceVersion)
            onEvent({ type: 'bookmark', resourceVersion: obj.metadata.resourceVersion });
          return;
      }
    };
    const request = {
      kubeConfig: this.options.kubeConfig,
      path: `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.options.namespace)}/leases`,
      fieldSelector: `metadata.name=${this.options.name}`,
      resourceVersion,
      timeoutSeconds: this.options.watchTimeoutSeconds?.() ?? 300,
      inactivityTimeoutMs: WATCH_INACTIVITY_TIMEOUT_MS,
    };
    return watchOnce(request, onWatchEvent, onClose);
  }
}
