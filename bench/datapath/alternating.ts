/**
 * Noise-robust comparisons on a shared machine: every configuration is
 * measured once per round, the rounds repeat with the order reversed every
 * other round (A B C, C B A, A B C …, so neither drift nor a place in the
 * round favours one), and each configuration is summarised by its median
 * and spread. A target is judged on the median of per-round ratios: the two
 * figures of a round were taken seconds apart, under the same load.
 */
import { readFileSync } from 'node:fs';

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (max − min) / median: how far apart the repetitions were. */
  spread: number;
  samples: number[];
}

export function summarise(samples: readonly number[]): Summary {
  const s = samples.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, spread: NaN, samples: [] };
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, spread: median ? (s[s.length - 1]! - s[0]!) / median : NaN, samples: [...samples] };
}

/** One step of a round: `setup` switches to the configuration (it may be shared by several steps), `measure` takes the figure. */
export interface Step {
  key: string;
  setup?: () => Promise<void>;
  measure: () => Promise<number> | number;
}

/** Runs `rounds` rounds of `steps`, odd rounds backwards; the samples by step key, in round order. */
export async function alternate(steps: readonly Step[], rounds: number, onSample?: (key: string, v: number, round: number) => void): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(steps.map((s) => [s.key, []]));
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 ? [...steps].reverse() : steps) {
      await s.setup?.();
      const v = await s.measure();
      out.get(s.key)!.push(v);
      onSample?.(s.key, v, r);
    }
  }
  return out;
}

/**
 * A pause after switching configurations, so that the control plane's work
 * (an nft transaction of 2,000 rules and its deferred release, agents
 * applying) is not billed to the first measurement after the switch.
 */
export function settle(ms = 1000): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/** The 1, 5 and 15 minute load averages, as `uptime` prints them. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(', ');
}

/** `12.3 Gb/s ±8 %` style cell: median with the spread of the repetitions. */
export function cell(s: Summary, digits: number, unit: string, width = 20): string {
  if (Number.isNaN(s.median)) return '—'.padStart(width);
  const v = digits < 0 ? Math.round(s.median).toLocaleString('en') : s.median.toFixed(digits);
  return `${v}${unit} ±${Math.round((s.spread * 100) / 2)}%`.padStart(width);
}

/** num / den round by round (the samples of one round were taken under the same load). */
export function pairedRatio(num: Summary, den: Summary): Summary {
  return summarise(num.samples.map((v, i) => v / den.samples[i]!).filter(Number.isFinite));
}

const ratioText = (x: number, asPercent: boolean): string => (asPercent ? `${(x * 100).toFixed(0)} %` : `${x.toFixed(2)}×`);

/** A comparison line: the median of per-round ratios, their range, the ratio of the medians. */
export function comparison(label: string, num: Summary, den: Summary, asPercent = false): { ratio: number; line: string } {
  const per = pairedRatio(num, den);
  const fmt = (x: number): string => ratioText(x, asPercent);
  const range = per.samples.length ? ` (rounds ${fmt(per.min)}–${fmt(per.max)}; ratio of medians ${fmt(num.median / den.median)})` : '';
  return { ratio: per.median, line: `${label}: ${fmt(per.median)}${range}` };
}

/** comparison() against a target, and whether it is met. */
export function verdict(label: string, num: Summary, den: Summary, target: number, asPercent = false): { ratio: number; met: boolean; line: string } {
  const { ratio, line } = comparison(label, num, den, asPercent);
  const met = ratio >= target;
  return { ratio, met, line: `${line}, target ≥ ${ratioText(target, asPercent)}  ${met ? 'MET' : 'NOT MET'}` };
}
