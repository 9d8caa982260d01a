// On a clock that moves only when told to: no sleeping, and "never before it
// is due" is exact.
import { ManualClock } from '../../test/support/manual-clock.ts';
import { DelayedKeys } from './delays.ts';

function recorder() {
  const clock = new ManualClock();
  const fired: { key: string; at: number }[] = [];
  const now = () => clock.now();
  const delays = new DelayedKeys(now, (key) => fired.push({ key, at: now() }), clock);
  return { fired, delays, now, clock };
}

describe('DelayedKeys', () => {
  it('fires each key once, in due order, keeping the earliest of repeated adds', async () => {
    const { fired, delays, now, clock } = recorder();
    const t = now();
    delays.add('late', t + 60);
    delays.add('early', t + 10);
    delays.add('moved-up', t + 500);
    delays.add('moved-up', t + 30); // earlier: wins
    delays.add('early', t + 400); // later: ignored
    expect(delays.size).toBe(3);
    await clock.advance(59);
    expect(fired).toEqual([
      { key: 'early', at: t + 10 },
      { key: 'moved-up', at: t + 30 },
    ]);
    await clock.advance(1);
    expect(fired.map((f) => f.key)).toEqual(['early', 'moved-up', 'late']);
    expect(fired[2]!.at).toBe(t + 60);
    expect(delays.size).toBe(0);
    await clock.advance(1000); // the superseded entries at +400 and +500 do not fire
    expect(fired).toHaveLength(3);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('releases 2,000 keys with random delays exactly once each, never before they are due', async () => {
    const { fired, delays, now, clock } = recorder();
    const t = now();
    const due = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const at = t + Math.random() * 80;
      due.set(`k${i}`, Math.min(at, due.get(`k${i}`) ?? Infinity));
      delays.add(`k${i}`, at);
      if (i % 3 === 0) {
        const again = t + Math.random() * 80; // some keys re-added: the earlier time counts
        due.set(`k${i}`, Math.min(again, due.get(`k${i}`)!));
        delays.add(`k${i}`, again);
      }
    }
    await clock.advance(200);
    expect(fired).toHaveLength(2000);
    expect(new Set(fired.map((f) => f.key)).size).toBe(2000);
    for (const f of fired) expect(f.at).toBeGreaterThanOrEqual(due.get(f.key)!);
    const order = fired.map((f) => due.get(f.key)!);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('fires nothing after clear()', async () => {
    const { fired, delays, now, clock } = recorder();
    delays.add('a', now() + 5);
    delays.add('b', now() + 10);
    delays.clear();
    expect(clock.pendingTimers()).toBe(0);
    await clock.advance(40);
    expect(fired).toEqual([]);
    delays.add('c', now() + 5); // still usable
    await clock.advance(40);
    expect(fired.map((f) => f.key)).toEqual(['c']);
  });
});
