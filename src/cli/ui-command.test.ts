/**
 * `palisade ui` as a person runs it (a subprocess): clear errors, then a real
 * run against a Hubble Observer server — listening line, url file, the
 * snapshot and observe's filters over HTTP (400 on a bad one), SIGTERM.
 * Needs the built page (dist/ui: node scripts/build-ui.ts, which setup runs).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowStore, startObserverServer } from '../flows/index.ts';
import type { FlowsPage, UiSnapshot } from '../ui/index.ts';
import { allowFlow, dnsFlow, dropFlow } from '../../test/kit/flows.ts';
import { CliError } from './style.ts';
import { parseListen, runUi, UI_DIST, type UiOptions } from './ui-command.ts';

let dir: string;
const store = new FlowStore({ nodeName: 'node1' });
let relay: Awaited<ReturnType<typeof startObserverServer>>;

before(async () => {
  if (!existsSync(`${UI_DIST}/index.html`)) throw new Error(`${UI_DIST}/index.html is missing: run node scripts/build-ui.ts first`);
  dir = await mkdtemp(join(tmpdir(), 'palisade-ui-cmd-'));
  const t = (msBefore: number): string => new Date(Date.now() - msBefore).toISOString().replace('Z', '000000Z');
  store.addFlow({ ...allowFlow(), time: t(3000) });
  store.addFlow({ ...dropFlow(), time: t(2000) });
  store.addFlow({ ...dnsFlow(), time: t(1000) });
  relay = await startObserverServer({ store, address: '127.0.0.1:0' });
});

after(async () => {
  await relay.close();
  await rm(dir, { recursive: true, force: true });
});

test('--listen: ADDRESS:PORT, IPv6 in brackets; anything else is named', () => {
  assert.deepEqual(parseListen('127.0.0.1:12000'), { host: '127.0.0.1', port: 12000 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('localhost:8080'), { host: 'localhost', port: 8080 });
  for (const bad of ['12000', '127.0.0.1', '127.0.0.1:99999', ':80', '::1:80', '127.0.0.1:http']) {
    assert.throws(() => parseListen(bad), /--listen: .* is not ADDRESS:PORT/, bad);
  }
});

test('clear errors: bad --listen, --lab with --relay, an unreachable relay, a lab that is not there, a bad Prometheus URL', async () => {
  const fails = (o: Partial<UiOptions>, want: RegExp, code: number): Promise<void> =>
    assert.rejects(runUi({ listen: '127.0.0.1:0', output: 'text', ...o }), (err: unknown) => err instanceof CliError && want.test(err.message) && err.exitCode === code);
  await fails({ relay: relay.address, listen: 'nowhere' }, /^--listen: "nowhere" is not ADDRESS:PORT/, 2);
  await fails({ lab: 'x', relay: relay.address }, /^give --lab or --relay, not both$/, 2);
  await fails({ relay: '127.0.0.1:1' }, /^cannot reach the Hubble Relay at 127\.0\.0\.1:1: .*UNAVAILABLE/, 1);
  await fails({ relay: 'http://relay' }, /^--relay: "http:\/\/relay" is not HOST:PORT/, 2);
  await fails({ lab: 'uisnolab' }, /^no lab uisnolab on this machine/, 1);
  await fails({ relay: relay.address, prometheus: 'ftp://x' }, /^--prometheus: "ftp:\/\/x" must be an http/, 2);
  await fails({ relay: relay.address, output: 'yaml' }, /^--output: "yaml" is not text or json/, 2);
});

test('a run against a relay: listening line and url file, snapshot, observe filters (400 on a bad one), SIGTERM ends it cleanly', async () => {
  const urlFile = join(dir, 'ui.json');
  const child = spawn(process.execPath, [join(import.meta.dirname, 'main.ts'), 'ui', '--relay', relay.address, '--listen', '127.0.0.1:0', '--url-file', urlFile, '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 60_000;
    while (!stdout.includes('\n') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const { url } = JSON.parse(stdout) as { url: string };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.deepEqual(JSON.parse(await readFile(urlFile, 'utf8')), { url, pid: child.pid });
    assert.match(stderr, /Hubble Relay 127\.0\.0\.1:\d+: 1 node \(node1 connected\)/);

    // The history arrives over gRPC shortly after start.
    let snap: UiSnapshot | undefined;
    while (Date.now() < deadline) {
      snap = (await (await fetch(`${url}api/snapshot`)).json()) as UiSnapshot;
      if (snap.totals.flows >= 3 && snap.health.length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(snap?.source, `relay ${relay.address}`);
    assert.equal(snap?.totals.flows, 3);
    assert.deepEqual(snap?.drops.byPolicy, [{ key: 'default/deny-frontend', count: 1 }]);
    assert.deepEqual(snap?.health.map((h) => `${h.node} ${h.state}`), ['node1 ready']);
    assert.ok(snap?.map.edges.some((e) => e.id === 'default/frontend->default/backend' && e.verdict === 'mixed'));

    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);

    // observe's filters, as query parameters (the real translation: --pod qualifies with --namespace, --not negates the next).
    const flows = async (q: string): Promise<FlowsPage> => (await (await fetch(`${url}api/flows?${q}`)).json()) as FlowsPage;
    assert.deepEqual((await flows('verdict=DROPPED&namespace=default')).flows.map((f) => f.verdict), ['DROPPED']);
    assert.deepEqual((await flows('to-pod=backend&not&verdict=DROPPED')).flows.map((f) => f.verdict), ['FORWARDED']);
    assert.deepEqual((await flows('protocol=dns')).flows.map((f) => f.destination.workload), ['kube-system/coredns']);
    for (const [q, want] of [['verdict=MAYBE', /parameter verdict: unknown verdict "MAYBE"/], ['from-identity=x', /parameter from-identity/], ['not', /parameter not must be followed/], ['colour=red', /parameter colour is not a filter flag/]] as const) {
      const r = await fetch(`${url}api/flows?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(((await r.json()) as { error: string }).error, want);
    }

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(existsSync(urlFile), false, 'the url file goes with the process');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
