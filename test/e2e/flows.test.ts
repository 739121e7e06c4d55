/**
 * Flow observability end to end (root): decisions of the datapath become
 * Hubble flow records that `palisade observe` shows within a second, with the
 * pods and the policy behind them; a real Prometheus (Debian's) scrapes the
 * lab's published metrics and sees drops for the denied workload only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { labName, PALISADE, requireRoot, startLab, within, type TestLab } from './lab-kit.ts';
import { publishedPath, type Published } from '../../src/lab/publish.ts';
import { nodeDir } from '../../src/lab/paths.ts';

requireRoot();
let lab: TestLab;
let prometheus: ChildProcess | undefined;
const promDir = mkdtempSync(`${tmpdir()}/palisade-prom-`);

const APP = `
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  nodeName: node-1
  containers: [{name: c, command: [palisade, workload, http-echo, --port, "80"], ports: [{name: http, containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: friend, namespace: default, labels: {app: friend}}
spec: {nodeName: node-2, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: stranger, namespace: default, labels: {app: stranger}}
spec: {nodeName: node-2, containers: [{name: c}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-from-friend, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: friend}}]
`;

before(async () => {
  lab = await startLab(labName('e2eflow'));
  lab.apply(APP);
});
after(async () => {
  prometheus?.kill('SIGKILL');
  rmSync(promDir, { recursive: true, force: true });
  await lab?.down();
});

interface Envelope {
  flow: {
    verdict: string;
    drop_reason_desc?: string;
    source?: { pod_name?: string; namespace?: string };
    destination?: { pod_name?: string };
    l4?: { TCP?: { destination_port?: number } };
    ingress_denied_by?: { name: string }[];
    ingress_allowed_by?: { name: string }[];
  };
}

const flows = (args: string[]): Envelope[] =>
  lab
    .cli(['observe', '-o', 'json', ...args])
    .out.split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Envelope);

test('a denied connection shows in observe --verdict DROPPED within 1 s, with both pods and the policy', async () => {
  const webIp = (JSON.parse(lab.cli(['get', 'pods', 'web', '-o', 'json']).out) as { status: { podIP: string } }).status.podIP;
  // Follow first, as a person would, then cause the drop and time its arrival.
  const follow = spawn(PALISADE, ['observe', '--follow', '--verdict', 'DROPPED', '--from-pod', 'default/stranger', '-o', 'json', '--lab', lab.name]);
  let buf = '';
  let t0 = 0;
  /** Port 80 drops show the stream is live; then one drop to port 81 is timed. */
  let live: () => void = () => undefined;
  const following = new Promise<void>((r) => (live = r));
  const arrived = new Promise<{ ms: number; e: Envelope }>((resolve) => {
    follow.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n').slice(0, -1)) {
        const e = JSON.parse(line) as Envelope;
        if (e.flow.destination?.pod_name !== 'web') continue;
        const port = e.flow.l4?.TCP?.destination_port;
        if (port === 80) live();
        if (port === 81 && t0 > 0) resolve({ ms: Date.now() - t0, e });
      }
      buf = buf.slice(buf.lastIndexOf('\n') + 1);
    });
  });
  try {
    // The CLI starts and subscribes in its own time (seconds on a loaded machine): drop until it shows one.
    let subscribed = false;
    void following.then(() => (subscribed = true));
    const deadline = Date.now() + 30_000;
    while (!subscribed) {
      if (Date.now() > deadline) throw new Error('observe --follow showed no drop within 30 s');
      await Promise.race([lab.curl('default', 'stranger', `http://${webIp}/`, 1), following]);
    }
    t0 = Date.now();
    void lab.curl('default', 'stranger', `http://${webIp}:81/`, 1);
    const { ms, e } = await Promise.race([arrived, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no drop record within 5 s')), 5000))]);
    assert.ok(ms < 1000, `the drop record arrived after ${ms} ms`);
    assert.equal(e.flow.drop_reason_desc, 'POLICY_DENIED');
    assert.equal(e.flow.source?.pod_name, 'stranger');
    assert.equal(e.flow.ingress_denied_by?.[0]?.name, 'web-from-friend');
  } finally {
    follow.kill();
  }
  const ok = await lab.curl('default', 'friend', `http://${webIp}/`, 2);
  assert.equal(ok.http, '200');
  await within(3000, 'allow record', async () =>
    flows(['--type', 'policy-verdict', '--to-pod', 'default/web', '--last', '5']).some(
      (e) => e.flow.source?.pod_name === 'friend' && e.flow.verdict === 'FORWARDED' && e.flow.ingress_allowed_by?.[0]?.name === 'web-from-friend',
    ),
  );
  const compact = lab.cli(['observe', '--verdict', 'DROPPED', '--last', '1']).out;
  assert.match(compact, /default\/stranger:\d+ .*-> default\/web:81 .*DROPPED.*POLICY_DENIED/); // the timed drop, the last
  // The flow log on disk (drops and L7, JSON lines) has it too.
  const log = readFileSync(`${nodeDir(lab.name, 'node-1')}/flows.log`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Envelope);
  assert.ok(log.some((e) => e.flow.source?.pod_name === 'stranger' && e.flow.verdict === 'DROPPED'), 'the drop is in the flow log');
  assert.ok(log.every((e) => e.flow.verdict === 'DROPPED' || (e.flow as { Type?: string }).Type === 'L7'), 'only what the include filters select');
});

test('a real Prometheus scrapes the lab: drops rise for the denied source only', async () => {
  assert.ok(existsSync('/usr/bin/prometheus'), 'Debian package prometheus is needed (scripts/setup.sh installs it)');
  const pub = JSON.parse(readFileSync(publishedPath(lab.name), 'utf8')) as Published;
  const targets = Object.values(pub.metrics).map((u) => new URL(u).host);
  const port = await freePort();
  writeFileSync(
    `${promDir}/prometheus.yml`,
    `global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n- job_name: palisade\n  static_configs: [{targets: ${JSON.stringify(targets)}}]\n`,
  );
  prometheus = spawn('/usr/bin/prometheus', [
    `--config.file=${promDir}/prometheus.yml`,
    `--storage.tsdb.path=${promDir}/data`,
    `--web.listen-address=127.0.0.1:${port}`,
  ], { stdio: 'ignore' });
  const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
    return ((await r.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
  };
  await within(20_000, 'prometheus scraping both agents', async () => {
    try {
      return (await query('up{job="palisade"} == 1')).length === targets.length;
    } catch {
      return false;
    }
  });
  const webIp = (JSON.parse(lab.cli(['get', 'pods', 'web', '-o', 'json']).out) as { status: { podIP: string } }).status.podIP;
  for (let i = 0; i < 6; i++) {
    await Promise.all([lab.curl('default', 'stranger', `http://${webIp}/`, 0.5), lab.curl('default', 'friend', `http://${webIp}/`, 1)]);
    await new Promise((r) => setTimeout(r, 400));
  }
  const q = 'sum by (source) (rate(hubble_drop_total{reason="POLICY_DENIED"}[20s]))';
  let result: Awaited<ReturnType<typeof query>> = [];
  await within(10_000, 'drop rate visible in Prometheus', async () => {
    result = await query(q);
    return result.some((r) => r.metric['source'] === 'default/stranger' && Number(r.value[1]) > 0);
  });
  const sources = result.filter((r) => Number(r.value[1]) > 0).map((r) => r.metric['source']);
  assert.deepEqual(sources, ['default/stranger'], `${q}: ${JSON.stringify(result)}`);
  const allowed = await query('sum by (source) (hubble_policy_verdicts_total{action="forwarded"})');
  assert.ok(allowed.some((r) => r.metric['source'] === 'default/friend'), 'allowed verdicts for the friend');
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
