/**
 * bench/apply: policy at scale through the CLI — `palisade apply -f` and
 * `palisade delete -f` of 10,000 CiliumNetworkPolicies against a real lab,
 * timed as whole CLI processes, and how long until every agent holds them.
 *
 *   lab up (2 nodes, a name of its own) → 100 namespaces and 4 pods the policies select
 *   each round:
 *     apply -f  10,000 CNPs (bench/policy's shapes: L7, FQDN + CIDR egress, deny, cross-namespace)
 *       → time, the CLI's peak RSS; then until every agent's engine counts them all (converge)
 *     delete -f the same file
 *       → time, peak RSS; then until every agent counts none again
 *   → median ±half the range over the rounds; the range is the bench's own error
 *
 * Targets (issue #20): apply ≤ 60 s, delete ≤ 60 s, agents converged ≤ 10 s after each.
 * Run as root: node bench/apply/run.ts [--objects 10000] [--rounds 3] [--datapath legacy|ebpf] [--json]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { labDown, labUp } from '../../src/lab/lifecycle.ts';
import { agentSocketPath } from '../../src/lab/paths.ts';
import { silentProgress } from '../../src/lab/progress.ts';
import { PROJECT_ROOT } from '../../src/lab/processes.ts';
import { unixRequest } from '../../src/lab/unix-http.ts';
import { cell, loadAverage, summarise, type Summary } from '../datapath/alternating.ts';
import { needProgram } from '../tools.ts';
import { NAMESPACES, NODES, policy, setupManifest } from './manifests.ts';

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    datapath: { type: 'string', default: 'legacy' },
    json: { type: 'boolean', default: false },
  },
});
const OBJECTS = Number(values.objects);
const ROUNDS = Number(values.rounds);
const DATAPATH = values.datapath === 'ebpf' ? 'ebpf' : 'legacy';
/** How long the agents may take to converge before the bench gives up on a round. */
const CONVERGE_LIMIT_MS = 300_000;
const TARGET_CLI_S = 60;
const TARGET_CONVERGE_S = 10;

if (process.getuid?.() !== 0) throw new Error('bench/apply needs root');
const TIME = needProgram('time', 'time', '/usr/bin/time');

const lab = `benchapply${randomBytes(2).toString('hex')}`;
const dir = mkdtempSync(`${tmpdir()}/palisade-bench-apply-`);

/** bin/palisade as a whole process under /usr/bin/time: wall seconds and peak RSS (MiB). */
function timedCli(args: string[]): { seconds: number; rssMiB: number } {
  const t0 = performance.now();
  const r = spawnSync(TIME, ['-f', 'PEAK_RSS_KB %M', `${PROJECT_ROOT}bin/palisade`, ...args, '--lab', lab], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`palisade ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const kb = Number(/PEAK_RSS_KB (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { seconds, rssMiB: kb / 1024 };
}

/** Every agent's policy count (engine.stats.policies), by node. */
async function agentPolicyCounts(): Promise<number[]> {
  return Promise.all(
    NODES.map(async (node) => {
      const r = await unixRequest(agentSocketPath(lab, node), 'GET', '/v1/status', undefined, 10_000).catch(() => undefined);
      if (r?.status !== 200) return -1;
      return (JSON.parse(r.body) as { engine: { policies: number } }).engine.policies;
    }),
  );
}

/** Seconds until every agent counts `want` policies. */
async function converge(want: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const counts = await agentPolicyCounts();
    if (counts.every((c) => c === want)) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > CONVERGE_LIMIT_MS) throw new Error(`agents did not converge on ${want} policies in ${CONVERGE_LIMIT_MS / 1000} s: ${counts.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The policies every agent holds before the bench adds any (the lab's own), once all of them answer alike. */
async function baseline(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const counts = await agentPolicyCounts();
    if (counts.every((c) => c >= 0 && c === counts[0])) return counts[0]!;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the agents do not answer /v1/status alike');
}

const loadBefore = loadAverage();
const samples = { apply: [] as number[], applyRss: [] as number[], applyConverge: [] as number[], del: [] as number[], delRss: [] as number[], delConverge: [] as number[] };
try {
  await labUp({ name: lab, nodes: NODES.length, datapath: DATAPATH, progress: silentProgress });
  writeFileSync(`${dir}/setup.yaml`, setupManifest());
  timedCli(['apply', '-f', `${dir}/setup.yaml`, '--timeout', '120s']);
  const policies = Array.from({ length: OBJECTS }, (_, i) => policy(i)).join('---\n');
  writeFileSync(`${dir}/policies.yaml`, policies);
  const base = await baseline();
  for (let r = 0; r < ROUNDS; r++) {
    const a = timedCli(['apply', '-f', `${dir}/policies.yaml`]);
    const ac = await converge(base + OBJECTS);
    const d = timedCli(['delete', '-f', `${dir}/policies.yaml`]);
    const dc = await converge(base);
    samples.apply.push(a.seconds);
    samples.applyRss.push(a.rssMiB);
    samples.applyConverge.push(ac);
    samples.del.push(d.seconds);
    samples.delRss.push(d.rssMiB);
    samples.delConverge.push(dc);
    process.stderr.write(`round ${r + 1}: apply ${a.seconds.toFixed(1)} s (${a.rssMiB.toFixed(0)} MiB), agents +${ac.toFixed(1)} s; delete ${d.seconds.toFixed(1)} s (${d.rssMiB.toFixed(0)} MiB), agents +${dc.toFixed(1)} s\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await labDown(lab).catch((e: Error) => process.stderr.write(`lab down ${lab}: ${e.message}\n`));
}

const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarise(v)])) as Record<keyof typeof samples, Summary>;
const met = (x: Summary, target: number): string => (x.median <= target ? 'MET' : 'NOT MET');
const loadAfter = loadAverage();
if (values.json) {
  console.log(JSON.stringify({ objects: OBJECTS, rounds: ROUNDS, datapath: DATAPATH, load: { before: loadBefore, after: loadAfter }, ...s }));
} else {
  console.log(`bench/apply — ${OBJECTS.toLocaleString('en')} CNPs, ${DATAPATH} datapath, ${NODES.length} nodes, ${ROUNDS} rounds; median ±half the range (the bench's own error)`);
  console.log(`  load average before: ${loadBefore}; after: ${loadAfter}`);
  console.log(`  apply -f            ${cell(s.apply, 1, ' s')}  (${((s.apply.median * 1000) / OBJECTS).toFixed(2)} ms per object)  target ≤ ${TARGET_CLI_S} s  ${met(s.apply, TARGET_CLI_S)}`);
  console.log(`    CLI peak RSS      ${cell(s.applyRss, 0, ' MiB')}`);
  console.log(`    agents converged  ${cell(s.applyConverge, 1, ' s')}  after the CLI exits  target ≤ ${TARGET_CONVERGE_S} s  ${met(s.applyConverge, TARGET_CONVERGE_S)}`);
  console.log(`  delete -f           ${cell(s.del, 1, ' s')}  (${((s.del.median * 1000) / OBJECTS).toFixed(2)} ms per object)  target ≤ ${TARGET_CLI_S} s  ${met(s.del, TARGET_CLI_S)}`);
  console.log(`    CLI peak RSS      ${cell(s.delRss, 0, ' MiB')}`);
  console.log(`    agents converged  ${cell(s.delConverge, 1, ' s')}  after the CLI exits  target ≤ ${TARGET_CONVERGE_S} s  ${met(s.delConverge, TARGET_CONVERGE_S)}`);
}
