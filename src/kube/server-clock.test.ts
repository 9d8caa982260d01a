import { ServerClock } from './server-clock.ts';
import { dueSlots, parseSchedule } from '../controller/rules/schedule.ts';

/** A fake world: server time, a local wall clock skewed by `skewMs`, and a monotonic clock. */
function world(skewMs: number) {
  let mono = 1_000; // ms since process start
  const serverAtMono0 = Date.parse('2026-11-26T06:00:00.000Z');
  const server = () => serverAtMono0 + mono;
  const clock = new ServerClock({ monotonic: () => mono, wall: () => server() + skewMs });
  return {
    clock,
    server,
    advance(ms: number) {
      mono += ms;
    },
    /** A response produced by the server now, received after `latencyMs`. */
    respond(latencyMs = 3) {
      const header = new Date(Math.floor(server() / 1000) * 1000).toUTCString();
      mono += latencyMs;
      clock.observe(header);
    },
  };
}

describe('ServerClock', () => {
  it('uses the local wall clock until a response has been seen', () => {
    const w = world(279_000);
    expect(w.clock.hasSample()).toBe(false);
    expect(w.clock.nowMs()).toBe(w.server() + 279_000);
  });

  it('follows the server, not a wall clock minutes fast, and is never ahead of it', () => {
    const w = world(279_000);
    for (let i = 0; i < 40; i++) {
      w.respond(2 + (i % 5));
      expect(w.clock.nowMs()).toBeLessThanOrEqual(w.server());
      w.advance(137); // samples land at different sub-second phases
    }
    expect(w.server() - w.clock.nowMs()).toBeLessThan(50);
    expect(Math.abs(w.clock.offsetFromWallMs() + 279_000)).toBeLessThan(50);
  });

  it('keeps its best estimate through a burst of responses within one second (a stampede, a takeover)', () => {
    const w = world(0);
    for (let i = 0; i < 40; i++) {
      w.respond(2);
      w.advance(137);
    }
    const settled = w.server() - w.clock.nowMs();
    expect(settled).toBeLessThan(50);
    // 500 responses in 500 ms, all late in one second: the latest 64 alone would say ~0.5 s less.
    w.advance(1000 - (w.server() % 1000) + 400);
    for (let i = 0; i < 500; i++) w.respond(1);
    expect(w.clock.nowMs()).toBeLessThanOrEqual(w.server());
    expect(w.server() - w.clock.nowMs()).toBeLessThan(50);
  });

  it('is unaffected by a wall-clock jump after the first sample (it runs on the monotonic clock)', () => {
    let wall = 0;
    let mono = 0;
    const clock = new ServerClock({ monotonic: () => mono, wall: () => wall });
    clock.observe(new Date(Date.parse('2026-11-26T06:00:00.000Z')).toUTCString());
    wall = Date.parse('2030-01-01T00:00:00Z');
    mono += 10_000;
    expect(clock.now().toISOString()).toBe('2026-11-26T06:00:10.000Z');
  });

  it('ignores a missing or malformed Date header', () => {
    const clock = new ServerClock({ monotonic: () => 0, wall: () => 42 });
    clock.observe(undefined);
    clock.observe('not a date');
    expect(clock.hasSample()).toBe(false);
    expect(clock.nowMs()).toBe(42);
  });

  it('a fast-clocked leader judges slots on server time: no future slot is due early', () => {
    const w = world(279_000);
    w.respond();
    w.advance(500);
    const schedule = parseSchedule('*/10 * * * * *');
    const since = new Date(w.server() - 1_000);
    // On the skewed wall clock, 27 slots would look due (and the real next one skipped).
    const onWall = dueSlots(schedule, since, new Date(w.server() + 279_000), undefined);
    expect(onWall.slot).toBeDefined();
    const onServer = dueSlots(schedule, since, w.clock.now(), undefined);
    expect(onServer.slot).toBeUndefined();
    expect(onServer.next.getTime()).toBeGreaterThan(w.server());
  });
});
