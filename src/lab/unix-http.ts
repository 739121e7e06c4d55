/** Small HTTP requests over a unix socket: how the host talks to agents in other namespaces. */
import { request } from 'node:http';

export interface UnixResponse {
  status: number;
  body: string;
}

export function unixRequest(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 5000): Promise<UnixResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    // A connection per request (agent: false): Node's global agent keeps sockets alive,
    // and one the server closed while idle failed the next request here with EPIPE.
    const req = request(
      { socketPath, method, path, agent: false, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} on ${socketPath} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
