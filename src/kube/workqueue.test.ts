import { WorkQueue } from './workqueue.ts';

describe('WorkQueue', () => {
  it('de-duplicates keys and never hands one key to two workers', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    const first = await q.get();
    expect(first).toBe('a');
    q.add('a'); // re-added while processing: held back until done
    expect(await q.get()).toBe('b');
    let third: string | undefined = 'none';
    const pending = q.get().then((k) => (third = k));
    await Promise.resolve();
    expect(third).toBe('none');
    q.done('a');
    await pending;
    expect(third).toBe('a');
    q.shutDown();
  });

  it('backs off exponentially per key and forgets on success', () => {
    let now = 0;
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000, now: () => now });
    expect([q.backoffMs('k'), q.backoffMs('k'), q.backoffMs('k'), q.backoffMs('k'), q.backoffMs('k')]).toEqual([
      100, 200, 400, 800, 1000,
    ]);
    expect(q.backoffMs('other')).toBe(100);
    q.forget('k');
    expect(q.backoffMs('k')).toBe(100);
    now = 1;
    q.shutDown();
  });

  it('applies the overall rate limit once the burst is spent', () => {
    const now = 0;
    const q = new WorkQueue({ baseDelayMs: 1, qps: 10, burst: 2, now: () => now });
    expect(q.backoffMs('a')).toBe(1);
    expect(q.backoffMs('b')).toBe(1);
    expect(q.backoffMs('c')).toBeCloseTo(100);
    expect(q.backoffMs('d')).toBeCloseTo(200);
    q.shutDown();
  });

  it('keeps the earliest delayed add, and releases waiters on shutdown', async () => {
    const q = new WorkQueue();
    q.addAfter('x', 10_000);
    q.addAfter('x', 20);
    const got = await q.get();
    expect(got).toBe('x');
    q.done('x');
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
  });
});
