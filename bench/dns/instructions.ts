/**
 * bench/dns/instructions: the proxy's user-space instructions per query,
 * counted by valgrind (callgrind), which — unlike q/s and CPU time — does
 * not change with what else runs on the machine. Root; the rig of run.ts
 * (rig.ts: its own namespaces, removed at the end).
 *
 *   the proxy child runs under `valgrind --tool=callgrind` (Node's JIT:
 *   --smc-check=all-non-file); after a warm-up, counters are zeroed
 *   (callgrind_control -z), dnsperf sends QUERIES at RATE q/s (low: the
 *   proxy runs ~50× slower under valgrind), the counters are dumped
 *   (callgrind_control -d) and their total Ir divided by the answers.
 *   Two passes: warm names (IPs known: the fast path) and cold names (each
 *   new: learned, held for onLearned).
 *
 * Kernel work (the syscalls' own cost) is not counted; run.ts's CPU time is.
 *
 *   node bench/dns/instructions.ts [--queries 10000] [--rate 400] [--child path/to/dns-proxy-test-child.ts] [--keep DIR]
 */
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CHILD, DnsRig, loadavg, PROXIED, sh, WARM_NAMES } from './rig.ts';
import { needProgram } from '../tools.ts';

if (process.getuid?.() !== 0) throw new Error('bench/dns/instructions: must run as root');
const { values } = parseArgs({
  options: {
    queries: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '400' },
    child: { type: 'string', default: CHILD },
    /** Keep the callgrind dumps here (for callgrind_annotate). */
    keep: { type: 'string' },
  },
});
const QUERIES = Number(values.queries);
const RATE = Number(values.rate);

/** Total instructions in the newest callgrind dump in `dir`. */
function dumpedInstructions(dir: string, seen: Set<string>): number {
  const files = readdirSync(dir).filter((f) => f.startsWith('cg.out') && !seen.has(f));
  if (files.length === 0) throw new Error('callgrind wrote no dump');
  let total = 0;
  for (const f of files) {
    seen.add(f);
    if (values.keep) copyFileSync(join(dir, f), join(values.keep, f));
    const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
    total += Number(m?.[1] ?? 0);
  }
  return total;
}

async function main(): Promise<void> {
  needProgram('dnsperf');
  needProgram('valgrind');
  const rig = new DnsRig();
  const load0 = await loadavg();
  try {
    await rig.up();
    const cgOut = join(rig.dir, 'cg.out');
    const proxy = await rig.startProxy(
      ['taskset', '-c', '0', 'valgrind', '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${cgOut}`, process.execPath],
      300_000,
      values.child, // e.g. an older tree's, to compare
    );
    const pid = String(proxy.proc.pid);
    const warm = rig.queryFile('warm.txt', Array.from({ length: QUERIES }, (_, i) => WARM_NAMES[i % WARM_NAMES.length]!));
    const cold = rig.queryFile('cold.txt', Array.from({ length: QUERIES }, (_, i) => `u${i}.cold.bench.test`));
    const seen = new Set<string>();
    // Warm-up: the JIT's tiers and the warm names' IPs.
    await rig.dnsperf(PROXIED, warm, { onePass: true, rate: RATE, outstanding: 1000 });
    const measure = async (file: string): Promise<{ instructionsPerQuery: number; answered: number }> => {
      await sh(['callgrind_control', '-z', pid]);
      const r = await rig.dnsperf(PROXIED, file, { onePass: true, rate: RATE, outstanding: 1000 });
      await sh(['callgrind_control', '-d', pid]);
      await new Promise((res) => setTimeout(res, 1000));
      return { instructionsPerQuery: Math.round(dumpedInstructions(rig.dir, seen) / r.completed), answered: r.completed };
    };
    const w = await measure(warm);
    const c = await measure(cold);
    console.log(`bench/dns/instructions  load average before ${load0}, after ${await loadavg()} (does not affect the counts)`);
    console.log(`  warm names (IPs known): ${w.instructionsPerQuery} instructions/query over ${w.answered} answers`);
    console.log(`  cold names (learned):   ${c.instructionsPerQuery} instructions/query over ${c.answered} answers`);
  } finally {
    await rig.down();
  }
}

await main();
