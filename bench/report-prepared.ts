// The sections of results/<name>.md for the prepared-run parts (issue 26):
// the common slot (common-slot.ts) and the takeover just before a slot
// (slot-takeover.ts), each with its targets and verdicts; and their chart
// panel (runs released against seconds after the slot).
import type { CommonSlotResult } from './common-slot.ts';
import { COMMON_RELEASE_TARGET_MS } from './common-slot.ts';
import type { SlotTakeoverResult } from './slot-takeover.ts';
import { fmtKinds, totalOf, type ReleaseSummary } from './lib/runs.ts';
import { fmtMs, fmtNum } from './lib/stats.ts';
import { targetTable, type Part } from './lib/verdict.ts';
import * as s from './lib/svg.ts';

const MB_PER_MIB = 1.048576;
/** Target: VmRSS per replica while the runs are prepared and waiting. */
const RSS_TARGET_MB = 150;

const who = (byWho: Record<string, number>) =>
  Object.entries(byWho)
    .sort((a, b) => b[1] - a[1])
    .map(([u, n]) => `${u} (${n})`)
    .join(', ') || 'nobody';

function onceRow(runs: ReleaseSummary, count: number) {
  const all = runs.releasedMs.length >= count;
  return {
    measure: 'every run released exactly once, none before its slot',
    ours: `${runs.releasedMs.length}/${count} released; ${runs.releasedMoreThanOnce.length} twice or more; ${runs.releasedBeforeSlot.length} early`,
    target: 'all once, none early',
    ok: all && runs.releasedMoreThanOnce.length === 0 && runs.releasedBeforeSlot.length === 0,
  };
}

function bugs(runs: ReleaseSummary): string[] {
  const out: string[] = [];
  if (runs.releasedMoreThanOnce.length)
    out.push(
      `- **Released more than once**: ${runs.releasedMoreThanOnce
        .slice(0, 10)
        .map((j) => `${j.job} (${j.patches} patches)`)
        .join(', ')}${runs.releasedMoreThanOnce.length > 10 ? ', …' : ''}.`,
    );
  if (runs.releasedBeforeSlot.length)
    out.push(`- **Released before the slot**: ${runs.releasedBeforeSlot.slice(0, 10).join(', ')}.`);
  if (runs.objectsWithSeveralPrepared.length)
    out.push(
      `- **Objects with more than one prepared Job at once**: ${runs.objectsWithSeveralPrepared.slice(0, 10).join(', ')}.`,
    );
  return out;
}

export function renderCommonSlot(part: Part<CommonSlotResult> | undefined): string[] {
  const title = (n: string) => [`## A common slot: ${n} SingletonJobs due at one instant`, ''];
  if (!part) return title('10,000').concat('Not measured: this results file predates the part.', '');
  if (!part.ok) return title('10,000').concat(`Not measured: ${part.error}`, '');
  const c = part.result;
  const out = title(c.count.toLocaleString('en-US'));
  const r = c.runs;
  out.push(
    `${c.count.toLocaleString('en-US')} SingletonJobs in one namespace, one slot (${c.slot}), \`jitterSeconds: 0\`, \`concurrencyPolicy: Forbid\`, \`prepareAheadSeconds: ${c.prepareAheadSeconds}\`; ${c.replicas} operator replicas (the image's node flags). ` +
      `Created in ${fmtMs(c.createMs)}, the last ${fmtMs(c.createdBeforeSlotMs)} before the slot. A run is released at its Job's first successful unsuspend patch by a replica (audit log, slot → commit). ` +
      'Prepared = created by the operator and neither released nor deleted (audit log: its Job creates, first releases and deletes per object, in commit order).',
    '',
  );
  const maxMB = Math.max(...c.rss.map((x) => x.rssMiB)) * MB_PER_MIB;
  out.push(
    ...targetTable([
      {
        measure: 'runs prepared before the slot (Jobs created suspended)',
        ours: `${r.createdBeforeSlot} of ${c.count}${Number.isFinite(c.prepareSpanMs) ? `, over ${fmtMs(c.prepareSpanMs)}, the last ${fmtMs(c.preparedBeforeSlotMs)} before the slot` : ''}; ${r.createdAfterSlot} created after it`,
        target: 'all',
        ok: r.createdBeforeSlot >= c.count,
      },
      {
        measure: 'released, first / median / p90',
        ours: `${fmtMs(r.released.best)} / ${fmtMs(r.released.median)} / ${fmtMs(r.released.p90)}`,
        target: '',
        ok: undefined,
      },
      {
        measure: 'last run released (all released)',
        ours: fmtMs(r.released.worst),
        target: `≤ ${fmtMs(COMMON_RELEASE_TARGET_MS)} after the slot`,
        ok: r.releasedMs.length >= c.count && r.released.worst <= COMMON_RELEASE_TARGET_MS,
      },
      {
        measure: "API server's committed writes over the release window (every identity)",
        ours: `${fmtNum(c.writes.perSecond, 0)}/s (${c.writes.total} in ${fmtMs(c.releaseWindowMs)})`,
        target: '– (context)',
        ok: undefined,
      },
      {
        measure: 'VmRSS per replica, prepared and idle before the slot (max)',
        ours: `${fmtNum(maxMB)} MB (${c.rss.map((x) => `${x.leader ? 'leader' : 'standby'} ${fmtNum(x.rssMiB)} MiB`).join(', ')})`,
        target: `≤ ${RSS_TARGET_MB} MB`,
        ok: c.rssSample.prepared >= c.count ? maxMB <= RSS_TARGET_MB : undefined,
      },
      {
        measure: 'prepared (suspended, never released) Jobs of one object at any time (max)',
        ours: String(r.maxPreparedPerObject),
        target: '≤ 1',
        ok: r.created > 0 ? r.maxPreparedPerObject <= 1 : undefined,
      },
      onceRow(r, c.count),
    ]),
    '',
  );
  const perRun = (k: Record<string, number>) => fmtNum(totalOf(k) / Math.max(1, r.releasedMs.length), 2);
  out.push(
    `- Memory sampled ${fmtMs(c.rssSample.beforeSlotMs)} before the slot, ${fmtMs(c.rssSample.quietMs)} after the operator's last write other than its Lease's, with ${c.rssSample.prepared} of ${c.count} runs prepared${c.rssSample.prepared < c.count ? " — so not the target's state (all prepared): no verdict" : ''}; peak over the replicas' lives (VmHWM) ${c.rss.map((x) => `${fmtNum(x.hwmMiB)} MiB`).join(' / ')}.`,
    `- Writes in the release window by identity: ${who(c.writes.byUser)}.`,
    `- The operator's requests (both replicas) per run: ${perRun(c.requestsAfterSlot)} after the slot (${fmtKinds(c.requestsAfterSlot)}); ${perRun(c.requestsInAll)} from the first object's create (${fmtKinds(c.requestsInAll)}).`,
    `- Jobs created by ${who(r.creators)}; released by ${who(r.releasers)}.`,
    ...bugs(r),
    ...c.notes.map((n) => `- Note: ${n}`),
    '',
  );
  return out;
}

export function renderSlotTakeover(part: Part<SlotTakeoverResult> | undefined): string[] {
  const out = ['## A takeover just before a slot (real node)', ''];
  if (!part) return out.concat('Not measured: this results file predates the part.', '');
  if (!part.ok) return out.concat(`Not measured: ${part.error}`, '');
  const t = part.result;
  const r = t.runs;
  out.push(
    `Its own control plane with a real node (containerd, kubelet); the operator ${t.image} as its chart installs it (3 Pods, 15 s lease, pod evidence on). ` +
      `${t.count} SingletonJobs due at ${t.slot} with \`prepareAheadSeconds: ${t.prepareAheadSeconds}\`; the leader's operator container (${t.killedPod}) SIGKILLed through containerd ${fmtMs(t.killBeforeSlotMs)} before the slot. ` +
      "Takeover = kill → the first committed Lease write by another Pod; a release = the Job's first successful unsuspend patch by the operator's ServiceAccount (the Pod from its token), slot → commit.",
    '',
  );
  const bySuccessor = t.successorPod ? (r.releasers[t.successorPod] ?? 0) : 0;
  out.push(
    ...targetTable([
      {
        measure: "kill → the successor's first Lease write",
        ours: `${fmtMs(t.takeoverMs)} (${t.successorPod ?? 'nobody'})`,
        target: `before the slot (< ${fmtMs(t.killBeforeSlotMs)})`,
        ok: Number.isFinite(t.takeoverMs) ? t.takeoverMs < t.killBeforeSlotMs : false,
      },
      {
        measure: 'runs prepared before the slot',
        ours: `${r.createdBeforeSlot} of ${t.count}; ${r.createdAfterSlot} created after it`,
        target: 'all',
        ok: r.createdBeforeSlot >= t.count,
      },
      {
        measure: 'released, first / median / last',
        ours: `${fmtMs(r.released.best)} / ${fmtMs(r.released.median)} / ${fmtMs(r.released.worst)}`,
        target: `last ≤ ${fmtMs(t.onTimeMs)} after the slot`,
        ok: r.releasedMs.length >= t.count && r.released.worst <= t.onTimeMs,
      },
      {
        measure: 'released by the successor',
        ours: `${bySuccessor} of ${r.releasedMs.length} (${who(r.releasers)})`,
        target: 'all',
        ok: t.successorPod !== undefined && bySuccessor >= t.count,
      },
      onceRow(r, t.count),
    ]),
    '',
    `- Jobs created by ${who(r.creators)}; the operator's requests from the slot until the last release: ${fmtNum(totalOf(t.requestsAfterSlot ?? {}) / Math.max(1, r.releasedMs.length), 2)} per run (${fmtKinds(t.requestsAfterSlot)}).`,
    ...bugs(r),
    ...t.notes.map((n) => `- Note: ${n}`),
    '',
  );
  return out;
}

/** Runs released against seconds after the slot: the common slot and the takeover, as fractions of their N. */
export function preparedPanel(
  p: s.Panel,
  common: CommonSlotResult | undefined,
  takeover: SlotTakeoverResult | undefined,
  error?: string,
): string {
  const out = [
    s.frame(
      p,
      'Runs released after a common slot',
      'share of runs released (audit log) vs seconds after the slot; targets: 10,000 within 15 s; 100 after a takeover 5 s before the slot within 2 s',
    ),
  ];
  const series = [
    ...(common
      ? [
          {
            label: `common slot, ${common.count.toLocaleString('en-US')}`,
            xs: common.runs.releasedMs,
            n: common.count,
            color: s.COLORS.ours,
            dash: undefined as string | undefined,
          },
        ]
      : []),
    ...(takeover
      ? [
          {
            label: `${takeover.count}, leader killed 5 s before`,
            xs: takeover.runs.releasedMs,
            n: takeover.count,
            color: s.COLORS.peer,
            dash: '7 5',
          },
        ]
      : []),
  ].filter((x) => x.xs.length > 0);
  if (series.length === 0) return out.concat(s.placeholder(p, error ?? 'not measured')).join('\n');
  const maxT = Math.max(COMMON_RELEASE_TARGET_MS, ...series.map((x) => x.xs.at(-1)!)) / 1000;
  const xsc = s.linearScale(0, maxT * 1.05, p.px, p.px + p.pw, (v) => `${v} s`, 6);
  const ysc = s.linearScale(0, 1, p.py + p.ph, p.py, (v) => `${Math.round(v * 100)} %`, 5);
  out.push(s.xAxis(p, xsc, 'seconds after the slot'), s.yAxis(p, ysc, 'runs released'));
  const tx = xsc(COMMON_RELEASE_TARGET_MS / 1000);
  out.push(s.line(tx, p.py, tx, p.py + p.ph, s.COLORS.target, { dash: '5 4', width: 1.5 }));
  out.push(s.text(tx - 4, p.py + 12, 'target 15 s', { size: 10.5, anchor: 'end', fill: s.COLORS.target }));
  for (const x of series) {
    const pts: Array<[number, number]> = [[xsc(0), ysc(0)]];
    x.xs.forEach((ms, k) => {
      pts.push([xsc(ms / 1000), ysc(k / x.n)], [xsc(ms / 1000), ysc((k + 1) / x.n)]);
    });
    out.push(s.polyline(pts, x.color, 2.5, x.dash));
  }
  if (takeover) {
    const ox = xsc(takeover.onTimeMs / 1000);
    out.push(s.line(ox, p.py, ox, p.py + p.ph, s.COLORS.muted, { dash: '5 4', width: 1.5 }));
    out.push(
      s.text(ox + 4, p.py + 12, `takeover: ≤ ${fmtMs(takeover.onTimeMs)}`, { size: 10.5, fill: s.COLORS.muted }),
    );
  }
  // Bottom right, where a curve that rises at once does not run.
  const width = series.reduce((a, x) => a + 30 + x.label.length * 6.6, 0);
  out.push(s.legend(p.px + p.pw - width - 10, p.py + p.ph - 12, series));
  return out.join('\n');
}
