// Leader election against the real control plane, each elector a separate OS
// process (test/fixtures/elector-process.ts) with its own client certificate,
// so the API server's audit log says who wrote what and when. Assertions are
// on observable state only: the Lease, the audit log, exit codes and the
// events each process prints.
//
// On a control plane of its own (etcd + kube-apiserver: Leases, ConfigMaps,
// RBAC and the audit log are all these tests use): one test stops and restarts
// the API server, and a restarted API server answers 403 to requests it
// receives before its RBAC caches have synced ("RBAC: role … not found") —
// which failed other test files' controllers on the shared control plane
// (scheduling.test.ts) when this file ran beside them.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { withNamespace, eventually, itLocal } from '../support/cluster.ts';

const LEASE_MS = 4000;
const RENEW_MS = 3000;
const RETRY_MS = 1000;
const fixture = fileURLToPath(new URL('../fixtures/elector-process.ts', import.meta.url));

/** This file's own control plane (started in beforeAll when the tests run locally; every test here is itLocal). */
let cp: ControlPlane | undefined;
let coordination: k8s.CoordinationV1Api;
let ns: { name: string; cleanup: () => Promise<void> };
const processes: Elector[] = [];

interface ElectorEvent {
  event: string;
  at: number;
  identity: string;
  term?: number;
  leader?: string;
  reason?: string;
  code?: number;
  seq?: number;
}

interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; namespace?: string; name?: string };
  responseStatus?: { code: number };
  requestReceivedTimestamp: string;
}

class Elector {
  readonly name: string;
  readonly user: string;
  readonly child: ChildProcess;
  readonly events: ElectorEvent[] = [];
  readonly exited: Promise<number | null>;
  private waiters = new Set<() => void>();

  constructor(name: string, lease: string, env: Record<string, string> = {}) {
    this.name = name;
    this.user = `elector-${lease}-${name}`;
    const kubeconfig = cp!.kubeconfigFor(this.user, ['singleton-electors']);
    this.child = spawn(process.execPath, [fixture], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        KUBECONFIG_PATH: kubeconfig,
        LEASE_NAMESPACE: ns.name,
        LEASE_NAME: lease,
        POD_NAME: name,
        LEASE_MS: String(LEASE_MS),
        RENEW_MS: String(RENEW_MS),
        RETRY_MS: String(RETRY_MS),
        LOG_LEVEL: 'info',
        ...env,
      },
    });
    createInterface(this.child.stdout!).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as ElectorEvent);
      } catch {
        return;
      }
      for (const wake of [...this.waiters]) wake();
    });
    const stderr: string[] = [];
    createInterface(this.child.stderr!).on('line', (line) => stderr.push(line));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    processes.push(this);
  }

  get identity(): string | undefined {
    return this.events[0]?.identity;
  }

  all(event: string): ElectorEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  /** Resolves with the first event (from `from` on) matching, or rejects after `timeoutMs`. */
  waitFor(what: string, match: (e: ElectorEvent) => boolean, timeoutMs: number, from = 0): Promise<ElectorEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.slice(from).find(match);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `${this.name}: no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.events.filter((e) => e.event !== 'write'))}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  signal(sig: NodeJS.Signals): number {
    const at = Date.now();
    this.child.kill(sig);
    return at;
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}

const started = (e: ElectorEvent) => e.event === 'started-leading';

/** The first of `candidates` to print started-leading (after event index `from(c)`). */
async function firstLeader(
  candidates: Elector[],
  timeoutMs = 15_000,
  from: (c: Elector) => number = () => 0,
): Promise<{ leader: Elector; event: ElectorEvent }> {
  return Promise.any(
    candidates.map((c) =>
      c.waitFor('started-leading', started, timeoutMs, from(c)).then((event) => ({ leader: c, event })),
    ),
  );
}

/** Waits until a standby has listed the Lease and started its watch. */
async function watching(standby: Elector, leader: Elector): Promise<void> {
  await standby.waitFor('new-leader', (e) => e.event === 'new-leader' && e.leader === leader.identity, 15_000);
  await new Promise((r) => setTimeout(r, 300));
}

async function readLease(name: string): Promise<k8s.V1Lease | undefined> {
  return coordination.readNamespacedLease({ name, namespace: ns.name }).catch(() => undefined);
}

function audit(): AuditEvent[] {
  const byId = new Map<string, AuditEvent>();
  for (const line of readFileSync(cp!.state.auditLog, 'utf8').split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as AuditEvent;
    if (e.objectRef?.namespace !== ns.name) continue;
    byId.set(e.auditID, e);
  }
  return [...byId.values()];
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const byUser = (user: string) => (e: AuditEvent) => e.user.username === user;
const isWrite = (e: AuditEvent) => WRITE_VERBS.has(e.verb);
/** Audit timestamps are RFC 3339 UTC with six fractional digits: they sort as strings. */
const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '000Z');

beforeAll(async () => {
  if (!process.env.SINGLETON_TEST_CLUSTER_DIR) return;
  cp = await ControlPlane.start({ components: ['etcd', 'kube-apiserver'] });
  const kc = cp.kubeConfig();
  coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  ns = await withNamespace(kc, 'election');
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace: ns.name,
    body: {
      metadata: { name: 'elector' },
      rules: [
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          verbs: ['get', 'list', 'watch', 'create', 'update'],
        },
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update'] },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns.name,
    body: {
      metadata: { name: 'elector' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'elector' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'singleton-electors' }],
    },
  });
}, 180_000);

afterEach(async () => {
  for (const p of processes.splice(0)) {
    if (p.alive()) {
      p.child.kill('SIGCONT');
      p.child.kill('SIGKILL');
    }
    await p.exited;
  }
});

afterAll(async () => {
  await cp?.stop();
}, 60_000);

describe('leader election across processes', () => {
  itLocal('three candidates elect exactly one, and standbys send no requests while the leader is healthy', async () => {
    const all = ['a', 'b', 'c'].map((n) => new Elector(n, 'three'));
    const { leader } = await firstLeader(all);
    for (const c of all) await watching(c, leader);
    const windowStart = iso(Date.now());
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
    const windowEnd = iso(Date.now());

    expect(all.flatMap((c) => c.all('started-leading'))).toHaveLength(1);
    expect(leader.all('lost')).toHaveLength(0);
    expect((await readLease('three'))?.spec?.holderIdentity).toBe(leader.identity);
    for (const c of all) expect(c.all('new-leader').at(-1)?.leader).toBe(leader.identity);

    const entries = audit().filter(
      (e) => e.requestReceivedTimestamp >= windowStart && e.requestReceivedTimestamp <= windowEnd,
    );
    for (const standby of all.filter((c) => c !== leader)) {
      expect(entries.filter(byUser(standby.user))).toEqual([]);
    }
    const renewals = entries
      .filter(byUser(leader.user))
      .filter((e) => e.verb === 'update' && e.objectRef?.resource === 'leases');
    const seconds = (Date.parse(windowEnd) - Date.parse(windowStart)) / 1000;
    expect(renewals.length).toBeGreaterThanOrEqual(Math.floor(seconds / (RETRY_MS / 1000)) - 2);
    expect(renewals.length).toBeLessThanOrEqual(Math.ceil(seconds / (RETRY_MS / 1000)) + 1);
  });

  itLocal(
    'SIGTERM of the leader: it stops its work, releases the Lease, exits 0, and a standby leads within 1 s',
    async () => {
      const a = new Elector('a', 'graceful', { WORK_CONFIGMAP: 'graceful-work' });
      const { event: first } = await firstLeader([a]);
      const standbys = [new Elector('b', 'graceful'), new Elector('c', 'graceful')];
      for (const s of standbys) await watching(s, a);
      const before = await readLease('graceful');

      const termAt = a.signal('SIGTERM');
      const { leader: successor, event: next } = await firstLeader(standbys, 5000);
      expect(next.at - termAt).toBeLessThan(1000);
      expect(await a.exited).toBe(0);
      expect(next.term!).toBeGreaterThan(first.term!);
      const lost = a.all('lost')[0]!;
      expect(lost.reason).toBe('shutdown');
      expect(a.all('stopped-leading')[0]!.at).toBeGreaterThanOrEqual(lost.at);

      const lease = await readLease('graceful');
      expect(lease?.spec?.holderIdentity).toBe(successor.identity);
      expect(lease?.spec?.leaseTransitions).toBe((before?.spec?.leaseTransitions ?? 0) + 1);
      // The release (a's last Lease write) happened before the successor's acquisition,
      // and a made no write of any kind after it.
      const entries = audit();
      const release = entries
        .filter(byUser(a.user))
        .filter(isWrite)
        .filter((e) => e.objectRef?.resource === 'leases')
        .at(-1)!;
      expect(release.responseStatus?.code).toBe(200);
      const acquired = entries
        .filter(byUser(successor.user))
        .filter(isWrite)
        .sort((x, y) => x.requestReceivedTimestamp.localeCompare(y.requestReceivedTimestamp))[0]!;
      expect(release.requestReceivedTimestamp < acquired.requestReceivedTimestamp).toBe(true);
      expect(
        entries
          .filter(byUser(a.user))
          .filter(isWrite)
          .filter((e) => e.requestReceivedTimestamp > release.requestReceivedTimestamp),
      ).toEqual([]);
    },
  );

  itLocal(
    'SIGKILL of the leader: a standby leads once the lease has expired on its own clock, not before, and within the bound plus 1 s',
    async () => {
      const a = new Elector('a', 'crash');
      const { event: first } = await firstLeader([a]);
      const b = new Elector('b', 'crash');
      await watching(b, a);
      await new Promise((r) => setTimeout(r, 1500));
      const killedAt = a.signal('SIGKILL');
      const next = await b.waitFor('started-leading', started, LEASE_MS + 5000);
      const takeover = next.at - killedAt;
      expect(takeover).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - 100);
      expect(takeover).toBeLessThanOrEqual(LEASE_MS + 1000);
      expect(next.term!).toBeGreaterThan(first.term!);
      expect((await readLease('crash'))?.spec?.holderIdentity).toBe(b.identity);
    },
  );

  itLocal(
    'SIGSTOP of the leader past its lease, then SIGCONT: the woken process writes nothing after its successor’s first write and reports the loss',
    async () => {
      const a = new Elector('a', 'paused', { WORK_CONFIGMAP: 'paused-work', WORK_INTERVAL_MS: '50' });
      await firstLeader([a]);
      await a.waitFor('guarded writes', (e) => e.event === 'write' && (e.seq ?? 0) >= 5, 10_000);
      const b = new Elector('b', 'paused', { WORK_CONFIGMAP: 'paused-work', WORK_INTERVAL_MS: '50' });
      await watching(b, a);

      const stoppedAt = a.signal('SIGSTOP');
      await b.waitFor('started-leading', started, LEASE_MS + 5000);
      await b.waitFor('a guarded write', (e) => e.event === 'write', 5000);
      const wait = stoppedAt + LEASE_MS + 1000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const from = a.events.length;
      a.signal('SIGCONT');
      const lost = await a.waitFor('lost', (e) => e.event === 'lost', 5000, from);
      expect(['expired', 'stalled', 'taken']).toContain(lost.reason);
      await a.waitFor('stopped-leading', (e) => e.event === 'stopped-leading', 5000, from);
      await new Promise((r) => setTimeout(r, 3 * RETRY_MS));

      const entries = audit();
      const successorsFirstWrite = entries
        .filter(byUser(b.user))
        .filter(isWrite)
        .map((e) => e.requestReceivedTimestamp)
        .sort()[0]!;
      const zombieWrites = entries.filter(byUser(a.user)).filter(isWrite);
      expect(
        zombieWrites.filter((e) => e.objectRef?.resource === 'configmaps' && e.responseStatus?.code === 200).length,
      ).toBeGreaterThanOrEqual(5);
      expect(zombieWrites.filter((e) => e.requestReceivedTimestamp > successorsFirstWrite)).toEqual([]);
      expect(a.all('write').filter((e) => e.at > lost.at)).toEqual([]);
      expect((await readLease('paused'))?.spec?.holderIdentity).toBe(b.identity);
      expect(b.all('lost')).toEqual([]);
      expect(a.alive()).toBe(true);
    },
  );

  itLocal(
    'kube-apiserver down for longer than the renew deadline: the leader steps down in time, nobody crashes, and election resumes when it is back',
    async () => {
      const local = cp!;
      const a = new Elector('a', 'outage');
      const { event: first } = await firstLeader([a]);
      const b = new Elector('b', 'outage');
      await watching(b, a);
      const from = { a: a.events.length, b: b.events.length };

      const downAt = Date.now();
      await local.stopComponent('kube-apiserver');
      const lost = await a.waitFor('lost', (e) => e.event === 'lost', RENEW_MS + 3000, from.a);
      expect(lost.reason).toBe('renew-deadline');
      expect(lost.at - downAt).toBeLessThanOrEqual(RENEW_MS + 500);
      const outage = downAt + LEASE_MS + 2000 - Date.now();
      if (outage > 0) await new Promise((r) => setTimeout(r, outage));
      await local.startComponent('kube-apiserver');

      const { leader, event: next } = await firstLeader([a, b], 30_000, (c) => from[c.name as 'a' | 'b']);
      expect(next.term!).toBeGreaterThan(first.term!);
      expect(next.at).toBeGreaterThanOrEqual(lost.at);
      expect(a.alive() && b.alive()).toBe(true);
      const holder = await eventually(
        'the Lease to name the new leader',
        async () => (await readLease('outage'))?.spec?.holderIdentity,
      );
      expect(holder).toBe(leader.identity);
    },
  );

  itLocal(
    'deleting the Lease: the leader re-creates it, and fencing terms keep increasing while leaseTransitions restarts',
    async () => {
      const a = new Elector('a', 'deleted');
      const { event: t1 } = await firstLeader([a]);
      const b = new Elector('b', 'deleted');
      await watching(b, a);
      a.signal('SIGTERM');
      const t2 = await b.waitFor('started-leading', started, 5000);
      expect(t2.term!).toBeGreaterThan(t1.term!);

      // Deleted under a live leader: it re-creates the Lease and keeps leading (and its term).
      await coordination.deleteNamespacedLease({ name: 'deleted', namespace: ns.name });
      await eventually(
        'the leader to re-create the Lease',
        async () => (await readLease('deleted'))?.spec?.holderIdentity === b.identity,
        10_000,
        100,
      );
      const c = new Elector('c', 'deleted');
      await watching(c, b);
      await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
      expect(b.all('lost')).toEqual([]);
      expect(c.all('started-leading')).toEqual([]);

      // Deleted after the leader crashed: the standby waits out that lease, then creates a new Lease.
      const killedAt = b.signal('SIGKILL');
      await coordination.deleteNamespacedLease({ name: 'deleted', namespace: ns.name });
      const t3 = await c.waitFor('started-leading', started, LEASE_MS + 5000);
      expect(t3.at - killedAt).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - 100);
      expect(t3.term!).toBeGreaterThan(t2.term!);
      const lease = await readLease('deleted');
      expect(lease?.spec?.holderIdentity).toBe(c.identity);
      expect(lease?.spec?.leaseTransitions).toBe(0);
      expect(BigInt(lease!.metadata!.resourceVersion!)).toBeGreaterThanOrEqual(BigInt(t3.term!));
    },
  );

  itLocal(
    'wall clocks skewed by minutes: a standby ahead does not steal from a leader behind, and takes over in time when it dies',
    async () => {
      const skew = 5 * 60_000;
      const a = new Elector('a', 'skew', { CLOCK_OFFSET_MS: String(-skew) });
      await firstLeader([a]);
      const renewTime = Date.parse(String((await readLease('skew'))?.spec?.renewTime));
      expect(Math.abs(renewTime - (Date.now() - skew))).toBeLessThan(5000);

      const b = new Elector('b', 'skew', { CLOCK_OFFSET_MS: String(skew) });
      await watching(b, a);
      await new Promise((r) => setTimeout(r, 3 * LEASE_MS));
      expect(b.all('started-leading')).toEqual([]);
      expect(a.all('lost')).toEqual([]);

      const killedAt = a.signal('SIGKILL');
      const next = await b.waitFor('started-leading', started, LEASE_MS + 5000);
      expect(next.at - killedAt).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - 100);
      expect(next.at - killedAt).toBeLessThanOrEqual(LEASE_MS + 1000);
      const acquireTime = Date.parse(String((await readLease('skew'))?.spec?.acquireTime));
      expect(Math.abs(acquireTime - (Date.now() + skew))).toBeLessThan(5000);
    },
  );
});
