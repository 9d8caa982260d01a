import pino from 'pino';
import { ManualClock } from '../../test/support/manual-clock.ts';
import { FakeLeaseStore } from '../../test/support/fake-lease.ts';
import { LeaseObserver } from './observer.ts';

const record = (holder: string, renew: string) => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  renewTime: renew,
  leaseTransitions: 0,
});

function observe(store: FakeLeaseStore, clock: ManualClock) {
  const client = store.client('observer');
  const observer = new LeaseObserver({ lock: client, clock, logger: pino({ level: 'silent' }), maxBackoffMs: 2000 });
  observer.start();
  return { observer, client };
}

describe('LeaseObserver', () => {
  it('lists once, then follows the watch; observedAt moves only when the record changes', async () => {
    const clock = new ManualClock();
    const store = new FakeLeaseStore();
    store.put(record('a', 't1'));
    const { observer } = observe(store, clock);
    await clock.advance(0);
    const first = observer.observation()!;
    expect(first.lease?.record.holderIdentity).toBe('a');
    await clock.advance(1000);
    store.put(record('a', 't1'));
    await clock.advance(0);
    expect(observer.observation()!.observedAt).toBe(first.observedAt);
    store.put(record('a', 't2'));
    await clock.advance(0);
    expect(observer.observation()!.observedAt).toBe(first.observedAt + 1000);
    expect(store.requests).toEqual(['observer list', 'observer watch']);
    observer.stop();
  });

  it('ignores responses older than what it has already seen', async () => {
    const clock = new ManualClock();
    const store = new FakeLeaseStore();
    const old = store.put(record('a', 't1'));
    const { observer } = observe(store, clock);
    store.put(record('b', 't2'));
    await clock.advance(0);
    observer.record(old);
    expect(observer.observation()!.lease?.record.holderIdentity).toBe('b');
    observer.stop();
  });

  it('remembers until when a deleted holder may still act', async () => {
    const clock = new ManualClock();
    const store = new FakeLeaseStore();
    store.put(record('a', 't1'));
    const { observer } = observe(store, clock);
    await clock.advance(0);
    const seenAt = observer.observation()!.observedAt;
    await clock.advance(4000);
    store.delete();
    await clock.advance(0);
    expect(observer.observation()).toMatchObject({
      lease: undefined,
      deletedHolder: { identity: 'a', liveUntil: seenAt + 15_000 },
    });
    observer.stop();
  });

  it('restarts a broken watch with backoff and lists again', async () => {
    const clock = new ManualClock();
    const store = new FakeLeaseStore();
    store.put(record('a', 't1'));
    const { observer, client } = observe(store, clock);
    await clock.advance(0);
    client.setDown(true);
    store.put(record('b', 't2'));
    await clock.advance(5_000);
    expect(observer.observation()!.lease?.record.holderIdentity).toBe('a');
    client.setDown(false);
    await clock.advance(3_000);
    expect(observer.observation()!.lease?.record.holderIdentity).toBe('b');
    const lists = store.requests.filter((r) => r === 'observer list').length;
    expect(lists).toBeGreaterThanOrEqual(2);
    expect(lists).toBeLessThanOrEqual(8);
    observer.stop();
  });

  it('after an etcd restore (revision back), a fresh list is taken as a reset, not ignored', async () => {
    const clock = new ManualClock();
    const store = new FakeLeaseStore();
    store.put(record('a', 't1'));
    const backup = store.backup();
    const { observer } = observe(store, clock);
    await clock.advance(0);
    for (const t of ['t2', 't3', 't4']) store.put(record('a', t));
    await clock.advance(0);
    expect(observer.observation()!.lease?.record.renewTime).toBe('t4');
    store.restore(backup);
    await clock.advance(1_000);
    store.put(record('b', 't5'));
    await clock.advance(3_000);
    expect(observer.observation()!.lease).toMatchObject({ record: { holderIdentity: 'b', renewTime: 't5' } });
    observer.stop();
  });

  it('flags the reset and restarts the expiry clock from when it saw it', async () => {
    const clock = new ManualClock();
    const store = new FakeLeaseStore();
    store.put(record('a', 't1'));
    const backup = store.backup();
    const { observer } = observe(store, clock);
    await clock.advance(0);
    store.put(record('a', 't2'));
    await clock.advance(0);
    const seen: Array<{ reset?: unknown; observedAt: number }> = [];
    observer.subscribe((o) => seen.push(o));
    await clock.advance(5_000);
    store.restore(backup);
    await clock.advance(3_000);
    const reset = seen.find((o) => o.reset);
    expect(reset).toMatchObject({
      reset: { from: expect.any(String), to: backup.lease!.resourceVersion },
      lease: { record: { renewTime: 't1' } },
    });
    expect(reset!.observedAt).toBeGreaterThan(5_000);
    observer.stop();
  });

  it('a read overtaken by a newer watch event is stale, not a reset', async () => {
    const clock = new ManualClock();
    const store = new FakeLeaseStore();
    store.put(record('a', 't1'));
    const client = store.client('observer');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const lock = Object.assign(Object.create(client) as typeof client, {
      get: async () => {
        const snapshot = store.current();
        await gate;
        return snapshot;
      },
    });
    const observer = new LeaseObserver({ lock, clock, logger: pino({ level: 'silent' }), maxBackoffMs: 2000 });
    const seen: Array<{ reset?: unknown }> = [];
    observer.subscribe((o) => seen.push(o));
    observer.start();
    await clock.advance(0);
    const reading = observer.refresh();
    store.put(record('b', 't2'));
    await clock.advance(0);
    release();
    const after = await reading;
    expect(after.lease?.record.holderIdentity).toBe('b');
    expect(seen.filter((o) => o.reset)).toEqual([]);
    observer.stop();
  });
});
