// Leader election across an etcd restore WITHOUT --bump-revision: resourceVersions
// go back to the backup's. A private control plane (etcd + kube-apiserver only)
// so rolling etcd back cannot disturb the other test files sharing the global
// one. The backup is a cold copy of etcd's data folder, the restore puts it back
// and restarts the API server (ControlPlane.backupEtcd / restoreEtcd). Electors
// are separate OS processes (test/fixtures/elector-process.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { itLocal } from '../support/cluster.ts';

const LEASE_MS = 4000;
const RENEW_MS = 3000;
const RETRY_MS = 1000;
const LEASE = 'restored';
const NAMESPACE = 'default';
const fixture = fileURLToPath(new URL('../fixtures/elector-process.ts', import.meta.url));

let cp: ControlPlane | undefined;
let coordination: k8s.CoordinationV1Api;
let core: k8s.CoreV1Api;
const processes: Elector[] = [];

interface ElectorEvent {
  event: string;
  at: number;
  identity: string;
  term?: number;
  leader?: string;
  reason?: string;
  code?: number;
}

class Elector {
  readonly name: string;
  readonly child: ChildProcess;
  readonly events: ElectorEvent[] = [];
  readonly logs: string[] = [];

  constructor(name: string) {
    this.name = name;
    this.child = spawn(process.execPath, [fixture], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        KUBECONFIG_PATH: cp!.state.kubeconfig,
        LEASE_NAMESPACE: NAMESPACE,
        LEASE_NAME: LEASE,
        POD_NAME: name,
        LEASE_MS: String(LEASE_MS),
        RENEW_MS: String(RENEW_MS),
        RETRY_MS: String(RETRY_MS),
        LOG_LEVEL: 'info',
      },
    });
    createInterface(this.child.stdout!).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as ElectorEvent);
      } catch {
        // not an event line
      }
    });
    createInterface(this.child.stderr!).on('line', (line) => this.logs.push(line));
    processes.push(this);
  }

  all(event: string): ElectorEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  async waitFor(what: string, match: (e: ElectorEvent) => boolean, timeoutMs: number, from = 0): Promise<ElectorEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.events)}`);
      await sleep(20);
    }
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const started = (e: ElectorEvent) => e.event === 'started-leading';

async function leaseVersion(): Promise<bigint> {
  const lease = await coordination.readNamespacedLease({ name: LEASE, namespace: NAMESPACE });
  return BigInt(lease.metadata!.resourceVersion!);
}

/** Some unrelated writes, so the cluster's revision moves on by `n`. */
async function churn(n: number): Promise<void> {
  const name = 'churn';
  await core
    .createNamespacedConfigMap({ namespace: NAMESPACE, body: { metadata: { name }, data: { i: '0' } } })
    .catch(() => undefined);
  for (let i = 1; i <= n; i++) {
    await core.patchNamespacedConfigMap({
      namespace: NAMESPACE,
      name,
      body: [{ op: 'replace', path: '/data', value: { i: String(i) } }],
    });
  }
}

beforeAll(async () => {
  if (!process.env.SINGLETON_TEST_CLUSTER_DIR) return;
  cp = await ControlPlane.start({ components: ['etcd', 'kube-apiserver'] });
  const kc = cp.kubeConfig();
  coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  core = kc.makeApiClient(k8s.CoreV1Api);
}, 180_000);

afterAll(async () => {
  for (const p of processes.splice(0)) if (p.alive()) p.child.kill('SIGKILL');
  await cp?.stop();
}, 60_000);

describe('after an etcd restore without --bump-revision', () => {
  itLocal(
    'a standby takes over from a leader lost in the disaster (it does not wait forever), and a former leader leads again with a lower term instead of exiting',
    async () => {
      const a = new Elector('a');
      await a.waitFor('a to lead', started, 30_000);
      const b = new Elector('b');
      await b.waitFor('b to watch', (e) => e.event === 'new-leader', 15_000);
      await sleep(500);

      const backup = await cp!.backupEtcd();
      const backupVersion = await leaseVersion();
      // etcd was down for the copy: the lease may have changed hands meanwhile. Let it settle.
      await sleep(LEASE_MS);
      await churn(50);
      const lease = await coordination.readNamespacedLease({ name: LEASE, namespace: NAMESPACE });
      const newest = BigInt(lease.metadata!.resourceVersion!);
      expect(newest).toBeGreaterThan(backupVersion);
      const leader = [a, b].find((e) => e.events[0]?.identity === lease.spec?.holderIdentity)!;
      const standby = leader === a ? b : a;
      expect(leader.all('started-leading').length).toBeGreaterThan(leader.all('lost').length);

      // 1. The disaster takes the leader's node; etcd is restored from the backup.
      leader.child.kill('SIGKILL');
      const from1 = standby.events.length;
      await cp!.restoreEtcd(backup);
      expect(await leaseVersion()).toBeLessThan(newest);
      // Revisions move on after the restore, so the new term is well above the restored one...
      await churn(150);
      const takeover = await standby.waitFor(
        'the standby to lead after the restore',
        started,
        LEASE_MS + 20_000,
        from1,
      );
      // ...and it acted only a whole lease after it saw the reset.
      const reset = standby.logs
        .map((l) => JSON.parse(l) as { time: number; msg: string })
        .find((l) => l.msg.includes('resourceVersion went back'));
      expect(reset).toBeDefined();
      expect(takeover.at - reset!.time).toBeGreaterThanOrEqual(LEASE_MS - 50);
      expect(takeover.term!).toBeGreaterThan(Number(backupVersion));
      expect((await coordination.readNamespacedLease({ name: LEASE, namespace: NAMESPACE })).spec?.holderIdentity).toBe(
        takeover.identity,
      );

      // 2. Restored again, to the same backup, under the new leader: its next term is lower than its last one.
      const from2 = standby.events.length;
      await cp!.restoreEtcd(backup);
      expect(await leaseVersion()).toBeLessThan(BigInt(takeover.term!));
      const again = await standby.waitFor('the former leader to lead again', started, LEASE_MS + 20_000, from2);
      expect(again.term!).toBeLessThan(takeover.term!);
      expect(standby.all('lost').at(-1)?.reason).toMatch(/^(reset|renew-deadline)$/);
      // The warning is logged as it starts leading; its stdout line may land just after the event.
      for (
        const until = Date.now() + 5000;
        !standby.logs.some((l) => l.includes('lower fencing term')) && Date.now() < until;
      )
        await sleep(50);
      expect(standby.logs.some((l) => l.includes('lower fencing term'))).toBe(true);
      await sleep(2 * RETRY_MS);
      expect(standby.alive()).toBe(true);
      expect(standby.all('exit')).toEqual([]);
    },
    240_000,
  );
});
