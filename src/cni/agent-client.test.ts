// The agent protocol against real HTTP servers on unix sockets in a temp dir
// (no root needed).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deregisterEndpoint, registerEndpoint } from './agent-client.ts';
import { WEB_REGISTRATION } from '../../test/kit/cni.ts';
import { CniError } from './errors.ts';

let tmp = '';
const servers: Server[] = [];
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pl-cn-agent-'));
});
after(async () => {
  for (const s of servers) s.close();
  await rm(tmp, { recursive: true, force: true });
});

const ep = WEB_REGISTRATION;

/** Answers the statuses in turn (the last one repeats). */
async function agent(file: string, statuses: number[], seen: string[] = []): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${body}`);
      const status = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
      res.writeHead(status).end(status >= 300 ? JSON.stringify({ message: `said ${status}` }) : '');
    });
  });
  servers.push(server);
  const socket = join(tmp, file);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return socket;
}

async function refusal(p: Promise<unknown>): Promise<CniError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CniError, String(err));
    return err;
  }
  assert.fail('expected a CniError');
}

test('register POSTs the endpoint as JSON and returns on 200', async () => {
  const seen: string[] = [];
  await registerEndpoint(await agent('ok.sock', [200], seen), ep);
  assert.deepEqual(seen, [`POST /v1/endpoints ${JSON.stringify(ep)}`]);
});

test('a non-2xx answer fails at once with the agent message', async () => {
  const seen: string[] = [];
  const err = await refusal(registerEndpoint(await agent('500.sock', [500], seen), ep));
  assert.equal(err.code, 999);
  assert.match(err.message, /HTTP 500: said 500/);
  assert.equal(seen.length, 1, 'no retry');
});

test('503 (not ready yet) is retried', async () => {
  const seen: string[] = [];
  await registerEndpoint(await agent('503.sock', [503, 503, 200], seen), ep);
  assert.equal(seen.length, 3);
});

test('no agent: retried until the deadline, then "try again later" (11)', async () => {
  const started = Date.now();
  const err = await refusal(registerEndpoint(join(tmp, 'missing.sock'), ep, { retryForMs: 400 }));
  assert.equal(err.code, 11);
  assert.match(err.message, /not reachable at .*missing\.sock for 0\.4 s \(ENOENT\)/);
  assert.ok(Date.now() - started >= 300, 'it did wait');
});

test('an agent that never answers times out', async () => {
  const server = createServer(() => {}); // accepts, never responds
  servers.push(server);
  const socket = join(tmp, 'silent.sock');
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const err = await refusal(registerEndpoint(socket, ep, { responseTimeoutMs: 200 }));
  assert.match(err.message, /no answer within 0\.2 s/);
  server.closeAllConnections();
});

test('deregister: DELETE by container id; 404 and absence are not errors, other answers are reported', async () => {
  const seen: string[] = [];
  assert.equal(await deregisterEndpoint(await agent('del.sock', [200], seen), 'c/1'), null);
  assert.deepEqual(seen, ['DELETE /v1/endpoints/c%2F1 ']);
  assert.equal(await deregisterEndpoint(await agent('del404.sock', [404]), 'c1'), null);
  assert.match((await deregisterEndpoint(join(tmp, 'missing.sock'), 'c1')) ?? '', /ENOENT/);
  assert.match((await deregisterEndpoint(await agent('del500.sock', [500]), 'c1')) ?? '', /HTTP 500/);
});
