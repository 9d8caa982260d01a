// Election metrics. Names follow client-go's where it has one
// (leader_election_master_status, leader_election_slowpath_total), so existing
// dashboards and alerts apply; every series carries the Lease name.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ElectionMetrics {
  setLeader(leading: boolean): void;
  /** This replica became the leader; reason "holder-dead" when it took over on evidence before the lease expired. */
  acquired(reason?: string): void;
  /** This replica stopped leading, and why. */
  lost(reason: string): void;
  /** A renew needed a GET after a failed compare-and-swap. */
  slowPath(): void;
  renewDuration(seconds: number, outcome: 'success' | 'error'): void;
  /** A write of the Lease under this replica's identity that it did not make (a duplicate --identity). */
  identityConflict(): void;
  /** The Lease's resourceVersion went back (etcd restored from a backup without --bump-revision). */
  reset(): void;
}

function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export function electionMetrics(registry: Registry | undefined, leaseName: string): ElectionMetrics {
  if (!registry) {
    return {
      setLeader: () => {},
      acquired: () => {},
      lost: () => {},
      slowPath: () => {},
      renewDuration: () => {},
      identityConflict: () => {},
      reset: () => {},
    };
  }
  const registers = [registry];
  const status = getOrCreate(
    registry,
    'leader_election_master_status',
    () =>
      new Gauge({
        name: 'leader_election_master_status',
        help: '1 while this replica leads the Lease, else 0',
        labelNames: ['name'],
        registers,
      }),
  );
  const transitions = getOrCreate(
    registry,
    'leader_election_transitions_total',
    () =>
      new Counter({
        name: 'leader_election_transitions_total',
        help: 'Leadership changes of this replica: direction="acquired" (reason "holder-dead" when taken over on the kubelet\'s evidence before the lease expired) or "lost" (with the reason)',
        labelNames: ['name', 'direction', 'reason'],
        registers,
      }),
  );
  const slow = getOrCreate(
    registry,
    'leader_election_slowpath_total',
    () =>
      new Counter({
        name: 'leader_election_slowpath_total',
        help: 'Renewals that had to read the Lease after a conflict',
        labelNames: ['name'],
        registers,
      }),
  );
  const renew = getOrCreate(
    registry,
    'leader_election_renew_duration_seconds',
    () =>
      new Histogram({
        name: 'leader_election_renew_duration_seconds',
        help: 'Latency of Lease renew requests',
        labelNames: ['name', 'outcome'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers,
      }),
  );
  const conflicts = getOrCreate(
    registry,
    'leader_election_identity_conflicts_total',
    () =>
      new Counter({
        name: 'leader_election_identity_conflicts_total',
        help: "Writes of the Lease under this replica's identity that it did not make: another replica has the same --identity (this one refuses to lead meanwhile)",
        labelNames: ['name'],
        registers,
      }),
  );
  const resets = getOrCreate(
    registry,
    'leader_election_resource_version_resets_total',
    () =>
      new Counter({
        name: 'leader_election_resource_version_resets_total',
        help: 'Times the Lease resourceVersion went back (etcd restored from a backup without --bump-revision)',
        labelNames: ['name'],
        registers,
      }),
  );
  status.set({ name: leaseName }, 0);
  conflicts.inc({ name: leaseName }, 0);
  resets.inc({ name: leaseName }, 0);
  return {
    setLeader: (leading) => status.set({ name: leaseName }, leading ? 1 : 0),
    acquired: (reason = '') => transitions.inc({ name: leaseName, direction: 'acquired', reason }),
    lost: (reason) => transitions.inc({ name: leaseName, direction: 'lost', reason }),
    slowPath: () => slow.inc({ name: leaseName }),
    renewDuration: (seconds, outcome) => renew.observe({ name: leaseName, outcome }, seconds),
    identityConflict: () => conflicts.inc({ name: leaseName }),
    reset: () => resets.inc({ name: leaseName }),
  };
}
