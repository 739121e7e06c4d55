// Parsing the runtime's environment and network config: every refusal names
// the variable or field and carries the spec's well-known code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEnv, parseNetConf, parseCniArgs } from './config.ts';
import { CniError } from './errors.ts';
import { resultForVersion } from './types.ts';
import { expectedFromPrevResult } from './check.ts';
import { podOf } from './add.ts';
import { hostIfname } from './pod-wiring.ts';

const goodEnv = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/run/netns/pl-lab-pod-default-web',
  CNI_IFNAME: 'eth0',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
  CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
};
const goodConf = { cniVersion: '1.0.0', name: 'palisade', type: 'palisade-cni', ipam: { type: 'host-local' } };

function refusal(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CniError, String(err));
    return err;
  }
  assert.fail('expected a CniError');
}

test('a good environment', () => {
  const env = parseEnv(goodEnv);
  assert.equal(env.command, 'ADD');
  assert.equal(env.netnsName, 'pl-lab-pod-default-web');
  assert.deepEqual(env.path, ['/opt/cni/bin', '/usr/lib/cni']);
  assert.equal(env.args.get('K8S_POD_NAME'), 'web');
});

test('DEL may come without CNI_NETNS', () => {
  const { CNI_NETNS: _netns, ...rest } = goodEnv;
  assert.equal(parseEnv({ ...rest, CNI_COMMAND: 'DEL' }).netnsName, undefined);
});

test('environment refusals (code 4) name the variable', () => {
  const cases: [Record<string, string | undefined>, RegExp][] = [
    [{ CNI_COMMAND: undefined }, /^CNI_COMMAND is not set/],
    [{ CNI_COMMAND: 'FROB' }, /^CNI_COMMAND "FROB" is not one of/],
    [{ CNI_CONTAINERID: '' }, /^CNI_CONTAINERID is not set/],
    [{ CNI_CONTAINERID: '-x' }, /^CNI_CONTAINERID "-x"/],
    [{ CNI_IFNAME: 'a-very-long-ifname0' }, /^CNI_IFNAME/],
    [{ CNI_IFNAME: 'eth 0' }, /^CNI_IFNAME/],
    [{ CNI_NETNS: undefined }, /^CNI_NETNS is not set/],
    [{ CNI_NETNS: '/proc/1/ns/net' }, /^CNI_NETNS .* must be a named namespace/],
    [{ CNI_NETNS: '/run/netns/a/b' }, /^CNI_NETNS/],
    [{ CNI_PATH: '' }, /^CNI_PATH is not set/],
    [{ CNI_ARGS: 'novalue' }, /^CNI_ARGS has "novalue"/],
  ];
  for (const [change, msg] of cases) {
    const err = refusal(() => parseEnv({ ...goodEnv, ...change }));
    assert.equal(err.code, 4, msg.source);
    assert.match(err.message, msg);
  }
});

test('network config refusals carry 6 (not JSON), 1 (version) or 7 (config), naming the field', () => {
  const cases: [string, number, RegExp][] = [
    ['nope', 6, /not JSON/],
    ['[]', 6, /JSON object/],
    [JSON.stringify({ ...goodConf, cniVersion: undefined }), 7, /"cniVersion" is required/],
    [JSON.stringify({ ...goodConf, cniVersion: '0.2.0' }), 1, /cniVersion "0\.2\.0" is not supported/],
    [JSON.stringify({ ...goodConf, name: '_x' }), 7, /"name"/],
    [JSON.stringify({ ...goodConf, type: 5 }), 7, /"type" is required/],
    [JSON.stringify({ ...goodConf, ipam: undefined }), 7, /"ipam" is required/],
    [JSON.stringify({ ...goodConf, ipam: 'host-local' }), 7, /"ipam" must be an object/],
    [JSON.stringify({ ...goodConf, ipam: { subnet: '10.0.0.0/8' } }), 7, /"ipam\.type" is required/],
    [JSON.stringify({ ...goodConf, ipam: { type: '../../bin/sh' } }), 7, /"ipam\.type" .* not a path/],
    [JSON.stringify({ ...goodConf, agentSocket: 'agent.sock' }), 7, /"agentSocket" must be an absolute path/],
    [JSON.stringify({ ...goodConf, dns: [] }), 7, /"dns" must be an object/],
  ];
  for (const [raw, code, msg] of cases) {
    const err = refusal(() => parseNetConf(raw));
    assert.equal(err.code, code, raw);
    assert.match(err.message, msg, raw);
  }
});

test('the config is kept byte for byte for the IPAM plugin', () => {
  const raw = ' {"cniVersion":"0.4.0","name":"palisade","type":"palisade-cni","ipam":{"type":"host-local","x":1}}\n';
  const conf = parseNetConf(raw);
  assert.equal(conf.raw, raw);
  assert.equal(conf.cniVersion, '0.4.0');
  assert.equal(conf.agentSocket, undefined);
});

test('CNI_ARGS', () => {
  assert.deepEqual([...parseCniArgs('A=1;B=x=y;;C=')], [['A', '1'], ['B', 'x=y'], ['C', '']]);
  assert.equal(parseCniArgs(undefined).size, 0);
});

test('results: 1.0.0 as is, 0.3.x/0.4.0 with ips[].version', () => {
  const r = { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', interface: 1 }, { address: 'fd00::2/64', interface: 1 }] };
  assert.deepEqual(resultForVersion(r, '1.0.0'), r);
  assert.deepEqual(resultForVersion(r, '0.4.0').ips?.map((ip) => (ip as { version: string }).version), ['4', '6']);
  assert.equal(resultForVersion(r, '0.3.1').cniVersion, '0.3.1');
});

test('hostIfname is lxc + 12 hex and fits IFNAMSIZ', () => {
  const name = hostIfname('abc123');
  assert.match(name, /^lxc[0-9a-f]{12}$/);
  assert.equal(name, hostIfname('abc123'));
  assert.notEqual(name, hostIfname('abc124'));
});

test('CHECK reads the pod interface, address and MACs from prevResult', () => {
  const env = parseEnv({ ...goodEnv, CNI_COMMAND: 'CHECK' });
  const prev = {
    interfaces: [{ name: hostIfname('abc123'), mac: 'aa:aa:aa:aa:aa:aa' }, { name: 'eth0', mac: 'bb:bb:bb:bb:bb:bb', sandbox: goodEnv.CNI_NETNS }],
    ips: [{ address: '10.244.1.7/24', interface: 1 }],
  };
  assert.deepEqual(expectedFromPrevResult(prev, env), { ip: '10.244.1.7', podMac: 'bb:bb:bb:bb:bb:bb', hostMac: 'aa:aa:aa:aa:aa:aa' });
  assert.match(refusal(() => expectedFromPrevResult(undefined, env)).message, /prevResult is required/);
  assert.match(refusal(() => expectedFromPrevResult({ ...prev, ips: [] }, env)).message, /prevResult\.ips has no IPv4/);
  assert.match(refusal(() => expectedFromPrevResult({ ...prev, interfaces: [prev.interfaces[0]] }, env)).message, /prevResult\.interfaces has no "eth0"/);
});

test('with an agent, CNI_ARGS must name the pod', () => {
  assert.deepEqual(podOf(parseEnv(goodEnv)), { namespace: 'default', pod: 'web' });
  const err = refusal(() => podOf(parseEnv({ ...goodEnv, CNI_ARGS: 'K8S_POD_NAME=web' })));
  assert.equal(err.code, 4);
  assert.match(err.message, /K8S_POD_NAMESPACE and K8S_POD_NAME/);
});
