/**
 * The bypass made visible: a named counter in a chain on the forward hook,
 * at a priority before any other filter (and before the 2,000 bench rules),
 * counting packets from one pod range to another. Kernel routing sends
 * every pod → pod packet through it; eBPF host routing none.
 */
import { run } from '../../src/kernel/exec.ts';

const TABLE = 'pl_bench_count';

export async function installForwardCounter(netns: string, podCIDRs: readonly string[]): Promise<void> {
  const set = `{ ${podCIDRs.join(', ')} }`;
  const script = [
    `table inet ${TABLE} {`,
    '  counter podpod { }',
    '  chain forward {',
    '    type filter hook forward priority filter - 100; policy accept;',
    `    ip saddr ${set} ip daddr ${set} counter name podpod`,
    '  }',
    '}',
  ].join('\n');
  await run('nft', ['-f', '-'], { input: script + '\n', netns });
}

/** Packets counted so far. */
export async function forwardHookCount(netns: string): Promise<number> {
  const r = await run('nft', ['-j', 'list', 'counter', 'inet', TABLE, 'podpod'], { netns });
  const doc = JSON.parse(r.stdout) as { nftables: { counter?: { packets: number } }[] };
  return doc.nftables.find((o) => o.counter)?.counter?.packets ?? 0;
}

export async function resetForwardCounter(netns: string): Promise<void> {
  await run('nft', ['reset', 'counter', 'inet', TABLE, 'podpod'], { netns });
}
