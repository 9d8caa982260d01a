// The rules that turn a Pod's status into evidence of a dead Lease holder
// (evidence.ts), and the elector acting on evidence: at once, with a CAS on the
// record judged; a holder wrongly judged dead steps down; no evidence, expiry.
import pino from 'pino';
import { Registry } from 'prom-client';
import { ManualClock } from '../../test/support/manual-clock.ts';
import { FakeLeaseStore } from '../../test/support/fake-lease.ts';
import { LeaderElector } from './elector.ts';
import { LeadershipLostError, type Leadership } from './leadership.ts';
import { judgeHolder, podOfIdentity, type HolderEvidence, type PodKnowledge, type PodView } from './evidence.ts';
import { podView } from './pod-evidence.ts';

const HOLDER = 'so-7d9f-abcde_0123456789';
const ACQUIRED = '2030-01-01T00:00:10.500123Z';
const record = { holderIdentity: HOLDER, acquireTime: ACQUIRED };

const pod = (containers: PodView['containers'], extra: Partial<PodView> = {}): PodKnowledge => ({
  state: 'present',
  pod: { name: 'so-7d9f-abcde', uid: 'u1', containers, ...extra },
});
const operator = (c: Omit<PodView['containers'][number], 'name' | 'restartCount'> & { restartCount?: number }) => ({
  name: 'operator',
  restartCount: 0,
  ...c,
});

describe('podOfIdentity', () => {
  it.each([
    ['so-7d9f-abcde_0123456789', 'so-7d9f-abcde'],
    ['a_b_0123456789', 'a_b'],
    ['so-7d9f-abcde', undefined],
    ['so-7d9f-abcde_012345678', undefined],
    ['so-7d9f-abcde_0123456789x', undefined],
    ['replica-a', undefined],
  ])('%s → %s', (identity, expected) => expect(podOfIdentity(identity)).toBe(expected));
});

describe('judgeHolder: what counts as evidence that the holder is dead', () => {
  it.each<[string, PodKnowledge, boolean]>([
    ['a Pod never seen', { state: 'unknown' }, false],
    ['the Pod seen, then deleted and removed', { state: 'gone', name: 'so-7d9f-abcde', uid: 'u1' }, true],
    [
      'the Pod Failed (evicted)',
      pod([operator({ terminated: { finishedAt: '2030-01-01T00:01:00Z' } })], { phase: 'Failed' }),
      true,
    ],
    ['the Pod Succeeded', pod([], { phase: 'Succeeded' }), true],
    [
      'a deletionTimestamp alone (grace period: the process may still run)',
      pod([operator({ running: { startedAt: '2030-01-01T00:00:05Z' } })], {
        deletionTimestamp: '2030-01-01T00:01:00Z',
      }),
      false,
    ],
    [
      'running, started before the acquisition',
      pod([operator({ running: { startedAt: '2030-01-01T00:00:05Z' } })]),
      false,
    ],
    [
      'running, started in the same second as the acquisition (truncated: no doubt allowed)',
      pod([operator({ running: { startedAt: '2030-01-01T00:00:10Z' } })]),
      false,
    ],
    [
      'running, restarted after the acquisition',
      pod([
        operator({
          restartCount: 1,
          running: { startedAt: '2030-01-01T00:00:11Z' },
          lastTerminated: { finishedAt: '2030-01-01T00:00:11Z' },
        }),
      ]),
      true,
    ],
    ['terminated after the acquisition', pod([operator({ terminated: { finishedAt: '2030-01-01T00:01:00Z' } })]), true],
    [
      'terminated in the acquisition’s second (its end may be after it)',
      pod([operator({ terminated: { finishedAt: '2030-01-01T00:00:10Z' } })]),
      true,
    ],
    [
      'terminated a second or more before the acquisition (a later incarnation acquired)',
      pod([operator({ terminated: { finishedAt: '2030-01-01T00:00:09Z' } })]),
      false,
    ],
    [
      'waiting in CrashLoopBackOff after a termination after the acquisition',
      pod([operator({ restartCount: 3, waiting: true, lastTerminated: { finishedAt: '2030-01-01T00:02:00Z' } })]),
      true,
    ],
    ['waiting before its first start (ContainerCreating)', pod([operator({ waiting: true })]), false],
    [
      'another container terminated, the operator container running',
      pod([
        operator({ running: { startedAt: '2030-01-01T00:00:05Z' } }),
        { name: 'sidecar', restartCount: 0, terminated: { finishedAt: '2030-01-01T00:05:00Z' } },
      ]),
      false,
    ],
    ['no status for the operator container yet', pod([]), false],
  ])('%s: %s', (_label, knowledge, dead) => {
    const verdict = judgeHolder(record, knowledge, 'operator');
    if (dead) expect(verdict).toEqual(expect.any(String));
    else expect(verdict).toBeUndefined();
  });

  it('says nothing from a container termination when the record has no acquireTime (a hand-written record)', () => {
    expect(
      judgeHolder(
        { holderIdentity: HOLDER },
        pod([operator({ terminated: { finishedAt: '2030-01-01T00:01:00Z' } })]),
        'operator',
      ),
    ).toBeUndefined();
    expect(
      judgeHolder({ holderIdentity: HOLDER }, { state: 'gone', name: 'so-7d9f-abcde', uid: 'u1' }, 'operator'),
    ).toMatch(/deleted and removed/);
  });

  it('reads a Pod as the API server sends it (Dates or strings for times)', () => {
    const view = podView({
      metadata: { name: 'p', uid: 'u' },
      status: {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'operator',
            image: 'i',
            imageID: '',
            ready: true,
            restartCount: 2,
            state: { running: { startedAt: new Date('2030-01-01T00:00:11Z') } },
            lastState: {
              terminated: {
                exitCode: 137,
                finishedAt: '2030-01-01T00:00:11Z' as unknown as Date,
                containerID: 'containerd://x',
              },
            },
          },
        ],
      },
    });
    expect(view).toEqual({
      name: 'p',
      uid: 'u',
      phase: 'Running',
      containers: [
        {
          name: 'operator',
          restartCount: 2,
          running: { startedAt: '2030-01-01T00:00:11.000Z' },
          lastTerminated: { finishedAt: '2030-01-01T00:00:11Z', containerID: 'containerd://x' },
        },
      ],
    });
    expect(judgeHolder(record, { state: 'present', pod: view }, 'operator')).toMatch(/restarted/);
  });
});

/** Evidence a test sets by hand: which identities are dead, and why. */
class SetEvidence implements HolderEvidence {
  private readonly dead = new Map<string, string>();
  private readonly listeners = new Set<() => void>();
  throws = false;
  kill(identity: string, why = 'its container terminated'): void {
    this.dead.set(identity, why);
    for (const l of [...this.listeners]) l();
  }
  deathOf(r: { holderIdentity: string }): string | undefined {
    if (this.throws) throw new Error('boom');
    return this.dead.get(r.holderIdentity);
  }
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

const LEASE = 15_000;
let clock: ManualClock;
let store: FakeLeaseStore;
const running: Array<{ stop: () => Promise<void> }> = [];

beforeEach(() => {
  clock = new ManualClock();
  store = new FakeLeaseStore();
});

afterEach(async () => {
  for (const r of running.splice(0)) {
    const stopping = r.stop();
    await clock.advance(LEASE);
    await stopping;
  }
});

function replica(identity: string, evidence?: HolderEvidence) {
  const logs: Array<{ msg: string; [k: string]: unknown }> = [];
  const leaderships: Leadership[] = [];
  const registry = new Registry();
  const elector = new LeaderElector(
    {
      kubeConfig: undefined as never,
      namespace: 'test',
      name: 'lease',
      identity,
      leaseDurationMs: LEASE,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock,
      lock: store.client(identity),
      logger: pino(
        { level: 'info' },
        { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) },
      ),
      registry,
      ...(evidence ? { evidence } : {}),
    },
    {
      onStartedLeading: async (leadership) => {
        leaderships.push(leadership);
        await new Promise<void>((resolve) =>
          leadership.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
      },
    },
  );
  const controller = new AbortController();
  const done = elector.run(controller.signal);
  const r = { identity, elector, logs, leaderships, registry, stop: async () => (controller.abort(), await done) };
  running.push(r);
  return r;
}

describe('the elector with evidence of a dead holder', () => {
  const A = 'so-a_aaaaaaaaaa';
  const B = 'so-b_bbbbbbbbbb';

  it('takes the Lease over at once when the holder is judged dead, with a CAS on the record judged, and says why', async () => {
    const evidence = new SetEvidence();
    // A's last renew before it crashed (it writes nothing more).
    store.put(
      {
        holderIdentity: A,
        leaseDurationSeconds: 15,
        acquireTime: '2030-01-01T00:00:00.000001Z',
        renewTime: '2030-01-01T00:00:04.000001Z',
        leaseTransitions: 2,
      },
      A,
    );
    const judged = store.current()!;
    const b = replica(B, evidence);
    await clock.advance(5_000);
    expect(b.elector.isLeader()).toBe(false);
    expect(store.writesBy(B)).toHaveLength(0);
    evidence.kill(A);
    await clock.advance(0);
    expect(b.elector.isLeader()).toBe(true);
    const writes = store.writesBy(B);
    expect(writes).toHaveLength(1);
    // An update of exactly the record judged: the next revision after it, nothing in between.
    expect(writes[0]).toMatchObject({ verb: 'update', record: { holderIdentity: B, leaseTransitions: 3 } });
    expect(Number(writes[0]!.resourceVersion)).toBe(Number(judged.resourceVersion) + 1);
    expect(b.leaderships[0]!.term).toBe(Number(writes[0]!.resourceVersion));
    expect(b.logs.find((l) => l.msg.startsWith('The Lease holder is dead'))).toMatchObject({
      holder: A,
      evidence: 'its container terminated',
    });
    expect(b.logs.find((l) => l.msg === 'Started leading')).toMatchObject({ takeover: 'holder-dead' });
    expect(await b.registry.getSingleMetricAsString('leader_election_transitions_total')).toMatch(
      /direction="acquired",reason="holder-dead"\} 1/,
    );
  });

  it('without evidence waits the lease out as before', async () => {
    const evidence = new SetEvidence();
    store.put(
      {
        holderIdentity: A,
        leaseDurationSeconds: 15,
        acquireTime: '2030-01-01T00:00:00.000001Z',
        renewTime: '2030-01-01T00:00:00.000001Z',
        leaseTransitions: 0,
      },
      A,
    );
    const b = replica(B, evidence);
    await clock.advance(LEASE - 1);
    expect(store.writesBy(B)).toHaveLength(0);
    await clock.advance(1);
    expect(b.elector.isLeader()).toBe(true);
    expect(b.logs.find((l) => l.msg === 'Started leading')).not.toHaveProperty('takeover');
  });

  it('evidence that cannot be judged (it throws) is no evidence: a warning, then expiry', async () => {
    const evidence = new SetEvidence();
    evidence.throws = true;
    store.put(
      {
        holderIdentity: A,
        leaseDurationSeconds: 15,
        acquireTime: '2030-01-01T00:00:00.000001Z',
        renewTime: '2030-01-01T00:00:00.000001Z',
        leaseTransitions: 0,
      },
      A,
    );
    const b = replica(B, evidence);
    await clock.advance(LEASE - 1);
    expect(store.writesBy(B)).toHaveLength(0);
    expect(b.logs.some((l) => l.msg.startsWith('Could not judge the Lease holder'))).toBe(true);
    await clock.advance(1);
    expect(b.elector.isLeader()).toBe(true);
  });

  it('a holder wrongly judged dead (it was only slow) loses the Lease at once and its leadership is fenced; terms increase', async () => {
    const evidence = new SetEvidence();
    const a = replica(A);
    await clock.advance(0);
    const b = replica(B, evidence);
    await clock.advance(3_000);
    const termA = a.leaderships[0]!.term;
    evidence.kill(A, 'wrong: it is alive');
    await clock.advance(0);
    expect(b.elector.isLeader()).toBe(true);
    expect(b.leaderships[0]!.term).toBeGreaterThan(termA);
    const lost = a.leaderships[0]!;
    expect(lost.signal.aborted).toBe(true);
    expect((lost.signal.reason as LeadershipLostError).reason).toBe('taken');
    expect(() => lost.assertValid()).toThrow(LeadershipLostError);
    expect(a.elector.isLeader()).toBe(false);
    // A does not take it back: B renews, and A has no evidence against B.
    await clock.advance(3 * LEASE);
    expect(store.current()!.record.holderIdentity).toBe(B);
  });

  it('a deleted Lease whose holder is judged dead is re-created at once instead of after its lease', async () => {
    const evidence = new SetEvidence();
    store.put(
      {
        holderIdentity: A,
        leaseDurationSeconds: 15,
        acquireTime: '2030-01-01T00:00:00.000001Z',
        renewTime: '2030-01-01T00:00:00.000001Z',
        leaseTransitions: 0,
      },
      A,
    );
    const b = replica(B, evidence);
    await clock.advance(1_000);
    store.delete();
    await clock.advance(1_000);
    expect(b.elector.isLeader()).toBe(false);
    evidence.kill(A, 'its Pod was deleted and removed');
    await clock.advance(0);
    expect(b.elector.isLeader()).toBe(true);
  });
});
