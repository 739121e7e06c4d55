/**
 * The client side of Hubble's Observer gRPC API (a Hubble Relay, Palisade's
 * or Cilium's, or one agent's observer.sock) as a FlowSource:
 *
 *   fetch(query string) ─► parseFlowsQuery ─► queryToRequest ─► GetFlows ─► protoToResponse ─► envelopes
 *   nodes()  ─► GetNodes      (per node: state, version, flow counts)
 *   status() ─► ServerStatus  (summed over the relay's nodes)
 *
 * One channel per source; close() ends it. Errors keep gRPC's status text
 * (`14 UNAVAILABLE: No connection established`), which names the cause.
 */
import { credentials, status as grpcStatus, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import type { GetFlowsResponse } from './flow.ts';
import { loadObserverPackage, protoToResponse, queryToRequest } from './grpc-codec.ts';
import { parseFlowsQuery } from './query-params.ts';
import type { FlowSource } from './relay.ts';
import type { FlowStoreStatus } from './store.ts';

type Req = Record<string, unknown>;
const FLOW_CONTROL_WINDOW = 8 * 1024 * 1024;
/** Flows handed over per turn of the event loop (a power of two). */
const YIELD_EVERY = 256;
interface ObserverClient extends Client {
  GetFlows(req: Req): ClientReadableStream<Req>;
  ServerStatus(req: Req, options: { deadline: number }, cb: (err: ServiceError | null, res: Req) => void): void;
  GetNodes(req: Req, options: { deadline: number }, cb: (err: ServiceError | null, res: Req) => void): void;
}

/** One node as GetNodes reports it. */
export interface ObserverNode {
  name: string;
  version: string;
  /** relay.NodeState: NODE_CONNECTED, NODE_UNAVAILABLE, NODE_GONE, NODE_ERROR. */
  state: string;
  numFlows?: number;
  maxFlows?: number;
  seenFlows?: number;
}

export interface ObserverFlowSource extends FlowSource {
  nodes(timeoutMs?: number): Promise<ObserverNode[]>;
  close(): void;
}

/** `address`: `host:port` or `unix:/path`. `node` names the source in errors and envelopes without one. */
export function observerFlowSource(address: string, node = address): ObserverFlowSource {
  const pkg = loadObserverPackage('client') as unknown as { observer: { Observer: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>, options: Record<string, number>) => ObserverClient } };
  // A follower's stream is one long response: HTTP/2's default 64 KiB window (about 200 flows)
  // made the relay wait for a window update every few milliseconds, capping a busy stream.
  const client = new pkg.observer.Observer(address, credentials.createInsecure(), { 'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW });
  const unary = (m: 'ServerStatus' | 'GetNodes', timeoutMs: number): Promise<Req> =>
    new Promise((resolve, reject) => {
      client[m]({}, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(new Error(`${address}: ${err.message}`)) : resolve(res)));
    });
  return {
    node,
    fetch: (query, signal) => getFlows(client, address, query, signal),
    async status(signal?: AbortSignal): Promise<FlowStoreStatus> {
      signal?.throwIfAborted();
      const s = await unary('ServerStatus', 5000);
      return { node_name: node, num_flows: Number(s['num_flows'] ?? 0), max_flows: Number(s['max_flows'] ?? 0), seen_flows: Number(s['seen_flows'] ?? 0), uptime_ns: Number(s['uptime_ns'] ?? 0), lost: {} };
    },
    async nodes(timeoutMs = 5000): Promise<ObserverNode[]> {
      const res = await unary('GetNodes', timeoutMs);
      return ((res['nodes'] ?? []) as Req[]).map((n) => ({
        name: String(n['name'] ?? ''),
        version: String(n['version'] ?? ''),
        state: String(n['state'] ?? 'UNKNOWN_NODE_STATE'),
        ...(n['num_flows'] !== undefined ? { numFlows: Number(n['num_flows']) } : {}),
        ...(n['max_flows'] !== undefined ? { maxFlows: Number(n['max_flows']) } : {}),
        ...(n['seen_flows'] !== undefined ? { seenFlows: Number(n['seen_flows']) } : {}),
      }));
    },
    close: () => client.close(),
  };
}

/** GetFlows as an async iterable: a small queue between grpc-js' 'data' events and the consumer, paused when it fills. */
async function* getFlows(client: ObserverClient, address: string, query: string, signal: AbortSignal): AsyncGenerator<GetFlowsResponse> {
  const call = client.GetFlows(queryToRequest(parseFlowsQuery(new URLSearchParams(query))));
  const HIGH_WATER = 4096;
  let queue: GetFlowsResponse[] = [];
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = (): void => { const w = wake; wake = null; w?.(); };
  call.on('data', (d: Req) => {
    queue.push(protoToResponse(d));
    if (queue.length >= HIGH_WATER) call.pause();
    notify();
  });
  call.on('end', () => { ended = true; notify(); });
  call.on('error', (err: ServiceError) => {
    if (err.code !== grpcStatus.CANCELLED) failure = new Error(`${address}: ${err.message}`);
    ended = true;
    notify();
  });
  const onAbort = (): void => { call.cancel(); notify(); };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    while (true) {
      if (queue.length > 0) {
        const batch = queue;
        queue = [];
        call.resume();
        for (let i = 0; i < batch.length; i++) {
          yield batch[i] as GetFlowsResponse;
          // A busy stream would hand its consumer thousands of flows in one turn of the
          // event loop, and the consumer's own HTTP requests would wait behind them.
          if ((i & (YIELD_EVERY - 1)) === YIELD_EVERY - 1) await new Promise<void>((r) => setImmediate(r));
        }
        continue;
      }
      if (failure !== null) throw failure;
      if (ended || signal.aborted) return;
      await new Promise<void>((r) => { wake = r; });
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    call.cancel();
  }
}
