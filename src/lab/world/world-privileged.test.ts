// PRIVILEGED (root): the outside world in a throw-away lab `w<hex>` — a fabric
// namespace with br0 and one client "node" namespace, nothing in the root
// namespace. Everything (namespaces, processes, /run/palisade/<lab>) goes in `after`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { run, deleteNetns, listNetns, netnsExists, netnsPids } from '../../kernel/index.ts';
import { buildLabNetwork, FABRIC_BRIDGE } from '../lab-network.ts';
import { fabricNetns, labDir, labNetnsPrefix, nodeNetns } from '../paths.ts';
import { isAlive, stopPid } from '../processes.ts';
import {
  addExternalHost,
  ensureLabCa,
  externalHostNetns,
  labCaDir,
  listExternalHosts,
  removeExternalHost,
  startUpstreamDns,
  stopUpstreamDns,
  trustBundlePath,
  writeTrustBundle,
  type ExternalHostHandle,
} from './index.ts';

const lab = `w${randomBytes(4).toString('hex')}`;
const fabric = fabricNetns(lab);
const client = nodeNetns(lab, 'node-1');
const DNS = '172.31.0.1';

async function inClient(cmd: string, args: string[]): Promise<string> {
  return (await run(cmd, args, { netns: client })).stdout;
}
const dig = (name: string, ...extra: string[]): Promise<string> => inClient('dig', [`@${DNS}`, name, '+time=2', '+tries=1', ...extra]);
const br0Mac = async (): Promise<string> => (JSON.parse((await run('ip', ['-n', fabric, '-j', 'link', 'show', 'dev', FABRIC_BRIDGE])).stdout) as { address: string }[])[0]!.address;
const status = async (name: string, ...extra: string[]): Promise<string> => /status: (\w+)/.exec(await dig(name, ...extra))?.[1] ?? '?';

describe('lab world (privileged: namespaces, dnsmasq, curl)', () => {
  let github: ExternalHostHandle;
  let gatewayMac: string;

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'this test builds network namespaces: run it as root');
    assert.ok(existsSync('/usr/sbin/dnsmasq'), 'install the Debian package dnsmasq-base');
    await buildLabNetwork({
      fabricNetns: fabric,
      fabricIp: '172.31.0.1',
      underlayPrefix: 24,
      nodes: [{ name: 'node-1', netns: client, underlayIp: '172.31.0.11', podCIDR: '10.244.1.0/24' }],
    });
    await startUpstreamDns(lab);
    gatewayMac = await br0Mac();
  });

  after(async () => {
    await stopUpstreamDns(lab).catch(() => undefined);
    for (const h of await listExternalHosts(lab).catch(() => [])) await removeExternalHost(lab, h.name).catch(() => undefined);
    // Whatever still runs inside this lab's namespaces was started by this test.
    for (const ns of listNetns(labNetnsPrefix(lab))) for (const pid of await netnsPids(ns)) await stopPid(pid, 500);
    for (const ns of listNetns(labNetnsPrefix(lab))) await deleteNetns(ns);
    if (process.env['WORLD_TEST_KEEP_LOGS']) await run('cp', ['-r', `${labDir(lab)}/logs`, process.env['WORLD_TEST_KEEP_LOGS']]); // debugging: keep the logs
    await rm(labDir(lab), { recursive: true, force: true });
    assert.deepEqual(listNetns(labNetnsPrefix(lab)), [], 'namespaces left behind');
  });

  it('adds an ExternalHost: namespace, 198.18/16 address, world gateway on br0, names in DNS', async () => {
    github = await addExternalHost(lab, { name: 'github', names: ['api.github.com', 'www.github.com'] });
    assert.equal(github.netns, externalHostNetns(lab, 'github'));
    assert.ok(netnsExists(github.netns));
    assert.match(github.ip, /^198\.18\.\d+\.\d+$/);
    assert.deepEqual(Object.keys(github.pids).sort(), ['443', '80']);
    const br0 = (await run('ip', ['-n', fabric, '-4', '-o', 'addr', 'show', 'dev', FABRIC_BRIDGE])).stdout;
    assert.match(br0, /inet 198\.18\.0\.1\/16/);
    assert.equal((await dig('api.github.com', '+short')).trim(), github.ip);
    assert.equal((await dig('www.github.com', '+short', '+tcp')).trim(), github.ip, 'over TCP too');
  });

  it('answers plain HTTP on 80 with JSON naming the host', async () => {
    const ip = (await dig('api.github.com', '+short')).trim();
    const out = await inClient('curl', ['-sS', '--max-time', '5', '--resolve', `api.github.com:80:${ip}`, 'http://api.github.com/repos']);
    const body = JSON.parse(out) as { pod: string; path: string; headers: Record<string, string>; client: { address: string } };
    assert.equal(body.pod, 'github');
    assert.equal(body.path, '/repos');
    assert.equal(body.headers['host'], 'api.github.com');
    assert.equal(body.client.address, '172.31.0.11', 'the fabric routes without NAT');
  });

  it('answers HTTPS on 443 with a certificate the lab CA (and the trust bundle) verifies', async () => {
    const ip = (await dig('www.github.com', '+short')).trim();
    const ca = await ensureLabCa(labCaDir(lab), lab);
    const bundle = await writeTrustBundle(ca, trustBundlePath(lab));
    for (const cacert of [ca.certPath, bundle]) {
      const out = await inClient('curl', ['-sS', '--max-time', '5', '--resolve', `www.github.com:443:${ip}`, '--cacert', cacert, 'https://www.github.com/x']);
      assert.equal((JSON.parse(out) as { pod: string }).pod, 'github');
    }
    // Without the lab CA the certificate is not trusted.
    const r = await run('curl', ['-sS', '--max-time', '5', '--resolve', `www.github.com:443:${ip}`, '--cacert', '/dev/null', 'https://www.github.com/'], {
      netns: client,
      allowFailure: true,
    });
    assert.notEqual(r.code, 0);
  });

  it('answers NXDOMAIN for names it does not hold (never forwards)', async () => {
    assert.equal(await status('unknown.example.com'), 'NXDOMAIN');
    assert.equal(await status('unknown.github.com'), 'NXDOMAIN');
    // github.com itself exists as the parent of api.github.com: no data, not NXDOMAIN (RFC 8020 §2).
    assert.equal(await status('github.com'), 'NOERROR');
    assert.equal((await dig('github.com', '+short')).trim(), '');
    assert.equal(await status('unknown.example.com', '+tcp'), 'NXDOMAIN');
  });

  it('gives a second host a different address, and re-adding a host keeps its address', async () => {
    const other = await addExternalHost(lab, { name: 'example', names: ['example.com'], ports: [8080] });
    assert.notEqual(other.ip, github.ip);
    assert.equal((await dig('example.com', '+short')).trim(), other.ip);
    const out = await inClient('curl', ['-sS', '--max-time', '5', `http://${other.ip}:8080/`]);
    assert.equal((JSON.parse(out) as { pod: string }).pod, 'example');
    const again = await addExternalHost(lab, { name: 'example', names: ['example.com', 'www.example.com'], ports: [8080] });
    assert.equal(again.ip, other.ip);
    assert.ok(!isAlive(other.pids['8080']!), 'the old workload was stopped');
    assert.equal((await dig('www.example.com', '+short')).trim(), other.ip);
    assert.deepEqual((await listExternalHosts(lab)).map((h) => h.name), ['example', 'github']);
  });

  it('a host with addresses of its own (1.1.1.1, 1.0.0.1) answers on them, inside the lab only', async () => {
    const one = await addExternalHost(lab, { name: 'one', names: ['one.one.one.one'], ports: [80, 443], addresses: ['1.1.1.1', '1.0.0.1'] });
    assert.deepEqual([one.ip, one.addresses], ['1.1.1.1', ['1.1.1.1', '1.0.0.1']]);
    assert.deepEqual((await dig('one.one.one.one', '+short')).trim().split('\n').sort(), ['1.0.0.1', '1.1.1.1']);
    for (const address of ['1.1.1.1', '1.0.0.1']) {
      const body = JSON.parse(await inClient('curl', ['-sS', '--max-time', '5', `http://${address}/x`])) as { pod: string; client: { address: string } };
      assert.deepEqual([body.pod, body.client.address], ['one', '172.31.0.11'], `${address} is answered by the lab's host`);
    }
    const ca = await ensureLabCa(labCaDir(lab), lab);
    const tls = await inClient('curl', ['-sS', '--max-time', '5', '--cacert', ca.certPath, 'https://1.0.0.1/']);
    assert.equal((JSON.parse(tls) as { pod: string }).pod, 'one', 'the certificate names the addresses');
    // The addresses live in the lab's namespaces only: the fabric routes them to the host's veth and
    // has no route anywhere else, and the machine's own namespace gained nothing.
    assert.match((await run('ip', ['-n', fabric, 'route', 'get', '1.1.1.1'])).stdout, /^1\.1\.1\.1 dev br0 /);
    assert.equal((await run('ip', ['-n', fabric, 'route', 'show', 'default'])).stdout.trim(), '', 'the fabric has no default route');
    const elsewhere = await run('ip', ['-n', fabric, 'route', 'get', '1.0.0.2'], { allowFailure: true });
    assert.match(elsewhere.stderr, /Network is unreachable/, 'an address no host has goes nowhere');
    assert.equal((await run('ip', ['route', 'show', 'exact', '1.1.1.1/32'])).stdout.trim(), '', 'no route in the root namespace');
  });

  it('refuses an address another host has, or one that is not for hosts, and leaves the first host as it was', async () => {
    await assert.rejects(addExternalHost(lab, { name: 'copy', names: ['copy.example.com'], addresses: ['9.9.9.9', '1.0.0.1'] }),
      /ExternalHost copy: spec\.addresses\[1\]: 1\.0\.0\.1 is already ExternalHost one's/);
    await assert.rejects(addExternalHost(lab, { name: 'inside', names: ['inside.example.com'], addresses: ['10.244.1.9'] }),
      /ExternalHost inside: spec\.addresses\[0\]: 10\.244\.1\.9 is in 10\.244\.0\.0\/16, the lab's pod range/);
    assert.ok(!netnsExists(externalHostNetns(lab, 'copy')));
    assert.equal((JSON.parse(await inClient('curl', ['-sS', '--max-time', '5', 'http://1.0.0.1/'])) as { pod: string }).pod, 'one');
  });

  it('removing a host with addresses of its own takes their routes out of the fabric', async () => {
    assert.equal(await removeExternalHost(lab, 'one'), true);
    assert.equal((await run('ip', ['-n', fabric, 'route', 'show', 'exact', '1.1.1.1/32'])).stdout.trim(), '');
    const gone = await run('curl', ['-sS', '--max-time', '2', 'http://1.1.1.1/'], { netns: client, allowFailure: true });
    assert.notEqual(gone.code, 0, 'nothing answers 1.1.1.1 any more');
  });

  it('removes a host: processes stopped, namespace gone, name NXDOMAIN within 2 s', async () => {
    assert.equal(await removeExternalHost(lab, 'github'), true);
    for (const pid of Object.values(github.pids)) assert.ok(!isAlive(pid), `pid ${pid} still runs`);
    assert.ok(!netnsExists(github.netns));
    const deadline = Date.now() + 2000;
    while ((await status('api.github.com')) !== 'NXDOMAIN') {
      assert.ok(Date.now() < deadline, 'api.github.com still resolves 2 s after removal');
      await new Promise((r) => setTimeout(r, 100));
    }
    const hosts = JSON.parse(readFileSync(`${labDir(lab)}/world/hosts.json`, 'utf8')) as { hosts: Record<string, unknown> };
    assert.deepEqual(Object.keys(hosts.hosts), ['example']);
    assert.equal(await removeExternalHost(lab, 'github'), false);
    assert.equal(await br0Mac(), gatewayMac, "br0's MAC (the nodes' gateway) never changed");
  });

  it('keeps the lab CA: ensureLabCa twice gives the same CA', async () => {
    const a = await ensureLabCa(labCaDir(lab), lab);
    const b = await ensureLabCa(labCaDir(lab), lab);
    assert.equal(a.certPem, b.certPem);
  });
});
