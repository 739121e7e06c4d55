/**
 * A hostile pod against the node's DNS proxy (root; the datapath of
 * $PALISADE_E2E_DATAPATH). A DNS query sent straight to a node's address on
 * the proxy port, over TCP or UDP, once made the proxy forward to itself
 * again and again: thousands of sockets, the agent at full CPU, Hubble
 * flooded. The proxy takes only traffic the datapath steered to it, so such
 * a query goes unanswered and the node proxy (where the DNS proxy runs) stays
 * as it was, while steered DNS keeps working.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { labName, requireRoot, startLab, type TestLab } from './lab-kit.ts';
import { nodePid } from '../../src/lab/node-processes.ts';
import { pod, dnsThroughProxy } from '../kit/manifests.ts';

requireRoot();
const DNS_PROXY_PORT = 15053;
const NAME = 'kube-dns.kube-system.svc.cluster.local';
let lab: TestLab;

const PODS = `
${pod('default', 'intruder', 'node-1')}${pod('default', 'resolver', 'node-1')}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: resolver-dns, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: resolver}}
  egress:
${dnsThroughProxy('**.cluster.local')}
`;

before(async () => {
  lab = await startLab(labName('e2ehdns'));
  lab.apply(PODS);
});
after(async () => {
  await lab?.down();
});

/** Open descriptors and CPU seconds (user + system) of a process. */
function usage(pid: number): { fds: number; cpuS: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // Fields 14 and 15 of stat (utime, stime), counted from the state field (3).
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { fds: readdirSync(`/proc/${pid}/fd`).length, cpuS: ticks / 100 };
}

async function dig(pod: string, args: string[]): Promise<string> {
  const r = await lab.execInAsync('default', pod, ['dig', '+tries=1', '+time=2', ...args]);
  return r.out + r.err;
}

test('DNS queries aimed at a node’s proxy port (TCP and UDP, this node and the other) go unanswered; the node proxy’s descriptors and CPU stay flat', async () => {
  const pid = nodePid(lab.name, 'node-1', 'proxy');
  const nodeIps = lab.state.nodes.map((n) => n.underlayIp);
  const before = usage(pid);
  // All at once: each one waits out its timeout.
  const probes = nodeIps.flatMap((ip) => ['+tcp', '+notcp'].map((transport) => ({ ip, transport })));
  const outs = await Promise.all(probes.map(({ ip, transport }) => dig('intruder', [transport, `@${ip}`, '-p', String(DNS_PROXY_PORT), NAME])));
  probes.forEach(({ ip, transport }, i) => assert.doesNotMatch(outs[i]!, /status: /, `${transport} to ${ip}:${DNS_PROXY_PORT} got an answer:\n${outs[i]}`));
  // Whatever the queries set off would be running now.
  const settled = usage(pid);
  await new Promise((r) => setTimeout(r, 3000));
  const after = usage(pid);
  const cpu = after.cpuS - settled.cpuS;
  assert.ok(after.fds <= before.fds + 10, `node proxy descriptors ${before.fds} → ${after.fds}`);
  assert.ok(cpu < 0.5, `node proxy CPU over 3 s after the queries: ${cpu.toFixed(2)} s`);
  const flows = lab.cli(['observe', '--last', '2000', '--port', String(DNS_PROXY_PORT), '-o', 'json']);
  assert.equal(flows.code, 0, flows.err);
  const records = flows.out.split('\n').filter(Boolean);
  assert.ok(records.length < 20, `${records.length} flow records for port ${DNS_PROXY_PORT}: no flood`);
  console.log(`# node proxy: ${before.fds} → ${after.fds} descriptors, ${cpu.toFixed(2)} s CPU in the 3 s after; ${records.length} records for :${DNS_PROXY_PORT}`);
});

test('steered DNS still works: a pod with a DNS rule resolves through the proxy', async () => {
  const out = await dig('resolver', ['@10.96.0.10', NAME]);
  assert.match(out, /status: NOERROR/);
  const refused = await dig('resolver', ['@10.96.0.10', 'example.org']);
  assert.match(refused, /status: REFUSED/, 'a name no rule allows is refused: the query went through the proxy');
});
