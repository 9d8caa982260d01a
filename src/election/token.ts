/**
 * The fencing term of a leadership acquisition.
 *
 * Derivation: the term is the `metadata.resourceVersion` returned by the Lease
 * write (create or update) that made this identity the holder, parsed as a
 * decimal integer.
 *
 * Why that number:
 * - Since Kubernetes 1.35 (KEP-5504) resourceVersions are documented to be
 *   comparable integers within a resource type. They are etcd revisions: every
 *   write anywhere in the cluster increases them, and they never go back — also
 *   not when the Lease is deleted and created again (leaseTransitions restarts
 *   at 0 then, which is why leaseTransitions is kept for humans and client-go
 *   compatibility but is NOT the term). The one exception: etcd restored from a
 *   backup without --bump-revision. The observer then reports a reset, and the
 *   next term is lower than terms issued after the backup (still above every
 *   term recorded in the restored data); docs/concepts.md's "After an etcd restore"
 *   says what that costs.
 * - Two acquisitions can never share it: each is a successful compare-and-swap
 *   write on the same object, and a later acquisition's write happens after the
 *   earlier one's, so it gets a strictly larger revision. Hence terms strictly
 *   increase across acquisitions, whoever acquires.
 * - Renewals do not change the term; a leader that recreates a Lease someone
 *   deleted under it keeps its term (nobody else held the lease in between).
 *
 * Compare terms as integers (they are JavaScript numbers below 2^53 here; in
 * other languages use 64-bit integers). We refuse a resourceVersion ≥ 2^53, so a
 * term survives JSON and CEL without rounding; with etcd revisions that bound
 * is far away (2^53 writes), but it is checked, never assumed. A
 * resourceVersion that is not a plain decimal integer (an API server older than
 * 1.35, or a storage other than etcd, may hand out opaque strings) is refused as
 * well. Refused means: the elector does not lead and says why (`termProblem`),
 * once, in an error log and in its readiness; it stays up and leads as soon as
 * the Lease shows a resourceVersion that can be a term again (elector.ts). It
 * never leads with a rounded or made-up term.
 *
 * Downstream, the controller derives a per-run token as
 * max(previousToken + 1, term), so run tokens also strictly increase.
 */
export class TermError extends Error {
  override name = 'TermError';
}

const MAX_TERM = BigInt(Number.MAX_SAFE_INTEGER) + 1n; // 2^53

/**
 * Why `resourceVersion` cannot be a fencing term (a sentence naming the value),
 * or undefined when it can.
 */
export function termProblem(resourceVersion: string | undefined): string | undefined {
  if (!resourceVersion || !/^[1-9][0-9]*$/.test(resourceVersion)) {
    return `the Lease resourceVersion ${JSON.stringify(resourceVersion)} is not a positive decimal integer, so it cannot be a fencing term (needs Kubernetes ≥ 1.35 on etcd, whose resourceVersions are revisions)`;
  }
  if (BigInt(resourceVersion) >= MAX_TERM) {
    return `the Lease resourceVersion ${resourceVersion} is not below 2^53, so it cannot be a fencing term (a term must survive JSON and CEL without rounding)`;
  }
  return undefined;
}

export function termFromResourceVersion(resourceVersion: string | undefined): number {
  const problem = termProblem(resourceVersion);
  if (problem) throw new TermError(`cannot derive a fencing term: ${problem}`);
  return Number(resourceVersion);
}

/** Orders two resourceVersions (KEP-5504); the one comparison lives in src/kube/resource-version.ts. */
export { compareResourceVersions } from '../kube/resource-version.ts';
