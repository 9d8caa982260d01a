// Summary statistics for the benchmark tables. Percentiles use the
// nearest-rank method on the sorted samples: with few samples p90 is simply
// the second-worst of ten, which is what a reader expects.

export interface Summary {
  n: number;
  median: number;
  p90: number;
  p99: number;
  worst: number;
  best: number;
  mean: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  return {
    n,
    median: n === 0 ? Number.NaN : n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2,
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    worst: n === 0 ? Number.NaN : sorted[n - 1]!,
    best: n === 0 ? Number.NaN : sorted[0]!,
    mean: n === 0 ? Number.NaN : sorted.reduce((a, b) => a + b, 0) / n,
  };
}

/** ours / peer, or NaN when either side is missing or the peer is 0. */
export function ratio(ours: number, peer: number): number {
  if (!Number.isFinite(ours) || !Number.isFinite(peer) || peer === 0) return Number.NaN;
  return ours / peer;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (Math.abs(ms) >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (Math.abs(ms) >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.round(ms)} ms`;
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return '–';
  if (r === 0) return '0×';
  return r >= 10 || r < 0.1 ? `${r.toPrecision(2)}×` : `${r.toFixed(2)}×`;
}

export function fmtNum(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}
