// The stampede's section of results/<name>.md (part b): the sides' figures,
// then the targets against the CronJob controller with its client rate limit
// raised (measured in the same run), each with its verdict.
import type { StampedeResult, StampedeSide } from './stampede.ts';
import { fmtKinds, totalOf } from './lib/runs.ts';
import { fmtMs, fmtNum, fmtRatio, ratio } from './lib/stats.ts';
import { check, targetTable, type Part } from './lib/verdict.ts';

/** The stampede targets (docs/benchmarks.md, "Prepared runs"). */
export const STAMPEDE_TARGETS = {
  /** Last and first run started, ours / the unthrottled CronJob controller. */
  lastRatio: 0.5,
  firstRatio: 0.5,
  /** Requests per run by the operator, slot → its last release. */
  criticalPerRun: 1.2,
  /** Requests per run by the operator, the objects' creation → its last release. */
  totalPerRun: 3.2,
};

const firstStart = (x: StampedeSide) => x.releasedMs?.[0] ?? x.firstMs;
const lastStart = (x: StampedeSide) => x.releasedMs?.at(-1) ?? x.lastMs;
const pct = (x: StampedeSide, p: number) => {
  const xs = x.releasedMs ?? x.offsetsMs;
  return xs.length ? xs[Math.min(xs.length, Math.max(1, Math.ceil((p / 100) * xs.length))) - 1]! : Number.NaN;
};

export function renderStampede(part: Part<StampedeResult>): string[] {
  const out: string[] = ['## The midnight stampede: SingletonJobs vs CronJobs due in the same minute', ''];
  if (!part.ok) return out.concat(`Not measured: ${part.error}`, '');
  const st = part.result;
  const sj = st.sides.find((x) => x.side === 'singletonjob');
  const crons = st.sides.filter((x) => x.side === 'cronjob');
  out.push(
    `${st.count} objects per side, each side in its own namespace and minute, one after the other. Times are the API server's commits (audit log) relative to the slot. ` +
      "A CronJob's run starts when its Job is created; ours when the operator releases its Job (the unsuspend patch: the first successful Job patch by an operator replica at or after the slot), " +
      `which it created suspended and recorded before — at the slot, or up to spec.prepareAheadSeconds (${sj?.prepareAheadSeconds ?? '–'} s here) ahead of it (a prepared run). ` +
      'Requests are per run started, by the side\'s identity (the CronJob controller\'s; all three replicas of ours): "after the slot" from the slot until its last run started (the critical path), "in all" from the first object\'s create until then.',
    '',
  );
  const cols = [...(sj ? [sj] : []), ...crons];
  out.push(
    `| metric | ${cols.map((c) => c.label).join(' | ')} | ${crons.map((c) => `ours / ${c.label}`).join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|${crons.map(() => '---:').join('|')}|`,
  );
  const row = (name: string, f: (x: StampedeSide) => number, fmt: (x: number) => string, ratios = true) =>
    out.push(
      `| ${name} | ${cols.map((c) => fmt(f(c))).join(' | ')} | ${crons.map((c) => (sj && ratios ? fmtRatio(ratio(f(sj), f(c))) : '–')).join(' | ')} |`,
    );
  const n = (x: number) => (Number.isFinite(x) ? String(x) : '–');
  row('Jobs created', (x) => x.jobsCreated, n, false);
  row('… before the slot (prepared)', (x) => x.createdBeforeSlot ?? Number.NaN, n, false);
  row('… at or after the slot', (x) => x.createdAfterSlot ?? Number.NaN, n, false);
  row('first Job created', (x) => x.firstMs, fmtMs, false);
  row('last Job created', (x) => x.lastMs, fmtMs, false);
  row('first run started (released)', firstStart, fmtMs);
  row('median run started', (x) => pct(x, 50), fmtMs);
  row('p90 run started', (x) => pct(x, 90), fmtMs);
  row('last run started (all runs started)', lastStart, fmtMs);
  row(
    'requests per run after the slot (critical path)',
    (x) => x.requestsPerRunToRelease ?? Number.NaN,
    (x) => fmtNum(x, 2),
  );
  row(
    "requests per run in all (from the objects' creation)",
    (x) => x.totalPerRun ?? Number.NaN,
    (x) => fmtNum(x, 2),
  );
  row(
    'Jobs created per second',
    (x) => x.jobsPerSecond,
    (x) => fmtNum(x),
    false,
  );
  out.push('');

  const asShipped = crons.find((c) => c.namespace === 'bench-stampede-cron');
  const fast = crons.find((c) => c.namespace !== 'bench-stampede-cron');
  if (sj && fast) {
    const T = STAMPEDE_TARGETS;
    const all = sj.jobsCreated > 0 && (sj.releasedMs?.length ?? 0) >= sj.count;
    const runs = sj.runs;
    const once = runs
      ? runs.releasedMoreThanOnce.length === 0 && runs.releasedBeforeSlot.length === 0 && all
      : undefined;
    out.push(`Targets (ours against ${fast.label}, the same run):`, '');
    out.push(
      ...targetTable(
        [
          {
            measure: 'last run started (released)',
            ours: fmtMs(lastStart(sj)),
            peer: fmtMs(lastStart(fast)),
            ratio: fmtRatio(ratio(lastStart(sj), lastStart(fast))),
            target: `≤ ${T.lastRatio}×`,
            ok: all && lastStart(sj) <= T.lastRatio * lastStart(fast),
          },
          {
            measure: 'first run started (released)',
            ours: fmtMs(firstStart(sj)),
            peer: fmtMs(firstStart(fast)),
            ratio: fmtRatio(ratio(firstStart(sj), firstStart(fast))),
            target: `≤ ${T.firstRatio}×`,
            ok: firstStart(sj) <= T.firstRatio * firstStart(fast),
          },
          {
            measure: 'requests per run after the slot, until the last release (critical path)',
            ours: fmtNum(sj.requestsPerRunToRelease ?? Number.NaN, 2),
            peer: fmtNum(fast.requestsPerRunToRelease ?? Number.NaN, 2),
            ratio: fmtRatio(
              ratio(sj.requestsPerRunToRelease ?? Number.NaN, fast.requestsPerRunToRelease ?? Number.NaN),
            ),
            target: `≤ ${T.criticalPerRun}`,
            ok: all && (sj.requestsPerRunToRelease ?? Infinity) <= T.criticalPerRun,
          },
          {
            measure:
              "requests per run, from the prepare window's opening until the last release (the run's own: create, record, release, Events)",
            ours: fmtNum(sj.runPerRun ?? Number.NaN, 2),
            peer: fmtNum(fast.runPerRun ?? Number.NaN, 2),
            ratio: fmtRatio(ratio(sj.runPerRun ?? Number.NaN, fast.runPerRun ?? Number.NaN)),
            target: `≤ ${T.totalPerRun}`,
            ok: all && (sj.runPerRun ?? Infinity) <= T.totalPerRun,
          },
          {
            measure:
              "requests per run in all, from the objects' creation (a new object's first status write and template dry run once each) until the last release",
            ours: fmtNum(sj.totalPerRun ?? Number.NaN, 2),
            peer: fmtNum(fast.totalPerRun ?? Number.NaN, 2),
            ratio: fmtRatio(ratio(sj.totalPerRun ?? Number.NaN, fast.totalPerRun ?? Number.NaN)),
            target: 'reported',
            ok: true,
          },
          {
            measure: 'every run released exactly once, none before its slot',
            ours: runs
              ? `${sj.releasedMs?.length ?? 0} released; ${runs.releasedMoreThanOnce.length} twice or more; ${runs.releasedBeforeSlot.length} early`
              : '–',
            target: 'all once, none early',
            ok: once,
          },
        ],
        fast.label,
      ),
      '',
    );
  }
  if (sj && asShipped)
    out.push(
      `Target "all runs started no slower than the CronJob controller as shipped" (${asShipped.label}): ${check(sj.jobsCreated === sj.count && lastStart(sj) <= lastStart(asShipped))} (${fmtMs(lastStart(sj))} vs ${fmtMs(lastStart(asShipped))}).`,
      '',
    );
  if (!sj)
    out.push("**The SingletonJob side was not measured** (see the note below); only the peer's figures are real.", '');
  for (const x of st.sides) {
    const creators =
      Object.entries(x.creators)
        .map(([u, k]) => `${u} (${k})`)
        .join(', ') || 'nobody';
    out.push(
      `- ${x.label}: rate limit ${x.rateLimit}; Jobs created by ${creators}; after the slot ${totalOf(x.requestsByKind)} requests (${fmtKinds(x.requestsByKind)}); from the prepare window's opening ${totalOf(x.runByKind)} (${fmtKinds(x.runByKind)}); in all ${totalOf(x.totalByKind)} (${fmtKinds(x.totalByKind)})${x.error ? `; **${x.error}**` : ''}.`,
    );
    if (x.runs) {
      const r = x.runs;
      const releasers = Object.entries(r.releasers)
        .map(([u, k]) => `${u} (${k})`)
        .join(', ');
      out.push(
        `- ${x.label}: released by ${releasers || 'nobody'}; the most prepared (created, never released) Jobs of one object at once: ${r.maxPreparedPerObject}` +
          (r.releasedMoreThanOnce.length
            ? `; **released more than once: ${r.releasedMoreThanOnce
                .slice(0, 5)
                .map((j) => `${j.job} (${j.patches})`)
                .join(', ')}${r.releasedMoreThanOnce.length > 5 ? ', …' : ''}**`
            : '') +
          (r.releasedBeforeSlot.length
            ? `; **released before the slot: ${r.releasedBeforeSlot.slice(0, 5).join(', ')}**`
            : '') +
          '.',
      );
    }
    if (x.prepareAheadServed === false)
      out.push(
        `- ${x.label}: the CRD served in this run has no \`spec.prepareAheadSeconds\` (the API server pruned it from the objects): this build does not prepare runs, every Job is created at the slot.`,
      );
  }
  for (const note of st.notes) out.push(`- Note: ${note}`);
  out.push('');
  return out;
}
