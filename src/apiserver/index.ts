/**
 * The lab's Kubernetes-compatible API server: what Palisade agents list and
 * watch through @kubernetes/client-node informers, and what a person drives
 * with the real kubectl, when the cluster is `palisade lab up` and not a real
 * kube-apiserver.
 *
 *   kubectl / client-node
 *        │ HTTP/1.1 on 127.0.0.1 (no TLS, no auth)
 *        ▼
 *   server.ts ── route ─► discovery.ts (/version, /api, /apis, aggregated v2), openapi.ts (/openapi/v3 stub)
 *        │        negotiate (JSON | Table from tables.ts | PartialObjectMetadata)
 *        │        selectors.ts, patch.ts
 *        ▼
 *   store.ts  ObjectStore: objects + one global resourceVersion counter
 *        │ commit (synchronous: next rv, swap snapshot, history, watchers)
 *        ├──► watch-history.ts  per-resource ring of recent events (resume / 410)
 *        ├──► watch.ts          WatchStream per ?watch=1, one ticker for bookmarks and timeouts
 *        └──► persistence.ts    snapshot + append-only change log, group commit; writes are answered once durable
 *
 * Resources (resources.ts): core/v1 namespaces, pods(+status), services(+status),
 * nodes(+status); discovery.k8s.io/v1 endpointslices; networking.k8s.io/v1
 * networkpolicies; cilium.io/v2 ciliumnetworkpolicies (cnp),
 * ciliumclusterwidenetworkpolicies (ccnp); lab.palisade.dev/v1 externalhosts (eh).
 *
 * Honest caveats (where this differs from kube-apiserver):
 * - No authentication, authorization, admission chain, TLS or HTTP/2; bind it to loopback only.
 * - No schemas: objects are stored as sent; the only checks are names, the
 *   `validate` hook and the rules in store.ts. /openapi/v3 carries no schemas,
 *   only what kubectl needs to leave validation to the server (openapi.ts);
 *   /openapi/v2 answers 404. `kubectl explain` therefore has nothing to show.
 * - Deletion is immediate: no graceful deletion, no finalizers, no
 *   Terminating namespaces; propagationPolicy is accepted and ignored (there is no
 *   garbage collector for ownerReferences). Objects removed by a namespace
 *   cascade leave a 60 s tombstone so that a DELETE of them still answers 200,
 *   as during a real namespace's termination (`kubectl delete -f` of a file that
 *   lists the Namespace first would otherwise fail on every later object).
 * - Strategic merge patch knows a fixed table of list merge keys (patch.ts);
 *   server-side apply (application/apply-patch+yaml) answers 415.
 * - `limit`/`continue` are ignored: a list is always complete, in one page.
 * - Lists always return the newest state (NotOlderThan semantics);
 *   resourceVersionMatch=Exact with an older rv answers 410.
 * - Watch history is kept per resource (`watchHistory` events each) and is
 *   empty after a restart, so resuming with an RV from before the restart
 *   answers 410 and informers relist.
 * - Services get no clusterIP allocation, pods no scheduling, nodes no heartbeat:
 *   whoever creates the object fills those fields in.
 * - Watch events go out at commit, slightly before the change is on disk.
 * - The kubeconfig carries `insecure-skip-tls-verify: true` although the server is
 *   plain http: @kubernetes/client-node 2.x refuses http:// servers without it.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ResourceTable } from './resources.ts';
import { ObjectStore, type ValidateFn } from './store.ts';
import { WatchRegistry } from './watch.ts';
import { loadState, StateJournal } from './persistence.ts';
import { buildDiscovery, type DiscoveryDocuments } from './discovery.ts';
import { createRequestListener } from './server.ts';
import { buildOpenApi } from './openapi.ts';
import { rm } from 'node:fs/promises';

export { writeKubeconfig } from './kubeconfig.ts';

export interface ApiServerOptions {
  /** Address to listen on; default 127.0.0.1. Keep it on loopback: there is no authentication. */
  host?: string;
  /** 0 = pick a free port. */
  port?: number;
  /**
   * Also serve on this unix socket. Lab agents live in other network
   * namespaces, where the host's loopback is out of reach; a socket file is not.
   */
  socketPath?: string;
  /** JSON persistence file; state survives a restart of the server when given. */
  dataFile?: string;
  /** Pluggable validation hook; faults → 422 Invalid with details.causes. */
  validate?: (obj: Record<string, unknown>) => { path: string; message: string }[];
  /** Events kept per resource for watch resume (default 1000); older resourceVersions get 410 Gone. */
  watchHistory?: number;
  /** Interval between BOOKMARK events on watches that allow them; default 10_000 ms. */
  bookmarkIntervalMs?: number;
}

export interface ApiServer {
  /** "http://127.0.0.1:PORT" */
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startApiServer(opts: ApiServerOptions = {}): Promise<ApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const table = new ResourceTable();
  const restored = opts.dataFile ? await loadState(opts.dataFile) : undefined;

  // The writer reads the store lazily, so it can exist before the store does.
  let store: ObjectStore | undefined;
  const writer = opts.dataFile ? new StateJournal(opts.dataFile, () => store!.snapshot()) : undefined;
  store = new ObjectStore(table, {
    historySize: opts.watchHistory ?? 1000,
    validate: opts.validate as ValidateFn | undefined,
    onCommit: writer ? (change) => writer.record(change) : undefined,
    restored,
  });
  const liveStore = store;
  const watches = new WatchRegistry(opts.bookmarkIntervalMs ?? 10_000, () => liveStore.resourceVersion);

  let discovery: DiscoveryDocuments | undefined;
  const listener = createRequestListener({
    store: liveStore,
    table,
    watches,
    discovery: () => discovery!,
    openapi: buildOpenApi(table.all),
    durable: writer ? () => writer.durable() : () => Promise.resolve(),
  });
  const server: Server = createServer(listener);
  const unixServer: Server | undefined = opts.socketPath ? createServer(listener) : undefined;
  for (const s of [server, unixServer]) {
    if (!s) continue;
    // Watches are long-lived requests: Node's default 300 s requestTimeout would cut them.
    s.requestTimeout = 0;
    s.keepAliveTimeout = 60_000;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => { server.off('error', reject); resolve(); });
  });
  if (unixServer && opts.socketPath) {
    await rm(opts.socketPath, { force: true }); // a stale socket from a crashed run
    await new Promise<void>((resolve, reject) => {
      unixServer.once('error', reject);
      unixServer.listen(opts.socketPath, () => { unixServer.off('error', reject); resolve(); });
    });
  }
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  discovery = buildDiscovery(table.all, `${hostInUrl}:${port}`);
  // One file to start from: the initial namespaces of a fresh store, or what the log held.
  await writer?.compact();

  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostInUrl}:${port}`,
    port,
    close(): Promise<void> {
      closing ??= (async () => {
        watches.closeAll();
        const closed = [server, unixServer].map((s) => s && new Promise<void>((resolve) => s.close(() => resolve())));
        server.closeAllConnections();
        unixServer?.closeAllConnections();
        await Promise.all(closed);
        await writer?.compact();
        await writer?.close();
      })();
      return closing;
    },
  };
}
