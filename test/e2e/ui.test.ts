/**
 * The web UI end to end (root): a lab running the demo application with
 * traffic and policy, its UI (started by `lab up`, URL from `lab status -o
 * json`) opened in Debian's Chromium. The service map shows the demo's
 * workloads and the frontend → backend edge; a connection dropped by
 * demo-policy shows in Drops naming the policy within 2 s; a typed filter
 * narrows the flows table; a DNS query and an HTTP 403 (star wars L7) show in
 * their views. Screenshots go to test-artifacts/ui/.
 *
 * Hooks: the data-testid / data-workload / data-edge attributes listed at the
 * top of ui/src/main.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Page } from 'playwright-core';
import { DATAPATH, labName, PALISADE, requireRoot, ROOT } from './lab-kit.ts';
import { labDown } from '../../src/lab/lifecycle.ts';
import { podNetns } from '../../src/lab/paths.ts';
import { launchBrowser, type TestBrowser } from '../kit/browser.ts';
import { dnsThroughProxy } from '../kit/manifests.ts';

requireRoot();
const ARTIFACTS = `${ROOT}test-artifacts/ui`;
const lab = labName('uie');
const dir = mkdtempSync(`${tmpdir()}/palisade-e2e-ui-`);
let browser: TestBrowser | undefined;
let page: Page;
let ip: Record<string, string> = {};

/** bin/palisade with --lab (or --name for lab commands). */
function cli(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(PALISADE, [...args, args[0] === 'lab' ? '--name' : '--lab', lab], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let applied = 0;
function apply(yaml: string): void {
  const file = `${dir}/m${applied++}.yaml`;
  writeFileSync(file, yaml);
  const r = cli(['apply', '-f', file, '--timeout', '30s']);
  if (r.code !== 0) throw new Error(`apply failed (${r.code}):\n${r.out}\n${r.err}`);
}

/** A command inside a pod's network namespace (pods run host binaries). */
function execIn(pod: string, argv: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const [ns = '', name = ''] = pod.split('/');
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', podNetns(lab, ns, name), ...argv]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/** The page's document, as the callbacks run in it use it (the repository's TypeScript lib has no DOM). */
declare const document: { querySelectorAll(selector: string): Iterable<{ textContent: string | null; getAttribute(name: string): string | null }> };

const example = (file: string): string => readFileSync(`${ROOT}examples/lab/${file}`, 'utf8');

/**
 * The frontend asks kube-dns through the DNS proxy (a DNS rule, so its
 * queries become DNS flows) and may reach the backend and api.github.com.
 */
const FRONTEND_EGRESS = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: frontend-egress, namespace: demo}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  egress:
${dnsThroughProxy('*')}
  - toEndpoints: [{matchLabels: {app: backend}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
  - toFQDNs: [{matchName: api.github.com}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
`;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // As a person would: the CLI's lab up with the demo application, which starts the UI too.
  const up = cli(['lab', 'up', '--demo', '--datapath', DATAPATH]);
  if (up.code !== 0) throw new Error(`lab up failed (${up.code}):\n${up.out}\n${up.err}`);
  apply(example('demo-policy.yaml'));
  apply(FRONTEND_EGRESS);
  apply(example('star-wars.yaml'));
  apply(example('star-wars-l7.yaml'));
  const pods = JSON.parse(cli(['get', 'pods', '-A', '-o', 'json']).out) as { items: { metadata: { namespace: string; name: string }; status: { podIP: string } }[] };
  ip = Object.fromEntries(pods.items.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p.status.podIP]));
  const status = cli(['lab', 'status', '-o', 'json']);
  const url = (JSON.parse(status.out || '{}') as { ui?: { url?: string } | null }).ui?.url;
  if (!url) throw new Error(`lab status -o json names no UI (lab up starts one):\n${status.out}${status.err}`);
  browser = await launchBrowser(dir);
  page = await browser.newPage();
  await page.goto(url);
  await page.locator('[data-testid="live-status"][data-state="live"]').waitFor({ timeout: 15_000 });
});

after(async () => {
  // The page as it was when the suite ended: the first thing to look at when a case failed.
  if (page !== undefined) await page.screenshot({ path: `${ARTIFACTS}/last.png`, fullPage: true }).catch(() => undefined);
  await browser?.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  await labDown(lab);
});

async function show(view: string): Promise<void> {
  await page.click(`[data-testid="tab-${view}"]`);
  await page.locator(`[data-testid="view-${view}"]:not([hidden])`).waitFor({ timeout: 5000 });
}

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: `${ARTIFACTS}/${name}.png` });

/** HTTP from a pod; the status code ('000' when no connection). */
async function http(from: string, url: string, method = 'GET', timeoutS = 2): Promise<string> {
  const r = await execIn(from, ['curl', '-s', '-m', String(timeoutS), '-X', method, '-o', '/dev/null', '-w', '%{http_code}', url]);
  return r.out.trim();
}

test('the service map shows the demo’s workloads and the frontend → backend edge', async () => {
  for (let i = 0; i < 3; i++) assert.equal(await http('demo/frontend', 'http://backend.demo/'), '200', 'frontend → backend by Service name');
  const db = await execIn('demo/backend', ['timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${ip['demo/db']}/5432 && echo connected`]);
  assert.equal(db.out.trim(), 'connected', `backend → db: ${db.err}`);
  assert.equal(await http('default/intruder', `http://${ip['demo/backend']}/`, 'GET', 1), '000', 'intruder → backend is dropped');
  await show('map');
  for (const w of ['demo/frontend', 'demo/backend', 'demo/db', 'default/intruder']) {
    await page.locator(`[data-testid="map-node"][data-workload="${w}"]`).waitFor({ timeout: 10_000 });
  }
  const edge = page.locator('[data-testid="map-edge"][data-edge="demo/frontend->demo/backend"]');
  await edge.waitFor({ timeout: 10_000 });
  assert.equal(await edge.getAttribute('data-verdict'), 'forwarded');
  await shot('service-map');
});

test('a connection demo-policy drops shows in Drops, naming the policy, within 2 s of the attempt', async (t) => {
  await show('drops');
  const target = `http://${ip['demo/backend']}/`;
  // A first drop shows the path from datapath to page is live before one is timed.
  await http('default/intruder', target, 'GET', 0.5);
  await page.locator('[data-testid="drop-row"]').first().waitFor({ timeout: 10_000 });
  const seen = await page.locator('[data-testid="drop-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-flow-id')));
  const t0 = Date.now();
  assert.equal(await http('default/intruder', target, 'GET', 0.5), '000');
  const t1 = Date.now();
  // A new row: intruder → backend, DROPPED, naming the CiliumNetworkPolicy that selects the backend.
  await page.waitForFunction(
    (old) =>
      [...document.querySelectorAll('[data-testid="drop-row"]')].some((r) => {
        const text = r.textContent ?? '';
        return !old.includes(r.getAttribute('data-flow-id')) && r.getAttribute('data-verdict') === 'DROPPED' && text.includes('default/intruder') && text.includes('demo/backend') && text.includes('demo/backend-from-frontend');
      }),
    seen,
    { polling: 'raf', timeout: 5000 },
  );
  const fromEnd = Date.now() - t1;
  t.diagnostic(`drop shown ${fromEnd} ms after the attempt ended, ${Date.now() - t0} ms after it began`);
  assert.ok(fromEnd <= 2000, `the drop showed ${fromEnd} ms after the attempt ended (${Date.now() - t0} ms after it began)`);
  await page.locator('[data-testid="drops-policy-row"][data-key="demo/backend-from-frontend"]').waitFor({ timeout: 2000 });
  await shot('drops');
});

test('typing a filter narrows the flows table to matching rows', async () => {
  for (let i = 0; i < 2; i++) await http('demo/frontend', 'http://backend.demo/');
  await show('flows');
  const rows = page.locator('[data-testid="flow-row"]');
  const sources = (): Promise<string[]> => page.locator('[data-testid="flow-row"] td.c-srcPod').allTextContents();
  // The unfiltered table has more than the frontend's flows (the intruder's drops, replies, DNS answers).
  await page.waitForFunction(() => new Set([...document.querySelectorAll('[data-testid="flow-row"] td.c-srcPod')].map((c) => c.textContent)).size > 1, undefined, { timeout: 10_000 });
  const before = await rows.count();
  await page.fill('[data-testid="flow-filter"]', 'from:pod=demo/frontend');
  await page.press('[data-testid="flow-filter"]', 'Enter');
  await page.waitForFunction(
    () => {
      const cells = [...document.querySelectorAll('[data-testid="flow-row"] td.c-srcPod')];
      return cells.length > 0 && cells.every((c) => c.textContent === 'demo/frontend');
    },
    undefined,
    { timeout: 10_000 },
  );
  const after = await rows.count();
  assert.ok(after < before, `${before} rows before the filter, ${after} after`);
  const texts = await sources();
  assert.deepEqual([...new Set(texts)], ['demo/frontend'], 'every row is from the frontend');
  assert.match(page.url(), /q=from%3Apod%3Ddemo%2Ffrontend|q=from:pod=demo\/frontend/, 'the filter is in the URL');
  await shot('flows-filtered');
  await page.fill('[data-testid="flow-filter"]', '');
  await page.press('[data-testid="flow-filter"]', 'Enter');
});

test('a DNS query from a pod shows in the DNS view', async () => {
  const dig = await execIn('demo/frontend', ['dig', '+short', '+time=2', '+tries=1', 'api.github.com']);
  assert.match(dig.out, /^\d+\.\d+\.\d+\.\d+$/m, `dig api.github.com: ${dig.out}${dig.err}`);
  await show('dns');
  await page.locator('[data-testid="dns-row"][data-name^="api.github.com"]').waitFor({ timeout: 10_000 });
  await shot('dns');
});

test('an HTTP 403 from an L7 rule shows in the HTTP view, with the denied path', async () => {
  assert.equal(await http('default/tiefighter', 'http://deathstar.default.svc.cluster.local/v1/exhaust-port', 'PUT'), '403');
  assert.equal(await http('default/tiefighter', 'http://deathstar.default.svc.cluster.local/v1/request-landing', 'POST'), '200');
  await show('http');
  await page.locator('[data-testid="http-status-row"][data-key="403"]').waitFor({ timeout: 10_000 });
  await page.locator('[data-testid="http-denied-row"][data-path="/v1/exhaust-port"]').waitFor({ timeout: 10_000 });
  await shot('http');
});

test('the map shows the star wars edges by verdict: tiefighter → deathstar mixed (200 and 403), xwing → deathstar dropped', async () => {
  assert.equal(await http('default/xwing', 'http://deathstar.default.svc.cluster.local/v1/request-landing', 'POST', 1), '000');
  await show('map');
  const edge = (from: string, verdict: string) => page.locator(`[data-testid="map-edge"][data-edge="default/${from}->default/deathstar"][data-verdict="${verdict}"]`);
  await edge('tiefighter', 'mixed').waitFor({ timeout: 10_000 });
  await edge('xwing', 'dropped').waitFor({ timeout: 10_000 });
  // The whole demo with every kind of traffic: the README's picture (docs/img/service-map.png) is taken from this one.
  await shot('service-map-all');
});
