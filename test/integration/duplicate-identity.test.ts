// Two replicas configured with one --identity, against the real control plane:
// runOperator() itself (its /readyz, /metrics and logs), with a guarded work
// that records when it runs, so "at no instant do both lead" is measured, not
// inferred. Both replicas run in this process; the API server, the Lease and
// its compare-and-swap are real.
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { loadConfig, type OperatorConfig } from '../../src/config/config.ts';
import {
  KubernetesLeaseLock,
  LeaderElector,
  formatMicroTime,
  realClock,
  type Clock,
  type LeaseLock,
} from '../../src/election/index.ts';
import { runOperator, type GuardedController } from '../../src/operator/run.ts';
import { eventually, itLocal, testCluster, withNamespace } from '../support/cluster.ts';

const LEASE_MS = 4000;
const RETRY_MS = 1000;
const IDENTITY = 'replica-0';

const cluster = testCluster();
const kc = cluster.kubeConfig();
const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
let ns: { name: string; cleanup: () => Promise<void> };

/** Who runs guarded work right now, and the most that ever did at once. */
class Timeline {
  readonly active = new Set<string>();
  maxConcurrent = 0;
  readonly entries: Array<{ who: string; at: number }> = [];
  enter(who: string): void {
    this.active.add(who);
    this.entries.push({ who, at: Date.now() });
    this.maxConcurrent = Math.max(this.maxConcurrent, this.active.size);
  }
  exit(who: string): void {
    this.active.delete(who);
  }
}

interface Replica {
  name: string;
  logs: Array<{ level: number; msg: string; identity?: string }>;
  port: Promise<number>;
  exited: Promise<number>;
  stop(): Promise<number>;
  get(path: string): Promise<{ status: number; body: string }>;
}

const replicas: Replica[] = [];

function config(lease: string): OperatorConfig {
  const c = loadConfig(
    [
      `--kubeconfig=${cluster.kubeconfig}`,
      `--lease-namespace=${ns.name}`,
      `--lease-name=${lease}`,
      `--identity=${IDENTITY}`,
      '--lease-duration=4s',
      '--renew-deadline=3s',
      '--retry-period=1s',
      '--http-host=127.0.0.1',
      '--http-port=0',
      `--watch-namespaces=${ns.name}`,
    ],
    {},
  );
  if (c === 'help') throw new Error('unexpected --help');
  return c;
}

function replica(name: string, lease: string, timeline: Timeline): Replica {
  const logs: Replica['logs'] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Replica['logs'][number]) },
  );
  const controller: GuardedController = {
    startCaches: (signal) =>
      new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
    hasSynced: () => true,
    lead: async (leadership) => {
      timeline.enter(name);
      try {
        await new Promise<void>((resolve) =>
          leadership.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
      } finally {
        timeline.exit(name);
      }
    },
  };
  const shutdown = new AbortController();
  let listening!: (port: number) => void;
  const port = new Promise<number>((resolve) => (listening = resolve));
  const exited = runOperator({
    config: config(lease),
    createController: () => controller,
    signal: shutdown.signal,
    version: 'test',
    logger,
    onListening: listening,
  });
  const r: Replica = {
    name,
    logs,
    port,
    exited,
    stop: async () => {
      shutdown.abort(new Error('test'));
      return exited;
    },
    get: async (path) => {
      const res = await fetch(`http://127.0.0.1:${await port}${path}`);
      return { status: res.status, body: await res.text() };
    },
  };
  replicas.push(r);
  return r;
}

const conflictErrors = (r: Replica) =>
  r.logs.filter((l) => l.level === 50 && l.msg.includes(`"${IDENTITY}"`) && l.msg.includes('same --identity'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function readLease(name: string): Promise<k8s.V1Lease | undefined> {
  return coordination.readNamespacedLease({ name, namespace: ns.name }).catch(() => undefined);
}

beforeAll(async () => {
  ns = await withNamespace(kc, 'dup-identity');
});

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.stop()));
});

afterAll(async () => {
  await ns?.cleanup();
});

describe('two replicas configured with the same --identity', () => {
  itLocal(
    'at no instant do both run guarded work: the second refuses to lead while the first renews, logs one error naming the identity, reports not ready and counts it; it takes over once the first is gone',
    async () => {
      const timeline = new Timeline();
      const a = replica('a', 'dup-standby', timeline);
      await eventually('replica a to lead', async () => timeline.active.has('a'), 15_000, 50);
      const b = replica('b', 'dup-standby', timeline);
      await b.port;
      await sleep(3 * LEASE_MS);

      expect(timeline.maxConcurrent).toBe(1);
      expect(timeline.entries.map((e) => e.who)).toEqual(['a']);
      expect(conflictErrors(b)).toHaveLength(1);
      expect(conflictErrors(a)).toHaveLength(0);
      const readyB = await b.get('/readyz');
      expect(readyB.status).toBe(503);
      expect(readyB.body).toContain('[-]leader-election failed');
      expect(readyB.body).toContain(IDENTITY);
      expect((await a.get('/readyz')).status).toBe(200);
      const conflicts = Number(
        /leader_election_identity_conflicts_total\{name="dup-standby"\} (\d+)/.exec(
          (await b.get('/metrics')).body,
        )?.[1],
      );
      // a renews every second: each renew b saw is counted.
      expect(conflicts).toBeGreaterThanOrEqual(2 * (LEASE_MS / RETRY_MS));

      // The first replica shuts down (it releases the Lease): the second leads at once and is ready.
      const stoppedAt = Date.now();
      expect(await a.stop()).toBe(0);
      await eventually('replica b to lead', async () => timeline.active.has('b'), 5000, 20);
      expect(Date.now() - stoppedAt).toBeLessThan(LEASE_MS);
      expect((await b.get('/readyz')).status).toBe(200);
      expect(timeline.maxConcurrent).toBe(1);
      expect((await readLease('dup-standby'))?.spec?.holderIdentity).toBe(IDENTITY);
    },
  );

  itLocal(
    'a leader that sees the Lease renewed under its identity by a writer it is not (an older replica that takes over at once) stops its guarded work at once, is not ready, and leads again only after that writer’s lease ran out',
    async () => {
      const timeline = new Timeline();
      const a = replica('a', 'dup-leader', timeline);
      await eventually('replica a to lead', async () => timeline.active.has('a'), 15_000, 50);
      await sleep(1500);

      // Another process configured with identity replica-0 that takes a Lease "of its own" at once (as this operator did before).
      const foreignAcquire = formatMicroTime(Date.now() - 12_345);
      const write = async () => {
        for (let attempt = 0; attempt < 10; attempt++) {
          const lease = (await readLease('dup-leader'))!;
          lease.spec = {
            ...lease.spec,
            holderIdentity: IDENTITY,
            acquireTime: foreignAcquire as never,
            renewTime: formatMicroTime(Date.now()) as never,
            leaseDurationSeconds: LEASE_MS / 1000,
          };
          try {
            return await coordination.replaceNamespacedLease({ name: 'dup-leader', namespace: ns.name, body: lease });
          } catch {
            await sleep(50);
          }
        }
        throw new Error('could not write the Lease');
      };
      const firstWriteAt = Date.now();
      await write();
      await eventually('replica a to stop its guarded work', async () => !timeline.active.has('a'), 3000, 20);
      expect(Date.now() - firstWriteAt).toBeLessThan(1000);
      expect((await a.get('/readyz')).status).toBe(503);
      expect(conflictErrors(a)).toHaveLength(1);

      // The other writer keeps renewing for three lease durations: a never leads meanwhile.
      const until = Date.now() + 3 * LEASE_MS;
      while (Date.now() < until) {
        await sleep(RETRY_MS);
        await write();
      }
      expect(timeline.entries.filter((e) => e.at > firstWriteAt)).toEqual([]);
      expect(conflictErrors(a)).toHaveLength(1);
      const lastWriteAt = Date.now();

      // It stops: a takes over once that writer's lease has run out on a's clock, and is ready again.
      await eventually('replica a to lead again', async () => timeline.active.has('a'), 3 * LEASE_MS, 20);
      expect(Date.now() - lastWriteAt).toBeGreaterThanOrEqual(LEASE_MS - 200);
      expect((await a.get('/readyz')).status).toBe(200);
      expect((await readLease('dup-leader'))?.spec?.acquireTime).not.toBe(foreignAcquire);
    },
  );
});

// Issue 21 item 8, against the real API server and its compare-and-swap: two electors with one
// identity send their acquisitions of a released Lease from the same resourceVersion (a barrier in
// front of the real lock holds the first PUT of each until both are ready to send), with wall clocks
// stopped at one millisecond while they race, so both acquireTimes fall in it. Before the fix the
// loser had remembered that millisecond as its own acquisition before sending: it took the winner's
// record for its own, took the Lease over at once and wrote the same acquireTime again, so neither
// saw a conflict and both ran guarded work for good.
describe('two electors with one --identity racing for a released Lease in the same millisecond', () => {
  itLocal(
    'one leads; the loser does not take the winner’s record for its own: it never leads while the winner renews, logs one error naming the identity, and is not ready',
    async () => {
      const lease = 'dup-race';
      await coordination.createNamespacedLease({
        namespace: ns.name,
        body: { metadata: { name: lease }, spec: { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 } },
      });
      // Wall clock stopped at one millisecond until shortly after the first leader started (renews after that are real).
      let frozen: number | undefined = Date.now();
      const clock: Clock = { ...realClock, wallNow: () => frozen ?? Date.now() };
      let arrived = 0;
      let release!: () => void;
      const bothReady = new Promise<void>((resolve) => (release = resolve));
      const timeline = new Timeline();
      const electors = ['a', 'b'].map((name) => {
        const logs: Array<{ level: number; msg: string }> = [];
        const real = new KubernetesLeaseLock({
          kubeConfig: kc,
          namespace: ns.name,
          name: lease,
          requestTimeoutMs: 2000,
        });
        let first = true;
        const lock: LeaseLock = {
          describe: () => real.describe(),
          list: () => real.list(),
          get: () => real.get(),
          create: (record) => real.create(record),
          watch: (rv, onEvent, onClose) => real.watch(rv, onEvent, onClose),
          update: async (record, base) => {
            if (first) {
              first = false;
              if (++arrived === 2) release();
              await bothReady;
            }
            return real.update(record, base);
          },
        };
        const elector = new LeaderElector(
          {
            kubeConfig: kc,
            namespace: ns.name,
            name: lease,
            identity: IDENTITY,
            leaseDurationMs: LEASE_MS,
            renewDeadlineMs: 3000,
            retryPeriodMs: RETRY_MS,
            clock,
            lock,
            logger: pino(
              { level: 'debug' },
              { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) },
            ),
          },
          {
            onStartedLeading: async (leadership) => {
              timeline.enter(name);
              setTimeout(() => (frozen = undefined), 500);
              try {
                await new Promise<void>((resolve) =>
                  leadership.signal.addEventListener('abort', () => resolve(), { once: true }),
                );
              } finally {
                timeline.exit(name);
              }
            },
          },
        );
        const shutdown = new AbortController();
        return { name, elector, logs, shutdown, done: elector.run(shutdown.signal) };
      });
      try {
        await eventually('a leader', async () => timeline.active.size > 0, 15_000, 20);
        expect(arrived).toBe(2);
        await sleep(3 * LEASE_MS);

        expect(timeline.maxConcurrent).toBe(1);
        expect(timeline.entries).toHaveLength(1);
        const winner = electors.find((e) => e.name === timeline.entries[0]!.who)!;
        const loser = electors.find((e) => e !== winner)!;
        // The race was real: both sent from the same resourceVersion, the API server refused one.
        expect(loser.logs.some((l) => l.msg === 'Lost the race for the Lease')).toBe(true);
        const conflicts = (e: (typeof electors)[number]) =>
          e.logs.filter((l) => l.level === 50 && l.msg.includes(`"${IDENTITY}"`) && l.msg.includes('same --identity'));
        expect(conflicts(loser)).toHaveLength(1);
        expect(conflicts(winner)).toHaveLength(0);
        expect(loser.elector.ready()).toEqual({ ok: false, reason: expect.stringContaining(IDENTITY) });
        expect(winner.elector.ready().ok).toBe(true);
        expect(winner.elector.isLeader()).toBe(true);
        // The Lease carries the winner's acquisition, with its nonce in the microseconds.
        const acquireTime = String((await readLease(lease))?.spec?.acquireTime as unknown);
        expect(acquireTime).toMatch(/\.\d{3}(?!000)\d{3}Z$/);
      } finally {
        for (const e of electors) e.shutdown.abort();
        await Promise.all(electors.map((e) => e.done));
      }
    },
  );
});
