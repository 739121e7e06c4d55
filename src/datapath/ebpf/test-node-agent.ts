/**
 * Test support: a stand-in for the node agent, run INSIDE a node namespace
 * (`ip netns exec <node> node test-node-agent.ts <pinDir>`), owning one
 * EbpfDatapath. It reads one JSON command per stdin line and answers one JSON
 * line on stdout:
 *
 *   {"id":1,"cmd":"wire","pod":{podNetns,ifname,hostIfname,ip,gateway}}   → pod wiring (pod-wiring.ts)
 *   {"id":2,"cmd":"setup","node":NodeNetwork,"peers":PeerNode[]}
 *   {"id":3,"cmd":"apply","world":World}                                 → ApplyResult
 *   {"id":4,"cmd":"status"} / "drops" / "counters" / "events" (collected so far, then cleared)
 *   {"id":5,"cmd":"detach"}  {"id":6,"cmd":"exit"}
 *
 * The policy state is built here from plain Kubernetes-shaped objects with a
 * PolicyEngine, as the agent would: identities are hashes of labels, so every
 * node's process arrives at the same numbers from the same objects.
 */
import { createInterface } from 'node:readline';
import { PolicyEngine } from '../../policy/index.ts';
import type { KubeObject } from '../../k8s/objects.ts';
import { wirePod, type PodWiringSpec } from '../pod-wiring.ts';
import type { LocalEndpoint, NodeNetwork, PeerNode, ServiceEntry } from '../types.ts';
import { EbpfDatapath } from './ebpf-datapath.ts';
import type { DatapathEvent } from './events.ts';

export interface World {
  objects: KubeObject[];
  services: ServiceEntry[];
  localEndpoints: LocalEndpoint[];
  ownAddresses: string[];
  peerAddresses: string[];
}

interface Command {
  id: number;
  cmd: string;
  pod?: PodWiringSpec;
  node?: NodeNetwork;
  peers?: PeerNode[];
  world?: World;
}

const pinDir = process.argv[2];
if (!pinDir) throw new Error('usage: test-node-agent.ts <pinDir>');
const dp = new EbpfDatapath({ pinDir });
const events: DatapathEvent[] = [];
let reading = false;

async function handle(c: Command): Promise<unknown> {
  switch (c.cmd) {
    case 'wire':
      return wirePod(c.pod!);
    case 'setup':
      await dp.setupNode(c.node!, c.peers ?? []);
      if (!reading) {
        dp.onEvents((e) => events.push(e));
        reading = true;
      }
      return { ok: true };
    case 'apply': {
      const w = c.world!;
      const engine = new PolicyEngine();
      engine.batch((e) => {
        for (const o of w.objects) e.upsert(o);
      });
      return dp.apply({
        snapshot: engine.snapshot(),
        services: w.services,
        localEndpoints: w.localEndpoints,
        ownAddresses: w.ownAddresses,
        peerAddresses: w.peerAddresses,
      });
    }
    case 'status':
      return dp.status();
    case 'drops':
      return dp.dropCounters();
    case 'counters':
      return dp.packetCounters();
    case 'events':
      return events.splice(0);
    case 'detach':
      dp.detachAll();
      return { ok: true };
    case 'exit':
      dp.close();
      setImmediate(() => process.exit(0));
      return { ok: true };
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

// Commands run one at a time, in order, like the agent's serialised applies.
let chain: Promise<void> = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const c = JSON.parse(line) as Command;
  chain = chain.then(async () => {
    try {
      const result = await handle(c);
      process.stdout.write(JSON.stringify({ id: c.id, result }) + '\n');
    } catch (err) {
      process.stdout.write(JSON.stringify({ id: c.id, error: (err as Error).stack ?? String(err) }) + '\n');
    }
  });
});
process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + '\n');
