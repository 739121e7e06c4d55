/** The Observer service through a real grpc-js client built from the same .proto: agent (store) and relay (sources). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { envelope, isFlowEnvelope, makeFlow, type GetFlowsResponse } from './flow.ts';
import { loadObserverPackage, protoToResponse, queryToRequest } from './grpc-codec.ts';
import { startObserverServer, type ObserverServer } from './grpc-server.ts';
import { parseFlowsQuery, type QueryWithoutSignal } from './query-params.ts';
import { FlowStore } from './store.ts';
import { at, dropFlow, httpFlow } from '../../test/kit/flows.ts';

type Req = Record<string, unknown>;
interface ObserverClient extends Client {
  GetFlows(req: Req): ClientReadableStream<Req>;
  ServerStatus(req: Req, cb: (err: ServiceError | null, res: Req) => void): void;
  GetNodes(req: Req, cb: (err: ServiceError | null, res: Req) => void): void;
}

let dir: string;
const servers: ObserverServer[] = [];
const clients: Client[] = [];
const store = new FlowStore({ nodeName: 'node1', capacity: 16 });

function client(address: string): ObserverClient {
  const pkg = loadObserverPackage('client') as unknown as { observer: { Observer: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => ObserverClient } };
  const c = new pkg.observer.Observer(address, credentials.createInsecure());
  clients.push(c);
  return c;
}

function flows(c: ObserverClient, q: QueryWithoutSignal, stopAfter = Infinity): Promise<GetFlowsResponse[]> {
  return new Promise((resolve, reject) => {
    const out: GetFlowsResponse[] = [];
    const call = c.GetFlows(queryToRequest(q));
    call.on('data', (d: Req) => {
      out.push(protoToResponse(d));
      if (out.length >= stopAfter) call.cancel();
    });
    call.on('end', () => resolve(out));
    call.on('error', (err: ServiceError) => (err.code === 1 /* CANCELLED */ ? resolve(out) : reject(err)));
  });
}

const unary = (c: ObserverClient, m: 'ServerStatus' | 'GetNodes'): Promise<Req> =>
  new Promise((resolve, reject) => c[m]({}, (err, res) => (err ? reject(err) : resolve(res))));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'palisade-grpc-'));
  for (let i = 0; i < 6; i++) store.add(envelope(makeFlow({ time: at(i), verdict: i % 2 ? 'DROPPED' : 'FORWARDED', uuid: `f${i}`, node_name: 'node1' })));
  store.addFlow(dropFlow(at(10)));
  store.addFlow(httpFlow(at(11), 'RESPONSE'));
});

after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
  await rm(dir, { recursive: true, force: true });
});

test('agent mode over a unix socket: GetFlows history with whitelist/blacklist, JSON shape kept', async () => {
  const srv = await startObserverServer({ store, address: `unix:${join(dir, 'observer.sock')}` });
  servers.push(srv);
  const c = client(srv.address);
  const ids = (rs: GetFlowsResponse[]): string[] => rs.map((r) => (isFlowEnvelope(r) ? (r.flow.uuid ?? '') : 'lost'));
  assert.deepEqual(ids(await flows(c, { last: 3 })).length, 3);
  assert.deepEqual(ids(await flows(c, { whitelist: [{ uuid: ['f1'] }, { uuid: ['f2'] }] })), ['f1', 'f2']);
  assert.deepEqual(ids(await flows(c, { whitelist: [{ verdict: ['DROPPED'] }], blacklist: [{ uuid: ['f3'] }], until: at(6) })), ['f1', 'f5']);
  assert.deepEqual(ids(await flows(c, { first: 2 })), ['f0', 'f1']);

  // Round trip keeps the Hubble JSON: time with nanos, is_reply, enums, oneofs, uint64 as string.
  const [drop] = await flows(c, { whitelist: [{ drop_reason_desc: ['POLICY_DENIED'] }] });
  assert.ok(drop && isFlowEnvelope(drop));
  const want = dropFlow(at(10));
  want.uuid = drop.flow.uuid;
  want.node_name = 'node1';
  assert.deepEqual(drop.flow, want);
  assert.equal(drop.node_name, 'node1');
  const [resp] = await flows(c, { whitelist: [{ http_status_code: ['5+'] }] });
  assert.ok(resp && isFlowEnvelope(resp));
  assert.equal(resp.flow.l7?.latency_ns, '12000000');
  assert.equal(resp.flow.is_reply, true);
  assert.equal(resp.flow.time, at(11));

  await assert.rejects(flows(c, { whitelist: [{ source_ip: ['not-an-ip'] }] }), (err: ServiceError) => err.code === 3 && /source_ip/.test(err.details));
});

test('agent mode on 127.0.0.1: follow streams new flows; ServerStatus and GetNodes', async () => {
  const srv = await startObserverServer({ store, address: '127.0.0.1:0' });
  servers.push(srv);
  assert.match(srv.address, /^127\.0\.0\.1:\d+$/);
  assert.doesNotMatch(srv.address, /:0$/);
  const c = client(srv.address);
  const following = flows(c, { follow: true, whitelist: [{ verdict: ['DROPPED'] }] }, 2);
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 20; i < 24; i++) store.add(envelope(makeFlow({ time: at(i), verdict: i % 2 ? 'DROPPED' : 'FORWARDED', uuid: `f${i}`, node_name: 'node1' })));
  const got = await following;
  assert.deepEqual(got.map((r) => (isFlowEnvelope(r) ? r.flow.uuid : 'lost')), ['f21', 'f23']);

  const status = await unary(c, 'ServerStatus');
  assert.equal(status['max_flows'], 16);
  assert.equal(status['seen_flows'], store.status().seen_flows);
  assert.deepEqual(status['num_connected_nodes'], { value: 1 });
  assert.match(String(status['version']), /^palisade /);
  const nodes = (await unary(c, 'GetNodes'))['nodes'] as Req[];
  assert.equal(nodes.length, 1);
  assert.equal(nodes[0]?.['name'], 'node1');
  assert.equal(nodes[0]?.['state'], 'NODE_CONNECTED');
});

test('relay mode: flows of several nodes time-merged; unavailable nodes reported', async () => {
  const other = new FlowStore({ nodeName: 'node2' });
  other.add(envelope(makeFlow({ time: at(2.5), verdict: 'FORWARDED', uuid: 'g0', node_name: 'node2' }), 'node2'));
  const asSource = (s: FlowStore) => ({
    node: s.nodeName,
    fetch: (qs: string, signal: AbortSignal) => s.query({ ...parseFlowsQuery(new URLSearchParams(qs)), signal }),
    status: async () => s.status(),
  });
  const down = { node: 'node3', fetch: () => { throw new Error('down'); }, status: async () => { throw new Error('connect ENOENT'); } };
  const srv = await startObserverServer({ sources: async () => [asSource(store), asSource(other), down], address: '127.0.0.1:0' });
  servers.push(srv);
  const c = client(srv.address);
  const got = (await flows(c, { until: at(3) })).map((r) => (isFlowEnvelope(r) ? `${r.node_name}:${r.flow.uuid}` : 'lost'));
  assert.deepEqual(got, ['node1:f0', 'node1:f1', 'node1:f2', 'node2:g0', 'node1:f3']);

  const status = await unary(c, 'ServerStatus');
  assert.deepEqual(status['num_connected_nodes'], { value: 2 });
  assert.deepEqual(status['num_unavailable_nodes'], { value: 1 });
  assert.deepEqual(status['unavailable_nodes'], ['node3']);
  const nodes = ((await unary(c, 'GetNodes'))['nodes'] as Req[]).map((n) => `${n['name']}:${n['state']}`);
  assert.deepEqual(nodes, ['node1:NODE_CONNECTED', 'node2:NODE_CONNECTED', 'node3:NODE_UNAVAILABLE']);
});
