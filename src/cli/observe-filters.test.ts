/** `palisade observe` flags → FlowFilters (Hubble's rules), and the command end to end with in-memory sources. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { FlowFilterError, type FlowFilter, FlowStore, parseFlowsQuery } from '../flows/index.ts';
import type { FlowSource } from '../flows/index.ts';
import { allowFlow, dropFlow, httpFlow, at } from '../../test/kit/flows.ts';
import { filtersFromFlags, type FilterFlag } from './observe-filters.ts';
import { registerObserve } from './observe-command.ts';

const cases: [name: string, flags: FilterFlag[], whitelist: FlowFilter[], blacklist?: FlowFilter[]][] = [
  ['no flags', [], []],
  ['--from-pod', [['from-pod', 'default/a']], [{ source_pod: ['default/a'] }]],
  ['--to-pod without namespace is in default', [['to-pod', 'a']], [{ destination_pod: ['default/a'] }]],
  ['--pod is either side: two filters', [['pod', 'default/a']], [{ source_pod: ['default/a'] }, { destination_pod: ['default/a'] }]],
  ['--pod twice: alternatives on each side', [['pod', 'x/a'], ['pod', 'x/b']], [{ source_pod: ['x/a', 'x/b'] }, { destination_pod: ['x/a', 'x/b'] }]],
  ['--namespace qualifies --pod', [['namespace', 'prod'], ['pod', 'a']], [{ source_pod: ['prod/a'] }, { destination_pod: ['prod/a'] }]],
  ['--namespace alone: pods of the namespace', [['namespace', 'prod']], [{ source_pod: ['prod/'] }, { destination_pod: ['prod/'] }]],
  ['--from-ip --to-ip: one filter with both', [['from-ip', '1.1.1.1'], ['to-ip', '2.2.2.2']], [{ source_ip: ['1.1.1.1'], destination_ip: ['2.2.2.2'] }]],
  ['--ip with --verdict: verdict on both sides', [['ip', '10.0.0.0/8'], ['verdict', 'dropped']], [
    { source_ip: ['10.0.0.0/8'], verdict: ['DROPPED'] },
    { destination_ip: ['10.0.0.0/8'], verdict: ['DROPPED'] },
  ]],
  ['--verdict list', [['verdict', 'DROPPED,AUDIT']], [{ verdict: ['DROPPED', 'AUDIT'] }]],
  ['--type', [['type', 'policy-verdict'], ['type', 'trace:to-endpoint']], [{ event_type: [{ type: 9 }, { type: 4, match_sub_type: true, sub_type: 0 }] }]],
  ['--protocol', [['protocol', 'TCP']], [{ protocol: ['tcp'] }]],
  ['--port either side', [['port', '53']], [{ source_port: ['53'] }, { destination_port: ['53'] }]],
  ['--to-port --from-port', [['to-port', '80'], ['from-port', '1234']], [{ destination_port: ['80'], source_port: ['1234'] }]],
  ['http flags', [['http-method', 'get'], ['http-path', '^/api'], ['http-status', '5+']], [{ http_method: ['GET'], http_path: ['^/api'], http_status_code: ['5+'] }]],
  ['--dns-query', [['dns-query', 'github']], [{ dns_query: ['github'] }]],
  ['--fqdn either side', [['fqdn', '*.github.com']], [{ source_fqdn: ['*.github.com'] }, { destination_fqdn: ['*.github.com'] }]],
  ['--to-fqdn', [['to-fqdn', 'api.github.com']], [{ destination_fqdn: ['api.github.com'] }]],
  ['--label either side', [['label', 'k8s:app=x']], [{ source_label: ['k8s:app=x'] }, { destination_label: ['k8s:app=x'] }]],
  ['--from-label --to-label', [['from-label', 'app=a'], ['to-label', 'app=b']], [{ source_label: ['app=a'], destination_label: ['app=b'] }]],
  ['--node', [['node', 'node1']], [{ node_name: ['node1'] }]],
  ['--traffic-direction', [['traffic-direction', 'ingress']], [{ traffic_direction: ['INGRESS'] }]],
  ['--not negates the next flag only', [['not', ''], ['verdict', 'FORWARDED'], ['to-pod', 'default/b']], [{ destination_pod: ['default/b'] }], [{ verdict: ['FORWARDED'] }]],
  ['--not twice: one blacklist pair, fields AND (as Hubble)', [['not', ''], ['verdict', 'DROPPED'], ['not', ''], ['from-pod', 'x/a']], [], [{ verdict: ['DROPPED'], source_pod: ['x/a'] }]],
  ['--not --pod: either side in the blacklist', [['not', ''], ['pod', 'kube-system/']], [], [{ source_pod: ['kube-system/'] }, { destination_pod: ['kube-system/'] }]],
];

for (const [name, flags, whitelist, blacklist = []] of cases) {
  test(`flags: ${name}`, () => assert.deepEqual(filtersFromFlags(flags), { whitelist, blacklist }));
}

test('bad flag values are FlowFilterErrors', () => {
  const bad: FilterFlag[][] = [[['verdict', 'MAYBE']], [['type', 'nonsense']], [['from-identity', 'x']], [['not', '']], [['bogus', '1']], [['ip-version', '5']], [['tcp-flags', 'SYN,XYZ']]];
  for (const flags of bad) assert.throws(() => filtersFromFlags(flags), FlowFilterError, JSON.stringify(flags));
});

function storeSource(node: string, store: FlowStore, seen: string[]): FlowSource {
  return {
    node,
    fetch: (qs, signal) => {
      seen.push(qs);
      return store.query({ ...parseFlowsQuery(new URLSearchParams(qs)), signal });
    },
  };
}

async function observe(args: string[], sources: FlowSource[]): Promise<string> {
  const program = new Command('palisade').exitOverride();
  registerObserve(program, { sources: async () => sources });
  let out = '';
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => { out += chunk; return true; }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['observe', ...args], { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return out;
}

test('palisade observe: two nodes, flags in order, --not, default --last 20, json and compact output', async () => {
  const n1 = new FlowStore({ nodeName: 'node1' });
  const n2 = new FlowStore({ nodeName: 'node2' });
  n1.addFlow(dropFlow(at(1)));
  n2.addFlow(httpFlow(at(2)));
  n1.addFlow(allowFlow(at(3)));
  const queries: string[] = [];
  const sources = [storeSource('node1', n1, queries), storeSource('node2', n2, queries)];

  const json = await observe(['-o', 'json', '--pod', 'default/frontend', '--not', '--type', 'policy-verdict'], sources);
  const lines = json.trimEnd().split('\n').map((l) => JSON.parse(l) as { flow: { verdict: string; Type: string }; node_name: string });
  assert.deepEqual(lines.map((l) => `${l.node_name}:${l.flow.verdict}:${l.flow.Type}`), ['node1:DROPPED:L3_L4', 'node2:FORWARDED:L7']);
  const q = new URLSearchParams(queries[0]);
  assert.equal(q.get('last'), '20');
  assert.equal(q.getAll('whitelist').length, 2);
  assert.deepEqual(JSON.parse(q.get('blacklist') ?? ''), { event_type: [{ type: 9 }] });

  const compact = await observe(['--verdict', 'DROPPED'], sources);
  assert.match(compact, /default\/frontend:43210 \(ID:1234\) -> default\/backend:80 \(ID:5678\) Policy denied DROPPED \(TCP Flags: SYN\) POLICY_DENIED/);
  assert.equal(compact.trimEnd().split('\n').length, 1);

  await assert.rejects(observe(['--verdict', 'MAYBE'], sources), /verdict/);
  await assert.rejects(observe(['-o', 'yaml'], sources), /--output/);
});
