/**
 * What a person needs from a lab, published on the host's loopback: each
 * agent's Prometheus metrics (agents live in node namespaces and speak on unix
 * sockets), and a Hubble Relay (the Observer gRPC API over every node's flows).
 * Only GET /metrics is forwarded: the agents' other endpoints stay on their sockets.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { startObserverServer, unixFlowSource } from '../flows/index.ts';
import { agentSocketPath, labDir, type LabState } from './paths.ts';
import { unixRequest } from './unix-http.ts';

export interface Published {
  /** node → http://127.0.0.1:<port>/metrics */
  metrics: Record<string, string>;
  /** Hubble Relay (gRPC, plaintext): 127.0.0.1:<port> */
  relay: string;
}

export const publishedPath = (lab: string): string => `${labDir(lab)}/published.json`;

function metricsProxy(socket: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is published here\n');
      return;
    }
    unixRequest(socket, 'GET', '/metrics', undefined, 5000).then(
      (r) => res.writeHead(r.status, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(r.body),
      (err: unknown) => res.writeHead(503, { 'content-type': 'text/plain' }).end(`agent unreachable: ${String(err)}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

export async function publishLab(s: LabState): Promise<Published> {
  const metrics: Record<string, string> = {};
  for (const n of s.nodes) {
    const server = await metricsProxy(agentSocketPath(s.name, n.name));
    metrics[n.name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  }
  const relay = await startObserverServer({
    address: '127.0.0.1:0',
    sources: () => s.nodes.map((n) => unixFlowSource(n.name, agentSocketPath(s.name, n.name))),
  });
  const published: Published = { metrics, relay: relay.address };
  await writeFile(publishedPath(s.name), JSON.stringify(published, null, 2));
  return published;
}
