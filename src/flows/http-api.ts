/**
 * The flows part of the agent's unix-socket HTTP API:
 *
 *   GET /v1/flows?<query-params.ts>   NDJSON of GetFlowsResponse envelopes
 *   GET /v1/flows/status              {node_name, num_flows, max_flows, seen_flows, uptime_ns, lost}
 *
 * History is written in ~64 KiB chunks (few syscalls for `--last 8192`);
 * followed flows are written one line at a time, so a reader sees each flow
 * as it happens. The stream ends when the client goes away (or, without
 * follow, when the history is out). A slow client is met with backpressure:
 * we wait for 'drain', and if the ring laps it meanwhile it receives a
 * lost_events line instead of the flows it missed.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FlowFilterError } from './filter.ts';
import { flowToJson, type GetFlowsResponse } from './flow.ts';
import { parseFlowsQuery } from './query-params.ts';
import type { FlowStore } from './store.ts';

const CHUNK = 64 * 1024;

/** Serves the two routes; resolves false (touching nothing) for any other path. */
export async function handleFlowsRequest(store: FlowStore, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://agent');
  if (url.pathname !== '/v1/flows' && url.pathname !== '/v1/flows/status') return false;
  if (req.method !== 'GET') {
    sendJson(res, 405, { error: `${req.method} not allowed; use GET` });
    return true;
  }
  if (url.pathname === '/v1/flows/status') {
    sendJson(res, 200, store.status());
    return true;
  }

  const stop = new AbortController();
  let flows: AsyncIterable<GetFlowsResponse>;
  let follow: boolean;
  try {
    const q = parseFlowsQuery(url.searchParams);
    follow = q.follow === true;
    flows = store.query({ ...q, signal: stop.signal });
  } catch (err) {
    if (!(err instanceof FlowFilterError)) throw err;
    sendJson(res, 400, { error: err.message });
    return true;
  }
  res.once('close', () => stop.abort());
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  res.flushHeaders();

  let pending = '';
  try {
    for await (const e of flows) {
      if (follow) {
        if (!res.write(flowToJson(e) + '\n')) await once(res, 'drain', { signal: stop.signal });
        continue;
      }
      pending += flowToJson(e) + '\n';
      if (pending.length >= CHUNK) {
        const ok = res.write(pending);
        pending = '';
        if (!ok) await once(res, 'drain', { signal: stop.signal });
      }
    }
  } catch (err) {
    if (!stop.signal.aborted) throw err; // an AbortError from `once` just means the client left
  }
  if (!res.destroyed) res.end(pending);
  stop.abort(); // a follow that ended on `until` leaves nothing listening
  return true;
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body) + '\n');
}
