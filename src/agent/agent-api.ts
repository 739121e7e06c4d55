/**
 * The agent's local API on a unix socket (the host reaches agents this way,
 * whatever network namespace they live in):
 *
 *   GET    /healthz                  200 once the first policy is in the kernel
 *   GET    /v1/status                node, datapath, endpoints, drops (JSON)
 *   GET    /v1/fqdn/cache            what the DNS proxy learned: name, IP, TTL left, resolved by (JSON)
 *   GET    /v1/flows[?…]             flow records, NDJSON (src/flows/http-api.ts); ?follow=1 streams
 *   GET    /v1/traffic               forwarded packets and bytes per workload pair, cumulative (JSON, agent-traffic.ts)
 *   GET    /metrics                  Prometheus text: hubble_* and palisade_* families
 *   POST   /v1/endpoints             CNI ADD: register a pod; 200 once its policy is programmed
 *   DELETE /v1/endpoints/<container> CNI DEL
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, rm } from 'node:fs/promises';
import type { Agent } from './agent.ts';
import { Registration } from './endpoint-registry.ts';
import { handleFlowsRequest, handleMetricsRequest } from '../flows/index.ts';

const MAX_BODY = 64 * 1024;

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 1);
  res.writeHead(code, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' });
  res.end(text.endsWith('\n') ? text : text + '\n');
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(c as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export async function serveAgentApi(agent: Agent, socketPath: string): Promise<Server> {
  const server = createServer((req, res) => {
    void handle(agent, req, res).catch((err: unknown) => send(res, 500, { error: err instanceof Error ? err.message : String(err) }));
  });
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  await chmod(socketPath, 0o600);
  return server;
}

async function handle(agent: Agent, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  if (req.method === 'GET' && url.pathname === '/healthz') {
    send(res, agent.ready ? 200 : 503, agent.ready ? 'ok' : 'starting');
    return;
  }
  if (await handleFlowsRequest(agent.flows, req, res)) return;
  if (handleMetricsRequest(agent.metrics, req, res)) return;
  if (req.method === 'GET' && url.pathname === '/v1/fqdn/cache') {
    send(res, 200, await agent.fqdnCacheEntries());
    return;
  }
  if (req.method === 'GET' && url.pathname === '/v1/traffic') {
    send(res, 200, await agent.traffic());
    return;
  }
  if (req.method === 'GET' && url.pathname === '/v1/status') {
    send(res, 200, await agent.status());
    return;
  }
  if (req.method === 'POST' && url.pathname === '/v1/endpoints') {
    const parsed = Registration.safeParse(await readJson(req));
    if (!parsed.success) {
      send(res, 400, { error: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
      return;
    }
    if (!agent.ready) {
      send(res, 503, { error: 'agent is starting; retry' });
      return;
    }
    await agent.registerEndpoint(parsed.data);
    send(res, 200, { registered: `${parsed.data.namespace}/${parsed.data.pod}` });
    return;
  }
  const del = /^\/v1\/endpoints\/([^/]+)$/.exec(url.pathname);
  if (req.method === 'DELETE' && del?.[1]) {
    await agent.deregisterEndpoint(decodeURIComponent(del[1]));
    send(res, 200, { deregistered: del[1] });
    return;
  }
  send(res, 404, { error: `no ${req.method} ${url.pathname}` });
}
