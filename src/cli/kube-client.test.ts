/** The commands' API client: one connection pool, paths from the kind table, errors; and the in-order request pool. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeKubeconfig } from '../apiserver/index.ts';
import { apiStatus, connectKube, forEachInOrder, isNotFound, REQUEST_CONCURRENCY, type KubeClient } from './kube-client.ts';
import { kindByKind } from './kube-kinds.ts';
import { CliError } from './style.ts';

const CNP = kindByKind('CiliumNetworkPolicy')!;
const CCNP = kindByKind('CiliumClusterwideNetworkPolicy')!;

/** A stand-in API server that records each request and counts connections. */
let server: Server;
let dir: string;
let client: KubeClient;
const requests: { method: string; url: string; type: string | undefined; body: string }[] = [];
let connections = 0;

before(async () => {
  server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', type: req.headers['content-type'], body });
      const json = (code: number, obj: unknown): void => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      // Discovery, for clients that ask it the resource's path (client-node's KubernetesObjectApi did).
      if (req.url === '/apis/cilium.io/v2') {
        return json(200, { kind: 'APIResourceList', groupVersion: 'cilium.io/v2', resources: [
          { name: 'ciliumnetworkpolicies', kind: 'CiliumNetworkPolicy', namespaced: true, verbs: ['get'] },
          { name: 'ciliumclusterwidenetworkpolicies', kind: 'CiliumClusterwideNetworkPolicy', namespaced: false, verbs: ['get'] },
        ] });
      }
      // A connection reset as a server closing an idle kept-alive connection does it; on a fresh one, a server going down.
      const served = (req.socket as { served?: number }).served ?? 0;
      (req.socket as { served?: number }).served = served + 1;
      if ((req.url?.includes('/reset-reused') && served > 0) || req.url?.includes('/reset-always')) return req.socket.resetAndDestroy();
      if (req.url?.includes('/missing')) return json(404, { kind: 'Status', reason: 'NotFound', message: 'ciliumnetworkpolicies.cilium.io "missing" not found', details: { name: 'missing', kind: 'ciliumnetworkpolicies' }, code: 404 });
      if (req.url?.startsWith('/apis/nothing.example')) return json(404, { kind: 'Status', reason: 'NotFound', message: 'the server could not find the requested resource', details: {}, code: 404 });
      if (req.method === 'GET' && !req.url?.split('?')[0]!.match(/\/ciliumnetworkpolicies\/[^/]+$/)) return json(200, { kind: 'List', items: [{ metadata: { name: 'a' } }] });
      json(req.method === 'POST' ? 201 : 200, { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'x', resourceVersion: '7' } });
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  dir = await mkdtemp(join(tmpdir(), 'palisade-kube-client-'));
  await writeKubeconfig(join(dir, 'kubeconfig'), `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client = connectKube({ kubeconfig: join(dir, 'kubeconfig') });
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

test('many requests share a few kept-alive connections', async () => {
  const before = connections;
  for (let i = 0; i < 50; i++) await client.read(CNP, `p${i}`, 'default');
  assert.equal(connections - before, 1, 'one after another: one connection');
  await Promise.all(Array.from({ length: 200 }, (_, i) => client.read(CNP, `q${i}`, 'default')));
  assert.ok(connections - before <= REQUEST_CONCURRENCY, `at once: at most ${REQUEST_CONCURRENCY} connections (${connections - before})`);
});

test('paths, methods and bodies as kube-apiserver takes them', async () => {
  requests.length = 0;
  await client.read(CNP, 'web', 'shop');
  await client.list(CNP);
  await client.list(CNP, 'shop');
  await client.list(CCNP, 'shop');
  await client.create({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'n', namespace: 'shop' } });
  await client.mergePatch({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'n', namespace: 'shop', labels: { a: null } } });
  await client.delete(CCNP, 'wide');
  assert.deepEqual(requests.map((r) => `${r.method} ${r.url} ${r.type ?? ''}`.trim()), [
    'GET /apis/cilium.io/v2/namespaces/shop/ciliumnetworkpolicies/web',
    'GET /apis/cilium.io/v2/ciliumnetworkpolicies',
    'GET /apis/cilium.io/v2/namespaces/shop/ciliumnetworkpolicies',
    'GET /apis/cilium.io/v2/ciliumclusterwidenetworkpolicies',
    'POST /apis/cilium.io/v2/namespaces/shop/ciliumnetworkpolicies application/json',
    'PATCH /apis/cilium.io/v2/namespaces/shop/ciliumnetworkpolicies/n?fieldManager=palisade application/merge-patch+json',
    'DELETE /apis/cilium.io/v2/ciliumclusterwidenetworkpolicies/wide',
  ]);
  assert.deepEqual(JSON.parse(requests[5]!.body).metadata.labels, { a: null }, 'null (remove) survives to the server');
  assert.deepEqual((await client.list(CNP, 'shop')).map((o) => [o.apiVersion, o.kind]), [['cilium.io/v2', 'CiliumNetworkPolicy']], 'list items get apiVersion and kind back');
});

test('a missing object is an ApiException with its Status; a kind the server lacks is a CliError', async () => {
  const e = await client.read(CNP, 'missing', 'default').then(() => undefined, (err: unknown) => err);
  assert.ok(isNotFound(e));
  assert.equal(apiStatus(e)?.message, 'ciliumnetworkpolicies.cilium.io "missing" not found');
  const frob = { ...CNP, apiVersion: 'nothing.example/v1', group: 'nothing.example' };
  await assert.rejects(client.list(frob), (err: unknown) => err instanceof CliError && /does not serve nothing\.example\/v1 CiliumNetworkPolicy/.test(err.message));
});

test('a request on a kept-alive connection the server reset goes out once more, on a new one; a reset on a new one is "cannot reach"', async () => {
  const sequential = connectKube({ kubeconfig: join(dir, 'kubeconfig') });
  await sequential.read(CNP, 'warm-up', 'default');
  requests.length = 0;
  assert.equal((await sequential.read(CNP, 'reset-reused', 'default')).kind, 'CiliumNetworkPolicy');
  assert.equal(requests.filter((r) => r.url.includes('reset-reused')).length, 2, 'reset on the reused connection, answered on the new one');
  await assert.rejects(sequential.read(CNP, 'reset-always', 'default'), (e: unknown) => e instanceof CliError && /cannot reach the lab API server/.test(e.message));
});

test('forEachInOrder: reports in item order whatever order requests finish in; one key at a time; at most `limit` at once', async () => {
  const delays = [30, 5, 20, 1, 10, 1, 25, 2];
  const items = delays.map((ms, i) => ({ i, ms, key: i === 3 || i === 5 ? 'same' : `k${i}` }));
  const reported: number[] = [];
  const running = new Set<string>();
  let inFlight = 0;
  let peak = 0;
  await forEachInOrder(items, async (it) => {
    assert.ok(!running.has(it.key), `key ${it.key} ran twice at once`);
    running.add(it.key);
    peak = Math.max(peak, ++inFlight);
    await new Promise((r) => setTimeout(r, it.ms));
    inFlight--;
    running.delete(it.key);
    if (it.i === 4) throw new Error('refused');
    return it.i * 10;
  }, (it, outcome) => reported.push(outcome.status === 'fulfilled' ? outcome.value : -it.i), { limit: 3, key: (it) => it.key });
  assert.deepEqual(reported, [0, 10, 20, 30, -4, 50, 60, 70]);
  assert.equal(peak, 3);
});

test('forEachInOrder: a CliError stops new work and is thrown', async () => {
  let started = 0;
  const reported: number[] = [];
  await assert.rejects(
    forEachInOrder(Array.from({ length: 100 }, (_, i) => i), async (i) => {
      started++;
      if (i === 2) throw new CliError('cannot reach the lab API server', 1);
      await new Promise((r) => setTimeout(r, 5));
    }, (i) => reported.push(i), { limit: 4 }),
    /cannot reach/,
  );
  assert.ok(started < 10, `stopped early (${started} started)`);
  assert.deepEqual(reported, [0, 1], 'nothing after the failure is reported');
});
