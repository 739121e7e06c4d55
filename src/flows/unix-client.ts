/**
 * The client side of GET /v1/flows over an agent's unix socket: NDJSON lines
 * in, envelopes out. `unixFlowSource` makes one agent a FlowSource for the
 * relay and `palisade observe`.
 */
import { request, type IncomingMessage } from 'node:http';
import type { GetFlowsResponse } from './flow.ts';
import type { FlowSource } from './relay.ts';
import type { FlowStoreStatus } from './store.ts';

function get(socketPath: string, path: string, signal?: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', signal }, resolve);
    req.once('error', reject);
    req.end();
  });
}

async function failure(res: IncomingMessage, what: string): Promise<Error> {
  let body = '';
  res.setEncoding('utf8');
  for await (const c of res) body += c as string;
  let msg = body.trim();
  try {
    msg = (JSON.parse(body) as { error?: string }).error ?? msg;
  } catch { /* not JSON: keep the text */ }
  return new Error(`${what}: HTTP ${res.statusCode}: ${msg}`);
}

/** Streams envelopes until the agent ends the response or `signal` aborts (then it just returns). */
export async function* streamFlows(socketPath: string, queryString: string, signal?: AbortSignal): AsyncGenerator<GetFlowsResponse> {
  let res: IncomingMessage;
  try {
    res = await get(socketPath, `/v1/flows${queryString === '' ? '' : `?${queryString}`}`, signal);
  } catch (err) {
    if (signal?.aborted) return;
    throw err;
  }
  if (res.statusCode !== 200) throw await failure(res, `flows from ${socketPath}`);
  res.setEncoding('utf8');
  let buf = '';
  try {
    for await (const chunk of res) {
      buf += chunk as string;
      let start = 0;
      let nl: number;
      while ((nl = buf.indexOf('\n', start)) >= 0) {
        if (nl > start) yield JSON.parse(buf.slice(start, nl)) as GetFlowsResponse;
        start = nl + 1;
      }
      buf = start === 0 ? buf : buf.slice(start);
    }
  } catch (err) {
    if (signal?.aborted) return;
    throw err;
  } finally {
    res.destroy();
  }
}

/** GET `path` of the agent's API as JSON; anything but 200 is an error carrying the agent's own message. */
export async function getAgentJson(socketPath: string, path: string, signal?: AbortSignal, what = `${path} from ${socketPath}`): Promise<unknown> {
  const res = await get(socketPath, path, signal);
  if (res.statusCode !== 200) throw await failure(res, what);
  res.setEncoding('utf8');
  let body = '';
  for await (const c of res) body += c as string;
  return JSON.parse(body) as unknown;
}

export async function fetchFlowStatus(socketPath: string, signal?: AbortSignal): Promise<FlowStoreStatus> {
  return (await getAgentJson(socketPath, '/v1/flows/status', signal, `flow status from ${socketPath}`)) as FlowStoreStatus;
}

/** One agent as a source of flows. */
export function unixFlowSource(node: string, socketPath: string): FlowSource {
  return {
    node,
    fetch: (query, signal) => streamFlows(socketPath, query, signal),
    status: (signal) => fetchFlowStatus(socketPath, signal),
  };
}
