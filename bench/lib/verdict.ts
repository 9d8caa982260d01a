// The verdict cell of a target row in the report: met, missed, or "–" when
// the figure it judges was not measured.

/** A part of the benchmark: its result, or why it has none. */
export type Part<T> = { ok: true; result: T } | { ok: false; error: string };

export const check = (ok: boolean | undefined) => (ok === undefined ? '–' : ok ? 'met' : '**missed**');

/** A target row: `| measure | ours | peer | ratio | target | verdict |` (peer and ratio "–" when absent). */
export interface TargetRow {
  measure: string;
  ours: string;
  peer?: string;
  ratio?: string;
  target: string;
  ok: boolean | undefined;
}

export function targetTable(rows: TargetRow[], peerLabel?: string): string[] {
  const out =
    peerLabel === undefined
      ? ['| measure | ours | target | verdict |', '|---|---:|---|---|']
      : [`| measure | ours | ${peerLabel} | ours / peer | target | verdict |`, '|---|---:|---:|---:|---|---|'];
  for (const r of rows)
    out.push(
      peerLabel === undefined
        ? `| ${r.measure} | ${r.ours} | ${r.target} | ${check(r.ok)} |`
        : `| ${r.measure} | ${r.ours} | ${r.peer ?? '–'} | ${r.ratio ?? '–'} | ${r.target} | ${check(r.ok)} |`,
    );
  return out;
}
