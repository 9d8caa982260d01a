// One prom-client Registry per process, handed to the elector and the
// controller so that /metrics serves all of them: client-go's and
// controller-runtime's series under their names (leader_election_*,
// rest_client_*, controller_runtime_*, workqueue_*), ours as singleton_operator_*,
// the Node.js process metrics and a build-info series identifying the replica.
// Every series is in the generated docs/reference/metrics.md.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

export interface RegistryInfo {
  version: string;
  identity: string;
}

export function createRegistry(info: RegistryInfo): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const build = new Gauge({
    name: 'singleton_operator_build_info',
    help: 'Always 1; labels identify the operator version and this replica',
    labelNames: ['version', 'identity', 'node_version'],
    registers: [registry],
  });
  build.set({ version: info.version, identity: info.identity, node_version: process.version }, 1);
  return registry;
}

/**
 * Writes this replica refused to send because its leadership was lost or its
 * lease may have lapsed on its own clock (self-fencing, layer 1 of fencing.md).
 * Writes the API server refuses (409, CEL transition rules) are the
 * controller's to count.
 */
export function selfFencedWrites(registry: Registry): Counter {
  return new Counter({
    name: 'singleton_operator_self_fenced_writes_total',
    help: 'Writes refused by this replica before sending because its leadership was lost or its lease may have expired',
    registers: [registry],
  });
}
