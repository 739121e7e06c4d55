/**
 * http-echo: answers every request with JSON describing it — method, path,
 * headers, the client's address as the server saw it, and which pod answered.
 * The client address is how tests prove that proxies keep the pod's source IP.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';

export interface EchoReply {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  client: { address: string; port: number };
  pod: string;
  namespace?: string;
  bodyBytes: number;
}

export function podName(): string {
  return process.env['POD_NAME'] ?? hostname();
}

/** The JSON echo itself, shared by http-echo and https-echo. */
export function echoRequestListener(req: IncomingMessage, res: ServerResponse): void {
  let bodyBytes = 0;
  req.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
  req.on('end', () => {
    const reply: EchoReply = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; show the address the client has.
      client: { address: (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, ''), port: req.socket.remotePort ?? 0 },
      pod: podName(),
      ...(process.env['POD_NAMESPACE'] ? { namespace: process.env['POD_NAMESPACE'] } : {}),
      bodyBytes,
    };
    const body = JSON.stringify(reply) + '\n';
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

export function startHttpEcho(port: number, host = '::'): Promise<Server> {
  const server = createServer(echoRequestListener);
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ipv6Only: false }, () => resolve(server));
  });
}
