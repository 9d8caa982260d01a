// Election metrics. Names follow client-go's where it has one
// (leader_election_master_status, leader_election_slowpath_total), so existing
// dashboards and alerts apply; every series carries the Lease name.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ElectionMetrics {
  setLeader(leading: boolean): void;
  /** This replica became the leader. */
  acquired(): void;
  /** This replica stopped leading, and why. */
  lost(reason: string): void;
  /** A renew needed a GET after a failed compare-and-swap. */
  slowPath(): void;
  renewDuration(seconds: number, outcome: 'success' | 'error'): void;
}

function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export function electionMetrics(registry: Registry | undefined, leaseName: string): ElectionMetrics {
  if (!registry) {
    return { setLeader: () => {}, acquired: () => {}, lost: () => {}, slowPath: () => {}, renewDuration: () => {} };
  }
  const registers = [registry];
  const status = getOrCreate(registry, 'leader_election_master_status', () =>
    new Gauge({ name: 'leader_election_master_status', help: '1 while this replica leads the Lease, else 0', labelNames: ['name'], registers }),
  );
  const transitions = getOrCreate(registry, 'leader_election_transitions_total', () =>
    new Counter({
      name: 'leader_election_transitions_total',
      help: 'Leadership changes of this replica: direction="acquired" or "lost" (with the reason)',
      labelNames: ['name', 'direction', 'reason'],
      registers,
    }),
  );
  const slow = getOrCreate(registry, 'leader_election_slowpath_total', () =>
    new Counter({ name: 'leader_election_slowpath_total', help: 'Renewals that had to read the Lease after a conflict', labelNames: ['name'], registers }),
  );
  const renew = getOrCreate(registry, 'leader_election_renew_duration_seconds', () =>
    new Histogram({
      name: 'leader_election_renew_duration_seconds',
      help: 'Latency of Lease renew requests',
      labelNames: ['name', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  );
  status.set({ name: leaseName }, 0);
  return {
    setLeader: (leading) => status.set({ name: leaseName }, leading ? 1 : 0),
    acquired: () => transitions.inc({ name: leaseName, direction: 'acquired', reason: '' }),
    lost: (reason) => transitions.inc({ name: leaseName, direction: 'lost', reason }),
    slowPath: () => slow.inc({ name: leaseName }),
    renewDuration: (seconds, outcome) => renew.observe({ name: leaseName, outcome }, seconds),
  };
}
