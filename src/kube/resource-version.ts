// resourceVersions are comparable integers since Kubernetes 1.35 (KEP-5504):
// etcd revisions. The one place that compares them — as BigInt, never as
// Number (they may exceed 2^53) and never as strings ("10" < "9").

/** Negative, zero or positive like a comparator; undefined when either is not a decimal integer. */
export function compareResourceVersions(a: string, b: string): number | undefined {
  if (!/^[0-9]+$/.test(a) || !/^[0-9]+$/.test(b)) return undefined;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Whether `a` is a later resourceVersion than `b` (an absent `b` is older than any `a`). */
export function newerThan(a: string | undefined, b: string | undefined): boolean {
  if (!a) return false;
  if (!b) return true;
  return (compareResourceVersions(a, b) ?? 0) > 0;
}
