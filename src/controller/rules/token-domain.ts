// Whether the leader's term and the SingletonJobs' resourceVersions count on
// one counter. A token is max(previous + 1, term, the object's resourceVersion
// the start was decided from): across a delete and re-create of a SingletonJob
// (whose status, and so `previous`, starts over) it keeps increasing only
// because the new object's resourceVersion is above every token the old one
// handed out — which holds when the term (a Lease's resourceVersion) and the
// SingletonJob's resourceVersions are revisions of one etcd. A cluster that
// keeps Leases in an etcd of their own (`--etcd-servers-overrides`, common in
// large clusters) has two counters: a term far above the SingletonJobs'
// revisions would make a re-created object's tokens start below its
// predecessor's. That cannot be repaired after the fact, so it is detected
// before the first write of a term: a consistent list of SingletonJobs,
// answered after the Lease write that made the term, carries a revision of
// the same counter that is at least the term. Below it, the counters differ,
// and the leader refuses to reconcile (readiness red, one error).
import { compareResourceVersions } from '../../kube/resource-version.ts';

export type TokenDomain = { ok: true } | { ok: false; reason: string };

/** `listResourceVersion`: of a SingletonJob list sent after the term's Lease write. */
export function judgeTokenDomain(term: number, listResourceVersion: string | undefined): TokenDomain {
  const order =
    listResourceVersion === undefined ? undefined : compareResourceVersions(listResourceVersion, String(term));
  // Not comparable (no list resourceVersion, a storage that is not etcd): nothing proves either way; the tokens' own rules apply.
  if (order === undefined || order >= 0) return { ok: true };
  return {
    ok: false,
    reason:
      `the leader term ${term} (the resourceVersion of the Lease write that made it) is above the resourceVersion ${listResourceVersion} of a SingletonJob list sent after it: ` +
      'Leases and SingletonJobs are stored with different revision counters (e.g. --etcd-servers-overrides for leases), so fencing tokens of a re-created SingletonJob could repeat earlier ones. ' +
      'Refusing to reconcile; keep coordination.k8s.io/leases and singleton.dev/singletonjobs in one etcd, or put the Lease in a namespace served by it',
  };
}
