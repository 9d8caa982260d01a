// The SingletonJob API, declared once: the CRD's structural schema (with CEL),
// the zod validator and the TypeScript types all come from the fields below.
import type { z } from 'zod';
import type { V1JobTemplateSpec, V1ObjectMeta } from '@kubernetes/client-node';
import { arr, bool, enumOf, int, MAX_SAFE, obj, optional, str, stringMap, typed } from './builder.ts';
import { JOB_CONTROLLER, JobFieldMessages } from './job-fields.ts';

export const GROUP = 'singleton.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'SingletonJob';
export const PLURAL = 'singletonjobs';

/** Labels and annotations the controller reads and writes. */
export const Keys = {
  /** Annotation a user sets to request a run now; its value is the request id (change it to run again). */
  runNow: `${GROUP}/run-now`,
  /** Label on Jobs and Pods: the owning SingletonJob's UID, for listing its runs. */
  ownerUid: `${GROUP}/owner-uid`,
  /** Label on Jobs and Pods: the Job (run) name. */
  run: `${GROUP}/run`,
  /** Label on Jobs and Pods: Scheduled or Manual. */
  runKind: `${GROUP}/run-kind`,
  /** Annotations on Job and Pod template. */
  token: `${GROUP}/fencing-token`,
  term: `${GROUP}/leader-term`,
  slot: `${GROUP}/slot`,
  requestId: `${GROUP}/request-id`,
  singletonJob: `${GROUP}/singletonjob`,
  /** Annotation a user sets to run the slots of a past range, "<from>/<to>" (RFC 3339 instants); a new value is a new request. */
  backfill: `${GROUP}/backfill`,
  /** Annotation a user sets to resume scheduling paused after failures; change its value to resume again. */
  resume: `${GROUP}/resume`,
  /** Annotation on Jobs and Pods: the attempt of the run (1-based); every attempt has its own token. */
  attempt: `${GROUP}/attempt`,
  /** Annotation on Jobs: when the operator released (unsuspended) it — set by the release patch itself, so a Job suspended again by someone else is told apart from one never released. */
  released: `${GROUP}/released`,
  /** Annotation on the Job of a prepared run: the SingletonJob's spec generation it was built from (an earlier attempt is adopted only when it is the current one). */
  generation: `${GROUP}/generation`,
  /** Annotation on Jobs Kueue manages: the UID of the Workload whose admission check the operator marked Ready (once, in the release patch). */
  kueueWorkload: `${GROUP}/kueue-workload`,
} as const;

// The schedule and time zone are checked by CEL rules (one regular expression,
// evaluated by the API server and by zod alike) rather than an OpenAPI
// `pattern`: a pattern mismatch is answered with the raw expression, a rule
// with its message. What only a cron parser or the zone database can judge
// (minute 61, Mars/Olympus_Mons) is the operator's: Ready=False with the reason.
// A cron field: digits, * ? , / # - and L W H, or three-letter month/day names.
const CRON_FIELD = '([0-9*?,/#LWH-]|[A-Za-z]{3})+';
const SCHEDULE_REGEX = `^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|${CRON_FIELD}([ \\t]+${CRON_FIELD}){4,5})$`;
const TIME_ZONE_REGEX = '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$';
export const SCHEDULE_MESSAGE =
  'must be 5 cron fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or one of @yearly @annually @monthly @weekly @daily @midnight @hourly; @every is not supported';
export const TIME_ZONE_MESSAGE = 'must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC';

const matches = (regex: string, message: string) => {
  const re = new RegExp(regex);
  return { rule: `self.matches(r'${regex}')`, message, check: (v: string) => re.test(v) };
};
const cron = (description: string) =>
  str(description, { maxLength: 128, rules: [matches(SCHEDULE_REGEX, SCHEDULE_MESSAGE)] });

const meta = obj('Labels and annotations to copy.', {
  labels: optional(stringMap('Labels.')),
  annotations: optional(stringMap('Annotations.')),
});

const container = obj(
  'A container, as in core/v1.',
  { name: str('Container name.', { minLength: 1 }) },
  { preserveUnknown: true },
);

const podTemplate = obj(
  'Pod template of each run (core/v1 PodTemplateSpec).',
  {
    metadata: optional(meta),
    spec: obj(
      'Pod spec (core/v1 PodSpec).',
      {
        restartPolicy: optional(enumOf('Never or OnFailure, as for any Job.', ['Never', 'OnFailure'])),
        containers: arr('Containers.', container, { minItems: 1 }),
        initContainers: optional(arr('Init containers.', container)),
      },
      { preserveUnknown: true },
    ),
  },
  { preserveUnknown: true },
);

type JobSpecShape = {
  parallelism?: number;
  completions?: number;
  suspend?: boolean;
  completionMode?: string;
  manualSelector?: boolean;
  ttlSecondsAfterFinished?: number;
  backoffLimitPerIndex?: number;
  maxFailedIndexes?: number;
  successPolicy?: unknown;
  selector?: unknown;
};

/** A JobSpec field a SingletonJob refuses outright (the reason: JobFieldMessages, docs/job-fields.md). */
const absent = (
  field: 'ttlSecondsAfterFinished' | 'backoffLimitPerIndex' | 'maxFailedIndexes' | 'successPolicy' | 'selector',
) => ({
  rule: `!has(self.${field})`,
  message: JobFieldMessages[field],
  reason: 'FieldValueForbidden' as const,
  fieldPath: `.${field}`,
  check: (s: JobSpecShape) => s[field] === undefined,
});

const podFailureRule = obj(
  'A pod failure policy rule (batch/v1 PodFailurePolicyRule).',
  {
    action: str(
      'Count or FailJob: either fails the Job (backoffLimit 0), and the operator retries within backoffLimit with a new Job and a new token. Ignore and FailIndex are refused.',
      {
        maxLength: 32,
        rules: [
          { rule: "self != 'Ignore'", message: JobFieldMessages.ignore, check: (v: string) => v !== 'Ignore' },
          { rule: "self != 'FailIndex'", message: JobFieldMessages.failIndex, check: (v: string) => v !== 'FailIndex' },
        ],
      },
    ),
  },
  { preserveUnknown: true },
);

const jobSpec = obj(
  "Job spec (batch/v1 JobSpec). The controller forces parallelism 1, completions 1, backoffLimit 0 and podReplacementPolicy Failed; fields that would hand the run's Pods to another manager, replace a Pod inside its Job or delete the Job before its outcome is read are refused (docs/job-fields.md).",
  {
    parallelism: optional(int('Must be 1 if set.', { minimum: 0 })),
    completions: optional(int('Must be 1 if set.', { minimum: 0 })),
    backoffLimit: optional(
      int(
        'Retry budget of a run (default 0): a failed attempt is retried by the operator as a new Job with a new, higher fencing token (the Job itself always gets backoffLimit 0).',
        {
          minimum: 0,
          maximum: 100,
        },
      ),
    ),
    suspend: optional(bool('Must not be true: suspend the SingletonJob instead.')),
    completionMode: optional(enumOf('NonIndexed (Indexed makes no sense with one completion).', ['NonIndexed'])),
    manualSelector: optional(bool('Must not be true: the controller owns the selector.')),
    managedBy: optional(
      str(`Absent or ${JOB_CONTROLLER}: the built-in Job controller must create the run's Pods.`, {
        maxLength: 63,
        rules: [
          {
            rule: `self == '${JOB_CONTROLLER}'`,
            message: JobFieldMessages.managedBy,
            check: (v: string) => v === JOB_CONTROLLER,
          },
        ],
      }),
    ),
    podFailurePolicy: optional(
      obj(
        'Pod failure policy (batch/v1 PodFailurePolicy): rules with action Count or FailJob.',
        { rules: optional(arr('Rules, in order.', podFailureRule, { maxItems: 20 })) },
        { preserveUnknown: true },
      ),
    ),
    podReplacementPolicy: optional(
      str('Failed if set (the controller sets it).', {
        maxLength: 32,
        rules: [
          {
            rule: "self == 'Failed'",
            message: JobFieldMessages.podReplacementPolicy,
            check: (v: string) => v === 'Failed',
          },
        ],
      }),
    ),
    // Declared only so that the rules below can name them (refused when set).
    ttlSecondsAfterFinished: optional(int(JobFieldMessages.ttlSecondsAfterFinished)),
    backoffLimitPerIndex: optional(int(JobFieldMessages.backoffLimitPerIndex)),
    maxFailedIndexes: optional(int(JobFieldMessages.maxFailedIndexes)),
    successPolicy: optional(obj(JobFieldMessages.successPolicy, {}, { preserveUnknown: true })),
    selector: optional(obj(JobFieldMessages.selector, {}, { preserveUnknown: true })),
    template: podTemplate,
  },
  {
    preserveUnknown: true,
    rules: [
      {
        rule: '!has(self.parallelism) || self.parallelism == 1',
        message: 'parallelism must be 1: a SingletonJob runs one Pod at a time',
        fieldPath: '.parallelism',
        check: (s: JobSpecShape) => s.parallelism === undefined || s.parallelism === 1,
      },
      {
        rule: '!has(self.completions) || self.completions == 1',
        message: 'completions must be 1: a run is one completion',
        fieldPath: '.completions',
        check: (s: JobSpecShape) => s.completions === undefined || s.completions === 1,
      },
      {
        rule: '!has(self.suspend) || !self.suspend',
        message: 'suspend the SingletonJob (spec.suspend), not its Job template',
        fieldPath: '.suspend',
        check: (s: JobSpecShape) => s.suspend !== true,
      },
      {
        rule: '!has(self.manualSelector) || !self.manualSelector',
        message: 'manualSelector is not supported: the controller owns the selector',
        fieldPath: '.manualSelector',
        check: (s: JobSpecShape) => s.manualSelector !== true,
      },
      absent('ttlSecondsAfterFinished'),
      absent('backoffLimitPerIndex'),
      absent('maxFailedIndexes'),
      absent('successPolicy'),
      absent('selector'),
    ],
  },
);

const jobTemplate = typed<V1JobTemplateSpec>()(
  obj(
    'The Job each run creates (batch/v1 JobTemplateSpec).',
    { metadata: optional(meta), spec: jobSpec },
    { preserveUnknown: true },
  ),
);

type SpecShape = { schedule?: string; schedules?: string[] };

const specField = obj(
  'Desired behaviour of the SingletonJob.',
  {
    schedule: optional(
      cron(
        'Cron schedule: 5 fields (minute hour day-of-month month day-of-week), an optional leading seconds field (6 fields), or @hourly/@daily/@weekly/@monthly/@yearly. Omit for manual runs only (annotation singleton.dev/run-now).',
      ),
    ),
    schedules: optional(
      arr(
        'Several cron schedules (same syntax as schedule) in the one time zone: the object runs at every slot of any of them, once per instant, never two runs at once. Use instead of schedule.',
        cron('A cron schedule.'),
        { minItems: 1, maxItems: 10 },
      ),
    ),
    timeZone: optional(
      str('IANA time zone of the schedule (for example Europe/Berlin); default UTC.', {
        maxLength: 64,
        rules: [matches(TIME_ZONE_REGEX, TIME_ZONE_MESSAGE)],
      }),
    ),
    concurrencyPolicy: optional(
      enumOf(
        'Forbid: a due run waits until every Pod of the previous run is terminal (a slot whose starting deadline passes meanwhile is skipped). Queue: a slot due while a run is in flight runs as soon as that run has ended; at most one waits, later ones are skipped. Replace: the running Job is deleted (its Pods get their termination grace period) and the new run starts once they are gone.',
        ['Forbid', 'Queue', 'Replace'],
        'Forbid',
      ),
    ),
    suspend: optional(bool('Stops scheduled runs (already running runs continue; manual requests still run).', false)),
    startingDeadlineSeconds: optional(
      int('A slot that could not start within this many seconds of its time is skipped.', {
        minimum: 1,
        maximum: 31_622_400,
      }),
    ),
    podStartDeadlineSeconds: optional(
      int(
        'A run whose Pod is not running this many seconds after its Job was released (image pull failing, unschedulable, Pods that cannot be created) is ended as Stalled, so it does not hold the schedule. Default 900.',
        { minimum: 10, maximum: 86_400 },
      ),
    ),
    jitterSeconds: optional(
      int(
        'Start each slot up to this many seconds late, by an offset fixed per object (derived from its UID), so many objects due at one instant do not start at once.',
        {
          minimum: 0,
          maximum: 3600,
        },
      ),
    ),
    prepareAheadSeconds: optional(
      int(
        'Prepare each scheduled run up to this many seconds before its slot: its Job is created suspended and recorded (fencing token, slot, UID) ahead of time, so that at the slot only its release is left. A prepared run is withdrawn (its never-released Job deleted) when the spec changes, the object is suspended, a manual run is requested or its starting deadline passes first. 0 prepares nothing: the Job is created at the slot. Not for templates Kueue manages (their Jobs are created at the slot). Default 60.',
        { minimum: 0, maximum: 3600 },
      ),
    ),
    suspendAfterFailures: optional(
      int(
        'Pause scheduled runs after this many consecutive failed runs (condition Paused; resume with the annotation singleton.dev/resume). Omit to never pause.',
        { minimum: 1, maximum: 1000 },
      ),
    ),
    successfulJobsHistoryLimit: optional(
      int('Finished successful Jobs to keep.', { minimum: 0, maximum: 100, default: 3 }),
    ),
    failedJobsHistoryLimit: optional(int('Finished failed Jobs to keep.', { minimum: 0, maximum: 100, default: 1 })),
    jobTemplate,
  },
  {
    rules: [
      {
        rule: '!(has(self.schedule) && has(self.schedules))',
        message: 'set schedule or schedules, not both',
        fieldPath: '.schedules',
        check: (s: SpecShape) => !(s.schedule !== undefined && s.schedules !== undefined),
      },
    ],
  },
);

const condition = obj('A condition (metav1.Condition).', {
  type: str('Condition type.', { minLength: 1, maxLength: 316 }),
  status: enumOf('True, False or Unknown.', ['True', 'False', 'Unknown']),
  reason: str('Machine-readable reason in CamelCase.', { minLength: 1, maxLength: 1024 }),
  message: str('What a person should know or do.', { maxLength: 32768 }),
  lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
  observedGeneration: optional(int('Generation the condition was computed from.', { minimum: 0 })),
});

const token = (what: string) => int(what, { minimum: 1, maximum: MAX_SAFE });

const runFields = {
  name: str('Job name of the run (deterministic from the SingletonJob and the slot or request).', {
    minLength: 1,
    maxLength: 63,
  }),
  token: token('Fencing token of the run.'),
  term: token('Leader term that reserved the run.'),
  kind: enumOf('Scheduled, Manual, or Backfill (a past slot run on request).', ['Scheduled', 'Manual', 'Backfill']),
  slot: optional(str('Scheduled time (UTC) of the slot, for scheduled runs.', { format: 'date-time' })),
  requestId: optional(str('Manual request id, for manual runs.', { maxLength: 253 })),
  attempt: optional(
    int('Attempt of the run (1-based; absent = 1). Each attempt is its own Job with its own token.', {
      minimum: 1,
      maximum: 101,
    }),
  ),
};

const activeRun = obj('The run reserved or in flight; cleared only once every Pod of it is terminal.', {
  ...runFields,
  reservedTime: str('When the run was reserved.', { format: 'date-time' }),
  jobUID: optional(str('UID of the created Job; absent while only reserved.')),
  replacing: optional(bool('Set while Replace deletes this run to make room for another.')),
  releaseTime: optional(
    str(
      'A prepared run: its Job was created suspended and recorded ahead of time, and is released (unsuspended) at this time — its slot (jitter included) or the end of a retry backoff. Until then the run has not started.',
      { format: 'date-time' },
    ),
  ),
  generation: optional(
    int('The spec generation a prepared run’s Job was built from: a spec change withdraws it.', { minimum: 0 }),
  ),
  notBefore: optional(
    str('A retry attempt: its Job is created no earlier than this (backoff).', { format: 'date-time' }),
  ),
  stalled: optional(
    str('Why the run is being ended as Stalled (its Pod never ran within podStartDeadlineSeconds).', {
      maxLength: 4096,
    }),
  ),
});

const finishedRun = obj('A finished run.', {
  ...runFields,
  outcome: enumOf('How the run ended (Withdrawn: a prepared run that never started; see reason).', [
    'Succeeded',
    'Failed',
    'Replaced',
    'Deleted',
    'Stalled',
    'Withdrawn',
  ]),
  reason: optional(str('Why a prepared run was withdrawn before its release.', { maxLength: 1024 })),
  reservedTime: optional(
    str('When the run was reserved (its start; with finishedTime, its duration).', { format: 'date-time' }),
  ),
  finishedTime: str('When the controller recorded the end.', { format: 'date-time' }),
});

type StatusShape = { currentToken?: number; activeRun?: { token: number } };

const statusField = obj(
  'Observed state, written only by the leader with resourceVersion preconditions.',
  {
    observedGeneration: optional(int('Generation last reconciled.', { minimum: 0 })),
    conditions: optional(
      arr('Conditions; Ready says whether the object is valid and runnable.', condition, {
        maxItems: 16,
        mapKeys: ['type'],
      }),
    ),
    currentToken: optional(token('Highest fencing token issued for this SingletonJob; never decreases.')),
    leaderTerm: optional(token('Term of the leader that last wrote this status; never decreases.')),
    leaderLease: optional(
      str(
        'Lease (namespace/name) of the installation whose leader last wrote this status; it acts on this object while that Lease is alive.',
        { maxLength: 317 },
      ),
    ),
    contender: optional(
      str(
        'Lease (namespace/name) of another installation that also claims this object and stands by (see the Contended condition).',
        { maxLength: 317 },
      ),
    ),
    activeRun: optional(activeRun),
    lastScheduleTime: optional(str('Latest slot that was started, queued or skipped (UTC).', { format: 'date-time' })),
    lastRunTime: optional(
      str('When the latest run (scheduled or manual) was started; skipped slots are not runs.', {
        format: 'date-time',
      }),
    ),
    nextScheduleTime: optional(
      str(
        'The next slot the operator will act on (UTC, jitter included); absent without a schedule or while suspended or paused.',
        { format: 'date-time' },
      ),
    ),
    queuedSlot: optional(str('Queue policy: the slot waiting for the run in flight to end.', { format: 'date-time' })),
    consecutiveFailures: optional(int('Runs that failed in a row (reset by a success).', { minimum: 0 })),
    lastResumeId: optional(
      str('The last singleton.dev/resume annotation value taken into account.', { maxLength: 253 }),
    ),
    backfill: optional(
      obj('The latest backfill request (annotation singleton.dev/backfill) and how far it got.', {
        request: str('The annotation value this is about.', { maxLength: 253 }),
        from: optional(str('Slots after this instant…', { format: 'date-time' })),
        to: optional(str('…up to and including this one run, oldest first.', { format: 'date-time' })),
        cursor: optional(str('The last slot of the range that was started.', { format: 'date-time' })),
        runs: optional(int('Runs started for this request.', { minimum: 0 })),
        completed: optional(bool('Every slot of the range has been started.')),
        error: optional(str('Why the request was refused.', { maxLength: 1024 })),
      }),
    ),
    lastSuccessfulTime: optional(str('When the last successful run finished.', { format: 'date-time' })),
    lastManualRequestId: optional(str('Last manual request id taken into account.', { maxLength: 253 })),
    skippedSlots: optional(int('Slots skipped so far (missed deadline, Forbid, suspend catch-up).', { minimum: 0 })),
    lastSkippedSlot: optional(str('Most recent skipped slot (UTC).', { format: 'date-time' })),
    recentRuns: optional(arr('The most recent finished runs, newest first.', finishedRun, { maxItems: 10 })),
    predecessorPodsChecked: optional(
      bool(
        "A live Pod list found no Pod of an earlier object with this namespace/name still running (done once, before the first run): later starts may rely on the Jobs' own status.",
      ),
    ),
  },
  {
    rules: [
      {
        rule: '!has(self.activeRun) || (has(self.currentToken) && self.activeRun.token == self.currentToken)',
        message: 'activeRun.token must equal currentToken',
        fieldPath: '.activeRun',
        check: (s: StatusShape) => !s.activeRun || s.activeRun.token === s.currentToken,
      },
    ],
  },
);

// Transition rules live at the root so that dropping status (or a field of it)
// cannot skip them: a status write that lowers or removes the token or the
// term is refused by the API server itself (guarantee 4).
interface Monotonic {
  status?: { currentToken?: number; leaderTerm?: number };
}
const monotonic = (field: 'currentToken' | 'leaderTerm') => ({
  rule: `!has(oldSelf.status) || !has(oldSelf.status.${field}) || (has(self.status) && has(self.status.${field}) && self.status.${field} >= oldSelf.status.${field})`,
  message: `status.${field} may not decrease or be removed (fencing: a newer leader has written)`,
  // Names the field in the API server's answer (without it: "<nil>: Invalid value").
  fieldPath: `.status.${field}`,
  check: {
    transition: (oldSelf: Monotonic, self: Monotonic) => {
      const before = oldSelf.status?.[field];
      const after = self.status?.[field];
      return before === undefined || (after !== undefined && after >= before);
    },
  },
});
/** The object's transition rules (CEL on oldSelf), with their JS twins. */
export const transitionRules = [monotonic('currentToken'), monotonic('leaderTerm')];

export const singletonJobField = obj(
  'SingletonJob runs a Job exactly once per schedule slot, never two at once, stamping each run with a fencing token.',
  {
    apiVersion: optional(str('API version.')),
    kind: optional(str('Kind.')),
    metadata: optional(typed<V1ObjectMeta>()(obj('Standard object metadata.', {}, { preserveUnknown: true }))),
    spec: specField,
    status: optional(statusField),
  },
  { rules: transitionRules },
);

export const singletonJobSchema = singletonJobField.zod;
export type SingletonJob = z.infer<typeof singletonJobSchema>;
export type SingletonJobSpec = z.infer<typeof specField.zod>;
export type SingletonJobStatus = z.infer<typeof statusField.zod>;
export type ActiveRun = z.infer<typeof activeRun.zod>;
export type FinishedRun = z.infer<typeof finishedRun.zod>;
export type Condition = z.infer<typeof condition.zod>;
export type ConcurrencyPolicy = NonNullable<SingletonJobSpec['concurrencyPolicy']>;
