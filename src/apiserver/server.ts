/**
 * HTTP handling on node:http, in named phases per request:
 *
 *   1. route       URL path → discovery document | resource request (routeResource)
 *   2. negotiate   Accept → JSON object | meta.k8s.io Table | PartialObjectMetadata
 *   3. read body   POST/PUT/PATCH/DELETE, at most MAX_BODY_BYTES, JSON (or YAML)
 *   4. act         one synchronous store call (the store is the only state)
 *   5. persist     writes wait until their change is on disk (StateJournal)
 *   6. answer      the object, a list, a Table, or a metav1.Status on any error
 *
 * Resource URL grammar (k8s.io/apiserver endpoints/installer):
 *   /api/v1[/watch][/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
 *   /apis/{group}/{version}[/watch][/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
 * with the one ambiguity resolved as kube does: /api/v1/namespaces/{name}/status
 * is the namespace's status subresource, not a resource called "status".
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import {
  ApiError, badRequest, expired, internalError, methodNotAllowed, notFound, pathNotFound, successStatus,
  unsupportedMediaType,
} from './status-errors.ts';
import { bothSelectors, parseFieldSelector, parseLabelSelector, type ObjectPredicate } from './selectors.ts';
import { patchTypeOf } from './patch.ts';
import { AGGREGATED_DISCOVERY_V2, AGGREGATED_DISCOVERY_V2BETA1, VERSION_INFO, type DiscoveryDocuments } from './discovery.ts';
import type { OpenApiDocuments } from './openapi.ts';
import { toTable, type IncludeObject } from './tables.ts';
import { WatchStream, jsonOf, type WatchRegistry } from './watch.ts';
import type { KubeObject, ObjectStore } from './store.ts';
import type { ResourceInfo, ResourceTable } from './resources.ts';

/** kube-apiserver's own limit on request bodies (3 MiB). */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** What request handling needs; server.ts owns no state of its own. */
export interface RequestContext {
  store: ObjectStore;
  table: ResourceTable;
  watches: WatchRegistry;
  discovery: () => DiscoveryDocuments;
  openapi: OpenApiDocuments;
  /** Resolves when every change committed so far is durable (no-op without a data file). */
  durable: () => Promise<void>;
}

interface ResourceRequest {
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string | undefined;
  subresource: 'status' | undefined;
  /** The deprecated /watch/ path prefix was used. */
  watchPath: boolean;
}

type Representation = 'object' | 'table' | 'partial';

// ------------------------------------------------------------------ answer

function sendJsonText(res: ServerResponse, code: number, body: string, contentType = 'application/json'): void {
  res.writeHead(code, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache, private' });
  res.end(body);
}

function sendError(res: ServerResponse, err: unknown): void {
  const apiErr = err instanceof ApiError ? err : internalError(err);
  if (res.headersSent) { res.destroy(); return; }
  sendJsonText(res, apiErr.code, JSON.stringify(apiErr.toStatus()));
}

// ------------------------------------------------------------------ route

function routeResource(table: ResourceTable, segments: string[]): ResourceRequest | undefined {
  let group: string;
  let version: string;
  let rest: string[];
  if (segments[0] === 'api') {
    group = '';
    version = segments[1] ?? '';
    rest = segments.slice(2);
  } else {
    group = segments[1] ?? '';
    version = segments[2] ?? '';
    rest = segments.slice(3);
  }
  let watchPath = false;
  if (rest[0] === 'watch') { watchPath = true; rest = rest.slice(1); }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && group === '' &&
      !(rest.length === 3 && table.namespaces.subresources.includes(rest[2] as 'status'))) {
    namespace = rest[1];
    rest = rest.slice(2);
  } else if (rest[0] === 'namespaces' && rest.length >= 3 && group !== '') {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length === 0 || rest.length > 3) return undefined;
  const resource = table.lookup(group, version, rest[0]!);
  if (!resource) return undefined;
  if (namespace !== undefined && !resource.namespaced) return undefined;
  const sub = rest[2];
  if (sub !== undefined && !resource.subresources.includes(sub as 'status')) return undefined;
  return { resource, namespace, name: rest[1], subresource: sub as 'status' | undefined, watchPath };
}

/** Serves the discovery endpoints; false when the path is not one of them. */
function serveDiscovery(ctx: RequestContext, segments: string[], accept: string, res: ServerResponse): boolean {
  const docs = ctx.discovery();
  const [first, second, third] = segments;
  if (segments.length === 1 && (first === 'version')) {
    sendJsonText(res, 200, JSON.stringify(VERSION_INFO));
    return true;
  }
  if (segments.length === 1 && (first === 'healthz' || first === 'livez' || first === 'readyz')) {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('ok');
    return true;
  }
  if (first === 'openapi' && second === 'v3') {
    const doc = segments.length === 2 ? ctx.openapi.root : ctx.openapi.byGroupVersion.get(segments.slice(2).join('/'));
    if (!doc) return false;
    sendJsonText(res, 200, doc);
    return true;
  }
  if (segments.length === 1 && (first === 'api' || first === 'apis')) {
    const agg = aggregatedDiscoveryVersion(accept);
    if (agg) {
      sendJsonText(res, 200, docs.aggregated.get(`${agg}/${first}`)!, agg === 'v2' ? AGGREGATED_DISCOVERY_V2 : AGGREGATED_DISCOVERY_V2BETA1);
    } else {
      sendJsonText(res, 200, first === 'api' ? docs.apiVersions : docs.apiGroupList);
    }
    return true;
  }
  if (first === 'api' && segments.length === 2) {
    const list = docs.resourceLists.get(`/${second}`);
    if (!list) return false;
    sendJsonText(res, 200, list);
    return true;
  }
  if (first === 'apis' && segments.length === 2) {
    const group = docs.groups.get(second!);
    if (!group) return false;
    sendJsonText(res, 200, group);
    return true;
  }
  if (first === 'apis' && segments.length === 3) {
    const list = docs.resourceLists.get(`${second}/${third}`);
    if (!list) return false;
    sendJsonText(res, 200, list);
    return true;
  }
  return false;
}

// ------------------------------------------------------------------ negotiate

/** Media types of an Accept header, in the client's order, as [type, params]. */
function acceptList(accept: string): { type: string; params: Map<string, string> }[] {
  const out: { type: string; params: Map<string, string> }[] = [];
  for (const part of accept.split(',')) {
    const [type, ...params] = part.split(';');
    const map = new Map<string, string>();
    for (const p of params) {
      const eq = p.indexOf('=');
      if (eq > 0) map.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
    }
    out.push({ type: type!.trim().toLowerCase(), params: map });
  }
  return out;
}

function aggregatedDiscoveryVersion(accept: string): 'v2' | 'v2beta1' | undefined {
  if (!accept.includes('apidiscovery.k8s.io')) return undefined;
  for (const m of acceptList(accept)) {
    if (m.params.get('g') === 'apidiscovery.k8s.io' && m.params.get('as') === 'APIGroupDiscoveryList') {
      const v = m.params.get('v');
      if (v === 'v2' || v === 'v2beta1') return v;
    }
    if (m.type === 'application/json' && !m.params.has('as')) return undefined;
  }
  return undefined;
}

/** First acceptable representation in the client's order; JSON when nothing better is asked for. */
function representation(accept: string): Representation {
  if (accept === '' || !accept.includes('as=')) return 'object';
  for (const m of acceptList(accept)) {
    const as = m.params.get('as');
    if (m.type !== 'application/json' && m.type !== '*/*') continue;
    if (as === undefined) return 'object';
    if (m.params.get('g') !== 'meta.k8s.io' || (m.params.get('v') !== 'v1' && m.params.get('v') !== 'v1beta1')) continue;
    if (as === 'Table') return 'table';
    if (as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') return 'partial';
  }
  throw new ApiError(406, 'NotAcceptable', `only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io`);
}

function partialOf(obj: KubeObject): Record<string, unknown> {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

function includeObjectParam(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  if (v === 'Object' || v === 'None' || v === 'PartialObjectMetadata') return v;
  if (v) throw badRequest(`includeObject must be one of None, Object, PartialObjectMetadata`);
  return 'PartialObjectMetadata';
}

function encodeOne(rep: Representation, r: ResourceInfo, obj: KubeObject, q: URLSearchParams): string {
  if (rep === 'table') return JSON.stringify(toTable(r, [obj], obj.metadata.resourceVersion, includeObjectParam(q)));
  if (rep === 'partial') return JSON.stringify(partialOf(obj));
  return jsonOf(obj);
}

// ------------------------------------------------------------------ read body

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new ApiError(413, 'RequestEntityTooLarge', 'the request body is too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, 'RequestEntityTooLarge', 'the request body is too large');
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

function parseDocument(buf: Buffer, contentType: string): unknown {
  if (buf.length === 0) return undefined;
  const text = buf.toString('utf8');
  try {
    if (/yaml/i.test(contentType)) return parseYaml(text);
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body is not valid ${/yaml/i.test(contentType) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
}

function isDryRun(q: URLSearchParams, body?: unknown): boolean {
  if (q.getAll('dryRun').includes('All')) return true;
  const dr = (body as { dryRun?: unknown } | undefined)?.dryRun;
  return Array.isArray(dr) && dr.includes('All');
}

// ------------------------------------------------------------------ act

function selectors(q: URLSearchParams, r: ResourceInfo, name: string | undefined): ObjectPredicate {
  let field = parseFieldSelector(q.get('fieldSelector'), r);
  if (name !== undefined) field = bothSelectors(field, (o) => (o.metadata as { name?: string }).name === name);
  return bothSelectors(parseLabelSelector(q.get('labelSelector')), field);
}

function parseRV(v: string | null, what: string): number | undefined {
  if (v === null || v === '' || v === '0') return undefined;
  if (!/^\d+$/.test(v)) throw badRequest(`invalid ${what} "${v}": must be an integer`);
  return Number(v);
}

function serveList(ctx: RequestContext, rr: ResourceRequest, q: URLSearchParams, rep: Representation, res: ServerResponse): void {
  const r = rr.resource;
  const predicate = selectors(q, r, undefined);
  const rv = parseRV(q.get('resourceVersion'), 'resourceVersion');
  const { items, resourceVersion } = ctx.store.list(r, rr.namespace, predicate);
  // We always serve the newest state, which satisfies NotOlderThan; an Exact
  // request for an older snapshot cannot be served.
  if (q.get('resourceVersionMatch') === 'Exact' && rv !== undefined && rv !== resourceVersion) {
    throw expired(rv, resourceVersion);
  }
  const rvText = String(resourceVersion);
  if (rep === 'table') {
    sendJsonText(res, 200, JSON.stringify(toTable(r, items, rvText, includeObjectParam(q))));
    return;
  }
  if (rep === 'partial') {
    sendJsonText(res, 200, JSON.stringify({
      kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: rvText }, items: items.map(partialOf),
    }));
    return;
  }
  // Items are cached JSON; the list is spliced together instead of re-serialised.
  let body = `{"kind":"${r.listKind}","apiVersion":"${r.apiVersion}","metadata":{"resourceVersion":"${rvText}"},"items":[`;
  for (let i = 0; i < items.length; i++) body += (i === 0 ? '' : ',') + jsonOf(items[i]!);
  body += ']}';
  sendJsonText(res, 200, body);
}

function serveWatch(ctx: RequestContext, rr: ResourceRequest, q: URLSearchParams, rep: Representation,
  req: IncomingMessage, res: ServerResponse): void {
  const r = rr.resource;
  // Everything that can fail with a plain HTTP error is checked before the 200 goes out.
  const predicate = selectors(q, r, rr.name);
  const fromRV = parseRV(q.get('resourceVersion'), 'resourceVersion');
  const timeout = q.get('timeoutSeconds');
  if (timeout !== null && !/^\d+$/.test(timeout)) throw badRequest('timeoutSeconds must be a non-negative integer');
  const sendInitial = q.get('sendInitialEvents') === 'true';
  const bookmarks = q.get('allowWatchBookmarks') === 'true' || q.get('allowWatchBookmarks') === '1';
  const include = rep === 'table' ? includeObjectParam(q) : 'Object';
  let tableColumnsSent = false;
  const stream = new WatchStream(res, {
    resource: r,
    namespace: rr.namespace,
    predicate,
    bookmarks,
    deadline: timeout !== null && Number(timeout) > 0 ? Date.now() + Number(timeout) * 1000 : undefined,
    encodeObject: rep === 'object' ? undefined : rep === 'partial'
      ? (o) => JSON.stringify(partialOf(o))
      // kubectl get -w: the first event carries the column definitions, later ones only rows.
      : (o) => {
        const t = JSON.stringify(toTable(r, [o], o.metadata.resourceVersion, include, !tableColumnsSent));
        tableColumnsSent = true;
        return t;
      },
  });
  ctx.watches.add(stream);
  const onClose = () => { stream.close(); ctx.watches.remove(stream); };
  req.on('close', onClose);
  res.on('close', onClose);
  try {
    // sendInitialEvents=true (the "watch-list" protocol): state as ADDED, then a
    // BOOKMARK annotated k8s.io/initial-events-end, then changes.
    const start = sendInitial ? undefined : fromRV;
    stream.attach(ctx.store.watch(r, start, stream));
    if (sendInitial && bookmarks) stream.bookmark(ctx.store.resourceVersion, true);
  } catch (err) {
    stream.error((err instanceof ApiError ? err : internalError(err)).toStatus());
    ctx.watches.remove(stream);
  }
}

function serveGet(ctx: RequestContext, rr: ResourceRequest, q: URLSearchParams, rep: Representation, res: ServerResponse): void {
  const obj = ctx.store.get(rr.resource, rr.namespace, rr.name!);
  if (!obj) throw notFound(rr.resource, rr.name!);
  sendJsonText(res, 200, encodeOne(rep, rr.resource, obj, q));
}

/** Whether DELETE answers with the deleted object (as kube's CRD and pod registries do) or a Status. */
function returnsDeletedObject(r: ResourceInfo): boolean {
  return r.resource === 'pods' || (r.group !== '' && !r.group.endsWith('.k8s.io'));
}

async function serveResource(ctx: RequestContext, rr: ResourceRequest, q: URLSearchParams,
  req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const accept = req.headers.accept ?? '';
  const { store } = ctx;
  const r = rr.resource;
  const isWatch = rr.watchPath || q.get('watch') === '1' || q.get('watch') === 'true';
  const contentType = req.headers['content-type'] ?? '';

  if (method === 'GET') {
    const rep = representation(accept);
    if (isWatch) return serveWatch(ctx, rr, q, rep, req, res);
    if (rr.name === undefined) return serveList(ctx, rr, q, rep, res);
    return serveGet(ctx, rr, q, rep, res);
  }
  if (isWatch) throw methodNotAllowed(method);
  let result: KubeObject | string;
  let code = 200;
  let dryRun = false;
  switch (method) {
    case 'POST': {
      if (rr.name !== undefined) throw methodNotAllowed(method);
      const body = parseDocument(await readBody(req), contentType);
      dryRun = isDryRun(q);
      result = store.create(r, rr.namespace, body, { dryRun });
      code = 201;
      break;
    }
    case 'PUT': {
      if (rr.name === undefined) throw methodNotAllowed(method);
      const body = parseDocument(await readBody(req), contentType);
      dryRun = isDryRun(q);
      result = store.update(r, rr.namespace, rr.name, body, rr.subresource, { dryRun });
      break;
    }
    case 'PATCH': {
      if (rr.name === undefined) throw methodNotAllowed(method);
      const type = patchTypeOf(contentType);
      if (!type) throw unsupportedMediaType(contentType);
      const patch = parseDocument(await readBody(req), 'application/json');
      dryRun = isDryRun(q);
      result = store.patch(r, rr.namespace, rr.name, type, patch, rr.subresource, { dryRun });
      break;
    }
    case 'DELETE': {
      if (rr.subresource !== undefined) throw methodNotAllowed(method);
      const opts = parseDocument(await readBody(req), 'application/json') as
        { preconditions?: { uid?: string; resourceVersion?: string } } | undefined;
      dryRun = isDryRun(q, opts);
      if (rr.name === undefined) {
        const deleted = store.deleteCollection(r, rr.namespace, selectors(q, r, undefined), { dryRun });
        result = `{"kind":"${r.listKind}","apiVersion":"${r.apiVersion}","metadata":{"resourceVersion":"${store.resourceVersion}"},"items":[${deleted.map((o) => jsonOf(o)).join(',')}]}`;
      } else {
        const deleted = store.delete(r, rr.namespace, rr.name, opts?.preconditions ?? {}, { dryRun });
        result = returnsDeletedObject(r) ? deleted : JSON.stringify(successStatus(r, rr.name, deleted.metadata.uid));
      }
      break;
    }
    default:
      throw methodNotAllowed(method);
  }
  if (!dryRun) await ctx.durable();
  sendJsonText(res, code, typeof result === 'string' ? result : jsonOf(result));
}

// ------------------------------------------------------------------ entry

export function createRequestListener(ctx: RequestContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(ctx, req, res).catch((err: unknown) => sendError(res, err));
  };
}

async function handle(ctx: RequestContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const qi = url.indexOf('?');
  const pathPart = qi < 0 ? url : url.slice(0, qi);
  const q = new URLSearchParams(qi < 0 ? '' : url.slice(qi + 1));
  let segments: string[];
  try {
    segments = pathPart.split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    throw badRequest(`malformed path ${pathPart}`);
  }
  const method = req.method ?? 'GET';

  if ((segments[0] !== 'api' && segments[0] !== 'apis') || segments.length <= 3) {
    if (method === 'GET' && serveDiscovery(ctx, segments, req.headers.accept ?? '', res)) return;
  }
  if ((segments[0] === 'api' && segments.length >= 3) || (segments[0] === 'apis' && segments.length >= 4)) {
    const rr = routeResource(ctx.table, segments);
    if (rr) return serveResource(ctx, rr, q, req, res);
  }
  // Drain any body so keep-alive connections stay usable, then 404.
  req.resume();
  throw pathNotFound(pathPart);
}
