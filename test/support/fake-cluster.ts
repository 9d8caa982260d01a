// In-memory fakes of the reconciler's ports (src/controller/cluster/ports.ts), for
// table-driven tests of its decisions. They keep the API server's rules that
// the decisions rely on — resourceVersion CAS on status writes, the CRD's CEL
// rules (token and term never decrease; activeRun.token == currentToken),
// AlreadyExists on create, UID preconditions on deletes and on the unsuspend
// patch — and record every mutating call as a short action string, in order.
// They are not a substitute for the integration tests against the real
// control plane; they make every branch cheap to reach.
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import { Keys, singletonJobSchema, transitionRules } from '../../src/api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../../src/api/v1alpha1/singletonjob.ts';
import type { Liveness } from '../../src/controller/cluster/lease-liveness.ts';
import type {
  EventSink,
  JobControl,
  LeaseLiveness,
  PodControl,
  StatusStore,
} from '../../src/controller/cluster/ports.ts';
import { NOT_RELEASED, projectJob, sjKeyOfJob } from '../../src/controller/rules/jobs.ts';
import { LostJobs } from '../../src/controller/cluster/lost-jobs.ts';
import { valueAt } from '../../src/controller/rules/prepare.ts';

/** An API error as the ports throw it: the status code and the Status body (`extra`: reason, details.causes). */
export function apiError(code: number, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { code, body: { kind: 'Status', code, message, ...extra } });
}

const copy = <T>(o: T): T => structuredClone(o);
const keyOf = (o: { metadata?: { namespace?: string; name?: string } }) =>
  `${o.metadata?.namespace}/${o.metadata?.name}`;

export class FakeCluster {
  /** The etcd revision: every write takes the next one. */
  revision = 1000;
  readonly sjs = new Map<string, SingletonJob>();
  readonly jobMap = new Map<string, V1Job>();
  pods: V1Pod[] = [];
  readonly leases = new Map<string, Liveness>();
  readonly actions: string[] = [];
  /** Set to make the next Job create fail with 422 and this message. */
  rejectJobs: string | undefined;
  /**
   * Asked before each Job create (dry run or not): an error to answer with
   * instead — a quota's or a policy's 403, a 5xx from a webhook the API
   * server cannot call, a terminating namespace's 403. Nothing is stored then.
   */
  refuseJobCreate: ((job: V1Job, options: { dryRun?: boolean }) => Error | undefined) | undefined;
  /** Runs right before an unsuspend patch is applied: another writer acting between a pass's read of the Job and its release. */
  beforeUnsuspend: ((live: V1Job) => void) | undefined;
  /** Called before each status write: lets a test change the object under the writer (a concurrent writer). */
  beforeStatusWrite: (() => void) | undefined;
  private uids = 0;

  nextRv(): string {
    this.revision += 1;
    return String(this.revision);
  }

  addSingletonJob(sj: SingletonJob): SingletonJob {
    const stored = copy(sj);
    stored.metadata = {
      namespace: 'ns',
      uid: `sj-uid-${++this.uids}`,
      generation: 1,
      creationTimestamp: '2026-01-01T00:00:00Z' as unknown as Date,
      ...stored.metadata,
      resourceVersion: this.nextRv(),
    };
    this.sjs.set(keyOf(stored), stored);
    return copy(stored);
  }

  /** Live Pod lists sent (a read, so not an action; the request count the start and end of a run cost). */
  podLists = 0;
  /** Jobs deleted while their Pods might run (the same record as KubeJobControl's: lost-jobs.ts). */
  readonly lostJobs = new LostJobs();

  addJob(job: V1Job): V1Job {
    const stored = copy(job);
    stored.metadata = {
      namespace: 'ns',
      uid: `job-uid-${++this.uids}`,
      ...stored.metadata,
      resourceVersion: this.nextRv(),
    };
    this.jobMap.set(keyOf(stored), stored);
    return copy(stored);
  }

  addPod(pod: V1Pod): V1Pod {
    const stored = copy(pod);
    stored.metadata = {
      namespace: 'ns',
      uid: `pod-uid-${++this.uids}`,
      ...stored.metadata,
      resourceVersion: this.nextRv(),
    };
    this.pods.push(stored);
    return copy(stored);
  }

  readonly status: StatusStore = {
    cached: (key) => (this.sjs.has(key) ? copy(this.sjs.get(key)!) : undefined),
    read: async (key) => (this.sjs.has(key) ? copy(this.sjs.get(key)!) : undefined),
    forget: () => undefined,
    replaceStatus: async (sj) => {
      this.beforeStatusWrite?.();
      const key = keyOf(sj);
      const old = this.sjs.get(key);
      if (!old) throw apiError(404, `singletonjobs "${sj.metadata?.name}" not found`);
      if (sj.metadata?.resourceVersion !== old.metadata?.resourceVersion)
        throw apiError(
          409,
          'the object has been modified; please apply your changes to the latest version and try again',
        );
      const next = sj.status ?? {};
      // The CRD's transition rules (CEL on oldSelf: token and term never go down), as declared.
      for (const r of transitionRules)
        if (!r.check.transition(old, { ...old, status: next })) throw apiError(422, r.message);
      // The CRD's structural schema and its CEL rules on one value (maxLength, maxItems, enums, activeRun.token == currentToken, …): the API server refuses a status that breaks it.
      const valid = singletonJobSchema.shape.status.safeParse(next);
      if (!valid.success)
        throw apiError(422, valid.error.issues.map((i) => `status.${i.path.join('.')}: ${i.message}`).join('; '));
      const stored: SingletonJob = { ...copy(old), status: copy(next) };
      stored.metadata = { ...stored.metadata, resourceVersion: this.nextRv() };
      this.sjs.set(key, stored);
      this.actions.push('update-status');
      return copy(stored);
    },
  };

  readonly jobs: JobControl = {
    // The cache keeps what the informer's transform keeps (projectJob); live reads get the whole Job.
    cached: (namespace, name) =>
      this.jobMap.has(`${namespace}/${name}`) ? projectJob(copy(this.jobMap.get(`${namespace}/${name}`)!)) : undefined,
    ofName: (key) => [...this.jobMap.values()].filter((j) => sjKeyOfJob(j) === key).map((j) => projectJob(copy(j))),
    read: async (namespace, name) =>
      this.jobMap.has(`${namespace}/${name}`) ? copy(this.jobMap.get(`${namespace}/${name}`)!) : undefined,
    create: async (job, options = {}) => {
      if (this.rejectJobs) throw apiError(422, this.rejectJobs);
      const refused = this.refuseJobCreate?.(job, options);
      if (refused) {
        this.actions.push(
          `refused-${options.dryRun ? 'dry-run-' : ''}job ${job.metadata?.name} (${(refused as { code?: number }).code})`,
        );
        throw refused;
      }
      if (options.dryRun) {
        this.actions.push(`dry-run-job ${job.metadata?.name}`);
        return copy(job);
      }
      if (this.jobMap.has(keyOf(job))) throw apiError(409, `jobs.batch "${job.metadata?.name}" already exists`);
      const created = this.addJob(job);
      this.actions.push(
        `create-job ${job.metadata?.name} token=${job.metadata?.annotations?.[Keys.token]}${job.spec?.suspend ? ' suspended' : ''}`,
      );
      return created;
    },
    deletedWhileRunning: (key) => this.lostJobs.has(key),
    podsChecked: (key) => this.lostJobs.cleared(key),
    delete: async (job) => {
      this.lostJobs.deleted(job);
      const live = this.jobMap.get(keyOf(job));
      if (!live || live.metadata?.uid !== job.metadata?.uid) return; // gone or another object: tolerated, as by the real control
      this.jobMap.delete(keyOf(job));
      // Background propagation: the garbage collector starts deleting its Pods.
      for (const pod of this.pods)
        if (pod.metadata?.ownerReferences?.some((r) => r.uid === live.metadata?.uid))
          pod.metadata!.deletionTimestamp = new Date();
      this.actions.push(`delete-job ${job.metadata?.name} uid=${job.metadata?.uid}`);
    },
    events: async (job) => this.jobEvents.filter((e) => e.involvedObject.uid === job.metadata?.uid).map(copy),
    withdraw: async (job) => {
      const live = this.jobMap.get(keyOf(job));
      // As the real delete's preconditions: the UID and the resourceVersion read.
      if (
        !live ||
        live.metadata?.uid !== job.metadata?.uid ||
        live.metadata?.resourceVersion !== job.metadata?.resourceVersion
      ) {
        this.actions.push(`withdraw-job ${job.metadata?.name} refused`);
        return false;
      }
      this.jobMap.delete(keyOf(job));
      this.actions.push(`withdraw-job ${job.metadata?.name} uid=${job.metadata?.uid}`);
      return true;
    },
    unsuspend: async (job, guards = []) => {
      const live = this.jobMap.get(keyOf(job));
      if (live) this.beforeUnsuspend?.(live);
      // The JSON patch's tests of the guarded fields: a mismatch (or a missing path) is refused.
      if (live && guards.some((g) => valueAt(live, g.path) !== g.value)) {
        this.actions.push(`unsuspend ${job.metadata?.name} refused`);
        return false;
      }
      // As KubeJobControl's JSON patch: a failed test (UID or resourceVersion) is 422, told apart as "not released".
      const marker = live?.metadata?.annotations?.[Keys.released];
      const legacy = marker === undefined && live?.metadata?.resourceVersion !== job.metadata?.resourceVersion;
      if (
        !live ||
        live.metadata?.uid !== job.metadata?.uid ||
        (marker !== undefined && marker !== NOT_RELEASED) ||
        legacy
      ) {
        this.actions.push(`unsuspend ${job.metadata?.name} refused`);
        return false;
      }
      live.spec = { ...live.spec!, suspend: false };
      live.metadata = {
        ...live.metadata,
        annotations: { ...live.metadata?.annotations, [Keys.released]: 'now' },
        resourceVersion: this.nextRv(),
      };
      this.actions.push(`unsuspend ${job.metadata?.name}`);
      return true;
    },
  };

  readonly podControl: PodControl = {
    list: async (namespace) => {
      this.podLists++;
      return this.pods.filter((p) => p.metadata?.namespace === namespace).map(copy);
    },
    delete: async (pods) => {
      for (const pod of pods) {
        const live = this.pods.find((p) => p.metadata?.uid === pod.metadata?.uid);
        if (!live || live.metadata?.deletionTimestamp) continue;
        live.metadata!.deletionTimestamp = new Date();
        this.actions.push(`delete-pod ${pod.metadata?.name}`);
      }
    },
  };

  readonly events: EventSink = {
    emit: async (_sj, type, reason, message) => {
      this.actions.push(`event ${type} ${reason}`);
      this.eventLog.push({ type, reason, message });
    },
  };

  readonly eventLog: { type: string; reason: string; message: string }[] = [];
  /** Events other components recorded (e.g. the Job controller's FailedCreate). */
  readonly jobEvents: CoreV1Event[] = [];

  readonly leaseLiveness: LeaseLiveness = {
    check: async (key) =>
      this.leases.get(key) ?? { alive: true, holder: 'someone', why: `Lease ${key} is held`, recheckMs: 1000 },
  };

  sj(key = 'ns/sj'): SingletonJob {
    return copy(this.sjs.get(key)!);
  }
}
