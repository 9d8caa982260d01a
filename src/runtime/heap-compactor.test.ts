import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompactionSchedule, defaultPolicy, type CompactorPolicy } from './heap-compactor.ts';

const MiB = 1024 * 1024;
const policy: CompactorPolicy = { ...defaultPolicy, minGapMs: 60_000, maxGapMs: 240_000 };
const quiet = 0.01;

describe('CompactionSchedule', () => {
  it('compacts once the heap has grown past the last live size by the ratio and the margin, and only when quiet', () => {
    const s = new CompactionSchedule(policy);
    // Before any compaction the baseline is 0: the first quiet tick with more than the margin compacts.
    expect(s.due({ committed: 7 * MiB, used: 7 * MiB }, quiet, 0)).toBe(false);
    expect(s.due({ committed: 30 * MiB, used: 25 * MiB }, 0.5, 0)).toBe(false);
    expect(s.due({ committed: 30 * MiB, used: 25 * MiB }, quiet, 0)).toBe(true);
    s.compacted({ committed: 30 * MiB, used: 25 * MiB }, { committed: 22 * MiB, used: 20 * MiB }, 0);
    // 20 MiB live → due above 20 × 1.25 + 8 = 33 MiB, and not within a minute.
    expect(s.due({ committed: 40 * MiB, used: 38 * MiB }, quiet, 59_999)).toBe(false);
    expect(s.due({ committed: 33 * MiB, used: 30 * MiB }, quiet, 60_000)).toBe(false);
    expect(s.due({ committed: 33.5 * MiB, used: 30 * MiB }, quiet, 60_000)).toBe(true);
    expect(s.due({ committed: 33.5 * MiB, used: 30 * MiB }, policy.quietUtilization + 0.01, 60_000)).toBe(false);
  });

  it('backs off while compactions return little, and resets once one returns a lot', () => {
    const s = new CompactionSchedule(policy);
    s.compacted({ committed: 40 * MiB, used: 30 * MiB }, { committed: 38 * MiB, used: 29 * MiB }, 0);
    expect(s.currentGapMs).toBe(120_000);
    s.compacted({ committed: 40 * MiB, used: 30 * MiB }, { committed: 38 * MiB, used: 29 * MiB }, 120_000);
    s.compacted({ committed: 40 * MiB, used: 30 * MiB }, { committed: 38 * MiB, used: 29 * MiB }, 360_000);
    expect(s.currentGapMs).toBe(240_000); // capped
    expect(s.due({ committed: 80 * MiB, used: 30 * MiB }, quiet, 360_000 + 239_999)).toBe(false);
    expect(s.due({ committed: 80 * MiB, used: 30 * MiB }, quiet, 360_000 + 240_000)).toBe(true);
    s.compacted({ committed: 80 * MiB, used: 30 * MiB }, { committed: 35 * MiB, used: 29 * MiB }, 600_000);
    expect(s.currentGapMs).toBe(60_000);
  });

  it('predicts the pause from the heap in use: the default rate first, then the slowest of the last measured ones', () => {
    const s = new CompactionSchedule(policy);
    // 60 MiB in use at the default 10 ms/MiB: 600 ms — over a leader's budget with a 1 s stall threshold (500 ms).
    expect(s.predictedPauseMs({ committed: 100 * MiB, used: 60 * MiB })).toBe(600);
    // The young generation (fresh garbage, mostly) does not count.
    expect(s.predictedPauseMs({ committed: 100 * MiB, used: 60 * MiB, young: 20 * MiB })).toBe(400);
    // Measured: 100 ms for 20 MiB live (5 ms/MiB), then 60 ms for 20 MiB (3 ms/MiB): the slower one counts.
    s.compacted({ committed: 100 * MiB, used: 60 * MiB }, { committed: 30 * MiB, used: 20 * MiB }, 0, 100);
    s.compacted({ committed: 100 * MiB, used: 60 * MiB }, { committed: 30 * MiB, used: 20 * MiB }, 60_000, 60);
    expect(s.predictedPauseMs({ committed: 100 * MiB, used: 60 * MiB })).toBe(300);
    // Only the last four are remembered.
    for (let i = 0; i < 4; i++)
      s.compacted({ committed: 100 * MiB, used: 60 * MiB }, { committed: 30 * MiB, used: 20 * MiB }, 120_000 + i, 40);
    expect(s.predictedPauseMs({ committed: 100 * MiB, used: 60 * MiB })).toBe(120);
    // A compaction recorded without a measurement changes nothing.
    s.compacted({ committed: 100 * MiB, used: 60 * MiB }, { committed: 30 * MiB, used: 20 * MiB }, 200_000);
    expect(s.predictedPauseMs({ committed: 100 * MiB, used: 60 * MiB })).toBe(120);
  });
});

// The real thing, in a node of its own (the test runner's heap is not ours to
// compact): a fragmented heap that regular collections leave committed, a busy
// second during which nothing may happen, then a quiet one.
const compactorModule = path.join(path.dirname(fileURLToPath(import.meta.url)), 'heap-compactor.ts');
const child = (budget: string) => `
import { HeapCompactor, heapSample } from ${JSON.stringify(compactorModule)};
const events = [];
const logger = { info: (m) => events.push({ at: Date.now(), info: m }), debug: (o, m) => events.push({ at: Date.now(), ...(o.pauseMs === undefined ? { held: o } : { compacted: o }) }) };
let gcs = 0;
const gc = globalThis.gc && ((o) => { gcs++; globalThis.gc(o); });
const budget = ${budget};
const c = new HeapCompactor({ logger, policy: { intervalMs: 100, minGapMs: 0 }, ...(gc ? { gc } : {}), ...(budget ? { pauseBudgetMs: budget } : {}) });
let all = []; for (let i = 0; i < 800000; i++) all.push({ i, s: 'x' + i, a: [i] });
const kept = all.filter((_, i) => i % 20 === 0); all = null;
if (c.enabled) { globalThis.gc({ type: 'major' }); globalThis.gc({ type: 'major' }); }
gcs = 0;
const fragmented = heapSample();
c.start();
const busyUntil = Date.now() + 1000;
const spin = () => { const t = Date.now() + 50; while (Date.now() < t); if (Date.now() < busyUntil) setImmediate(spin); else setTimeout(done, 1500); };
const done = () => { c.stop(); console.log(JSON.stringify({ enabled: c.enabled, fragmented, after: heapSample(), busyUntil, events, gcs, kept: kept.length })); };
spin();
`;

function runChild(flags: string[], budget = 'undefined') {
  const out = execFileSync(process.execPath, [...flags, '--input-type=module', '-e', child(budget)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out) as {
    enabled: boolean;
    fragmented: { committed: number; used: number };
    after: { committed: number; used: number };
    busyUntil: number;
    events: {
      at: number;
      info?: string;
      compacted?: { committedAfterMiB: number };
      held?: { predictedPauseMs: number; budgetMs: number };
    }[];
    gcs: number;
  };
}

describe('HeapCompactor', () => {
  it('returns a fragmented heap once the loop is quiet, not while it is busy', () => {
    const r = runChild(['--expose-gc']);
    expect(r.enabled).toBe(true);
    const compactions = r.events.filter((e) => e.compacted);
    expect(compactions.length).toBeGreaterThanOrEqual(1);
    // Nothing during the busy second (a tick may land just after its end).
    expect(compactions[0]!.at).toBeGreaterThanOrEqual(r.busyUntil);
    expect(r.fragmented.committed).toBeGreaterThan(40 * MiB);
    expect(r.after.committed).toBeLessThan(r.fragmented.committed / 2);
  });

  it('holds it while the pause would not fit the budget (a leader), and runs it once it does (a standby again)', () => {
    // Leading for the first two due ticks (a 1 ms budget: no compaction fits), then not.
    const r = runChild(['--expose-gc'], '(() => { let asked = 0; return () => (++asked <= 2 ? 1 : Infinity); })()');
    const held = r.events.filter((e) => e.held);
    const compactions = r.events.filter((e) => e.compacted);
    expect(held).toHaveLength(1); // logged once per episode
    expect(held[0]!.held!.budgetMs).toBe(1);
    expect(held[0]!.held!.predictedPauseMs).toBeGreaterThan(1);
    expect(compactions.length).toBeGreaterThanOrEqual(1);
    expect(r.gcs).toBe(compactions.length); // no collection ran while it was held
    expect(compactions[0]!.at).toBeGreaterThan(held[0]!.at);
    expect(r.after.committed).toBeLessThan(r.fragmented.committed / 2);
  });

  it('never runs it while the budget stays too small', () => {
    const r = runChild(['--expose-gc'], '() => 0');
    expect(r.events.filter((e) => e.compacted)).toEqual([]);
    expect(r.events.filter((e) => e.held)).toHaveLength(1);
    expect(r.gcs).toBe(0);
  });

  it('stays off, and says so, when node runs without --expose-gc', () => {
    const r = runChild([]);
    expect(r.enabled).toBe(false);
    expect(r.events).toEqual([
      { at: expect.any(Number), info: 'Heap compaction after bursts is off: node runs without --expose-gc' },
    ]);
  });
});
