// What a SingletonJob does with each batch/v1 JobSpec field of its template
// (the full list, with reasons: docs/job-fields.md). A field that would hand
// the run's Pods to another manager, replace a Pod inside its Job (same
// fencing token), or delete the Job before the operator has read the outcome
// is refused on apply: by a CEL rule in the CRD and by zod, in the words below.
// A template stored before a rule existed (a CRD update does not re-validate
// stored objects) is Ready=False (InvalidSpec, zod's message), and the Jobs
// still built for it (a retry of a run in flight) leave those fields out.
import type { V1JobSpec } from '@kubernetes/client-node';

/** The built-in Job controller's name: the one `managedBy` value a SingletonJob takes. */
export const JOB_CONTROLLER = 'kubernetes.io/job-controller';

export const JobFieldMessages = {
  managedBy: `managedBy must be absent or ${JOB_CONTROLLER}: under another Job manager the built-in Job controller does not create the run's Pods, and the operator can only fence Pods it can see`,
  ignore:
    "action Ignore is not supported: the Job controller would replace the failed Pod inside the same Job, with the same fencing token; retry with backoffLimit instead (the operator's retries: each attempt is a new Job with a new token), or use Count or FailJob",
  failIndex:
    'action FailIndex is for Indexed Jobs (it needs backoffLimitPerIndex); a run is one NonIndexed completion: use FailJob or Count',
  ttlSecondsAfterFinished:
    "ttlSecondsAfterFinished is not supported: the operator must read a run's outcome before its Job goes (a Job deleted early ends the run with no retry and no failure counted); successfulJobsHistoryLimit and failedJobsHistoryLimit say how many finished Jobs are kept",
  backoffLimitPerIndex:
    "backoffLimitPerIndex is not supported: it retries a Pod inside the same Job, with the same fencing token (and needs Indexed completion); use backoffLimit (the operator's retries: each attempt is a new Job with a new token)",
  maxFailedIndexes:
    'maxFailedIndexes is not supported: it goes with backoffLimitPerIndex on Indexed Jobs; a run is one NonIndexed completion',
  successPolicy:
    'successPolicy is not supported: it is for Indexed Jobs; a run is one NonIndexed completion, done when its Pod succeeds',
  podReplacementPolicy:
    'podReplacementPolicy must be Failed (the operator sets it on every Job): a Pod still terminating is neither counted as failed nor replaced',
  selector: "selector is not supported: the API server generates the Job's selector from its UID",
} as const;

/**
 * The template's JobSpec without the fields a SingletonJob refuses that would
 * break a guarantee if a stored object still had them: `managedBy` (Pods the
 * operator cannot see), `ttlSecondsAfterFinished` (an outcome deleted before
 * it is read) and `podFailurePolicy` rules with `action: Ignore` (a Pod
 * replaced inside its Job with the same token: without the rule the failure
 * fails the Job, and the operator's retry is a new Job with a new token).
 * The other refused fields the Job API itself refuses on a NonIndexed Job.
 */
export function withoutRefusedFields(spec: V1JobSpec): V1JobSpec {
  const { managedBy, ttlSecondsAfterFinished: _ttl, podFailurePolicy, ...rest } = spec;
  const out: V1JobSpec = rest;
  if (managedBy === JOB_CONTROLLER) out.managedBy = managedBy;
  const rules = podFailurePolicy?.rules?.filter((r) => r.action !== 'Ignore');
  if (podFailurePolicy && rules?.length) out.podFailurePolicy = { ...podFailurePolicy, rules };
  return out;
}
