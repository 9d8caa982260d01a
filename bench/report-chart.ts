// The chart of results/<name>.{svg,png}: failover latency distributions, idle
// API cost, the stampede, memory and takeover time against object count, and
// the prepared-run parts' releases (report-prepared.ts) — one SVG, rendered to
// PNG by report.ts with rsvg-convert.
import type { BenchResults, Part } from './report.ts';
import type { FailoverResult } from './failover.ts';
import type { StampedeResult, StampedeSide } from './stampede.ts';
import type { ScaleResult } from './scale.ts';
import { preparedPanel } from './report-prepared.ts';
import { fmtMs, fmtNum } from './lib/stats.ts';
import * as s from './lib/svg.ts';

const W = 1400;
const tickMs = (v: number) => (v >= 1000 ? `${v / 1000} s` : `${v} ms`);
const PH = 330;

function failoverPanel(p: s.Panel, f: FailoverResult | undefined, mode: 'graceful' | 'crash', error?: string): string {
  const title =
    mode === 'graceful'
      ? 'Graceful failover (SIGTERM → successor writes the Lease)'
      : 'Crash failover (SIGKILL → successor writes the Lease)';
  const sub =
    mode === 'graceful'
      ? 'each dot one round; bar = median; lower is better; log scale'
      : 'each dot one round; bar = median; lease duration 15 s';
  const out = [s.frame(p, title, sub)];
  if (!f) return out.concat(s.placeholder(p, error ?? 'not measured')).join('\n');
  const samples = f.samples.filter((x) => x.mode === mode);
  const xs = samples.map((x) => x.takeoverMs);
  if (xs.length === 0) return out.concat(s.placeholder(p, 'no rounds')).join('\n');
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  const scale =
    mode === 'graceful'
      ? s.logScale(
          Math.max(1, 10 ** Math.floor(Math.log10(Math.max(1, Math.min(min, 100))))),
          10 ** Math.ceil(Math.log10(Math.max(max, 1000) * 1.05)),
          p.px,
          p.px + p.pw,
          tickMs,
        )
      : s.linearScale(
          Math.min(10_000, Math.floor(min / 1000) * 1000),
          Math.max(f.leaseDurationMs + 5000, Math.ceil(max / 1000) * 1000 + 1000),
          p.px,
          p.px + p.pw,
          (v) => `${v / 1000} s`,
          8,
        );
  out.push(s.xAxis(p, scale, 'takeover time'));
  const kinds = f.kinds;
  const rowH = p.ph / kinds.length;
  // Targets
  const targets =
    mode === 'graceful'
      ? [
          { v: 250, label: 'target p50 < 250 ms' },
          { v: 1000, label: 'p99 < 1 s' },
        ]
      : [
          { v: f.leaseDurationMs, label: 'lease 15 s' },
          { v: f.leaseDurationMs + 500, label: 'target ≤ 15.5 s' },
        ];
  targets.forEach((t, i) => {
    const x = scale(t.v);
    out.push(
      s.line(x, p.py, x, p.py + p.ph, i === 1 || mode === 'graceful' ? s.COLORS.target : s.COLORS.muted, {
        dash: '5 4',
        width: 1.5,
      }),
    );
    out.push(
      s.text(x + (mode === 'crash' && i === 0 ? -4 : 4), p.py + p.ph - 6 - i * 13, t.label, {
        size: 10.5,
        fill: i === 1 || mode === 'graceful' ? s.COLORS.target : s.COLORS.muted,
        anchor: mode === 'crash' && i === 0 ? 'end' : 'start',
      }),
    );
  });
  kinds.forEach((k, i) => {
    const cy = p.py + rowH * (i + 0.5);
    const color = k.kind === 'ours' ? s.COLORS.ours : s.COLORS.peer;
    const mine = samples.filter((x) => x.kind === k.kind);
    mine.forEach((x, j) =>
      out.push(s.circle(scale(x.takeoverMs), cy + (((j * 7919) % 13) - 6) * (rowH / 40), 5, color, 0.6)),
    );
    const sum = mode === 'graceful' ? k.graceful : k.crash;
    if (sum.n > 0) {
      const mx = scale(sum.median);
      out.push(s.line(mx, cy - rowH * 0.3, mx, cy + rowH * 0.3, color, { width: 3.5 }));
      out.push(
        s.text(mx, cy - rowH * 0.32 - 3, `median ${fmtMs(sum.median)}`, {
          size: 11,
          anchor: 'middle',
          weight: 'bold',
          fill: color,
        }),
      );
    }
    out.push(s.text(p.x + 14, cy + 4, k.label, { size: 12.5, weight: 'bold', fill: color }));
  });
  return out.join('\n');
}

function idlePanel(p: s.Panel, f: FailoverResult | undefined, error?: string): string {
  const out = [
    s.frame(
      p,
      'Idle API requests per minute, per replica',
      'from the audit log by identity; standbys of ours only watch',
    ),
  ];
  if (!f) return out.concat(s.placeholder(p, error ?? 'not measured')).join('\n');
  const vals = f.kinds.flatMap((k) => [k.idle.leader.perMinute, k.idle.standbyPerMinute]);
  const y = s.linearScale(0, Math.max(35, ...vals) * 1.1, p.py + p.ph, p.py, (v) => String(Math.round(v)), 5);
  out.push(s.yAxis(p, y, 'requests / min'));
  out.push(s.line(p.px, p.py + p.ph, p.px + p.pw, p.py + p.ph, s.COLORS.axis));
  const groups = ['leader', 'standby'] as const;
  const gw = p.pw / groups.length;
  groups.forEach((g, gi) => {
    const bw = Math.min(80, gw / (f.kinds.length + 1));
    f.kinds.forEach((k, ki) => {
      const v = g === 'leader' ? k.idle.leader.perMinute : k.idle.standbyPerMinute;
      const x = p.px + gi * gw + gw / 2 + (ki - f.kinds.length / 2) * (bw + 8) + 4;
      const color = k.kind === 'ours' ? s.COLORS.ours : s.COLORS.peer;
      out.push(s.rect(x, y(v), bw, p.py + p.ph - y(v), color, { opacity: 0.85 }));
      out.push(s.text(x + bw / 2, y(v) - 5, fmtNum(v), { size: 11.5, anchor: 'middle', weight: 'bold', fill: color }));
      out.push(s.text(x + bw / 2, p.py + p.ph + 15, k.label, { size: 10.5, anchor: 'middle', fill: s.COLORS.muted }));
    });
    out.push(
      s.text(p.px + gi * gw + gw / 2, p.py + p.ph + 34, g === 'leader' ? 'leader' : 'standby (mean)', {
        size: 12,
        anchor: 'middle',
        weight: 'bold',
      }),
    );
  });
  return out.join('\n');
}

function stampedePanel(p: s.Panel, st: StampedeResult | undefined, error?: string): string {
  const out = [
    s.frame(
      p,
      `Midnight stampede: Jobs started after the slot`,
      "cumulative runs started (audit log) vs seconds after the minute: a CronJob's Job created, ours released",
    ),
  ];
  if (!st) return out.concat(s.placeholder(p, error ?? 'not measured')).join('\n');
  const starts = (x: StampedeSide) => x.releasedMs ?? x.offsetsMs;
  const sides = st.sides.filter((x) => starts(x).length > 0);
  if (sides.length === 0) return out.concat(s.placeholder(p, 'no run started')).join('\n');
  const maxT = Math.max(...sides.map((x) => starts(x).at(-1)!)) / 1000;
  const xsc = s.linearScale(0, Math.max(1, maxT * 1.05), p.px, p.px + p.pw, (v) => `${v} s`, 6);
  const ysc = s.linearScale(0, st.count, p.py + p.ph, p.py, (v) => String(v), 5);
  out.push(s.xAxis(p, xsc, 'seconds after the slot'), s.yAxis(p, ysc, 'runs started'));
  const style = (x: StampedeSide) => {
    if (x.side === 'singletonjob') return { color: s.COLORS.ours, dash: undefined };
    const first = sides.find((y) => y.side === 'cronjob') === x;
    return { color: s.COLORS.peer, dash: first ? undefined : '7 5' };
  };
  sides.forEach((side, i) => {
    const { color, dash } = style(side);
    const pts: Array<[number, number]> = [[xsc(0), ysc(0)]];
    starts(side).forEach((ms, k) => {
      pts.push([xsc(Math.max(0, ms) / 1000), ysc(k)]);
      pts.push([xsc(Math.max(0, ms) / 1000), ysc(k + 1)]);
    });
    out.push(s.polyline(pts, color, 2.5, dash));
    const n = starts(side).length;
    const lastMs = starts(side).at(-1)!;
    const lx = xsc(lastMs / 1000);
    out.push(s.circle(lx, ysc(n), 4, color, 1));
    const label = `all ${n} after ${fmtMs(lastMs)}`;
    const fitsLeft = lx - 6 - label.length * 6.6 > p.px;
    out.push(
      s.text(fitsLeft ? lx - 6 : lx + 8, ysc(n) + 16 + i * 14, label, {
        size: 11,
        anchor: fitsLeft ? 'end' : 'start',
        weight: 'bold',
        fill: color,
      }),
    );
  });
  out.push(
    s.legend(
      p.px + 10,
      p.py + p.ph - 12,
      sides.map((x) => ({ label: x.label, ...style(x) })),
    ),
  );
  return out.join('\n');
}

function scaleRssPanel(p: s.Panel, sc: ScaleResult | undefined, error?: string): string {
  const out = [
    s.frame(
      p,
      'Memory per replica vs SingletonJobs',
      'VmRSS once idle, caches warm; dotted: peak of a leader writing every status; target ≤ 150 MB (143 MiB)',
    ),
  ];
  if (!sc || sc.points.length === 0) return out.concat(s.placeholder(p, error ?? 'not measured')).join('\n');
  const xsc = s.logScale(100, 10_000, p.px + 20, p.px + p.pw - 20, (v) => v.toLocaleString('en-US'));
  const maxR = Math.max(160, ...sc.points.flatMap((x) => [...x.rssMiB, x.rssPeakMiB ?? 0])) * 1.1;
  const ysc = s.linearScale(0, maxR, p.py + p.ph, p.py, (v) => `${v}`, 5);
  out.push(s.xAxis(p, xsc, 'SingletonJobs (log scale)'), s.yAxis(p, ysc, 'RSS (MiB)'));
  const target = 150 / 1.048576;
  out.push(s.line(p.px, ysc(target), p.px + p.pw, ysc(target), s.COLORS.target, { dash: '5 4', width: 1.5 }));
  out.push(s.text(p.px + 6, ysc(target) - 5, 'target 150 MB', { size: 10.5, fill: s.COLORS.target }));
  const lead: Array<[number, number]> = sc.points.map((x) => [xsc(x.objects), ysc(x.rssLeaderMiB)]);
  const stby: Array<[number, number]> = sc.points.map((x) => [xsc(x.objects), ysc(x.rssMaxStandbyMiB)]);
  if (sc.baseline) {
    const yb = ysc(sc.baseline.allDepsMiB);
    out.push(s.line(p.px, yb, p.px + p.pw, yb, s.COLORS.muted, { dash: '2 3', width: 1.5 }));
    out.push(
      s.text(
        p.px + p.pw - 4,
        yb + 14,
        `node + dependencies imported, no objects: ${fmtNum(sc.baseline.allDepsMiB, 0)} MiB`,
        { size: 10.5, anchor: 'end', fill: s.COLORS.muted },
      ),
    );
  }
  out.push(s.polyline(lead, s.COLORS.ours, 2.5), s.polyline(stby, s.COLORS.ours, 2, '6 4'));
  const peaks = sc.points.filter((x) => x.rssPeakMiB !== undefined);
  if (peaks.length > 0)
    out.push(
      s.polyline(
        peaks.map((x) => [xsc(x.objects), ysc(x.rssPeakMiB!)]),
        s.COLORS.ours,
        1.5,
        '2 3',
      ),
    );
  for (const x of sc.points) {
    out.push(s.circle(xsc(x.objects), ysc(x.rssLeaderMiB), 4.5, s.COLORS.ours, 1));
    const last = x === sc.points[sc.points.length - 1] && sc.points.length > 1;
    out.push(
      s.text(xsc(x.objects) + (last ? -8 : 0), ysc(x.rssLeaderMiB) - 9, `${fmtNum(x.rssLeaderMiB, 0)} MiB`, {
        size: 11,
        anchor: last ? 'end' : 'middle',
        weight: 'bold',
        fill: s.COLORS.ours,
      }),
    );
  }
  out.push(
    s.legend(p.px + 10, p.py + 14, [
      { label: 'leader', color: s.COLORS.ours },
      { label: 'standby (max)', color: s.COLORS.ours, dash: '6 4' },
      ...(peaks.length > 0 ? [{ label: 'leader peak, busy takeover', color: s.COLORS.ours, dash: '2 3' }] : []),
    ]),
  );
  return out.join('\n');
}

function scaleTimePanel(p: s.Panel, sc: ScaleResult | undefined, error?: string): string {
  const out = [
    s.frame(
      p,
      'New leader: takeover → every SingletonJob reconciled',
      'quiet: nothing changed; busy: every object changed (one status write each); target ≤ 10 s at 10,000',
    ),
  ];
  if (!sc || sc.points.length === 0) return out.concat(s.placeholder(p, error ?? 'not measured')).join('\n');
  const xsc = s.logScale(100, 10_000, p.px + 20, p.px + p.pw - 20, (v) => v.toLocaleString('en-US'));
  const all = sc.points
    .flatMap((x) => [x.resumeMs, x.coldReconcileMs, x.quietFirstPassMs ?? NaN])
    .filter((v) => Number.isFinite(v) && v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(1000, ...all) / 1000));
  const hi = 10 ** Math.ceil(Math.log10((Math.max(12_000, ...all) / 1000) * 1.3));
  const ysc = s.logScale(lo, hi, p.py + p.ph, p.py, (v) => `${v} s`);
  out.push(s.xAxis(p, xsc, 'SingletonJobs (log scale)'), s.yAxis(p, ysc, 'seconds (log scale)'));
  out.push(s.line(p.px, ysc(10), p.px + p.pw, ysc(10), s.COLORS.target, { dash: '5 4', width: 1.5 }));
  out.push(s.text(p.px + p.pw - 6, ysc(10) - 5, 'target 10 s', { size: 10.5, anchor: 'end', fill: s.COLORS.target }));
  const resume: Array<[number, number]> = sc.points.map((x) => [xsc(x.objects), ysc(x.resumeMs / 1000)]);
  const cold: Array<[number, number]> = sc.points.map((x) => [xsc(x.objects), ysc(x.coldReconcileMs / 1000)]);
  out.push(s.polyline(resume, s.COLORS.ours, 2.5), s.polyline(cold, s.COLORS.muted, 2, '6 4'));
  const quietPts = sc.points.filter((x) => x.quietFirstPassMs !== undefined && x.quietFirstPassMs > 0);
  out.push(
    s.polyline(
      quietPts.map((x) => [xsc(x.objects), ysc(x.quietFirstPassMs! / 1000)]),
      s.COLORS.peer,
      2.5,
    ),
  );
  for (const x of quietPts) {
    out.push(s.circle(xsc(x.objects), ysc(x.quietFirstPassMs! / 1000), 4.5, s.COLORS.peer, 1));
    out.push(
      s.text(xsc(x.objects) + 8, ysc(x.quietFirstPassMs! / 1000) - 8, fmtMs(x.quietFirstPassMs!), {
        size: 11,
        anchor: 'start',
        weight: 'bold',
        fill: s.COLORS.peer,
      }),
    );
  }
  sc.points.forEach((x, i) => {
    const last = i === sc.points.length - 1 && sc.points.length > 1;
    out.push(s.circle(xsc(x.objects), ysc(x.resumeMs / 1000), 4.5, s.COLORS.ours, 1));
    out.push(
      s.text(
        xsc(x.objects) + (last ? -8 : 8),
        ysc(x.resumeMs / 1000) + 16,
        `${fmtMs(x.resumeMs)} (${fmtNum(x.throughputPerSec, 0)}/s)`,
        {
          size: 11,
          anchor: last ? 'end' : 'start',
          weight: 'bold',
          fill: s.COLORS.ours,
        },
      ),
    );
  });
  out.push(
    s.legend(p.px + 10, p.py + 14, [
      { label: 'busy: all status written', color: s.COLORS.ours },
      { label: 'quiet: every object had a pass', color: s.COLORS.peer },
      { label: 'cold start (first leader)', color: s.COLORS.muted, dash: '6 4' },
    ]),
  );
  return out.join('\n');
}

export function renderSvg(r: BenchResults): string {
  const header = 64;
  const H = header + PH * 4 + 16;
  const half = W / 2;
  const f = r.failover.ok ? r.failover.result : undefined;
  const st = r.stampede.ok ? r.stampede.result : undefined;
  const sc = r.scale.ok ? r.scale.result : undefined;
  const err = (p: Part<unknown>) =>
    p.ok ? undefined : `not measured: ${p.error.length > 70 ? `${p.error.slice(0, 67)}…` : p.error}`;
  const m = r.machine;
  const body = [
    s.rect(0, 0, W, H, '#f5f5f5'),
    s.text(
      20,
      30,
      `singleton-operator benchmarks — ${r.profile} profile, ${r.finishedAt.slice(0, 16).replace('T', ' ')} UTC`,
      { size: 20, weight: 'bold' },
    ),
    s.text(
      20,
      52,
      `${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB, shared machine (load ${m.loadAvgStart[0]?.toFixed(1)}); Kubernetes ${m.kubernetes} local control plane; ours in blue, the peer in orange`,
      {
        size: 12,
        fill: s.COLORS.muted,
      },
    ),
    failoverPanel(s.panel(0, header, half, PH, { l: 100, r: 24, t: 50, b: 48 }), f, 'graceful', err(r.failover)),
    failoverPanel(s.panel(half, header, half, PH, { l: 100, r: 24, t: 50, b: 48 }), f, 'crash', err(r.failover)),
    idlePanel(s.panel(0, header + PH, half, PH), f, err(r.failover)),
    stampedePanel(s.panel(half, header + PH, half, PH, { l: 70, r: 24, t: 58, b: 48 }), st, err(r.stampede)),
    scaleRssPanel(s.panel(0, header + 2 * PH, half, PH), sc, err(r.scale)),
    scaleTimePanel(s.panel(half, header + 2 * PH, half, PH), sc, err(r.scale)),
    preparedPanel(
      s.panel(0, header + 3 * PH, W, PH),
      r.common?.ok ? r.common.result : undefined,
      r.slotTakeover?.ok ? r.slotTakeover.result : undefined,
      r.common ? err(r.common) : 'not measured',
    ),
  ];
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">\n${body.join('\n')}\n</svg>\n`;
}
