/** Range queries through the UI server's Prometheus proxy, turned into the snapshot's series shape. */
import type { SeriesPoint } from '../../src/ui/api.ts';
import { getJson } from './dom.ts';

interface MatrixAnswer {
  status: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; values: [number, string][] }[] };
}

/** The last `minutes` of `query`, one key per value of `label` (missing label → "(none)"). */
export async function promRange(query: string, label: string, minutes = 15, stepSeconds = 15): Promise<SeriesPoint[]> {
  const end = Math.floor(Date.now() / 1000);
  const qs = new URLSearchParams({ query, start: String(end - minutes * 60), end: String(end), step: String(stepSeconds) });
  const answer = await getJson<MatrixAnswer>(`/api/prom/query_range?${qs}`);
  if (answer.status !== 'success' || answer.data === undefined) throw new Error(answer.error ?? 'Prometheus answered without data');
  const byTime = new Map<number, Record<string, number>>();
  for (const series of answer.data.result) {
    const key = series.metric[label] ?? '(none)';
    for (const [t, v] of series.values) {
      const n = Number(v);
      if (!Number.isFinite(n)) continue;
      const values = byTime.get(t) ?? {};
      values[key] = (values[key] ?? 0) + n;
      byTime.set(t, values);
    }
  }
  return [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([t, values]) => ({ t: t * 1000, values }));
}

/** Cumulative `le` buckets → counts per bucket (Prometheus histograms count "≤ le"). */
export function decumulate(points: SeriesPoint[]): SeriesPoint[] {
  return points.map((p) => {
    const les = Object.keys(p.values).sort((a, b) => leValue(a) - leValue(b));
    const values: Record<string, number> = {};
    let prev = 0;
    for (const le of les) {
      const v = p.values[le] ?? 0;
      values[normaliseLe(le)] = Math.max(0, v - prev);
      prev = v;
    }
    return { t: p.t, values };
  });
}

export function leValue(le: string): number {
  return le === '+Inf' ? Infinity : Number(le);
}

/** "0.0050" and "5e-3" → "0.005", as the snapshot spells bucket bounds. */
function normaliseLe(le: string): string {
  return le === '+Inf' ? le : String(Number(le));
}
