// The figures table: per fault kind, how often it was injected, how many runs
// happened around it, how many violations fell into its windows, and how long
// recovery took (median / worst, from heal to healthy-with-a-renewing-leader).
import type { Violation } from './checker.ts';
import type { FaultKind, FaultRecord, History } from './history.ts';

export interface ReportRow {
  kind: FaultKind | 'no fault' | 'total';
  injections: number;
  skipped: number;
  runs: number;
  violations: number;
  recoveryMedianMs?: number;
  recoveryWorstMs?: number;
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function reportRows(h: History, violations: Violation[], settleMs: number): ReportRow[] {
  const windowOf = (f: FaultRecord): [number, number] => [f.startedAt, (f.recoveredAt ?? h.endedAt) + settleMs];
  const inWindow = (t: number, f: FaultRecord) => {
    const [from, to] = windowOf(f);
    return t >= from && t <= to;
  };
  const kinds = [...new Set(h.faults.map((f) => f.kind))];
  const rows: ReportRow[] = kinds.map((kind) => {
    const all = h.faults.filter((f) => f.kind === kind);
    const done = all.filter((f) => !f.skipped);
    const recoveries = done
      .filter((f) => f.recoveredAt !== undefined)
      .map((f) => (f.recoveredAt as number) - f.healedAt);
    const worst = done.some((f) => f.recoveredAt === undefined)
      ? Infinity
      : recoveries.length
        ? Math.max(...recoveries)
        : undefined;
    return {
      kind,
      injections: done.length,
      skipped: all.length - done.length,
      runs: h.jobs.filter((j) => done.some((f) => inWindow(j.createdAt, f))).length,
      violations: violations.filter((v) => done.some((f) => inWindow(v.at, f))).length,
      recoveryMedianMs: median(recoveries),
      recoveryWorstMs: worst,
    };
  });
  const active = h.faults.filter((f) => !f.skipped);
  rows.push({
    kind: 'no fault',
    injections: 0,
    skipped: 0,
    runs: h.jobs.filter((j) => !active.some((f) => inWindow(j.createdAt, f))).length,
    violations: violations.filter((v) => !active.some((f) => inWindow(v.at, f))).length,
  });
  const recoveries = active
    .filter((f) => f.recoveredAt !== undefined)
    .map((f) => (f.recoveredAt as number) - f.healedAt);
  rows.push({
    kind: 'total',
    injections: active.length,
    skipped: h.faults.length - active.length,
    runs: h.jobs.length,
    violations: violations.length,
    recoveryMedianMs: median(recoveries),
    recoveryWorstMs: active.some((f) => f.recoveredAt === undefined)
      ? Infinity
      : recoveries.length
        ? Math.max(...recoveries)
        : undefined,
  });
  return rows;
}

const secs = (ms: number | undefined) =>
  ms === undefined ? '-' : ms === Infinity ? 'never' : `${(ms / 1000).toFixed(1)} s`;

/** A Markdown table (readable in a terminal, pasteable into a note). */
export function formatTable(rows: ReportRow[]): string {
  const header = [
    'fault kind',
    'injections',
    'skipped',
    'runs observed',
    'violations',
    'recovery median',
    'recovery worst',
  ];
  const lines = rows.map((r) => [
    r.kind,
    String(r.injections),
    String(r.skipped),
    String(r.runs),
    String(r.violations),
    secs(r.recoveryMedianMs),
    secs(r.recoveryWorstMs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n');
}

export function formatReport(h: History, rows: ReportRow[], violations: Violation[], account: string): string {
  const minutes = ((h.endedAt - h.startedAt) / 60_000).toFixed(1);
  const lines = [
    `Chaos run — profile ${h.profile}, seed ${h.seed}, ${minutes} min, ${h.replicas.length} replicas, lease ${h.leaseDurationMs / 1000} s, recovery bound ${h.recoveryBoundMs / 1000} s`,
    `SingletonJobs judged: ${h.singletonJobs.map((s) => `${s.name.length > 40 ? `${s.name.slice(0, 37)}…` : s.name} (${s.schedule}${s.timeZone ? ` ${s.timeZone}` : ''})`).join(', ')}`,
    '',
    formatTable(rows),
    '',
    costLine(h),
    '',
    `Bad input: ${h.badInput.length} malformed SingletonJobs — ${h.badInput.filter((b) => b.outcome === 'rejected').length} rejected by the API server, ` +
      `${h.badInput.filter((b) => b.outcome === 'ready-false').length} surfaced as Ready=False, ${h.badInput.filter((b) => b.outcome === 'accepted').length} accepted silently.`,
    ...h.badInput.map(
      (b) => `  - ${b.name}: ${b.outcome} — ${b.message.length > 160 ? `${b.message.slice(0, 157)}…` : b.message}`,
    ),
    '',
    `Faults in order:`,
    ...h.faults.map(
      (f) =>
        `  +${((f.startedAt - h.startedAt) / 1000).toFixed(1)}s ${f.kind} on ${f.target}: ${f.detail}` +
        (f.skipped
          ? ' [skipped]'
          : `; recovered ${f.recoveredAt === undefined ? 'never' : `${((f.recoveredAt - f.healedAt) / 1000).toFixed(1)} s after heal`}`),
    ),
    '',
    violations.length === 0 ? `PASS: 0 violations. Seed ${h.seed}.` : `FAIL: ${account}`,
  ];
  return lines.join('\n');
}

/** Runs = Jobs that got a Pod (a run's attempts count one each). */
export function costLine(h: History): string {
  const runs = new Set(h.pods.map((p) => `${p.namespace}/${p.jobUid}`)).size;
  const c = h.requests;
  if (!c) return `Requests: not recorded (older history); ${runs} runs.`;
  const per = (n: number) => (runs > 0 ? (n / runs).toFixed(1) : '-');
  const writers = h.fencesOnly ? `${h.replicas.length} replicas acting at once` : 'one leader acting';
  return (
    `Requests (${writers}; Lease and Event requests apart): ${c.total} for ${runs} runs — ${per(c.total)} per run, of them ${per(c.writes)} writes, ` +
    `${per(c.conflicts)} answered 409 (a lost CAS or AlreadyExists), ${per(c.refused)} answered 422 (refused by a rule: CEL, a patch test, Job validation); ` +
    `Lease ${per(c.leases ?? 0)} and Event ${per(c.events ?? 0)} per run.`
  );
}
