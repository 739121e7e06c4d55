/**
 * bench/policy/trace-batch: `palisade policy trace --batch` answering questions about the
 * policy bench's cluster (1,000 policies × 10,000 pods, bench/policy/cluster.ts), as a user runs it.
 *
 * Each round runs the CLI twice, alternating: with a small batch and a large one. Both pay the
 * same start-up (Node, loading 11,100 objects, compiling them); the difference in wall time is
 * the extra queries' cost alone → queries/s. A single `policy trace` call is timed alongside,
 * the price of asking the same questions one process at a time.
 *
 * Target (issue #19): ≥ 20,000 queries/s.
 * Run: node bench/policy/trace-batch.ts [--rounds 5] [--small 2000] [--large 42000] [--json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../../src/lab/processes.ts';
import { cell, loadAverage, summarise } from '../datapath/alternating.ts';
import { NAMESPACES, objects, PODS_PER_NS } from './cluster.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    small: { type: 'string', default: '2000' },
    large: { type: 'string', default: '42000' },
    json: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(values.rounds);
const SMALL = Number(values.small);
const LARGE = Number(values.large);
const TARGET_PER_S = 20_000;

/** Questions across the cluster: same and other namespaces, the policies' ports, some HTTP requests. */
function queries(n: number): string {
  let s = 1;
  const rnd = (k: number): number => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s % k;
  };
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const ns = rnd(NAMESPACES);
    const dstNs = rnd(4) === 0 ? rnd(NAMESPACES) : ns;
    const q: Record<string, unknown> = { src: `ns-${ns}/pod-${rnd(PODS_PER_NS)}`, dst: `ns-${dstNs}/pod-${rnd(PODS_PER_NS)}`, dport: [8080, 8080, 22, 443][rnd(4)] };
    if (rnd(4) === 0) Object.assign(q, { 'http-method': rnd(2) ? 'GET' : 'POST', 'http-path': rnd(2) ? '/api/items' : '/admin' });
    lines.push(JSON.stringify(q));
  }
  return `${lines.join('\n')}\n`;
}

const dir = mkdtempSync(`${tmpdir()}/palisade-bench-trace-`);
const loadBefore = loadAverage();
const small: number[] = [];
const large: number[] = [];
const rate: number[] = [];
const singleMs: number[] = [];
try {
  const manifest = `${dir}/cluster.yaml`;
  writeFileSync(manifest, objects().map((o) => JSON.stringify(o)).join('\n---\n'));
  writeFileSync(`${dir}/small.jsonl`, queries(SMALL));
  writeFileSync(`${dir}/large.jsonl`, queries(LARGE));
  /** Wall time of one CLI run; `lines`: the answers it must print (0: do not count). */
  const run = (args: string[], lines: number): number => {
    const t0 = performance.now();
    const r = spawnSync(`${PROJECT_ROOT}bin/palisade`, ['policy', 'trace', '-f', manifest, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
    const ms = performance.now() - t0;
    const got = r.stdout.split('\n').length - 1;
    if (r.status !== 0 || (lines > 0 && got !== lines)) throw new Error(`policy trace ${args.join(' ')}: exit ${r.status}, ${got} of ${lines} answers\n${r.stderr.slice(0, 2000)}`);
    return ms;
  };
  for (let round = 0; round < ROUNDS; round++) {
    const a = run(['--batch', `${dir}/small.jsonl`], SMALL);
    const b = run(['--batch', `${dir}/large.jsonl`], LARGE);
    const one = run(['--src', 'ns-1/pod-1', '--dst', 'ns-1/pod-2', '--dport', '8080', '-o', 'json'], 0);
    small.push(a);
    large.push(b);
    singleMs.push(one);
    rate.push(((LARGE - SMALL) / (b - a)) * 1000);
    process.stderr.write(`round ${round + 1}: ${SMALL.toLocaleString('en')} queries ${a.toFixed(0)} ms, ${LARGE.toLocaleString('en')} queries ${b.toFixed(0)} ms → ${Math.round(rate.at(-1) ?? 0).toLocaleString('en')} queries/s; one single call ${one.toFixed(0)} ms\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const r = summarise(rate);
const single = summarise(singleMs);
const verdict = r.median >= TARGET_PER_S ? 'PASS' : 'FAIL';
if (values.json) {
  console.log(JSON.stringify({ rounds: ROUNDS, small: SMALL, large: LARGE, queriesPerS: r, smallMs: summarise(small), largeMs: summarise(large), singleCallMs: single, load: { before: loadBefore, after: loadAverage() } }));
} else {
  console.log(`bench/policy/trace-batch — 1,000 policies × 10,000 pods; ${ROUNDS} rounds of ${SMALL.toLocaleString('en')} then ${LARGE.toLocaleString('en')} queries; median ±half the range`);
  console.log(`  load average before: ${loadBefore}; after: ${loadAverage()}`);
  console.log(`  --batch, ${SMALL.toLocaleString('en')} queries  ${cell(summarise(small), 0, ' ms')}  (start-up, loading and compiling 11,100 objects, answers)`);
  console.log(`  --batch, ${LARGE.toLocaleString('en')} queries ${cell(summarise(large), 0, ' ms')}`);
  console.log(`  queries/s           ${cell(r, -1, '/s')}  the ${(LARGE - SMALL).toLocaleString('en')} extra queries over the extra time   target ≥ ${TARGET_PER_S.toLocaleString('en')}/s  ${verdict}`);
  console.log(`  one single call     ${cell(single, 0, ' ms')}  (${Math.round((single.median / 1000) * r.median).toLocaleString('en')} batch answers in the time of one call)`);
}
