// Part (c): scale and memory of our operator (run by scale-run.ts); the types
// are shared with the report.

export interface ScalePoint {
  objects: number;
  /** VmRSS of each replica once idle after the cold start (IDLE_SETTLE_MS after the leader's last write), MiB. */
  rssMiB: number[];
  /** V8 heap in use per replica (nodejs_heap_size_used_bytes from /metrics), MiB. */
  heapUsedMiB: number[];
  rssLeaderMiB: number;
  rssMaxStandbyMiB: number;
  /** Creating the objects (the benchmark's own admin client). */
  createMs: number;
  /** First leader: from its start to every object reconciled. */
  coldReconcileMs: number;
  /** RSS of the leader after the busy takeover (it wrote every object), once idle again (IDLE_SETTLE_MS later), MiB. */
  rssAfterBusyMiB?: number;
  /** The same leader's RSS at its last status write, MiB. */
  rssAtLastWriteMiB?: number;
  /** The same leader's peak RSS over its life (VmHWM: standby, takeover, burst), MiB. */
  rssPeakMiB?: number;
  /** Quiet takeover: pause of the leader → successor's first Lease write (audit log). */
  takeoverMs: number;
  /** Quiet takeover (nothing changed): successor's first Lease write → every object had a pass. */
  quietFirstPassMs?: number;
  /** Busy takeover (every object changed): the same. */
  busyFirstPassMs?: number;
  /** Busy takeover: successor's first Lease write → its status write on every object. */
  resumeMs: number;
  /** Status writes per second by the new leader after the busy takeover. */
  throughputPerSec: number;
  /** The heap compactor's forced GCs over the point, summed over the replicas (their metrics), and their mean pause. */
  compactions?: { total: number; meanPauseMs: number; replicaMinutes: number };
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
