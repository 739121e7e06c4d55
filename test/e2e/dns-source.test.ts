/**
 * The DNS proxy asks in the pod's name (root; the datapath of
 * $PALISADE_E2E_DATAPATH): every query a DNS rule steers to the node's proxy
 * goes on to kube-dns from the querying pod's own address, over UDP and TCP,
 * as Cilium's proxy sends it. So kube-dns's ingress policy judges the pod,
 * not the node, and kube-dns's log shows the real client.
 *
 *   allowed/near, blocked/near   node-1 (kube-dns's node: the proxy sends to a pod of its own node)
 *   allowed/far,  blocked/far    node-2 (the query crosses the underlay)
 *   a DNS rule (rules.dns) in force for every pod of both namespaces;
 *   a NetworkPolicy on kube-dns admitting only namespace `allowed`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { labName, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';
import { containerLogPath } from '../../src/lab/paths.ts';
import { DNS_POD } from '../../src/lab/cluster-dns.ts';
import { dnsThroughProxy } from '../kit/manifests.ts';

requireRoot();
let lab: TestLab;

const PODS = { near: 'node-1', far: 'node-2' } as const;
type Where = keyof typeof PODS;
const NAMESPACES = ['allowed', 'blocked'] as const;

const dnsRule = (ns: string): string => `---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: dns-through-proxy, namespace: ${ns}}
spec:
  endpointSelector: {}
  egress:
${dnsThroughProxy('*')}`;

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: allowed, labels: {dns-access: granted}}
---
apiVersion: v1
kind: Namespace
metadata: {name: blocked}
${NAMESPACES.flatMap((ns) => Object.entries(PODS).map(([pod, node]) => `---\napiVersion: v1\nkind: Pod\nmetadata: {name: ${pod}, namespace: ${ns}, labels: {app: client}}\nspec: {nodeName: ${node}, containers: [{name: c}]}`)).join('\n')}
${dnsRule('allowed')}
${dnsRule('blocked')}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns-for-allowed-only, namespace: kube-system}
spec:
  podSelector: {matchLabels: {k8s-app: kube-dns}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {dns-access: granted}}}]
    ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
`;

before(async () => {
  lab = await startLab(labName('e2eds'), 2);
  lab.apply(APP);
  // Pods and policies are in place once a pod next to kube-dns gets answers.
  await within(15_000, 'allowed/near resolves', async () => (await dig('allowed', 'near', 'kube-dns.kube-system.svc.cluster.local', 'udp')).status === 'NOERROR');
});
after(async () => {
  await lab?.down();
});

/** dig from a pod: the answer's status, or "no answer". */
async function dig(ns: string, pod: Where, name: string, transport: 'udp' | 'tcp', timeS = 2): Promise<{ status: string; ips: string[] }> {
  const r = await lab.execInAsync(ns, pod, ['dig', `+time=${timeS}`, '+tries=1', ...(transport === 'tcp' ? ['+tcp'] : []), `${name}.`]);
  return {
    status: /status: (\w+)/.exec(r.out)?.[1] ?? 'no answer',
    ips: [...r.out.matchAll(/\sIN\s+A\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!),
  };
}

function podIp(ns: string, pod: Where): string {
  const r = lab.execIn(ns, pod, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
  const ip = /inet (\d+\.\d+\.\d+\.\d+)/.exec(r.out)?.[1];
  assert.ok(ip, `${ns}/${pod} has an address: ${r.out}${r.err}`);
  return ip;
}

/** The client addresses kube-dns logged for `name` (dnsmasq --log-queries: "query[A] NAME from ADDRESS"). */
async function kubeDnsClients(name: string): Promise<string[]> {
  const log = await readFile(containerLogPath(lab.name, DNS_POD.namespace, DNS_POD.name, 'dnsmasq'), 'utf8');
  return [...log.matchAll(/query\[A\] (\S+) from (\S+)/g)].filter((m) => m[1] === name).map((m) => m[2]!);
}

/** A name only this query asks: kube-dns answers it NXDOMAIN itself (its cluster.local is local). */
const probeName = (ns: string, pod: Where, transport: string): string => `${transport}-${ns}-${pod}.probe.cluster.local`;

for (const transport of ['udp', 'tcp'] as const) {
  test(`${transport}: pods of namespace allowed resolve, and kube-dns sees each query come from the pod's own address`, async () => {
    for (const pod of Object.keys(PODS) as Where[]) {
      const service = await dig('allowed', pod, 'kube-dns.kube-system.svc.cluster.local', transport);
      assert.equal(service.status, 'NOERROR', `allowed/${pod}`);
      assert.deepEqual(service.ips, ['10.96.0.10']);
      const name = probeName('allowed', pod, transport);
      assert.equal((await dig('allowed', pod, name, transport)).status, 'NXDOMAIN', `allowed/${pod}: kube-dns answered`);
      // dnsmasq writes its log line as it answers: present by the time dig has the answer, but read again briefly.
      const ip = podIp('allowed', pod);
      await within(2000, `kube-dns logged ${name}`, async () => (await kubeDnsClients(name)).length > 0);
      assert.deepEqual(await kubeDnsClients(name), [ip], `allowed/${pod}: from the pod (${ip}), never the node`);
    }
  });

  test(`${transport}: pods of namespace blocked get no answer: their queries, sent in their name, are refused entry to kube-dns`, async () => {
    for (const pod of Object.keys(PODS) as Where[]) {
      const name = probeName('blocked', pod, transport);
      // SERVFAIL from the proxy (it judged kube-dns's policy, or kube-dns never answered), or nothing at all.
      const r = await dig('blocked', pod, name, transport, 4);
      assert.ok(r.status === 'SERVFAIL' || r.status === 'no answer', `blocked/${pod}: ${r.status}`);
      assert.deepEqual(await kubeDnsClients(name), [], `blocked/${pod}: kube-dns never saw the query`);
      if (r.status !== 'SERVFAIL') continue; // dropped before the proxy saw it (eBPF judges kube-dns's ingress where the pod's packet enters)
      // The proxy's record: the query dropped, and not blamed on the DNS rule that allowed the name.
      await within(3000, `a DROPPED DNS record for ${name}`, async () => {
        const out = lab.cli(['observe', '--protocol', 'dns', '--verdict', 'DROPPED', '--dns-query', name, '--from-pod', `blocked/${pod}`, '-o', 'json', '--last', '5']).out;
        const records = out.split('\n').filter((l) => l.includes(name));
        return records.length > 0 && records.every((l) => !l.includes('egress_denied_by'));
      });
    }
  });
}
