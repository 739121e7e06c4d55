/**
 * bench/ebpf: what eBPF host routing buys over kernel routing, pod → pod,
 * with 2,000 non-matching nftables rules in the node's forward chain (the
 * iptables-heavy node the feature is sold against).
 *
 *   topology: src/datapath/ebpf/test-topology.ts (node-1: pods a, b; node-2: pod c)
 *   1. eBPF datapath, no policy: a → b (same node), a → c (across nodes)
 *   2. the same with 2,000 forward rules on both nodes
 *   3. the programs detached (kernel routing, /32 routes, ip_forward) with the 2,000 rules
 *   4. kernel routing without the rules
 *   iperf3, one TCP stream, --seconds each.
 *
 * Run as root: node bench/ebpf/run.ts [--seconds 2] [--json]
 */
import { parseArgs } from 'node:util';
import { run } from '../../src/datapath/exec.ts';
import { EbpfTestLab } from '../../src/datapath/ebpf/test-topology.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, json: { type: 'boolean', default: false } } });
const seconds = Number(values.seconds);
if (process.getuid?.() !== 0) throw new Error('bench/ebpf needs root');

const lab = new EbpfTestLab();
const results: { case: string; path: string; gbps: number }[] = [];
try {
  const agents = await lab.create();
  for (const n of lab.nodes) await agents.get(n.name)!.call('apply', { world: lab.world(n.name) });
  const measure = async (label: string): Promise<void> => {
    for (const [path, to] of [['same node a→b', 'b'], ['across nodes a→c', 'c']] as const) {
      results.push({ case: label, path, gbps: (await lab.iperf('a', to, seconds)) / 1e9 });
    }
  };
  await measure('ebpf');
  for (const n of lab.nodes) await lab.addDummyForwardRules(n.name, 2000);
  await measure('ebpf + 2000 forward rules');
  for (const n of lab.nodes) await agents.get(n.name)!.call('detach');
  await measure('kernel routing + 2000 forward rules');
  for (const n of lab.nodes) await run('nft', ['delete', 'table', 'inet', 'pl_bench'], { netns: n.netns });
  await measure('kernel routing');
} finally {
  await lab.destroy();
}
if (values.json) console.log(JSON.stringify(results));
else for (const r of results) console.log(`${r.case.padEnd(38)} ${r.path.padEnd(18)} ${r.gbps.toFixed(2)} Gbit/s`);
