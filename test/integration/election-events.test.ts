// Leader changes as client-go shows them, against the real control plane: the
// replica that acquires the Lease records an Event on it (reason
// LeaderElection, "<identity> became leader") and logs the term; a replica
// that may not create Events leads all the same and says why, once, with the
// API server's status and reason.
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { testCluster, withNamespace, eventually, itLocal } from '../support/cluster.ts';
import { LeaderElector } from '../../src/election/index.ts';

const cluster = testCluster();
const kc = cluster.kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
let ns: { name: string; cleanup: () => Promise<void> };

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

beforeAll(async () => {
  ns = await withNamespace(kc, 'lease-events');
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  // What the chart's leader-election Role grants (events included), and the same without events.
  const leases: k8s.V1PolicyRule = {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    verbs: ['get', 'list', 'watch', 'create', 'update'],
  };
  const roles: [string, k8s.V1PolicyRule[]][] = [
    ['with-events', [leases, { apiGroups: [''], resources: ['events'], verbs: ['create'] }]],
    ['without-events', [leases]],
  ];
  for (const [role, rules] of roles) {
    await rbac.createNamespacedRole({ namespace: ns.name, body: { metadata: { name: role }, rules } });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: role },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: `electors-${role}` }],
      },
    });
  }
});
afterAll(async () => {
  await ns?.cleanup();
});

function elector(identity: string, lease: string, group: string) {
  const user = `${ns.name}-${identity}`;
  const userKc = new k8s.KubeConfig();
  userKc.loadFromFile(cluster.local!.kubeconfigFor(user, [group]));
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  let leading = 0;
  const e = new LeaderElector(
    {
      kubeConfig: userKc,
      namespace: ns.name,
      name: lease,
      identity,
      leaseDurationMs: 4000,
      renewDeadlineMs: 3000,
      retryPeriodMs: 1000,
      logger,
    },
    {
      onStartedLeading: (l) =>
        new Promise<void>((resolve) => l.signal.addEventListener('abort', () => resolve(), { once: true })).finally(
          () => void leading++,
        ),
    },
  );
  const stop = new AbortController();
  const done = e.run(stop.signal);
  return {
    elector: e,
    logs,
    stopped: () => leading,
    stop: async () => {
      stop.abort();
      await done;
    },
  };
}

async function leaseEvents(lease: string): Promise<k8s.CoreV1Event[]> {
  const list = await core.listNamespacedEvent({
    namespace: ns.name,
    fieldSelector: `involvedObject.kind=Lease,involvedObject.name=${lease}`,
  });
  return list.items;
}

describe('the LeaderElection Event on the Lease', () => {
  itLocal('is recorded when a replica acquires the Lease, next to a log line with its term', async () => {
    const a = elector('replica-a', 'events-a', 'electors-with-events');
    try {
      await eventually('replica-a to lead', async () => a.elector.isLeader());
      const events = await eventually('the LeaderElection Event', async () => {
        const items = await leaseEvents('events-a');
        return items.length ? items : undefined;
      });
      const lease = await coordination.readNamespacedLease({ namespace: ns.name, name: 'events-a' });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        type: 'Normal',
        reason: 'LeaderElection',
        message: 'replica-a became leader',
        involvedObject: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          name: 'events-a',
          namespace: ns.name,
          uid: lease.metadata!.uid,
        },
        source: { component: 'singleton-operator' },
        reportingComponent: 'singleton-operator',
        reportingInstance: 'replica-a',
      });
      const started = a.logs.find((l) => l.msg === 'Started leading');
      // The term is the resourceVersion of the write that made it leader, the one the Event names.
      expect(started).toMatchObject({
        identity: 'replica-a',
        lease: `${ns.name}/events-a`,
        term: Number(events[0]!.involvedObject.resourceVersion),
      });
      // Renews record nothing more.
      await new Promise((r) => setTimeout(r, 2500));
      expect(await leaseEvents('events-a')).toHaveLength(1);
    } finally {
      await a.stop();
    }
  });

  itLocal(
    'never stands in the way: without RBAC for Events a replica leads, and logs the 403 once with its reason',
    async () => {
      const b = elector('replica-b', 'events-b', 'electors-without-events');
      try {
        await eventually('replica-b to lead', async () => b.elector.isLeader());
        const lease = await coordination.readNamespacedLease({ namespace: ns.name, name: 'events-b' });
        expect(lease.spec?.holderIdentity).toBe('replica-b');
        const warning = await eventually('the warning', async () =>
          b.logs.find((l) => /LeaderElection Event/.test(l.msg)),
        );
        expect(warning.level).toBe(40);
        expect(warning.err).toBe(
          `HTTP 403 Forbidden: events is forbidden: User "${ns.name}-replica-b" cannot create resource "events" in API group "" in the namespace "${ns.name}"`,
        );
        // Still leading, renewing, and not failing the Event again and again in the log.
        await new Promise((r) => setTimeout(r, 3000));
        expect(b.elector.isLeader()).toBe(true);
        expect(b.stopped()).toBe(0);
        expect(b.logs.filter((l) => /LeaderElection Event/.test(l.msg))).toHaveLength(1);
        expect(await leaseEvents('events-b')).toEqual([]);
      } finally {
        await b.stop();
      }
    },
  );
});
