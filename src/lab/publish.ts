/**
 * What a person needs from a lab, published on the host's loopback: each
 * agent's Prometheus metrics (agents live in node namespaces and speak on unix
 * sockets), and a Hubble Relay (the Observer gRPC API over every node's flows).
 * Only GET /metrics is forwarded: the agents' other endpoints stay on their sockets.
 * `lab up` adds what it starts after the controller: Prometheus and the web UI.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { startObserverServer, unixFlowSource } from '../flows/index.ts';
import { agentSocketPath, labDir, type LabState } from './paths.ts';
import { unixRequest } from './unix-http.ts';
import { writeScrapeTargets } from './prometheus.ts';

export interface Published {
  /** node → http://127.0.0.1:<port>/metrics */
  metrics: Record<string, string>;
  /** Hubble Relay (gRPC, plaintext): 127.0.0.1:<port> */
  relay: string;
  /** The lab's Prometheus (lab up --prometheus): http://127.0.0.1:<port> */
  prometheus?: string;
  /** The web UI: http://127.0.0.1:<port>/ */
  ui?: string;
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
  await writeScrapeTargets(s.name, metrics);
  // A restarted controller publishes anew: what lab up added stays.
  return updatePublished(s.name, { metrics, relay: relay.address });
}

export async function readPublished(lab: string): Promise<Published | undefined> {
  try {
    return JSON.parse(await readFile(publishedPath(lab), 'utf8')) as Published;
  } catch {
    return undefined;
  }
}

/** Merges `fields` into published.json (written whole and renamed, so readers never see half of it). */
export async function updatePublished(lab: string, fields: Partial<Published>): Promise<Published> {
  const merged = { ...(await readPublished(lab)), ...fields } as Published;
  const tmp = `${publishedPath(lab)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(merged, null, 2));
  await rename(tmp, publishedPath(lab));
  return merged;
}
