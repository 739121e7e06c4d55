/**
 * The plugin's side of the agent's endpoint API: HTTP/1.1 over the node
 * agent's unix socket (`agentSocket` in the network config).
 *
 *   ADD  POST   /v1/endpoints               {containerId, namespace, pod, ifname, hostIfname, ip, mac, netns}
 *        → 2xx once the endpoint's policy is programmed (the pod may start)
 *   DEL  DELETE /v1/endpoints/<containerId> → 2xx, or 404 if unknown (both fine)
 *
 * Connection failures on ADD (no socket yet, refused, reset: the agent is
 * restarting) are retried for ADD_RETRY_MS; a 503 answer too (agent up but not
 * ready). Any other non-2xx answer fails at once with the agent's message.
 * DEL is best effort: the agent also forgets endpoints whose veth vanished.
 */
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { CniCode, CniError } from './errors.ts';
import type { EndpointRegistration } from './registration.ts';

export const ADD_RETRY_MS = 10_000;
/** Programming policy for a new endpoint is quick; a minute means the agent is stuck. */
const ADD_RESPONSE_TIMEOUT_MS = 60_000;
const DEL_TIMEOUT_MS = 3_000;

export interface AgentCallOptions {
  retryForMs?: number;
  responseTimeoutMs?: number;
}

interface AgentResponse {
  status: number;
  body: string;
}

/** Errors that mean "nobody is listening yet", worth retrying. */
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EAGAIN']);

class AgentUnreachable extends Error {
  readonly errno: string;
  constructor(errno: string, message: string) {
    super(message);
    this.errno = errno;
  }
}

function call(socketPath: string, method: string, path: string, body: string | undefined, timeoutMs: number): Promise<AgentResponse> {
  return new Promise((resolve, reject) => {
    const req = request({
      socketPath,
      method,
      path,
      headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      timeout: timeoutMs,
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code && RETRYABLE.has(err.code) ? new AgentUnreachable(err.code, err.message) : err);
    });
    req.end(body);
  });
}

/** The agent's error text: `{"message": …}` / `{"error": …}` bodies, or the raw body. */
function agentMessage(body: string): string {
  try {
    const doc = JSON.parse(body) as { message?: unknown; error?: unknown };
    if (typeof doc.message === 'string') return doc.message;
    if (typeof doc.error === 'string') return doc.error;
  } catch {
    // plain text
  }
  return body.trim().slice(0, 500);
}

export async function registerEndpoint(socketPath: string, ep: EndpointRegistration, opts: AgentCallOptions = {}): Promise<void> {
  const retryForMs = opts.retryForMs ?? ADD_RETRY_MS;
  const deadline = Date.now() + retryForMs;
  const body = JSON.stringify(ep);
  let delay = 50;
  let last = '';
  for (;;) {
    try {
      const res = await call(socketPath, 'POST', '/v1/endpoints', body, opts.responseTimeoutMs ?? ADD_RESPONSE_TIMEOUT_MS);
      if (res.status >= 200 && res.status < 300) return;
      if (res.status !== 503) {
        throw new CniError(CniCode.internal, `palisade agent refused endpoint ${ep.namespace}/${ep.pod}: HTTP ${res.status}: ${agentMessage(res.body)}`);
      }
      last = `HTTP 503: ${agentMessage(res.body)}`;
    } catch (err) {
      if (!(err instanceof AgentUnreachable)) {
        if (err instanceof CniError) throw err;
        throw new CniError(CniCode.internal, `palisade agent at ${socketPath}: ${(err as Error).message}`);
      }
      last = err.errno;
    }
    // The last wait ends at the deadline, so a slow machine still retries for the whole time.
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, 1000);
  }
  throw new CniError(
    CniCode.tryAgainLater,
    `palisade agent not reachable at ${socketPath} for ${retryForMs / 1000} s (${last}); is the node's agent running?`,
  );
}

/** Best effort: returns what went wrong instead of throwing, for the caller to log. */
export async function deregisterEndpoint(socketPath: string, containerId: string, timeoutMs = DEL_TIMEOUT_MS): Promise<string | null> {
  try {
    const res = await call(socketPath, 'DELETE', `/v1/endpoints/${encodeURIComponent(containerId)}`, undefined, timeoutMs);
    if ((res.status >= 200 && res.status < 300) || res.status === 404) return null;
    return `HTTP ${res.status}: ${agentMessage(res.body)}`;
  } catch (err) {
    return (err as Error).message;
  }
}
