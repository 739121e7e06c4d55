/**
 * bench/l7/regex: what one HTTP rule field costs per request, RE2 (re2js, what
 * the policy engine compiles) against the backtracking RegExp it replaced
 * (`^(?:…)$`), in process, no sockets. The proxy matches every request's
 * method, path and host, so this is the per-request price of linear time.
 *
 * Each case is a field pattern as Cilium's examples write them, with one
 * request value that matches and one that does not. Both engines compile once
 * (as the policy engine does, never per request); a round times N calls of one
 * engine, rounds alternate between the engines so a burst of outside load
 * hits both alike, and the figure is the median over ROUNDS rounds in ns per
 * call. Compile cost per pattern is printed too (µs, median).
 *
 *   node bench/l7/regex.ts [--n 100000] [--rounds 11]
 */
import { parseArgs } from 'node:util';
import { compileHttpRegex } from '../../src/k8s/http-regex.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '11' } } });
const N = Number(values.n);
const ROUNDS = Number(values.rounds);

interface Case {
  field: string;
  pattern: string;
  hit: string;
  miss: string;
}

const CASES: Case[] = [
  { field: 'method', pattern: 'GET', hit: 'GET', miss: 'POST' },
  { field: 'method', pattern: 'PUT|POST', hit: 'POST', miss: 'DELETE' },
  { field: 'path', pattern: '/v1/request-landing', hit: '/v1/request-landing', miss: '/v1/exhaust-port' },
  { field: 'path', pattern: '/public/.*', hit: '/public/css/site.css?v=3', miss: '/private/keys' },
  { field: 'path', pattern: '/api/v[0-9]+/items/[0-9]+', hit: '/api/v2/items/81723', miss: '/api/v2/items/81723/delete' },
  { field: 'path', pattern: '/.*', hit: `/search?q=${'x'.repeat(200)}`, miss: 'relative' },
  { field: 'host', pattern: 'api\\.example\\.com', hit: 'api.example.com', miss: 'api.example.com.evil' },
];

type Matcher = (value: string) => boolean;

function nsPerCall(match: Matcher, value: string): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (match(value)) sink++;
  const ns = Number(process.hrtime.bigint() - t0) / N;
  if (sink < 0) console.log(sink); // keeps the calls observable
  return ns;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function compileMicros(compile: () => unknown): number {
  const times: number[] = [];
  for (let i = 0; i < 51; i++) {
    const t0 = process.hrtime.bigint();
    compile();
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return median(times);
}

const fmt = (x: number, w: number, d = 0): string => x.toFixed(d).padStart(w);

console.log(`ns per call, median of ${ROUNDS} alternating rounds of ${N} calls; compile in µs`);
console.log(`${'field'.padEnd(7)}${'pattern'.padEnd(28)}${'value'.padEnd(6)}${'RegExp'.padStart(8)}${'RE2'.padStart(8)}${'ratio'.padStart(7)}${'compile RegExp'.padStart(16)}${'RE2'.padStart(8)}`);
for (const c of CASES) {
  const backtracking = new RegExp(`^(?:${c.pattern})$`);
  const re2 = compileHttpRegex(c.pattern);
  const engines: Matcher[] = [(v) => backtracking.test(v), re2.matches];
  const compile = [compileMicros(() => new RegExp(`^(?:${c.pattern})$`)), compileMicros(() => compileHttpRegex(c.pattern))];
  for (const [label, value] of [['hit', c.hit], ['miss', c.miss]] as const) {
    if (engines[0]!(value) !== engines[1]!(value)) throw new Error(`${c.pattern} on ${value}: the engines disagree`);
    for (const m of engines) nsPerCall(m, value); // warm-up
    const samples: [number[], number[]] = [[], []];
    for (let round = 0; round < ROUNDS; round++) {
      const first = round & 1;
      samples[first]!.push(nsPerCall(engines[first]!, value));
      samples[1 - first]!.push(nsPerCall(engines[1 - first]!, value));
    }
    const [js, r2] = samples.map(median) as [number, number];
    const tail = label === 'hit' ? `${fmt(compile[0]!, 16, 1)}${fmt(compile[1]!, 8, 1)}` : '';
    console.log(`${c.field.padEnd(7)}${c.pattern.padEnd(28)}${label.padEnd(6)}${fmt(js, 8)}${fmt(r2, 8)}${fmt(r2 / js, 7, 1)}${tail}`);
  }
}
