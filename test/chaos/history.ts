// The recorded history of one chaos run: what the checker judges afterwards.
// Everything is plain JSON (written next to the report), so a failed run can
// be re-checked or inspected without the cluster.
//
// Two clocks, used for different questions:
// - resourceVersions (`*Rv`): the order etcd committed the changes in. Since
//   Kubernetes 1.35 they are comparable integers within a resource type, so
//   "were two Pods of one SingletonJob ever non-terminal at once" is decided
//   exactly, with no clock involved.
// - harness wall-clock milliseconds (`*At`): when the recorder saw a change,
//   when a fault started and healed. Slots, fault windows and recovery times
//   are judged on it; one process measures all of them.
import { compareResourceVersions } from '../../src/kube/resource-version.ts';

export interface SingletonJobInfo {
  namespace: string;
  name: string;
  uid: string;
  /** Cron schedule; '' for an object that only runs on request. */
  schedule: string;
  timeZone?: string;
  startingDeadlineSeconds?: number;
  suspend?: boolean;
  /** When the recorder first saw the object (ms). */
  createdAt: number;
  /** When the recorder saw it deleted (ms); a re-created object under the same name is a new record. */
  deletedAt?: number;
  /** jobTemplate.spec.backoffLimit: the run's retry budget (absent = 0). */
  backoffLimit?: number;
  /** Every version the watch delivered whose fencing fields changed: resourceVersion, status.leaderTerm, status.currentToken. */
  fences?: Array<{ rv: string; at: number; leaderTerm?: number; currentToken?: number }>;
  /** Each change of the run-now annotation to a new value (the value it was created with counts). */
  requests?: Array<{ id: string; at: number }>;
  /** Each change of a status condition's (status, reason), per type. */
  conditions?: ConditionChange[];
}

export interface ConditionChange {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  at: number;
}

export interface JobRecord {
  namespace: string;
  name: string;
  uid: string;
  /** Name of the owning SingletonJob (from ownerReferences). */
  owner: string;
  ownerUid: string;
  /** The schedule slot this run belongs to (ISO time), absent for manual runs. */
  slot?: string;
  /** Fencing token from the Job's annotation (decimal string). */
  token?: string;
  /** Attempt of the run (annotation singleton.dev/attempt, 1-based; absent = 1). */
  attempt?: number;
  /** Manual request id (annotation singleton.dev/request-id), for manual runs. */
  requestId?: string;
  /** How the Job ended, when it did: its terminal condition. */
  outcome?: 'Complete' | 'Failed';
  /** Fencing token in the Pod template's containers' env, one per container. */
  templateTokens: string[];
  createdRv: string;
  createdAt: number;
  /**
   * Whether the Job was ever seen with spec.suspend unset or false, i.e. let
   * run. The operator creates each run's Job suspended and unsuspends it once
   * the run has recorded its UID; a Job that was never let run had no Pod and
   * is not a run. Absent (older histories): treated as started.
   */
  started?: boolean;
  /**
   * When the Job was first seen let run (the release). A prepared run's Job
   * is created up to prepareAheadSeconds before its slot and released at it:
   * its run starts here, not at its creation. Absent: at its creation.
   */
  startedAt?: number;
  terminalRv?: string;
  terminalAt?: number;
  deletedRv?: string;
  deletedAt?: number;
}

export interface PodRecord {
  namespace: string;
  name: string;
  uid: string;
  jobName: string;
  jobUid: string;
  /** Fencing token from the Pod's annotation. */
  token?: string;
  /** The SingletonJob name from the Pod's annotation singleton.dev/singletonjob. */
  singletonJob?: string;
  createdRv: string;
  createdAt: number;
  /** First version seen in phase Succeeded or Failed. */
  terminalRv?: string;
  terminalAt?: number;
  phase?: string;
  /** First version seen with metadata.deletionTimestamp (still non-terminal until gone or terminal). */
  terminatingRv?: string;
  /** The run label the controller selects Pods by (singleton.dev/run), as the Pod carries it. */
  runLabel?: string;
  deletedRv?: string;
  deletedAt?: number;
}

/** One mutating request from the API server's audit log. */
export interface AuditWrite {
  user: string;
  verb: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  code: number;
  /** requestReceivedTimestamp and stageTimestamp, in epoch microseconds. */
  receivedUs: number;
  completedUs: number;
  /** A SingletonJob status write: what its body carried (the audit policy logs those bodies), and the object's UID. */
  status?: { uid?: string; resourceVersion?: string; leaderTerm?: number; currentToken?: number; activeRun?: string };
}

export type FaultKind =
  | 'kill-leader'
  | 'pause-leader'
  | 'pause-after-reserve'
  | 'apiserver-restart'
  | 'etcd-restart'
  | 'partition'
  | 'slow-link'
  | 'clock-skew'
  | 'api-errors'
  // User actions (issue 12): what people and tools do to the objects, not failures.
  | 'recreate-job'
  | 'resuspend-job'
  | 'tamper-prepared-job'
  | 'repeat-request'
  | 'recreate-singletonjob'
  | 'second-installation'
  | 'delayed-requests'
  | 'duplicate-identity';

export interface FaultRecord {
  kind: FaultKind;
  /** Replica (or component) the fault hit. */
  target: string;
  detail: string;
  startedAt: number;
  /** When the harness undid the fault (resumed, restarted, healed the link). */
  healedAt: number;
  /** When every replica was healthy again and a leader was renewing; absent if never. */
  recoveredAt?: number;
  /** The fault could not be injected (e.g. the hook never fired); not counted. */
  skipped?: string;
  /**
   * What must follow the fault (judged by the checker's `expectations` rule):
   * e.g. "a new run of default/tick within lease duration + margin after the
   * second installation is gone". `metAt` is when the harness saw it met.
   */
  expectations?: Expectation[];
  /** Jobs the harness itself created (a deposed leader's late create, re-enacted): they must never run. */
  strayJobs?: Array<{ namespace: string; name: string; uid: string }>;
}

export interface Expectation {
  what: string;
  /** Harness ms: the expectation is met if it happened by then. */
  deadline: number;
  metAt?: number;
}

/** One installation of the operator: its Lease and the replica identities (audit users) it ran with. */
export interface RequestCost {
  /** Every request but watches, Lease and Event requests (the election's and the story's cost, not the runs'). */
  total: number;
  /** Creates, updates, patches, deletes among them. */
  writes: number;
  /** Lease requests (no-election replicas re-acquire every few seconds) and Event creates, apart. */
  leases: number;
  events: number;
  /** Answered 409 Conflict (a CAS lost, or AlreadyExists). */
  conflicts: number;
  /** Answered 422: a CEL rule (a lower term or token), a failed JSON-patch test, a Job the API server refused. */
  refused: number;
}

export interface Installation {
  name: string;
  lease: { namespace: string; name: string };
  replicas: string[];
  /** When the harness deleted this installation's Lease (after its replicas were gone). */
  leaseDeletedAt?: number[];
}

export interface ExitRecord {
  replica: string;
  at: number;
  code: number | null;
  signal: string | null;
  /** The harness caused it (SIGKILL fault, restart with a skewed clock, shutdown). */
  expected: boolean;
  logTail?: string;
}

/**
 * A stretch where the recorder's watch lost continuity (410 Gone, typically
 * right after an API-server restart) and had to relist. `missed` counts the
 * Jobs/Pods that appeared, turned terminal or vanished meanwhile: their
 * recorded resourceVersions are then only bounds, so the history is exact
 * only when it is 0.
 */
export interface WatchGap {
  resource: string;
  from: number;
  to: number;
  missed: number;
}

/** A bad-input probe: one malformed SingletonJob and what happened to it. */
export interface BadInputResult {
  name: string;
  description: string;
  /** 'rejected' by the API server, 'ready-false' surfaced by the operator, or 'accepted' (a failure). */
  outcome: 'rejected' | 'ready-false' | 'accepted';
  message: string;
}

export interface History {
  seed: number;
  profile: string;
  startedAt: number;
  endedAt: number;
  replicas: string[];
  lease: { namespace: string; name: string };
  /**
   * Every installation, the main one (`replicas`, `lease`) first. Writes are
   * judged per installation (its own Lease elects its leader), and across
   * installations per object. Absent in older histories: only the main one.
   */
  installations?: Installation[];
  /**
   * No election (profile no-election): every replica acted on every object at
   * once, each with its own Lease; the checker then judges the guarantees
   * alone, not that one installation acted at a time.
   */
  fencesOnly?: boolean;
  /** Lease duration the replicas were started with (ms). */
  leaseDurationMs: number;
  /** Bound on recovery after a fault is healed (ms). */
  recoveryBoundMs: number;
  singletonJobs: SingletonJobInfo[];
  jobs: JobRecord[];
  pods: PodRecord[];
  writes: AuditWrite[];
  faults: FaultRecord[];
  exits: ExitRecord[];
  gaps: WatchGap[];
  badInput: BadInputResult[];
  /**
   * What the replicas asked of the API server over the whole run (audit log;
   * watches not counted): the price of several writers acting at once. Absent
   * in older histories.
   */
  requests?: RequestCost;
  /** Requests of the replicas refused with 403 (the chart's RBAC lacks a permission the operator uses). Absent in older histories. */
  forbidden?: AuditWrite[];
}

/** Compares two resourceVersions numerically (KEP-5504), with the operator's own comparison; recorded ones are always integers. */
export function compareRv(a: string, b: string): number {
  const order = compareResourceVersions(a, b);
  if (order === undefined) throw new Error(`not comparable resourceVersions: ${a}, ${b}`);
  return order;
}

export function emptyHistory(seed: number, profile: string): History {
  return {
    seed,
    profile,
    startedAt: Date.now(),
    endedAt: Date.now(),
    replicas: [],
    lease: { namespace: '', name: '' },
    leaseDurationMs: 0,
    recoveryBoundMs: 0,
    singletonJobs: [],
    jobs: [],
    pods: [],
    writes: [],
    faults: [],
    exits: [],
    gaps: [],
    badInput: [],
  };
}
