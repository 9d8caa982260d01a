// Part (c): scale and memory of our operator — placeholder until the operator
// process lands (see runScale). Types are shared with the report.

export interface ScalePoint {
  objects: number;
  /** VmRSS of each replica after the caches are warm, MiB. */
  rssMiB: number[];
  /** V8 heap in use per replica (nodejs_heap_size_used_bytes from /metrics), MiB. */
  heapUsedMiB: number[];
  rssLeaderMiB: number;
  rssMaxStandbyMiB: number;
  /** Creating the objects (the benchmark's own admin client). */
  createMs: number;
  /** First leader: from its start to every object reconciled. */
  coldReconcileMs: number;
  /** Crash of the leader → successor's first Lease write (audit log). */
  takeoverMs: number;
  /** Successor's first Lease write → every object reconciled by it. */
  resumeMs: number;
  /** Objects reconciled per second by the new leader after the takeover. */
  throughputPerSec: number;
  notes: string[];
}

export interface ScaleResult {
  replicas: number;
  /** RSS of a Node process that only imports the operator's dependencies (what any replica pays before its first object). */
  baseline?: { bareMiB: number; clientNodeMiB: number; allDepsMiB: number };
  points: ScalePoint[];
  method: string;
  notes: string[];
}
