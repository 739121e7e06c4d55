/**
 * Hubble's Observer gRPC service, served from one node's FlowStore (what
 * Hubble runs in each agent) or from a set of FlowSources (what Hubble Relay
 * serves for the cluster):
 *
 *   GetFlows(req) ─► requestToQuery ─► store.query()            ─► stream GetFlowsResponse
 *                                   └► relayFlows(sources, qs)  ─┘
 *   ServerStatus / GetNodes ─► store.status() | each source's status()
 *
 * Streams honour backpressure (wait for 'drain') and end when the client
 * cancels. A bad filter answers INVALID_ARGUMENT before any flow is sent.
 */
import { Server, ServerCredentials, status as grpcStatus, type ServerWritableStream, type ServiceDefinition, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { FlowFilterError } from './filter.ts';
import type { GetFlowsResponse } from './flow.ts';
import { loadObserverPackage, requestToQuery, responseToProto } from './grpc-codec.ts';
import { flowsQueryString } from './query-params.ts';
import { relayFlows, type FlowSource } from './relay.ts';
import type { FlowStore, FlowStoreStatus } from './store.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface ObserverServerOptions {
  /** `unix:/path/to/sock` or `127.0.0.1:port` (port 0 picks one). */
  address: string;
  store?: FlowStore;
  sources?: () => Promise<FlowSource[]> | FlowSource[];
  version?: string;
}

export interface ObserverServer {
  server: Server;
  /** The bound address; for TCP with port 0, the real port. */
  address: string;
  close(): Promise<void>;
}

type Req = Record<string, unknown>;

export async function startObserverServer(opts: ObserverServerOptions): Promise<ObserverServer> {
  if ((opts.store === undefined) === (opts.sources === undefined)) throw new Error('startObserverServer: give exactly one of store or sources');
  const version = `palisade ${opts.version ?? VERSION}`;
  const pkg = loadObserverPackage('server') as unknown as { observer: { Observer: { service: ServiceDefinition } } };
  const server = new Server();
  const impl = opts.store !== undefined ? agentImpl(opts.store, version) : relayImpl(opts.sources as NonNullable<ObserverServerOptions['sources']>, version);
  server.addService(pkg.observer.Observer.service, impl);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(opts.address, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const address = opts.address.startsWith('unix:') ? opts.address : opts.address.replace(/:\d+$/, `:${port}`);
  return {
    server,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        // Followers never end by themselves: give in-flight calls a moment, then cut them.
        const timer = setTimeout(() => server.forceShutdown(), 200);
        server.tryShutdown(() => { clearTimeout(timer); resolve(); });
      }),
  };
}

async function streamTo(call: ServerWritableStream<Req, Req>, flows: AsyncIterable<GetFlowsResponse>, stop: AbortController): Promise<void> {
  try {
    for await (const r of flows) {
      if (!call.write(responseToProto(r))) await once(call, 'drain', { signal: stop.signal });
    }
    call.end();
  } catch (err) {
    if (stop.signal.aborted) return;
    call.emit('error', { code: grpcStatus.INTERNAL, details: err instanceof Error ? err.message : String(err) });
  }
}

function startCall(call: ServerWritableStream<Req, Req>): AbortController {
  const stop = new AbortController();
  call.on('cancelled', () => stop.abort());
  call.on('close', () => stop.abort());
  return stop;
}

function badRequest(call: ServerWritableStream<Req, Req>, err: unknown): void {
  const invalid = err instanceof FlowFilterError;
  call.emit('error', { code: invalid ? grpcStatus.INVALID_ARGUMENT : grpcStatus.INTERNAL, details: err instanceof Error ? err.message : String(err) });
}

function statusToProto(s: FlowStoreStatus): Req {
  return { num_flows: s.num_flows, max_flows: s.max_flows, seen_flows: s.seen_flows, uptime_ns: s.uptime_ns };
}

function agentImpl(store: FlowStore, version: string) {
  return {
    GetFlows(call: ServerWritableStream<Req, Req>): void {
      const stop = startCall(call);
      let flows: AsyncIterable<GetFlowsResponse>;
      try {
        flows = store.query({ ...requestToQuery(call.request), signal: stop.signal });
      } catch (err) {
        badRequest(call, err);
        return;
      }
      void streamTo(call, flows, stop);
    },
    ServerStatus(_call: ServerUnaryCall<Req, Req>, cb: sendUnaryData<Req>): void {
      cb(null, { ...statusToProto(store.status()), num_connected_nodes: { value: 1 }, num_unavailable_nodes: { value: 0 }, version });
    },
    GetNodes(_call: ServerUnaryCall<Req, Req>, cb: sendUnaryData<Req>): void {
      const s = store.status();
      cb(null, { nodes: [{ name: store.nodeName, version, state: 'NODE_CONNECTED', ...statusToProto(s) }] });
    },
  };
}

interface NodeReport {
  source: FlowSource;
  status: FlowStoreStatus | null;
  error?: string;
}

async function nodeReports(sources: readonly FlowSource[]): Promise<NodeReport[]> {
  return Promise.all(
    sources.map(async (source): Promise<NodeReport> => {
      if (source.status === undefined) return { source, status: null };
      try {
        return { source, status: await source.status(AbortSignal.timeout(5000)) };
      } catch (err) {
        return { source, status: null, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
}

function relayImpl(getSources: () => Promise<FlowSource[]> | FlowSource[], version: string) {
  return {
    GetFlows(call: ServerWritableStream<Req, Req>): void {
      const stop = startCall(call);
      void (async () => {
        let qs: string;
        let q;
        try {
          q = requestToQuery(call.request);
          qs = flowsQueryString(q);
        } catch (err) {
          badRequest(call, err);
          return;
        }
        const sources = await getSources();
        // Relay: a node that fails leaves the stream; the others go on.
        const flows = relayFlows(sources, qs, { follow: q.follow === true, last: q.last, signal: stop.signal, onError: () => {} });
        await streamTo(call, flows, stop);
      })().catch((err: unknown) => badRequest(call, err));
    },
    ServerStatus(_call: ServerUnaryCall<Req, Req>, cb: sendUnaryData<Req>): void {
      void (async () => {
        const reports = await nodeReports(await getSources());
        const up = reports.filter((r) => r.error === undefined);
        const sum = (k: 'num_flows' | 'max_flows' | 'seen_flows'): number => up.reduce((n, r) => n + (r.status?.[k] ?? 0), 0);
        cb(null, {
          num_flows: sum('num_flows'),
          max_flows: sum('max_flows'),
          seen_flows: sum('seen_flows'),
          uptime_ns: Math.max(0, ...up.map((r) => r.status?.uptime_ns ?? 0)),
          num_connected_nodes: { value: up.length },
          num_unavailable_nodes: { value: reports.length - up.length },
          unavailable_nodes: reports.filter((r) => r.error !== undefined).map((r) => r.source.node),
          version,
        });
      })().catch((err: unknown) => cb({ code: grpcStatus.INTERNAL, details: String(err) }, null));
    },
    GetNodes(_call: ServerUnaryCall<Req, Req>, cb: sendUnaryData<Req>): void {
      void (async () => {
        const reports = await nodeReports(await getSources());
        cb(null, {
          nodes: reports.map((r) => ({
            name: r.source.node,
            version,
            state: r.error === undefined ? 'NODE_CONNECTED' : 'NODE_UNAVAILABLE',
            ...(r.status !== null ? statusToProto(r.status) : {}),
          })),
        });
      })().catch((err: unknown) => cb({ code: grpcStatus.INTERNAL, details: String(err) }, null));
    },
  };
}
