/**
 * bench/policy: the policy engine at scale.
 *
 *   1,000 policies (CNP, KNP, CCNP; L3, L4, L7, CIDR, FQDN) over 10,000 pods
 *   in 100 namespaces → full compile time and memory, time to absorb one new
 *   pod and one changed policy, and verdicts per second from the compiled form.
 *
 * Targets (issue #2): full compile ≤ 2 s, one change ≤ 20 ms, ≥ 1,000,000 verdicts/s.
 * Run: node --expose-gc bench/policy/run.ts [--json]
 */
import { performance } from 'node:perf_hooks';
import { PolicyEngine, decide, decisionAllows, type Peer } from '../../src/policy/index.ts';
import { NAMESPACES, objects, pod, PODS_PER_NS, policy } from './cluster.ts';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

function ms(t0: number): number {
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const objs = objects();
gc();
const heap0 = process.memoryUsage().heapUsed;
const t0 = performance.now();
const engine = new PolicyEngine();
engine.batch((e) => {
  for (const o of objs) e.upsert(o);
});
const snap = engine.snapshot();
const compileMs = ms(t0);
gc();
const heapMiB = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
const stats = engine.stats;

// One new pod with labels no pod had before (a new identity: the expensive case), repeated.
const podTimes: number[] = [];
for (let k = 0; k < 20; k++) {
  const p = pod(k, 1000 + k, { canary: `c${k}` });
  const t = performance.now();
  engine.upsert(p);
  engine.snapshot();
  podTimes.push(ms(t));
}

// One changed policy (a port edit), repeated on different namespaces.
const policyTimes: number[] = [];
for (let k = 0; k < 20; k++) {
  const t = performance.now();
  engine.upsert(policy(k * 3, 1, 9000 + k));
  engine.snapshot();
  policyTimes.push(ms(t));
}

// Verdicts from the compiled form: both directions of random pod pairs.
const eps = [...snap.endpoints()];
const N = 1 << 16;
const srcs: { policy: ReturnType<typeof snap.policyOfIdentity>; peer: Peer }[] = [];
const dsts: typeof srcs = [];
const ports = new Uint16Array(N);
let seed = 42;
const rnd = (n: number): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed % n;
};
const asPeer = (ep: (typeof eps)[number]): Peer => ({ identity: ep.identity, ip: ep.ips[0] ?? '', namedPorts: ep.namedPorts });
for (let i = 0; i < N; i++) {
  const s = eps[rnd(eps.length)]!;
  const d = rnd(4) === 0 ? eps[rnd(eps.length)]! : eps.find((e) => e.namespace === s.namespace && e.name === `pod-${rnd(PODS_PER_NS)}`) ?? s;
  srcs.push({ policy: snap.policyOfIdentity(s.identity), peer: asPeer(s) });
  dsts.push({ policy: snap.policyOfIdentity(d.identity), peer: asPeer(d) });
  ports[i] = [8080, 22, 443, 9000][rnd(4)]!;
}
const noFqdn = (): readonly string[] => [];
let allowed = 0;
const VERDICTS = 3_000_000;
const tv = performance.now();
for (let i = 0; i < VERDICTS; i++) {
  const k = i & (N - 1);
  const s = srcs[k]!;
  const d = dsts[k]!;
  const port = ports[k]!;
  const egOk = !s.policy || decisionAllows(decide(s.policy.egress, d.peer, 'TCP', port, d.peer.namedPorts, noFqdn));
  const igOk = !d.policy || decisionAllows(decide(d.policy.ingress, s.peer, 'TCP', port, d.peer.namedPorts, noFqdn));
  if (egOk && igOk) allowed++;
}
const verdictSec = ms(tv) / 1000;
const verdictsPerSec = VERDICTS / verdictSec;

const result = {
  workload: { namespaces: NAMESPACES, pods: stats.endpoints, policies: stats.policies, rules: stats.rules, identities: stats.identities, selectors: stats.selectors },
  fullCompileMs: Math.round(compileMs),
  fullCompileHeapMiB: Math.round(heapMiB * 10) / 10,
  newPodMs: { median: +median(podTimes).toFixed(2), max: +Math.max(...podTimes).toFixed(2) },
  changedPolicyMs: { median: +median(policyTimes).toFixed(2), max: +Math.max(...policyTimes).toFixed(2) },
  verdictsPerSec: Math.round(verdictsPerSec),
  allowedShare: +(allowed / VERDICTS).toFixed(3),
};
const targets = [
  ['full compile ≤ 2 s', result.fullCompileMs <= 2000],
  ['one new pod ≤ 20 ms (median)', result.newPodMs.median <= 20],
  ['one changed policy ≤ 20 ms (median)', result.changedPolicyMs.median <= 20],
  ['≥ 1,000,000 verdicts/s', result.verdictsPerSec >= 1_000_000],
] as const;

if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ ...result, targets: Object.fromEntries(targets) }));
} else {
  const w = result.workload;
  console.log(`bench/policy — ${w.policies} policies (${w.rules} rules), ${w.pods} pods in ${w.namespaces} namespaces, ${w.identities} identities, ${w.selectors} selectors`);
  console.log(`  full compile         ${result.fullCompileMs} ms, ${result.fullCompileHeapMiB} MiB heap`);
  console.log(`  one new pod          ${result.newPodMs.median} ms median, ${result.newPodMs.max} ms max (new identity)`);
  console.log(`  one changed policy   ${result.changedPolicyMs.median} ms median, ${result.changedPolicyMs.max} ms max`);
  console.log(`  verdicts             ${(result.verdictsPerSec / 1e6).toFixed(2)} M/s (egress+ingress each; ${Math.round(result.allowedShare * 100)} % allowed)`);
  for (const [name, ok] of targets) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${name}`);
}
