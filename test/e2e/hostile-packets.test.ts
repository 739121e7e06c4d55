/**
 * Packets a pod writes by hand (root; the datapath of $PALISADE_E2E_DATAPATH,
 * both in CI): IP fragments and forged source addresses, written with raw
 * sockets (fixtures/raw-ip.py, IP_HDRINCL) inside the pods' namespaces.
 *
 *   web (node-1, HTTP on 80) admits pods labelled app=client, nothing else:
 *     near (node-1, client)   far (node-2, client)   stranger (node-2)
 *
 *   - fragments: 3,000-byte pings and a SYN cut into IP fragments pass from
 *     both clients (same node, across nodes) — the SYN-ACK comes back; the
 *     same from the stranger is dropped, and the drop is a flow record with
 *     its reason, addresses and port (never 0.0.0.0 or an unknown reason);
 *   - spoofing: the stranger sends UDP with far's address as source to web,
 *     whose policy would admit far: nothing arrives, and the record is
 *     DROPPED INVALID_SOURCE_IP with the forged source, the real destination,
 *     and the stranger as the sending pod.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { DATAPATH, labName, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';
import { pod, workload } from '../kit/manifests.ts';

requireRoot();
const RAW_IP = fileURLToPath(new URL('./fixtures/raw-ip.py', import.meta.url));
const UDP_PORT = 7001;
let lab: TestLab;
const ip: Record<string, string> = {};

const PODS = `
${pod('default', 'web', 'node-1', { containers: [{ name: 'c', command: workload('http-echo', 80) }] })}${pod('default', 'near', 'node-1', { app: 'client' })}${pod('default', 'far', 'node-2', { app: 'client' })}${pod('default', 'stranger', 'node-2')}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-from-clients, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
`;

interface Observed {
  flow: {
    verdict: string;
    drop_reason_desc?: string;
    IP?: { source: string; destination: string };
    l4?: { TCP?: { destination_port: number }; UDP?: { destination_port: number }; ICMPv4?: { type: number } };
    source?: { pod_name?: string };
    destination?: { pod_name?: string };
  };
}

const records = (args: string[] = []): Observed[] =>
  lab
    .cli(['observe', '-o', 'json', '--last', '2000', ...args])
    .out.split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Observed);

async function rawIp(pod: string, args: string[]): Promise<Record<string, unknown>> {
  const r = await lab.execInAsync('default', pod, ['python3', RAW_IP, ...args]);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as Record<string, unknown>;
}

async function ping(from: string, to: string, count: number): Promise<number> {
  const r = await lab.execInAsync('default', from, ['ping', '-c', String(count), '-i', '0.2', '-W', '1', '-s', '3000', ip[to]!]);
  return Number(/(\d+) received/.exec(r.out)?.[1] ?? 0);
}

/** A fragmented SYN from a pod to web:80 (256-byte fragments: five of them): did the SYN-ACK come back? */
async function fragmentedSyn(from: string): Promise<boolean> {
  const r = await rawIp(from, ['frag-syn', ip[from]!, ip['web']!, '80', '256', '2']);
  assert.equal(r['fragments'], 5);
  return r['synack'] === true;
}

before(async () => {
  lab = await startLab(labName(DATAPATH === 'ebpf' ? 'e2ehpe' : 'e2ehpl'));
  lab.apply(PODS);
  for (const pod of ['web', 'near', 'far', 'stranger']) {
    ip[pod] = (JSON.parse(lab.cli(['get', 'pods', pod, '-o', 'json']).out) as { status: { podIP: string } }).status.podIP;
  }
  // Ready when web answers a client and the policy keeps the stranger out.
  await within(10_000, 'web serving, policy in force', async () => {
    const [client, stranger] = await Promise.all([lab.curl('default', 'near', `http://${ip['web']}/`), lab.curl('default', 'stranger', `http://${ip['web']}/`)]);
    return client.http === '200' && stranger.http === '000';
  });
});
after(async () => {
  await lab?.down();
});

test('allowed fragments pass: 3,000-byte pings and a fragmented SYN, on one node and across nodes', async () => {
  assert.equal(await ping('near', 'web', 2), 2, 'same node');
  assert.equal(await ping('far', 'web', 2), 2, 'across nodes');
  assert.equal(await fragmentedSyn('near'), true, 'SYN-ACK for a fragmented SYN, same node');
  assert.equal(await fragmentedSyn('far'), true, 'SYN-ACK for a fragmented SYN, across nodes');
});

test('denied fragments drop, each drop a record with its reason, addresses and port', async () => {
  assert.equal(await fragmentedSyn('stranger'), false, 'no SYN-ACK for the stranger');
  assert.equal(await ping('stranger', 'web', 1), 0, 'no echo for the stranger');
  const isDenied = (r: Observed) =>
    r.flow.verdict === 'DROPPED' &&
    r.flow.drop_reason_desc === 'POLICY_DENIED' &&
    r.flow.IP?.source === ip['stranger'] &&
    r.flow.IP?.destination === ip['web'] &&
    r.flow.source?.pod_name === 'stranger' &&
    r.flow.destination?.pod_name === 'web';
  await within(5000, 'the fragmented SYN and ping denied in observe', async () => {
    const denied = records(['--verdict', 'DROPPED']).filter(isDenied);
    return denied.some((r) => r.flow.l4?.TCP?.destination_port === 80) && denied.some((r) => r.flow.l4?.ICMPv4?.type === 8);
  });
  const drops = records(['--verdict', 'DROPPED']);
  const unnamed = drops.filter((r) => !r.flow.drop_reason_desc || r.flow.drop_reason_desc === 'DROP_REASON_UNKNOWN' || r.flow.IP?.source === '0.0.0.0');
  assert.deepEqual(unnamed, [], 'every drop names its reason and addresses');
});

test('a forged source address: nothing reaches the victim; the drop names INVALID_SOURCE_IP, the packet and the real sender', async () => {
  // The victim records every datagram for 4 s; far (whom web's policy admits)
  // sends one for real, the stranger three with far's address.
  const recorder = lab.execInAsync('default', 'web', [
    'python3',
    '-c',
    `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',${UDP_PORT}))\ns.settimeout(4)\ntry:\n  while True:\n    d,a=s.recvfrom(2048)\n    print(a[0],d.decode(),flush=True)\nexcept socket.timeout:\n  pass`,
  ]);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await rawIp('stranger', ['spoof-udp', ip['far']!, ip['web']!, String(UDP_PORT), '3', 'forged']), { sent: 3 });
  const genuine = await lab.execInAsync('default', 'far', ['python3', '-c', `import socket\nsocket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b'genuine',('${ip['web']}',${UDP_PORT}))`]);
  assert.equal(genuine.code, 0, genuine.err);
  const seen = (await recorder).out.trim().split('\n').filter(Boolean);
  assert.deepEqual(seen, [`${ip['far']} genuine`], 'the victim got far\'s own datagram and nothing forged');

  await within(5000, 'the forged datagrams in observe', async () =>
    records(['--verdict', 'DROPPED']).some((r) => r.flow.drop_reason_desc === 'INVALID_SOURCE_IP' && r.flow.IP?.source === ip['far']),
  );
  const forged = records(['--verdict', 'DROPPED']).filter((r) => r.flow.IP?.source === ip['far'] && r.flow.l4?.UDP?.destination_port === UDP_PORT);
  assert.ok(forged.length >= 1, JSON.stringify(forged));
  for (const r of forged) {
    assert.equal(r.flow.drop_reason_desc, 'INVALID_SOURCE_IP', JSON.stringify(r));
    assert.equal(r.flow.IP?.destination, ip['web']);
    assert.equal(r.flow.source?.pod_name, 'stranger', 'the pod that sent it, not the one whose address it forged');
  }
});
