// The plugin end to end, as a real subprocess inside a scratch node namespace,
// against real pod namespaces, host-local and fake agents. Needs root; fails
// (never skips) without it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, sysctlIn } from '../kernel/index.ts';
import { hostIfname } from './pod-wiring.ts';
import { EndpointRegistration } from './registration.ts';
import { reaches, runCni, Scratch, type CniCall } from '../../test/kit/cni.ts';

const scratch = new Scratch();
let node = '';
let tmp = '';
const servers: Server[] = [];

const SUBNET = '10.244.1.';
const conf = (extra: Record<string, unknown> = {}, version = '1.0.0') => ({
  cniVersion: version,
  name: 'palisade',
  type: 'palisade-cni',
  ipam: { type: 'host-local', ranges: [[{ subnet: `${SUBNET}0/24` }]], dataDir: join(tmp, 'ipam') },
  ...extra,
});
const newId = () => randomBytes(32).toString('hex');

/** host-local keeps one file per reserved address, named by the address, under <dataDir>/<network name>. */
async function reserved(): Promise<string[]> {
  const dir = join(tmp, 'ipam', 'palisade');
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((f) => f.startsWith(SUBNET));
}

async function linkExists(name: string, netns: string): Promise<boolean> {
  return (await run('ip', ['-n', netns, 'link', 'show', 'dev', name], { allowFailure: true })).code === 0;
}

async function podAddresses(netns: string, ifname = 'eth0'): Promise<string[]> {
  const r = await run('ip', ['-n', netns, '-j', 'addr', 'show', 'dev', ifname]);
  const [link] = JSON.parse(r.stdout) as { addr_info: { family: string; local: string; prefixlen: number }[] }[];
  return (link?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
}

/** A new pod namespace and its ADD; returns what the plugin printed. */
async function addPod(name: string, extra: Record<string, unknown> = {}, version = '1.0.0') {
  const netns = await scratch.netns(`pod-default-${name}`);
  const call: CniCall = { containerId: newId(), netns, pod: name };
  const add = await runCni(node, 'ADD', conf(extra, version), call);
  return { netns, call, add, ip: String(add.out?.ips?.[0]?.address ?? '').split('/')[0] ?? '' };
}

interface Seen {
  method: string;
  url: string;
  body: string;
}

/** An agent on a unix socket in the temp dir, answering `status` to everything. */
async function fakeAgent(file: string, status: number): Promise<{ socket: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(status < 300 ? '{}' : JSON.stringify({ message: 'policy programming failed: test' }));
    });
  });
  servers.push(server);
  const socket = join(tmp, file);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, seen };
}

describe('privileged: palisade-cni in a scratch node namespace', () => {
  before(async () => {
    assert.equal(process.getuid?.(), 0, 'these tests create network namespaces and need root; they are never skipped');
    tmp = await mkdtemp(join(tmpdir(), 'pl-cn-'));
    node = await scratch.netns('node');
    // The node's own address (its underlay IP in a lab), the source of its ARP
    // requests and probes towards pods; on lo, as the kernel here has no dummy
    // module. Forwarding is the lab's job, so the test does it: in the node only.
    await run('ip', ['-n', node, 'addr', 'add', '10.250.0.1/32', 'dev', 'lo']);
    await sysctlIn(node, 'net.ipv4.ip_forward', '1');
  });

  after(async () => {
    for (const s of servers) s.close();
    await scratch.cleanup();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('VERSION lists the supported spec versions', async () => {
    const r = await runCni(node, 'VERSION', { cniVersion: '1.0.0' }, { containerId: '', netns: null });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.out, { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
  });

  test('ADD wires a pod the node reaches, a second pod reaches the first, CHECK passes, DEL undoes it all', async () => {
    const p1 = await addPod('p1');
    assert.equal(p1.add.code, 0, p1.add.stderr);
    const host = hostIfname(p1.call.containerId);
    const r = p1.add.out;
    assert.equal(r.cniVersion, '1.0.0');
    assert.match(r.ips[0].address, /^10\.244\.1\.\d+\/24$/);
    assert.equal(r.ips[0].gateway, '10.244.1.1');
    assert.equal(r.ips[0].interface, 1);
    assert.equal(r.ips[0].version, undefined, '1.0.0 results carry no ips[].version');
    assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
    assert.deepEqual(r.dns, {});
    assert.equal(r.interfaces[0].name, host);
    assert.equal(r.interfaces[0].sandbox, undefined);
    assert.equal(r.interfaces[1].name, 'eth0');
    assert.equal(r.interfaces[1].sandbox, `/run/netns/${p1.netns}`);
    assert.match(r.interfaces[1].mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.deepEqual(await podAddresses(p1.netns), [`${p1.ip}/32`]);
    assert.ok(await linkExists(host, node));
    assert.deepEqual(await reserved(), [p1.ip]);
    assert.ok(await reaches(node, p1.netns, p1.ip), 'node → pod 1');

    const p2 = await addPod('p2');
    assert.equal(p2.add.code, 0, p2.add.stderr);
    assert.notEqual(p2.ip, p1.ip);
    assert.ok(await reaches(p2.netns, p1.netns, p1.ip), 'pod 2 → pod 1 through the node');

    const check = await runCni(node, 'CHECK', conf({ prevResult: r }), p1.call);
    assert.equal(check.code, 0, JSON.stringify(check.out));
    assert.equal(check.out, undefined, 'CHECK prints nothing on success');

    const del = await runCni(node, 'DEL', conf({ prevResult: r }), p1.call);
    assert.equal(del.code, 0, JSON.stringify(del.out));
    assert.equal(await linkExists(host, node), false, 'host veth removed');
    assert.equal(await linkExists('eth0', p1.netns), false, 'pod side removed with it');
    assert.deepEqual(await reserved(), [p2.ip], 'pod 1 address released');

    const again = await runCni(node, 'DEL', conf(), p1.call);
    assert.equal(again.code, 0, 'DEL twice is fine');
    const noNetns = await runCni(node, 'DEL', conf(), { ...p1.call, netns: null });
    assert.equal(noNetns.code, 0, 'DEL without CNI_NETNS is fine');

    assert.equal((await runCni(node, 'DEL', conf(), p2.call)).code, 0);
    assert.deepEqual(await reserved(), []);
  });

  test('CHECK reports what differs from prevResult, and needs prevResult', async () => {
    const p = await addPod('chk');
    assert.equal(p.add.code, 0, p.add.stderr);
    const host = hostIfname(p.call.containerId);
    try {
      await run('ip', ['-n', node, 'link', 'set', 'dev', host, 'down']);
      assert.equal(await reaches(node, p.netns, p.ip), false, 'the probe notices a broken path');
      const down = await runCni(node, 'CHECK', conf({ prevResult: p.add.out }), p.call);
      assert.equal(down.code, 1);
      assert.equal(down.out.code, 999);
      assert.match(down.out.details, new RegExp(`host veth ${host} is down`));

      const noPrev = await runCni(node, 'CHECK', conf(), p.call);
      assert.equal(noPrev.out.code, 7);
      assert.match(noPrev.out.msg, /prevResult/);
    } finally {
      await runCni(node, 'DEL', conf(), p.call);
    }
  });

  test('a retried ADD replaces a stale host veth of the same name', async () => {
    const netns = await scratch.netns('pod-default-retry');
    const call: CniCall = { containerId: newId(), netns, pod: 'retry' };
    // What a half-failed ADD can leave: the node end of a pair whose pod end is elsewhere.
    await run('ip', ['-n', node, 'link', 'add', hostIfname(call.containerId), 'type', 'veth', 'peer', 'name', 'stale0']);
    const add = await runCni(node, 'ADD', conf(), call);
    assert.equal(add.code, 0, add.stderr);
    assert.equal((await runCni(node, 'DEL', conf(), call)).code, 0);
  });

  test('an ADD that fails while wiring releases the address', async () => {
    const netns = await scratch.netns('pod-default-taken');
    const call: CniCall = { containerId: newId(), netns, pod: 'taken' };
    await run('ip', ['-n', netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']);
    const add = await runCni(node, 'ADD', conf(), call);
    assert.equal(add.code, 1);
    assert.equal(add.out.code, 999);
    assert.match(add.out.msg, /File exists|already exists/, add.out.msg);
    assert.equal(await linkExists(hostIfname(call.containerId), node), false);
    assert.deepEqual(await reserved(), []);
  });

  test('a 0.4.0 config gets a 0.4.0 result (ips[].version), and CHECK works with it', async () => {
    const p = await addPod('v04', {}, '0.4.0');
    assert.equal(p.add.code, 0, p.add.stderr);
    assert.equal(p.add.out.cniVersion, '0.4.0');
    assert.equal(p.add.out.ips[0].version, '4');
    const check = await runCni(node, 'CHECK', conf({ prevResult: p.add.out }, '0.4.0'), p.call);
    assert.equal(check.code, 0, JSON.stringify(check.out));
    assert.equal((await runCni(node, 'DEL', conf({}, '0.4.0'), p.call)).code, 0);
  });

  test('bad input gets the well-known error codes, naming the field', async () => {
    const netns = await scratch.netns('pod-default-bad');
    const call: CniCall = { containerId: newId(), netns };
    const { ipam: _ipam, ...noIpam } = conf();
    const cases: [string, unknown, Partial<CniCall>, number, RegExp][] = [
      ['missing ipam', noIpam, {}, 7, /"ipam" is required/],
      ['ipam without type', conf({ ipam: {} }), {}, 7, /"ipam\.type" is required/],
      ['unknown cniVersion', conf({}, '2.0.0'), {}, 1, /cniVersion "2\.0\.0" is not supported/],
      ['not JSON', '{"cniVersion":', {}, 6, /not JSON/],
      ['no CNI_NETNS on ADD', conf(), { netns: null }, 4, /CNI_NETNS is not set/],
      ['a CNI_NETNS that does not exist', conf(), { netns: `${scratch.prefix}nope` }, 4, /does not exist/],
      ['an unknown IPAM plugin', conf({ ipam: { type: 'no-such-ipam' } }), {}, 999, /not found in CNI_PATH/],
    ];
    for (const [name, body, override, code, msg] of cases) {
      const r = await runCni(node, 'ADD', body, { ...call, ...override });
      assert.equal(r.code, 1, name);
      assert.equal(r.out.code, code, `${name}: ${JSON.stringify(r.out)}`);
      assert.match(r.out.msg, msg, name);
      assert.equal(typeof r.out.cniVersion, 'string', name);
    }
    assert.equal(await linkExists(hostIfname(call.containerId), node), false);
    assert.deepEqual(await reserved(), []);
  });

  test('ADD registers the endpoint with the agent and DEL deregisters it', async () => {
    const agent = await fakeAgent('agent-ok.sock', 200);
    const p = await addPod('web', { agentSocket: agent.socket });
    assert.equal(p.add.code, 0, p.add.stderr);
    assert.equal(agent.seen.length, 1);
    const [post] = agent.seen;
    assert.equal(post?.method, 'POST');
    assert.equal(post?.url, '/v1/endpoints');
    assert.deepEqual(JSON.parse(post?.body ?? ''), {
      containerId: p.call.containerId,
      namespace: 'default',
      pod: 'web',
      ifname: 'eth0',
      hostIfname: hostIfname(p.call.containerId),
      ip: p.ip,
      mac: p.add.out.interfaces[1].mac,
      netns: `/run/netns/${p.netns}`,
    });
    // The agent's API validates with this same schema: the plugin's real request passes it.
    assert.equal(EndpointRegistration.safeParse(JSON.parse(post?.body ?? '')).success, true);
    const del = await runCni(node, 'DEL', conf({ agentSocket: agent.socket }), p.call);
    assert.equal(del.code, 0);
    assert.deepEqual(agent.seen.slice(1).map((s) => `${s.method} ${s.url}`), [`DELETE /v1/endpoints/${p.call.containerId}`]);
  });

  test('an agent answering 500 fails the ADD and everything is rolled back', async () => {
    const agent = await fakeAgent('agent-500.sock', 500);
    const p = await addPod('denied', { agentSocket: agent.socket });
    assert.equal(p.add.code, 1);
    assert.equal(p.add.out.code, 999);
    assert.match(p.add.out.msg, /agent refused endpoint default\/denied: HTTP 500: policy programming failed: test/);
    assert.equal(await linkExists(hostIfname(p.call.containerId), node), false, 'veth gone');
    assert.equal(await linkExists('eth0', p.netns), false, 'pod has no eth0');
    assert.deepEqual(await reserved(), [], 'address released');
    assert.deepEqual(agent.seen.map((s) => s.method), ['POST', 'DELETE'], 'the agent is told to forget it');
  });

  test('an agent that comes up late (restarting) is waited for', async () => {
    const socket = join(tmp, 'agent-late.sock');
    const netns = await scratch.netns('pod-default-late');
    const call: CniCall = { containerId: newId(), netns, pod: 'late' };
    const adding = runCni(node, 'ADD', conf({ agentSocket: socket }), call);
    await new Promise((r) => setTimeout(r, 1200));
    const agent = await fakeAgent('agent-late.sock', 200);
    const add = await adding;
    assert.equal(add.code, 0, add.stderr);
    assert.equal(agent.seen.length, 1);
    assert.equal((await runCni(node, 'DEL', conf({ agentSocket: socket }), call)).code, 0);
  });
});
