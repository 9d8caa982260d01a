// The elector against an in-memory Lease store and a manual clock: the edge
// cases client-go's tests cover (acquire an expired lease, never steal a live
// one, renew, count transitions, step down, release) plus what we add (watch-
// driven takeover, self-fencing, stalls, fencing terms, clock skew).
import { jest } from '@jest/globals';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Clock } from './clock.ts';
import { ManualClock } from '../../test/support/manual-clock.ts';
import { LeaderElector } from './elector.ts';
import { LeadershipLostError, type Leadership } from './leadership.ts';
import { FakeLeaseStore, type FakeLeaseClient } from '../../test/support/fake-lease.ts';
import type { LeaseEvent, LeaseLock, LeaseRecord, LeaseSnapshot } from './lock.ts';
import type { LeaderElectionConfig } from './config.ts';

const LEASE = 15_000;
const RENEW = 10_000;
const RETRY = 2_000;

interface Candidate {
  name: string;
  elector: LeaderElector;
  client: FakeLeaseClient;
  events: string[];
  leaderships: Leadership[];
  /** Monotonic [start, end) of each leadership's guarded work as the work saw it (end: its signal aborted). */
  intervals: { start: number; end?: number }[];
  /** The elector's log lines (level ≥ info), parsed. */
  logs: { level: number; msg: string; [key: string]: unknown }[];
  /** Resolve to let the current guarded work finish after its signal aborted. */
  finishWork?: () => void;
  stop(): Promise<void>;
  done: Promise<unknown>;
}

function candidate(
  store: FakeLeaseStore,
  clock: Clock,
  name: string,
  options: { config?: Partial<LeaderElectionConfig>; holdWork?: boolean; work?: (l: Leadership) => Promise<void> } = {},
): Candidate {
  const client = store.client(name);
  const events: string[] = [];
  const leaderships: Leadership[] = [];
  const intervals: Candidate['intervals'] = [];
  const logs: Candidate['logs'] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Candidate['logs'][number]) },
  );
  const c = {} as Candidate;
  const elector = new LeaderElector(
    {
      kubeConfig: undefined as never,
      namespace: 'test',
      name: 'lease',
      identity: name,
      leaseDurationMs: LEASE,
      renewDeadlineMs: RENEW,
      retryPeriodMs: RETRY,
      clock,
      lock: client,
      logger,
      ...options.config,
    },
    {
      onStartedLeading: async (leadership) => {
        leaderships.push(leadership);
        events.push(`started ${leadership.term}`);
        const interval: Candidate['intervals'][number] = { start: clock.now() };
        intervals.push(interval);
        leadership.signal.addEventListener('abort', () => (interval.end = clock.now()), { once: true });
        if (options.work) return options.work(leadership);
        await new Promise<void>((resolve) =>
          leadership.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        if (options.holdWork) await new Promise<void>((resolve) => (c.finishWork = resolve));
      },
      onStoppedLeading: () => events.push('stopped'),
      onNewLeader: (identity) => events.push(`leader ${identity}`),
    },
  );
  const controller = new AbortController();
  const done = elector.run(controller.signal).then(
    () => events.push('run resolved'),
    (err: unknown) => {
      events.push(`run rejected ${(err as Error).name}`);
      return err;
    },
  );
  Object.assign(c, {
    name,
    elector,
    client,
    events,
    leaderships,
    intervals,
    logs,
    done,
    stop: async () => {
      controller.abort();
      await done;
    },
  });
  return c;
}

/** A holder outside the test that renews every `every` ms until stopped. */
function externalHolder(store: FakeLeaseStore, clock: ManualClock, identity: string, every = RETRY) {
  let stopped = false;
  const record = (): LeaseRecord => {
    const now = new Date(clock.wallNow()).toISOString().replace('Z', '000Z');
    return {
      holderIdentity: identity,
      leaseDurationSeconds: LEASE / 1000,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: store.current()?.record.leaseTransitions ?? 0,
    };
  };
  store.put(record(), identity);
  const tick = () => {
    if (stopped) return;
    store.put(record(), identity);
    clock.setTimeout(tick, every);
  };
  clock.setTimeout(tick, every);
  return { stop: () => void (stopped = true) };
}

/** A Lease lock whose resourceVersions are opaque strings ("rv-<n>"), as a storage other than etcd may hand out. */
function opaqueVersions(client: FakeLeaseClient): LeaseLock {
  const out = (lease: LeaseSnapshot): LeaseSnapshot => ({ ...lease, resourceVersion: `rv-${lease.resourceVersion}` });
  const back = (rv: string) => rv.replace(/^rv-/, '');
  const outEvent = (e: LeaseEvent): LeaseEvent =>
    e.type === 'upsert'
      ? { type: 'upsert', lease: out(e.lease) }
      : { ...e, resourceVersion: e.resourceVersion && `rv-${e.resourceVersion}` };
  return {
    describe: () => client.describe(),
    list: async () => {
      const { lease, resourceVersion } = await client.list();
      return { lease: lease && out(lease), resourceVersion: `rv-${resourceVersion}` };
    },
    get: async () => {
      const lease = await client.get();
      return lease && out(lease);
    },
    create: async (record) => out(await client.create(record)),
    update: async (record, base) =>
      out(await client.update(record, { ...base, resourceVersion: back(base.resourceVersion) })),
    watch: (rv, onEvent, onClose) => client.watch(back(rv), (e) => onEvent(outEvent(e)), onClose),
  };
}

let clock: ManualClock;
let store: FakeLeaseStore;
let candidates: Candidate[];

beforeEach(() => {
  clock = new ManualClock();
  store = new FakeLeaseStore();
  candidates = [];
});

afterEach(async () => {
  for (const c of candidates) {
    c.finishWork?.();
    const stopping = c.stop();
    await clock.advance(0);
    c.finishWork?.();
    await clock.advance(LEASE);
    await stopping;
  }
});

function add(name: string, options?: Parameters<typeof candidate>[3]): Candidate {
  const c = candidate(store, clock, name, options);
  candidates.push(c);
  return c;
}

describe('acquiring', () => {
  it('creates a missing Lease and leads with the resourceVersion of that write as its term', async () => {
    const a = add('a');
    await clock.advance(0);
    const lease = store.current()!;
    expect(lease.record).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(lease.record.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(lease.record.acquireTime).toBe(lease.record.renewTime);
    expect(a.events).toEqual(['leader a', `started ${lease.resourceVersion}`]);
    expect(a.leaderships[0]!.term).toBe(Number(lease.resourceVersion));
    expect(a.elector.isLeader()).toBe(true);
    expect(a.elector.currentLeader()).toBe('a');
  });

  it('elects exactly one of three candidates that start together', async () => {
    const all = ['a', 'b', 'c'].map((n) => add(n));
    await clock.advance(0);
    await clock.advance(60_000);
    const leaders = all.filter((c) => c.elector.isLeader());
    expect(leaders).toHaveLength(1);
    expect(store.writes.filter((w) => w.verb === 'create')).toHaveLength(1);
    for (const c of all) expect(c.elector.currentLeader()).toBe(leaders[0]!.name);
  });

  it('never steals a lease that is being renewed, however long it waits', async () => {
    const holder = externalHolder(store, clock, 'other');
    const a = add('a');
    await clock.advance(120_000);
    expect(store.writesBy('a')).toHaveLength(0);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.elector.currentLeader()).toBe('other');
    holder.stop();
  });

  it('takes over an abandoned lease exactly one lease duration after it last saw it change, counting the transition', async () => {
    const holder = externalHolder(store, clock, 'other');
    const a = add('a');
    await clock.advance(10_000);
    holder.stop();
    const lastRenew = store.current()!;
    await clock.advance(LEASE - 1);
    expect(store.writesBy('a')).toHaveLength(0);
    await clock.advance(1);
    const lease = store.current()!;
    expect(lease.record.holderIdentity).toBe('a');
    expect(lease.record.leaseTransitions).toBe(lastRenew.record.leaseTransitions + 1);
    expect(a.leaderships[0]!.term).toBe(Number(lease.resourceVersion));
  });

  it('waits a full lease duration from its own first observation, even when renewTime looks ancient (no wall-clock comparison)', async () => {
    const longAgo = '2001-01-01T00:00:00.000000Z';
    store.put({
      holderIdentity: 'gone',
      leaseDurationSeconds: 15,
      acquireTime: longAgo,
      renewTime: longAgo,
      leaseTransitions: 4,
    });
    const a = add('a');
    await clock.advance(LEASE - 1);
    expect(store.writesBy('a')).toHaveLength(0);
    await clock.advance(1);
    expect(store.current()!.record).toMatchObject({ holderIdentity: 'a', leaseTransitions: 5 });
    expect(a.elector.isLeader()).toBe(true);
  });

  it('uses the lease duration written in the Lease, not its own, to judge expiry', async () => {
    store.put({
      holderIdentity: 'other',
      leaseDurationSeconds: 40,
      renewTime: '2030-01-01T00:00:00.000000Z',
      leaseTransitions: 0,
    });
    add('a');
    await clock.advance(39_999);
    expect(store.writesBy('a')).toHaveLength(0);
    await clock.advance(1);
    expect(store.current()!.record.holderIdentity).toBe('a');
    expect(store.current()!.record.leaseDurationSeconds).toBe(15);
  });

  it.each([
    ['ahead', 3_600_000],
    ['behind', -3_600_000],
  ])('behaves identically with its wall clock an hour %s (skew is irrelevant)', async (_label, offset) => {
    const holder = externalHolder(store, clock, 'other');
    // Same monotonic clock, shifted wall clock.
    const shifted: Clock = {
      now: () => clock.now(),
      wallNow: () => clock.wallNow() + offset,
      setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
      clearTimeout: (handle) => clock.clearTimeout(handle),
    };
    const a = candidate(store, shifted, 'a');
    candidates.push(a);
    await clock.advance(60_000);
    expect(store.writesBy('a')).toHaveLength(0);
    holder.stop();
    await clock.advance(LEASE);
    expect(store.current()!.record.holderIdentity).toBe('a');
    const written = Date.parse(store.current()!.record.renewTime!);
    expect(Math.abs(written - (clock.wallNow() + offset))).toBeLessThan(1000);
  });

  it('takes over at once when the holder releases the Lease (watch, no polling)', async () => {
    const a = add('a');
    await clock.advance(0);
    const b = add('b');
    await clock.advance(30_000);
    const requestsBefore = store.requests.filter((r) => r.startsWith('b ')).length;
    await clock.advance(60_000);
    expect(store.requests.filter((r) => r.startsWith('b ')).length).toBe(requestsBefore);
    const termA = a.leaderships[0]!.term;
    const stopping = a.stop();
    await clock.advance(0);
    await stopping;
    expect(b.elector.isLeader()).toBe(true);
    expect(b.leaderships[0]!.term).toBeGreaterThan(termA);
    expect(store.current()!.record.leaseTransitions).toBe(1);
  });
});

describe('leading', () => {
  it('renews every retry period without changing acquireTime, transitions or term', async () => {
    const a = add('a');
    await clock.advance(0);
    const first = store.current()!;
    await clock.advance(20_000);
    const renewals = store.writesBy('a').filter((w) => w.verb === 'update');
    expect(renewals).toHaveLength(10);
    const now = store.current()!;
    expect(now.record.acquireTime).toBe(first.record.acquireTime);
    expect(now.record.renewTime).not.toBe(first.record.renewTime);
    expect(now.record.leaseTransitions).toBe(0);
    expect(a.leaderships).toHaveLength(1);
    expect(a.leaderships[0]!.signal.aborted).toBe(false);
    expect(() => a.leaderships[0]!.assertValid()).not.toThrow();
  });

  it('steps down when it cannot renew within the renew deadline, keeps health, and leads again (higher term) once the API server is back', async () => {
    const a = add('a');
    await clock.advance(0);
    const leadership = a.leaderships[0]!;
    a.client.setDown(true);
    const cutAt = clock.now();
    let abortedAt: number | undefined;
    leadership.signal.addEventListener('abort', () => (abortedAt = clock.now()));
    await clock.advance(RENEW + 1000);
    expect(abortedAt).toBeDefined();
    expect(abortedAt! - cutAt).toBeLessThanOrEqual(RENEW);
    expect(abortedAt! - cutAt).toBeGreaterThan(RENEW - RETRY - 1);
    expect((leadership.signal.reason as LeadershipLostError).reason).toBe('renew-deadline');
    expect(() => leadership.assertValid()).toThrow(LeadershipLostError);
    expect(a.events).toContain('stopped');
    expect(a.elector.isLeader()).toBe(false);
    expect(a.elector.healthy().ok).toBe(true);
    a.client.setDown(false);
    await clock.advance(10_000);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.leaderships[1]!.term).toBeGreaterThan(leadership.term);
  });

  it('hands over to a standby after the renew deadline, within the expiry bound', async () => {
    const a = add('a');
    await clock.advance(0);
    add('b');
    await clock.advance(5_000);
    a.client.setDown(true);
    const lastRenew = store.writesBy('a').at(-1)!;
    await clock.advance(LEASE + RETRY);
    expect(store.current()!.record.holderIdentity).toBe('b');
    const takeover = store.writes.find((w) => w.client === 'b')!;
    expect(BigInt(takeover.resourceVersion)).toBeGreaterThan(BigInt(lastRenew.resourceVersion));
    expect(a.leaderships[0]!.signal.aborted).toBe(true);
  });

  it('fences itself synchronously when time jumps past the lease (process was stopped), before any timer runs', async () => {
    const a = add('a');
    await clock.advance(0);
    const leadership = a.leaderships[0]!;
    const writes = store.writesBy('a').length;
    clock.jump(LEASE + 1);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.elector.healthy()).toEqual({ ok: false, reason: expect.stringContaining('has not renewed') });
    expect(() => leadership.assertValid()).toThrow(/may have expired/);
    expect(leadership.signal.aborted).toBe(true);
    await clock.advance(1);
    // It reads the Lease before anything else and, seeing its own unchanged
    // record (nobody took over), re-acquires with a compare-and-swap.
    expect(store.requests.filter((r) => r.startsWith('a ')).slice(-2)).toEqual(['a get', 'a update']);
    expect(store.writesBy('a')).toHaveLength(writes + 1);
    expect(a.leaderships[1]!.term).toBeGreaterThan(leadership.term);
  });

  it('a partitioned leader whose lease was taken meanwhile writes nothing more once reconnected, and reports the loss', async () => {
    const a = add('a');
    await clock.advance(0);
    const b = add('b');
    await clock.advance(3_000);
    const leadership = a.leaderships[0]!;
    a.client.setDown(true);
    const frozenWrites = store.writesBy('a').length;
    await clock.advance(LEASE + RETRY);
    expect(b.elector.isLeader()).toBe(true);
    a.client.setDown(false);
    await clock.advance(30_000);
    expect(store.writesBy('a')).toHaveLength(frozenWrites);
    expect(leadership.signal.aborted).toBe(true);
    expect(a.events).toContain('stopped');
    expect(a.elector.currentLeader()).toBe('b');
  });

  it('drops leadership when a timer fires far too late (event-loop stall), even within the lease', async () => {
    const a = add('a');
    await clock.advance(0);
    const leadership = a.leaderships[0]!;
    clock.jump(1900);
    await clock.advance(0);
    expect(leadership.signal.aborted).toBe(false);
    clock.jump(2500);
    await clock.advance(0);
    expect(leadership.signal.aborted).toBe(true);
    expect((leadership.signal.reason as LeadershipLostError).reason).toBe('stalled');
  });

  it('stops leading at once when the watch shows another holder', async () => {
    const a = add('a');
    await clock.advance(0);
    const current = store.current()!;
    store.put({ ...current.record, holderIdentity: 'intruder', leaseTransitions: current.record.leaseTransitions + 1 });
    await clock.advance(0);
    expect(a.leaderships[0]!.signal.aborted).toBe(true);
    expect((a.leaderships[0]!.signal.reason as LeadershipLostError).reason).toBe('taken');
    await clock.advance(LEASE - 1);
    expect(store.current()!.record.holderIdentity).toBe('intruder');
    expect(a.elector.currentLeader()).toBe('intruder');
  });

  it('re-creates a Lease deleted under it, keeps its term, and standbys do not jump in', async () => {
    const a = add('a');
    await clock.advance(0);
    add('b');
    await clock.advance(5_000);
    store.delete();
    await clock.advance(0);
    expect(store.current()!.record.holderIdentity).toBe('a');
    await clock.advance(60_000);
    expect(a.leaderships).toHaveLength(1);
    expect(a.leaderships[0]!.signal.aborted).toBe(false);
    expect(store.writesBy('b')).toHaveLength(0);
  });

  it('a standby waits out a deleted holder’s lease, then creates the Lease; terms still increase while transitions restart', async () => {
    store.put({
      holderIdentity: 'other',
      leaseDurationSeconds: 15,
      renewTime: '2030-01-01T00:00:00.000000Z',
      leaseTransitions: 7,
    });
    const otherTerm = Number(store.current()!.resourceVersion);
    const b = add('b');
    await clock.advance(5_000);
    store.delete();
    await clock.advance(LEASE - 5_000 - 1);
    expect(store.writesBy('b')).toHaveLength(0);
    await clock.advance(1);
    expect(store.current()!.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 0 });
    expect(b.leaderships[0]!.term).toBeGreaterThan(otherTerm);
  });

  it('steps down and releases when the guarded work fails, so a standby takes over, and backs off before campaigning again', async () => {
    const a = add('a', { work: async () => Promise.reject(new Error('boom')) });
    await clock.advance(0);
    const b = add('b');
    await clock.advance(0);
    expect((a.leaderships[0]!.signal.reason as LeadershipLostError).reason).toBe('work-failed');
    expect(b.elector.isLeader()).toBe(true);
    await clock.advance(60_000);
    expect(a.leaderships).toHaveLength(1);
  });
});

describe('shutting down', () => {
  it('aborts the leadership, waits for the guarded work, then releases the Lease (holder "", 1 s, transitions kept)', async () => {
    const a = add('a', { holdWork: true });
    await clock.advance(0);
    const before = store.current()!;
    const stopping = a.stop();
    await clock.advance(0);
    expect(a.leaderships[0]!.signal.aborted).toBe(true);
    expect(store.current()!.record.holderIdentity).toBe('a');
    expect(a.events).not.toContain('run resolved');
    await clock.advance(1_000);
    expect(store.current()!.record.holderIdentity).toBe('a');
    a.finishWork!();
    await clock.advance(0);
    await stopping;
    const after = store.current()!.record;
    expect(after).toMatchObject({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      leaseTransitions: before.record.leaseTransitions,
    });
    expect(a.events.slice(-2)).toEqual(['stopped', 'run resolved']);
    candidates = [];
  });

  it('does not release when releaseOnCancel is false', async () => {
    const a = add('a', { config: { releaseOnCancel: false } });
    await clock.advance(0);
    await Promise.all([a.stop(), clock.advance(0)]);
    expect(store.current()!.record.holderIdentity).toBe('a');
    candidates = [];
  });

  it('reports unhealthy when the guarded work does not stop within a lease duration', async () => {
    const a = add('a', { holdWork: true });
    await clock.advance(0);
    store.put({ ...store.current()!.record, holderIdentity: 'intruder' });
    await clock.advance(LEASE - 1);
    expect(a.elector.healthy().ok).toBe(true);
    await clock.advance(2);
    expect(a.elector.healthy()).toEqual({ ok: false, reason: expect.stringContaining('guarded work has not stopped') });
    // It must not campaign again while its old work still runs.
    await clock.advance(LEASE * 2);
    expect(a.leaderships).toHaveLength(1);
  });
});

describe('terms', () => {
  // Issue 21 item 4: run() used to reject with a TermError here, so the operator exited — on every
  // replica, again after each restart (a crash loop on a storage that is not etcd).
  it('does not lead when its acquiring write’s resourceVersion is not below 2^53: gives the Lease back, says so in one error naming the value, stays up, not ready, and writes nothing more', async () => {
    store = new FakeLeaseStore(2n ** 53n - 1n);
    const a = add('a');
    await clock.advance(0);
    expect(a.leaderships).toHaveLength(0);
    expect(store.current()!.record.holderIdentity).toBe('');
    const writes = store.writesBy('a').length;
    expect(store.writesBy('a').map((w) => w.resourceVersion)).toEqual(['9007199254740992', '9007199254740993']);
    await clock.advance(10 * LEASE);
    expect(store.writesBy('a')).toHaveLength(writes);
    expect(a.leaderships).toHaveLength(0);
    expect(a.events.filter((e) => e.startsWith('run'))).toEqual([]);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.elector.healthy().ok).toBe(true);
    // The reason names the newest resourceVersion seen (the giving back's); the error log the first.
    expect(a.elector.ready()).toEqual({
      ok: false,
      reason: expect.stringContaining('resourceVersion 9007199254740993 is not below 2^53'),
    });
    const errors = a.logs.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      resourceVersion: '9007199254740992',
      msg: expect.stringContaining('cannot be a fencing term'),
    });
    await Promise.all([a.stop(), clock.advance(0)]);
    expect(a.events.at(-1)).toBe('run resolved');
    candidates = [];
  });

  it('a storage that hands out opaque resourceVersions: no replica writes or leads, each says so once and is not ready, none exits', async () => {
    const all = ['a', 'b'].map((n) => {
      const c = candidate(store, clock, n, { config: { lock: opaqueVersions(store.client(n)) } });
      candidates.push(c);
      return c;
    });
    await clock.advance(0);
    await clock.advance(10 * LEASE);
    // The list's resourceVersion already tells: no write of ours could yield a term.
    expect(store.writes).toHaveLength(0);
    for (const c of all) {
      expect(c.leaderships).toHaveLength(0);
      expect(c.events.filter((e) => e.startsWith('run'))).toEqual([]);
      expect(c.elector.ready()).toEqual({
        ok: false,
        reason: expect.stringMatching(/resourceVersion "rv-\d+" is not a positive decimal integer/),
      });
      expect(c.logs.filter((l) => l.level === 50)).toHaveLength(1);
    }
  });

  it('a standby that sees the holder’s Lease pass 2^53 says so once, is not ready and never takes it; once the revisions are usable again (etcd restore) it leads with a term below 2^53', async () => {
    store = new FakeLeaseStore(2n ** 53n - 5n);
    const backup = store.backup(); // no Lease yet
    const holder = externalHolder(store, clock, 'other');
    const b = add('b');
    await clock.advance(0);
    expect(b.elector.ready().ok).toBe(true);
    await clock.advance(5 * RETRY);
    expect(b.elector.ready()).toEqual({ ok: false, reason: expect.stringContaining('not below 2^53') });
    holder.stop();
    await clock.advance(10 * LEASE);
    expect(store.writesBy('b')).toHaveLength(0);
    expect(b.logs.filter((l) => l.level === 50)).toHaveLength(1);
    store.restore(backup);
    await clock.advance(LEASE + 3 * RETRY);
    expect(b.leaderships).toHaveLength(1);
    expect(b.leaderships[0]!.term).toBeLessThan(2 ** 53);
    expect(b.leaderships[0]!.term).toBe(Number(store.writesBy('b')[0]!.resourceVersion));
    expect(b.elector.ready().ok).toBe(true);
    expect(b.logs.filter((l) => l.level === 50)).toHaveLength(1);
  });

  it('a leader whose renews pass 2^53 keeps its term and leads on, says so once and is not ready; once it lost the Lease it does not take it again', async () => {
    store = new FakeLeaseStore(2n ** 53n - 4n);
    const a = add('a');
    await clock.advance(0);
    const term = a.leaderships[0]!.term;
    expect(term).toBe(2 ** 53 - 3);
    await clock.advance(5 * RETRY);
    expect(BigInt(store.current()!.resourceVersion)).toBeGreaterThanOrEqual(2n ** 53n);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.leaderships).toHaveLength(1);
    expect(a.leaderships[0]!.latestRevision!()).toBe(term);
    expect(a.elector.ready().ok).toBe(false);
    a.client.setDown(true);
    await clock.advance(RENEW + RETRY);
    expect(a.elector.isLeader()).toBe(false);
    a.client.setDown(false);
    const writes = store.writesBy('a').length;
    await clock.advance(10 * LEASE);
    expect(store.writesBy('a')).toHaveLength(writes);
    expect(a.leaderships).toHaveLength(1);
    expect(a.logs.filter((l) => l.level === 50)).toHaveLength(1);
  });

  it('strictly increase across many failovers between replicas', async () => {
    const all = ['a', 'b', 'c'].map((n) => add(n));
    await clock.advance(0);
    const terms: number[] = [];
    for (let i = 0; i < 6; i++) {
      const leader = all.find((c) => c.elector.isLeader())!;
      terms.push(leader.leaderships.at(-1)!.term);
      leader.client.setDown(true);
      await clock.advance(LEASE + RETRY);
      leader.client.setDown(false);
      await clock.advance(RETRY);
    }
    for (let i = 1; i < terms.length; i++) expect(terms[i]!).toBeGreaterThan(terms[i - 1]!);
  });
});

describe('metrics', () => {
  it('exposes leader status and transitions', async () => {
    const registry = new Registry();
    const a = add('a', { config: { registry } });
    await clock.advance(0);
    const text = await registry.metrics();
    expect(text).toContain('leader_election_master_status{name="lease"} 1');
    expect(text).toMatch(/leader_election_transitions_total\{name="lease",direction="acquired",reason=""\} 1/);
    await Promise.all([a.stop(), clock.advance(0)]);
    expect(await registry.metrics()).toContain('leader_election_master_status{name="lease"} 0');
    candidates = [];
  });
});

/** No instant at which guarded work of two leaderships (of any candidates) ran at once. */
function expectNoOverlap(all: Candidate[]): void {
  const intervals = all.flatMap((c) =>
    c.intervals.map((i) => ({ who: c.name, start: i.start, end: i.end ?? Infinity })),
  );
  intervals.sort((x, y) => x.start - y.start);
  for (let i = 1; i < intervals.length; i++) {
    expect({ ...intervals[i]!, overlapsPrevious: intervals[i]!.start < intervals[i - 1]!.end }).toMatchObject({
      overlapsPrevious: false,
    });
  }
}

const conflictLines = (c: Candidate) => c.logs.filter((l) => l.level === 50 && /same --identity/.test(l.msg));

describe('two processes with one identity', () => {
  it('the second does not take over a live lease held under its identity: it never leads while the first renews, logs one error, and is not ready', async () => {
    const registry = new Registry();
    const a = add('a', { config: { identity: 'x' } });
    await clock.advance(0);
    const b = add('b', { config: { identity: 'x', registry } });
    await clock.advance(60_000);
    expect(b.leaderships).toHaveLength(0);
    expect(store.writesBy('b')).toHaveLength(0);
    expect(a.leaderships).toHaveLength(1);
    expect(a.leaderships[0]!.signal.aborted).toBe(false);
    expect(conflictLines(b)).toHaveLength(1);
    expect(conflictLines(b)[0]!.msg).toContain('"x"');
    expect(b.elector.ready()).toEqual({ ok: false, reason: expect.stringContaining('duplicate --identity') });
    expect(a.elector.ready().ok).toBe(true);
    expect(await registry.metrics()).toMatch(/leader_election_identity_conflicts_total\{name="lease"\} (\d+)/);
    const conflicts = Number(
      /leader_election_identity_conflicts_total\{name="lease"\} (\d+)/.exec(await registry.metrics())![1],
    );
    expect(conflicts).toBeGreaterThanOrEqual(25);

    // The first one dies: the second takes over once its lease ran out, and is ready again.
    a.client.setDown(true);
    await clock.advance(LEASE + RETRY);
    expect(b.leaderships).toHaveLength(1);
    expect(b.elector.ready().ok).toBe(true);
    expectNoOverlap([a, b]);
  });

  it('a leader that sees the Lease written under its identity by someone else steps down at once, and does not lead while that writer renews', async () => {
    const a = add('a', { config: { identity: 'x' } });
    await clock.advance(0);
    const first = a.leaderships[0]!;
    await clock.advance(500);
    const writes = store.writesBy('a').length;
    // Another process with identity x (an older version, which would take over at once).
    const other = externalHolder(store, clock, 'x');
    await clock.advance(0);
    expect(first.signal.aborted).toBe(true);
    expect((first.signal.reason as LeadershipLostError).reason).toBe('duplicate-identity');
    expect(a.elector.ready().ok).toBe(false);
    await clock.advance(60_000);
    expect(a.leaderships).toHaveLength(1);
    expect(store.writesBy('a')).toHaveLength(writes);
    expect(conflictLines(a)).toHaveLength(1);
    other.stop();
    await clock.advance(LEASE + RETRY);
    expect(a.leaderships).toHaveLength(2);
    expect(a.elector.ready().ok).toBe(true);
  });

  it('a process restarted under the same identity waits out its previous incarnation’s lease (it may still run), without reporting a conflict', async () => {
    const now = '2030-01-01T00:00:00.000000Z';
    store.put({ holderIdentity: 'x', leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 2 });
    const a = add('a', { config: { identity: 'x' } });
    await clock.advance(LEASE - 1);
    expect(store.writesBy('a')).toHaveLength(0);
    expect(a.elector.ready().ok).toBe(true);
    await clock.advance(1);
    expect(a.leaderships).toHaveLength(1);
    expect(store.current()!.record).toMatchObject({ holderIdentity: 'x', leaseTransitions: 2 });
    expect(conflictLines(a)).toHaveLength(0);
  });

  it('a change of only the Lease metadata (same record) is no conflict: the leader keeps leading and renews on top of it', async () => {
    const a = add('a', { config: { identity: 'x' } });
    await clock.advance(0);
    store.put(store.current()!.record, 'kubectl');
    await clock.advance(10_000);
    expect(a.leaderships[0]!.signal.aborted).toBe(false);
    expect(a.elector.ready().ok).toBe(true);
    expect(store.current()!.record.holderIdentity).toBe('x');
    expect(store.writes.at(-1)!.client).toBe('a');
  });

  // Issue 21 item 8: both send an acquisition with the same acquireTime (same millisecond); the loser
  // used to remember it as its own before its compare-and-swap failed, so it took the winner's live
  // record for its own: it took it over at once, and with an unchanged wall clock wrote that acquireTime
  // again, so neither ever saw a conflict and both led.
  it('two racing for a released Lease in the same millisecond: one leads; the loser never takes the winner’s record for its own', async () => {
    const registry = new Registry();
    const released = '2030-01-01T00:00:00.000000Z';
    store.put({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: released,
      renewTime: released,
      leaseTransitions: 3,
    });
    const a = add('a', { config: { identity: 'x', registry } });
    const b = add('b', { config: { identity: 'x', registry: new Registry() } });
    await clock.advance(0);
    // Both sent their acquisition from the same base at the same instant; one compare-and-swap won.
    expect(store.requests.filter((r) => r.endsWith(' update')).slice(0, 2)).toEqual(['a update', 'b update']);
    expect(store.writesBy('a')[0]!.record!.acquireTime).toMatch(/\.000(?!000)\d{3}Z$/); // a random nonce in the microseconds
    await clock.advance(60_000);
    expect(a.leaderships).toHaveLength(1);
    expect(a.leaderships[0]!.signal.aborted).toBe(false);
    expect(b.leaderships).toHaveLength(0);
    expect(store.writesBy('b')).toHaveLength(0);
    expect(store.current()!.record.acquireTime).toBe(store.writesBy('a')[0]!.record!.acquireTime);
    expect(conflictLines(b)).toHaveLength(1);
    expect(b.elector.ready()).toEqual({ ok: false, reason: expect.stringContaining('duplicate --identity') });
    expect(a.elector.ready().ok).toBe(true);
    expect(conflictLines(a)).toHaveLength(0);
    expectNoOverlap([a, b]);
  });

  it('the same, with both nonces equal (1 in 999): the loser still judges the winner’s record, seen before its own answer, as another process’s', async () => {
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      const released = '2030-01-01T00:00:00.000000Z';
      store.put({
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: released,
        renewTime: released,
        leaseTransitions: 3,
      });
      const a = add('a', { config: { identity: 'x' } });
      const b = add('b', { config: { identity: 'x' } });
      await clock.advance(0);
      const [first, second] = store.requests.filter((r) => r.endsWith(' update'));
      expect([first, second]).toEqual(['a update', 'b update']);
      expect(store.writesBy('a')[0]!.record!.acquireTime).toBe('2030-01-01T00:00:00.000500Z');
      // Judged as soon as its own compare-and-swap failed, not only at the winner's next renew.
      expect(conflictLines(b)).toHaveLength(1);
      expect(b.elector.ready().ok).toBe(false);
      await clock.advance(60_000);
      expect(a.leaderships).toHaveLength(1);
      expect(a.leaderships[0]!.signal.aborted).toBe(false);
      expect(b.leaderships).toHaveLength(0);
      expect(store.writesBy('b')).toHaveLength(0);
      expect(conflictLines(b)).toHaveLength(1);
      expect(conflictLines(a)).toHaveLength(0);
      expect(b.elector.ready().ok).toBe(false);
      expectNoOverlap([a, b]);
    } finally {
      random.mockRestore();
    }
  });

  it('an acquisition whose answer was lost (a timeout) but which landed is its own: no conflict, and it leads after its backoff', async () => {
    const a = add('a', {
      config: {
        identity: 'x',
        lock: ((client: FakeLeaseClient): LeaseLock => {
          let lost = 1;
          return Object.assign(Object.create(client) as FakeLeaseClient, {
            update: async (record: LeaseRecord, base: LeaseSnapshot) => {
              const written = await client.update(record, base);
              if (lost-- > 0) throw new Error('request timed out after 5000 ms');
              return written;
            },
          });
        })(store.client('a')),
      },
    });
    const released = '2030-01-01T00:00:00.000000Z';
    store.put({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: released,
      renewTime: released,
      leaseTransitions: 0,
    });
    await clock.advance(0);
    expect(a.leaderships).toHaveLength(0);
    expect(store.current()!.record.holderIdentity).toBe('x');
    await clock.advance(2 * RETRY);
    expect(a.leaderships).toHaveLength(1);
    expect(conflictLines(a)).toHaveLength(0);
    expect(a.elector.ready().ok).toBe(true);
  });
});

describe('after an etcd restore without --bump-revision (resourceVersions go back)', () => {
  it('a standby does not wait forever: it takes the Lease over once the old holder stopped renewing', async () => {
    const a = add('a');
    await clock.advance(0);
    const b = add('b');
    await clock.advance(3_000);
    const backup = store.backup();
    await clock.advance(20_000);
    // Disaster: the leader's node is gone, etcd is restored from the backup.
    a.client.setDown(true);
    store.restore(backup);
    const restoredAt = clock.now();
    await clock.advance(LEASE + 3 * RETRY);
    expect(b.leaderships).toHaveLength(1);
    expect(b.intervals[0]!.start - restoredAt).toBeGreaterThanOrEqual(LEASE);
    expect(b.leaderships[0]!.term).toBeGreaterThan(Number(backup.lease!.resourceVersion));
    expect(store.current()!.record.holderIdentity).toBe('b');
    expect(b.logs.some((l) => /went back/.test(l.msg))).toBe(true);
    expectNoOverlap([a, b]);
  });

  it('the leader steps down at its next renew; nobody leads for a lease duration; then one leads with a term above the restored one', async () => {
    const registry = new Registry();
    const a = add('a', { config: { registry } });
    await clock.advance(0);
    const b = add('b');
    await clock.advance(3_000);
    const backup = store.backup();
    await clock.advance(20_000);
    store.restore(backup);
    const restoredAt = clock.now();
    await clock.advance(RETRY + 100);
    expect((a.leaderships[0]!.signal.reason as LeadershipLostError).reason).toBe('reset');
    await clock.advance(LEASE + 2 * RETRY);
    const leaders = [a, b].filter((c) => c.elector.isLeader());
    expect(leaders).toHaveLength(1);
    const next = leaders[0]!.intervals.at(-1)!;
    expect(next.start - restoredAt).toBeGreaterThanOrEqual(LEASE);
    expect(leaders[0]!.leaderships.at(-1)!.term).toBeGreaterThan(Number(backup.lease!.resourceVersion));
    expect(await registry.metrics()).toContain('leader_election_resource_version_resets_total{name="lease"} 1');
    expectNoOverlap([a, b]);
    for (const c of [a, b]) expect(c.events.filter((e) => e.startsWith('run'))).toEqual([]);
  });

  it('a former leader leads again with a lower term than its previous one instead of exiting', async () => {
    const backup = store.backup(); // before the operator was installed: no Lease
    const a = add('a');
    await clock.advance(0);
    const before = a.leaderships[0]!.term;
    // An API-server outage makes it step down; meanwhile etcd is restored.
    a.client.setDown(true);
    await clock.advance(RENEW + RETRY);
    expect(a.leaderships[0]!.signal.aborted).toBe(true);
    store.restore(backup);
    a.client.setDown(false);
    await clock.advance(LEASE + 2 * RETRY);
    expect(a.events.filter((e) => e.startsWith('run'))).toEqual([]);
    expect(a.leaderships).toHaveLength(2);
    // Not greater than the previous term (the store restarts at the backup's revision): refused before.
    expect(a.leaderships[1]!.term).toBeLessThanOrEqual(before);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.logs.some((l) => l.level === 40 && /lower fencing term/.test(l.msg))).toBe(true);
  });
});

describe('the LeaderElection Event (client-go: "<identity> became leader" on the Lease)', () => {
  it('is recorded once per acquisition, with the acquiring write, next to a log line with the term', async () => {
    const a = add('a');
    const recorded: { resourceVersion: string; message: string }[] = [];
    (a.client as LeaseLock).recordEvent = (lease, identity, what) => {
      recorded.push({ resourceVersion: lease.resourceVersion, message: `${identity} ${what}` });
      return Promise.resolve();
    };
    await clock.advance(0);
    await clock.advance(5 * RETRY); // renews record nothing
    const term = a.leaderships[0]!.term;
    expect(recorded).toEqual([{ resourceVersion: String(term), message: 'a became leader' }]);
    expect(a.logs.find((l) => l.msg === 'Started leading')).toMatchObject({ term, identity: 'a', lease: 'test/lease' });
  });

  it('never blocks or fails leadership: a hanging or failing Event is logged once and leading goes on', async () => {
    const a = add('a');
    let calls = 0;
    (a.client as LeaseLock).recordEvent = () => {
      calls++;
      return calls === 1 ? Promise.reject(new Error('events is forbidden')) : new Promise<void>(() => {});
    };
    await clock.advance(0);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events).toEqual(['leader a', `started ${a.leaderships[0]!.term}`]);
    // Lose and regain leadership: the second Event hangs forever, leadership does not care.
    a.client.setDown(true);
    await clock.advance(RENEW + RETRY);
    a.client.setDown(false);
    await clock.advance(LEASE + 2 * RETRY);
    expect(a.leaderships).toHaveLength(2);
    expect(a.elector.isLeader()).toBe(true);
    expect(calls).toBe(2);
    const warnings = a.logs.filter((l) => /LeaderElection Event/.test(l.msg));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, err: 'events is forbidden' });
  });
});
