/** GET /v1/flows over a real unix socket: history, filters, follow streaming, status, errors. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envelope, isFlowEnvelope, makeFlow, type GetFlowsResponse } from './flow.ts';
import { handleFlowsRequest } from './http-api.ts';
import { flowsQueryString } from './query-params.ts';
import { FlowStore } from './store.ts';
import { at } from '../../test/kit/flows.ts';
import { fetchFlowStatus, streamFlows } from './unix-client.ts';

let dir: string;
let socket: string;
let server: Server;
const store = new FlowStore({ nodeName: 'node1', capacity: 64 });

function add(i: number, verdict: 'FORWARDED' | 'DROPPED' = 'FORWARDED', pod = 'frontend'): void {
  store.add(envelope(makeFlow({ time: at(i), verdict, uuid: `f${i}`, node_name: 'node1', source: { namespace: 'default', pod_name: pod } })));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'palisade-flows-http-'));
  socket = join(dir, 'agent.sock');
  server = createServer((req, res) => {
    void handleFlowsRequest(store, req, res).then((handled) => {
      if (!handled) { res.writeHead(404); res.end(); }
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  for (let i = 0; i < 10; i++) add(i, i % 3 === 0 ? 'DROPPED' : 'FORWARDED', i < 5 ? 'frontend' : 'backend');
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const uuids = (rs: GetFlowsResponse[]): string[] => rs.map((r) => (isFlowEnvelope(r) ? (r.flow.uuid as string) : 'lost'));

async function all(qs: string): Promise<GetFlowsResponse[]> {
  const out: GetFlowsResponse[] = [];
  for await (const e of streamFlows(socket, qs)) out.push(e);
  return out;
}

test('history with flat and JSON filters', async () => {
  const cases: [string, string[]][] = [
    ['', ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9']],
    ['last=2', ['f8', 'f9']],
    ['verdict=dropped', ['f0', 'f3', 'f6', 'f9']],
    ['verdict=DROPPED&source_pod=default/back', ['f6', 'f9']],
    ['verdict=DROPPED&verdict=FORWARDED&last=1', ['f9']],
    ['blacklist.verdict=FORWARDED&blacklist.source_pod=default/frontend', ['f0', 'f3', 'f5', 'f6', 'f7', 'f8', 'f9']],
    [flowsQueryString({ whitelist: [{ uuid: ['f1'] }, { uuid: ['f2'] }] }), ['f1', 'f2']],
    [flowsQueryString({ since: at(7), until: at(8) }), ['f7', 'f8']],
  ];
  for (const [qs, want] of cases) assert.deepEqual(uuids(await all(qs)), want, qs);
  const [one] = await all('last=1');
  assert.equal(one?.node_name, 'node1');
});

test('bad queries answer 400 with the reason', async () => {
  for (const qs of ['source_ip=zzz', 'bogus_field=1', 'last=-1', 'whitelist=[1]', 'since=whenever']) {
    await assert.rejects(all(qs), /HTTP 400/, qs);
  }
});

test('status', async () => {
  const s = await fetchFlowStatus(socket);
  assert.equal(s.node_name, 'node1');
  assert.equal(s.max_flows, 64);
  assert.ok(s.seen_flows >= 10);
  assert.ok(s.uptime_ns > 0);
});

test('follow streams each flow as it is added and stops when the client leaves', async () => {
  const stop = new AbortController();
  const got: string[] = [];
  const it = streamFlows(socket, 'follow=1&verdict=DROPPED', stop.signal);
  const reading = (async () => {
    for await (const e of it) {
      if (isFlowEnvelope(e)) got.push(e.flow.uuid as string);
      if (got.length === 2) stop.abort();
    }
  })();
  // The follower starts at the tail: only new flows.
  for (let i = 0; i < 50 && got.length < 2; i++) {
    add(100 + i, 'DROPPED');
    await new Promise((r) => setTimeout(r, 10));
  }
  await reading;
  assert.equal(got.length, 2);
  assert.ok(got.every((u) => Number(u.slice(1)) >= 100), `only new flows: ${got.join(',')}`);
  // The server noticed the disconnect and closed its side.
  let open = 1;
  for (let i = 0; i < 50 && open > 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    open = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
  }
  assert.equal(open, 0);
});

test('other paths are left to the caller', async () => {
  const code = await new Promise<number>((resolve, reject) => {
    request({ socketPath: socket, path: '/healthz' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject).end();
  });
  assert.equal(code, 404);
});
