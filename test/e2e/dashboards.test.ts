/**
 * The Grafana dashboards (deploy/grafana/*.json) against a real Prometheus
 * (root): a lab with `prometheus` (Debian's, job networkobservability-hubble)
 * carries traffic of every kind — forwarded, dropped at L3/L4, DNS allowed and
 * refused by a DNS rule, HTTP 200 and 403 from an L7 rule — and then every
 * target of every panel (rows' nested panels too) must return data, with the
 * dashboard's variables set to values that have traffic. Each variable's own
 * label_values query must list values. A query that returns nothing fails the
 * test, naming dashboard, panel and query.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { labName, requireRoot, ROOT, startLab, within, type TestLab } from './lab-kit.ts';
import { dnsThroughProxy, pod, workload } from '../kit/manifests.ts';

requireRoot();
const DASHBOARDS = `${ROOT}deploy/grafana`;
/** The lab scrapes every 5 s: Grafana's $__rate_interval is then 4 scrape intervals. */
const RATE_INTERVAL = '20s';
const RANGE = '5m';
/** Panels are drawn from range queries over the last minute, at the scrape interval. */
const WINDOW_S = 60;
const STEP_S = 5;

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
${pod('shop', 'server', 'node-1', { containers: [{ name: 'c', command: workload('http-echo', 80) }] })}${pod('shop', 'client', 'node-2', { containers: [{ name: 'c', command: workload('http-echo', 80) }] })}${pod('shop', 'intruder', 'node-1')}---
apiVersion: lab.palisade.dev/v1
kind: ExternalHost
metadata: {name: github}
spec: {names: [api.github.com]}
---
# HTTP to the server: GET /ok from the client only (anything else from it: 403).
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server-l7, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: /ok}
---
# The client: DNS for *.github.com only (other names REFUSED), api.github.com
# and the server's port 80 out; in, only from the server.
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-egress, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: client}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: server}}]
  egress:
${dnsThroughProxy('*.github.com')}
  - toFQDNs: [{matchName: api.github.com}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
  - toEndpoints: [{matchLabels: {app: server}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
`;

interface Target { refId: string; expr: string; instant?: boolean }
interface Panel { title: string; type: string; gridPos?: object; targets?: Target[]; panels?: Panel[] }
interface Variable { name: string; type: string; query?: string | { query: string }; regex?: string }
interface Dashboard { title: string; uid: string; schemaVersion: number; panels: Panel[]; templating: { list: Variable[] } }

let lab: TestLab;
let prometheus = '';
let trafficRunning = true;
let traffic: Promise<void> = Promise.resolve();
const seen: Record<string, string> = {};

before(async () => {
  // The lab kit passes its options on to labUp: Prometheus yes, the web UI is not needed here.
  const opts: Parameters<typeof startLab>[2] & { prometheus: boolean; ui: boolean } = { prometheus: true, ui: false };
  lab = await startLab(labName('dash'), 2, opts);
  prometheus = lab.state.prometheus?.url ?? '';
  assert.ok(prometheus, 'lab up with prometheus records its URL in the lab state');
  lab.apply(APP);
  const pods = JSON.parse(lab.cli(['get', 'pods', '-n', 'shop', '-o', 'json']).out) as { items: { metadata: { name: string }; status: { podIP: string } }[] };
  const ip = Object.fromEntries(pods.items.map((p) => [p.metadata.name, p.status.podIP]));
  traffic = generateTraffic(ip['server'] as string, ip['client'] as string);
});

after(async () => {
  trafficRunning = false;
  await traffic;
  await lab?.down();
});

/** Every kind of traffic, round after round, until the queries are done (rates stay above zero while they run). */
async function generateTraffic(server: string, client: string): Promise<void> {
  const note = (what: string, got: string): void => void (seen[what] = got);
  while (trafficRunning) {
    const t0 = Date.now();
    await Promise.all([
      lab.curl('shop', 'client', `http://${server}/ok`, 2).then((r) => note('HTTP 200', r.http)),
      lab.curl('shop', 'client', `http://${server}/secret`, 2).then((r) => note('HTTP 403', r.http)),
      lab.curl('shop', 'client', 'http://api.github.com/', 2).then((r) => note('DNS allowed, world', r.http)),
      lab.execInAsync('shop', 'client', ['dig', '+time=1', '+tries=1', 'evil.example.com']).then((r) => note('DNS refused', /status: (\w+)/.exec(r.out)?.[1] ?? r.out)),
      lab.curl('shop', 'client', `http://${server}:8080/`, 1).then((r) => note('dropped on egress', r.http)),
      lab.curl('shop', 'intruder', `http://${server}/ok`, 1).then((r) => note('dropped on ingress (server)', r.http)),
      lab.curl('shop', 'intruder', `http://${client}/`, 1).then((r) => note('dropped on ingress (client)', r.http)),
    ]);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
  }
}

async function promApi<T>(path: string, params: Record<string, string | string[]>): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) q.append(k, one);
  const res = await fetch(`${prometheus}/api/v1/${path}?${q}`);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${body.error ?? res.status}`);
  return body.data;
}

/** Whether a query yields at least one finite value, the way the panel asks (range or instant). */
async function hasData(expr: string, instant: boolean): Promise<boolean> {
  const end = Date.now() / 1000;
  if (instant) {
    const r = await promApi<{ result: { value: [number, string] }[] }>('query', { query: expr, time: String(end) });
    return r.result.some((s) => Number.isFinite(Number(s.value[1])));
  }
  const r = await promApi<{ result: { values: [number, string][] }[] }>('query_range', { query: expr, start: String(end - WINDOW_S), end: String(end), step: String(STEP_S) });
  return r.result.some((s) => s.values.some(([, v]) => Number.isFinite(Number(v))));
}

/** Grafana's variables and built-ins as the dashboards use them. */
function substitute(expr: string, vars: Record<string, string>): string {
  return expr
    .replaceAll('$__rate_interval', RATE_INTERVAL)
    .replaceAll('$__interval', `${STEP_S}s`)
    .replaceAll('$__range', RANGE)
    .replace(/\$\{?(\w+)\}?/g, (m, name: string) => vars[name] ?? m);
}

/** Every panel, rows' nested ones included. */
function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

const dashboards = (): [string, Dashboard][] =>
  readdirSync(DASHBOARDS)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f, JSON.parse(readFileSync(`${DASHBOARDS}/${f}`, 'utf8')) as Dashboard]);

test('the dashboards are the ACNS set plus L7, importable: schema 39+, a datasource variable, gridPos on every panel', () => {
  const titles = dashboards().map(([, d]) => d.title).sort();
  assert.deepEqual(titles, [
    'Kubernetes / Networking / Clusters', 'Kubernetes / Networking / DNS (Cluster)', 'Kubernetes / Networking / DNS (Workload)',
    'Kubernetes / Networking / Drops (Workload)', 'Kubernetes / Networking / L7 (Namespace)', 'Kubernetes / Networking / L7 (Workload)',
    'Kubernetes / Networking / Pod Flows (Namespace)', 'Kubernetes / Networking / Pod Flows (Workload)',
  ]);
  for (const [file, d] of dashboards()) {
    assert.ok(d.schemaVersion >= 39, `${file}: schemaVersion ${d.schemaVersion}`);
    assert.ok(d.uid, `${file}: uid`);
    const ds = d.templating.list.find((v) => v.name === 'datasource');
    assert.equal(ds?.type, 'datasource', `${file}: a datasource variable`);
    assert.equal(ds?.query, 'prometheus', `${file}: datasource variable of Prometheus`);
    assert.ok(d.templating.list.some((v) => v.name === 'cluster'), `${file}: a cluster variable`);
    if (/Workload/.test(d.title)) assert.ok(['namespace', 'workload'].every((n) => d.templating.list.some((v) => v.name === n)), `${file}: namespace and workload variables`);
    for (const p of allPanels(d.panels)) assert.ok(p.gridPos, `${file}: panel ${p.title} has a gridPos`);
    assert.ok(allPanels(d.panels).some((p) => p.type === 'heatmap'), `${file}: a heat-map panel`);
  }
});

test('every query of every panel of every dashboard returns data from Prometheus scraping the lab', async () => {
  const cluster = lab.name;
  // Wait until Prometheus holds two scrapes of the last kinds of traffic to appear, so rates exist.
  await within(45_000, 'Prometheus to scrape HTTP 403s, DNS refusals and drops twice', async () => {
    const probe = async (q: string): Promise<boolean> => (await promApi<{ result: unknown[] }>('query', { query: q })).result.length > 0;
    return (
      (await probe(`sum(rate(hubble_http_requests_total{cluster="${cluster}", status="403"}[${RATE_INTERVAL}])) > 0`)) &&
      (await probe(`sum(rate(hubble_dns_responses_total{cluster="${cluster}", rcode="Query Refused"}[${RATE_INTERVAL}])) > 0`)) &&
      (await probe(`sum(rate(hubble_drop_total{cluster="${cluster}", reason="POLICY_DENIED"}[${RATE_INTERVAL}])) > 0`)) &&
      (await probe(`sum(rate(hubble_tcp_flags_total{cluster="${cluster}", flag="SYN"}[${RATE_INTERVAL}])) > 0`))
    );
  }, 1000);
  assert.deepEqual(
    seen,
    {
      'HTTP 200': '200', 'HTTP 403': '403', 'DNS allowed, world': '200', 'DNS refused': 'REFUSED',
      'dropped on egress': '000', 'dropped on ingress (server)': '000', 'dropped on ingress (client)': '000',
    },
    'the traffic is what the dashboards are meant to show',
  );

  const failures: string[] = [];
  let queries = 0;
  for (const [file, d] of dashboards()) {
    // Each variable's own query lists values; the namespace and workload candidates are what it lists.
    const values: Record<string, string[]> = { cluster: [] };
    const variables = d.templating.list.filter((v) => v.type === 'query');
    const listed = async (v: Variable, vars: Record<string, string>): Promise<string[]> => {
      const q = (typeof v.query === 'string' ? v.query : (v.query?.query ?? '')).trim();
      queries++;
      const labelValues = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
      if (labelValues) {
        return (await promApi<string[]>(`label/${labelValues[2]}/values`, { 'match[]': substitute(labelValues[1] as string, vars), start: String(Date.now() / 1000 - WINDOW_S) })).filter((x) => x !== '');
      }
      // query_result(expr) with a regex, as Grafana runs it: the regex's group on `{labels} value time` of each series.
      const queryResult = /^query_result\((.+)\)$/.exec(q);
      const regex = /^\/(.+)\/$/.exec(v.regex ?? '');
      if (!queryResult || !regex) throw new Error(`${file}: variable ${v.name}: neither label_values nor query_result with a regex: ${q}`);
      const r = await promApi<{ result: { metric: Record<string, string>; value: [number, string] }[] }>('query', { query: substitute(queryResult[1] as string, vars) });
      const re = new RegExp(regex[1] as string);
      return r.result
        .map((s) => re.exec(`{${Object.entries(s.metric).map(([k, x]) => `${k}="${x}"`).join(', ')}} ${s.value[1]} ${s.value[0] * 1000}`)?.[1] ?? '')
        .filter((x) => x !== '');
    };
    const clusterVar = variables.find((v) => v.name === 'cluster');
    values['cluster'] = clusterVar ? await listed(clusterVar, {}) : [];
    if (!values['cluster']?.includes(cluster)) failures.push(`${d.title}: variable cluster lists ${JSON.stringify(values['cluster'])}, not the lab ${cluster}`);
    // Every (namespace, workload) the variables offer, shop's first: a panel passes when one of them has data.
    const combos: Record<string, string>[] = [];
    const nsVar = variables.find((v) => v.name === 'namespace');
    const wlVar = variables.find((v) => v.name === 'workload');
    const namespaces = nsVar ? await listed(nsVar, { cluster }) : [''];
    if (nsVar && namespaces.length === 0) failures.push(`${d.title}: variable namespace lists nothing`);
    for (const namespace of namespaces.sort((a, b) => Number(b === 'shop') - Number(a === 'shop'))) {
      const workloads = wlVar ? await listed(wlVar, { cluster, namespace }) : [''];
      if (wlVar && namespace === 'shop' && workloads.length === 0) failures.push(`${d.title}: variable workload lists nothing in shop`);
      for (const workload of workloads) combos.push({ cluster, datasource: 'prometheus', ...(nsVar ? { namespace } : {}), ...(wlVar ? { workload } : {}) });
    }
    for (const p of allPanels(d.panels)) {
      if (p.type === 'row') continue;
      if (!p.targets?.length) failures.push(`${d.title} › ${p.title}: no queries`);
      for (const t of p.targets ?? []) {
        let ok = false;
        for (const vars of combos) {
          queries++;
          if (await hasData(substitute(t.expr, vars), t.instant === true)) { ok = true; break; }
        }
        if (!ok) failures.push(`${d.title} › ${p.title} (${t.refId}): no data for any of ${combos.length} variable settings: ${t.expr}`);
      }
    }
  }
  assert.deepEqual(failures, [], `${failures.length} dashboard queries returned nothing (${queries} queries run):\n${failures.join('\n')}`);
});
