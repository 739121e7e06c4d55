/**
 * The object store: every object of every resource in memory, one global
 * resourceVersion counter, per-resource watch history and the live watchers.
 *
 * Every mutation runs synchronously from start to commit (Node's one thread is
 * the lock), so:
 *   - a list's resourceVersion (the counter when the list was taken) covers
 *     exactly the changes the list shows, and a watch from it replays the rest:
 *     the informer's list-then-watch never misses or repeats an event;
 *   - watchers are told about a change in commit order, before the next one.
 *
 * Stored objects are immutable snapshots: a change builds a new object and
 * swaps it in; nothing ever edits a stored object in place, so watchers,
 * history and in-flight responses can share them freely.
 *
 * The rules implemented, from kube-apiserver (k8s.io/apiserver registry/rest):
 *   1. create: name or generateName required; namespaced objects default to the
 *      request's namespace, which must exist; uid, creationTimestamp,
 *      resourceVersion and generation=1 are set by the server.
 *   2. update: "metadata.resourceVersion", when given, must equal the stored
 *      one, else 409 Conflict; uid and creationTimestamp cannot change; an update
 *      that changes nothing does not bump the resourceVersion.
 *   3. generation is bumped when anything outside metadata and status changes.
 *   4. with a status subresource, writes to the main resource keep the stored
 *      status and writes to /status change only status.
 *   5. deleting a namespace deletes every namespaced object in it (here at
 *      once: no Terminating phase, finalizers are not waited for).
 *   6. in a real cluster the objects of a Terminating namespace still exist for
 *      a while, so `kubectl delete -f` of a file listing a Namespace before its
 *      Pods succeeds. To keep that working with the immediate cascade, an
 *      object removed by a cascade leaves a tombstone for CASCADE_TOMBSTONE_MS:
 *      a DELETE of it answers 200 with the object as it was deleted (no second
 *      event, no new resourceVersion), as the real server would have.
 */

import { randomUUID, randomInt } from 'node:crypto';
import { EventHistory, type EventType, type StoredEvent } from './watch-history.ts';
import {
  ApiError, alreadyExists, badRequest, conflict, expired, invalid, namespaceNotFound, notFound,
} from './status-errors.ts';
import { applyPatch, type PatchType } from './patch.ts';
import { INITIAL_NAMESPACES, type ResourceInfo, type ResourceTable } from './resources.ts';
import type { ObjectPredicate } from './selectors.ts';
import type { StoreChange } from './persistence.ts';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  creationTimestamp: string;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [k: string]: unknown;
}

export type WatchEvent = StoredEvent<KubeObject>;

/** The pluggable validation hook of ApiServerOptions. */
export type ValidateFn = (obj: Record<string, unknown>) => { path: string; message: string }[];

/**
 * What the store needs of a watcher. `deliver` is called synchronously inside
 * a commit: it must not call back into the store.
 */
export interface WatchSink {
  deliver(ev: WatchEvent): void;
}

/** What persistence writes and reads back. */
export interface StoreSnapshot {
  resourceVersion: number;
  /** By ResourceInfo.key. */
  objects: Record<string, KubeObject[]>;
}

export interface StoreOptions {
  historySize: number;
  validate?: ValidateFn | undefined;
  /** Called after every committed change, with it (persistence logs it). */
  onCommit?: ((change: StoreChange) => void) | undefined;
  restored?: StoreSnapshot | undefined;
}

export interface ListResult { items: KubeObject[]; resourceVersion: number }

interface Bucket {
  readonly resource: ResourceInfo;
  /** Key "namespace/name" (namespaced) or "name". */
  readonly objects: Map<string, KubeObject>;
  readonly history: EventHistory<KubeObject>;
  readonly watchers: Set<WatchSink>;
}

export interface WriteOptions { dryRun?: boolean }

export interface DeletePreconditions { uid?: string; resourceVersion?: string }

/** How long a DELETE of an object removed by a namespace cascade still succeeds (rule 6). */
const CASCADE_TOMBSTONE_MS = 60_000;

/** Namespaces kube-apiserver refuses to delete (pkg/registry/core/namespace). */
const UNDELETABLE_NAMESPACES = new Set(['default', 'kube-system', 'kube-public']);

// RFC 1123 names, as k8s.io/apimachinery/pkg/util/validation checks them.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** The alphabet of generateName suffixes (k8s.io/apiserver names.SimpleNameGenerator: no vowels, no 0/1/3). */
const NAME_SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], bb[i])) return false;
    return true;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  for (const k of ak) if (!deepEqual(ao[k], bo[k])) return false;
  return true;
}

/** Everything but metadata and status: what a generation counts changes of. */
function specPart(obj: Record<string, unknown>): Record<string, unknown> {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

function validateName(r: ResourceInfo, name: string): string | undefined {
  if (r.resource === 'namespaces') {
    if (name.length > 63 || !DNS1123_LABEL.test(name)) {
      return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
    }
  } else if (r.resource === 'services') {
    if (name.length > 63 || !DNS1035_LABEL.test(name)) {
      return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
    }
  } else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  }
  return undefined;
}

export class ObjectStore {
  readonly table: ResourceTable;
  #rv: number;
  readonly #buckets = new Map<ResourceInfo, Bucket>();
  readonly #validate: ValidateFn | undefined;
  readonly #onCommit: ((change: StoreChange) => void) | undefined;
  /** Rule 6: "resource.key namespace/name" → the object as the cascade deleted it. */
  readonly #cascadeTombstones = new Map<string, { object: KubeObject; expires: number }>();

  constructor(table: ResourceTable, opts: StoreOptions) {
    this.table = table;
    this.#validate = opts.validate;
    this.#onCommit = opts.onCommit;
    this.#rv = opts.restored?.resourceVersion ?? 0;
    for (const r of table.all) {
      const bucket: Bucket = {
        resource: r,
        objects: new Map(),
        history: new EventHistory(opts.historySize, this.#rv),
        watchers: new Set(),
      };
      for (const obj of opts.restored?.objects[r.key] ?? []) {
        bucket.objects.set(objectKey(obj.metadata.namespace, obj.metadata.name), obj);
      }
      this.#buckets.set(r, bucket);
    }
    // Every cluster starts with these; creating them is an ordinary change.
    for (const ns of INITIAL_NAMESPACES) {
      if (!this.get(table.namespaces, undefined, ns)) {
        this.create(table.namespaces, undefined, { metadata: { name: ns } });
      }
    }
  }

  /** The global resourceVersion: the rv of the last committed change. */
  get resourceVersion(): number { return this.#rv; }

  #bucket(r: ResourceInfo): Bucket {
    const b = this.#buckets.get(r);
    if (!b) throw new Error(`resource ${r.key} is not in the store`);
    return b;
  }

  snapshot(): StoreSnapshot {
    const objects: Record<string, KubeObject[]> = {};
    for (const [r, b] of this.#buckets) objects[r.key] = Array.from(b.objects.values());
    return { resourceVersion: this.#rv, objects };
  }

  // ---------------------------------------------------------------- reads

  get(r: ResourceInfo, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#bucket(r).objects.get(objectKey(r.namespaced ? namespace : undefined, name));
  }

  /** Objects in key order (as etcd lists them), with the rv the list is consistent at. */
  list(r: ResourceInfo, namespace: string | undefined, predicate: ObjectPredicate): ListResult {
    const hits: [string, KubeObject][] = [];
    for (const entry of this.#bucket(r).objects) {
      const obj = entry[1];
      if (namespace !== undefined && obj.metadata.namespace !== namespace) continue;
      if (predicate(obj)) hits.push(entry);
    }
    hits.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return { items: hits.map((h) => h[1]), resourceVersion: this.#rv };
  }

  // ---------------------------------------------------------------- watch

  /**
   * Registers `sink` for changes of `r` after `fromRV` and replays the retained
   * ones first; `fromRV` undefined means "current state as ADDED, then
   * changes" (the semantics of resourceVersion unset or "0"). Throws 410 when
   * fromRV is older than the retained history. Returns the unregister function.
   */
  watch(r: ResourceInfo, fromRV: number | undefined, sink: WatchSink): () => void {
    const b = this.#bucket(r);
    if (fromRV === undefined) {
      for (const obj of this.list(r, undefined, () => true).items) {
        sink.deliver({ rv: Number(obj.metadata.resourceVersion), type: 'ADDED', object: obj, previous: undefined });
      }
    } else {
      const missed = b.history.since(fromRV);
      if (!missed) throw expired(fromRV, b.history.evictedThrough);
      for (const ev of missed) sink.deliver(ev);
    }
    b.watchers.add(sink);
    return () => { b.watchers.delete(sink); };
  }

  // ---------------------------------------------------------------- writes

  /** Rule 1. `body` is the parsed request body, not yet trusted. */
  create(r: ResourceInfo, urlNamespace: string | undefined, body: unknown, opts: WriteOptions = {}): KubeObject {
    const obj = this.#checkBody(r, body);
    const meta = isPlainObject(obj.metadata) ? { ...obj.metadata } : {};
    let namespace: string | undefined;
    if (r.namespaced) {
      const bodyNs = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : undefined;
      if (urlNamespace !== undefined && bodyNs !== undefined && bodyNs !== urlNamespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      namespace = urlNamespace ?? bodyNs ?? 'default';
      if (!this.get(this.table.namespaces, undefined, namespace)) throw namespaceNotFound(namespace);
    }
    let name = typeof meta.name === 'string' ? meta.name : '';
    if (name === '') {
      const generateName = typeof meta.generateName === 'string' ? meta.generateName : '';
      if (generateName === '') {
        throw invalid(r, '', [{ field: 'metadata.name', message: 'Required value: name or generateName is required' }]);
      }
      // Retry on the (unlikely) collision rather than surface a 409 the client did not cause.
      for (let i = 0; i < 8; i++) {
        name = generateName + this.#randomSuffix();
        if (!this.get(r, namespace, name)) break;
      }
    }
    const nameError = validateName(r, name);
    if (nameError) throw invalid(r, name, [{ field: 'metadata.name', message: `Invalid value: "${name}": ${nameError}` }]);
    if (this.get(r, namespace, name)) throw alreadyExists(r, name);

    const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, generation: _g, namespace: _ns,
      deletionTimestamp: _dt, deletionGracePeriodSeconds: _dg, ...keptMeta } = meta;
    const { apiVersion: _a, kind: _k, metadata: _m, ...content } = obj;
    const created: KubeObject = {
      apiVersion: r.apiVersion,
      kind: r.kind,
      metadata: {
        ...keptMeta,
        name,
        ...(namespace !== undefined ? { namespace } : {}),
        uid: randomUUID(),
        resourceVersion: '',
        generation: 1,
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
      ...content,
    };
    this.#applyCreateDefaults(r, created);
    this.#runValidation(r, created);
    if (opts.dryRun) return created;
    this.#cascadeTombstones.delete(`${r.key} ${objectKey(namespace, name)}`);
    return this.#commit(r, 'ADDED', created, undefined);
  }

  /** Rule 2 and 4: PUT on the object (`subresource` undefined) or on its /status. */
  update(r: ResourceInfo, namespace: string | undefined, name: string, body: unknown,
    subresource: 'status' | undefined, opts: WriteOptions = {}): KubeObject {
    const current = this.get(r, namespace, name);
    if (!current) throw notFound(r, name);
    const obj = this.#checkBody(r, body);
    const meta = isPlainObject(obj.metadata) ? obj.metadata : {};
    if (meta.name !== undefined && meta.name !== name) {
      throw badRequest(`the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`);
    }
    if (r.namespaced && typeof meta.namespace === 'string' && meta.namespace !== '' && meta.namespace !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const rv = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '';
    if (rv !== '' && rv !== current.metadata.resourceVersion) throw conflict(r, name);
    return this.#replace(r, current, obj, subresource, opts);
  }

  /** PATCH: the patch applies to the stored object; an rv it sets is a precondition (rule 2). */
  patch(r: ResourceInfo, namespace: string | undefined, name: string, type: PatchType, patch: unknown,
    subresource: 'status' | undefined, opts: WriteOptions = {}): KubeObject {
    const current = this.get(r, namespace, name);
    if (!current) throw notFound(r, name);
    const patched = applyPatch(type, current, patch);
    if (!isPlainObject(patched)) throw badRequest('the patch does not produce an object');
    const meta = isPlainObject(patched.metadata) ? patched.metadata : {};
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(r, name);
    }
    if (meta.name !== name) {
      throw invalid(r, name, [{ field: 'metadata.name', message: 'Invalid value: field is immutable' }]);
    }
    if (r.namespaced && meta.namespace !== namespace) {
      throw invalid(r, name, [{ field: 'metadata.namespace', message: 'Invalid value: field is immutable' }]);
    }
    return this.#replace(r, current, patched, subresource, opts);
  }

  /** Removes one object (and, for a namespace, what it holds, rule 5). Returns the object as deleted. */
  delete(r: ResourceInfo, namespace: string | undefined, name: string,
    preconditions: DeletePreconditions = {}, opts: WriteOptions = {}): KubeObject {
    const current = this.get(r, namespace, name);
    if (!current) {
      const tomb = this.#cascadeTombstones.get(`${r.key} ${objectKey(namespace, name)}`);
      if (tomb && tomb.expires > Date.now()) return tomb.object;
      throw notFound(r, name);
    }
    if (preconditions.uid && preconditions.uid !== current.metadata.uid) {
      throw conflict(r, name, `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${current.metadata.uid}`);
    }
    if (preconditions.resourceVersion && preconditions.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(r, name, `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`);
    }
    if (r === this.table.namespaces && UNDELETABLE_NAMESPACES.has(name)) {
      throw new ApiError(403, 'Forbidden', `namespaces "${name}" is forbidden: this namespace may not be deleted`,
        { name, kind: 'namespaces' });
    }
    if (opts.dryRun) return current;
    if (r === this.table.namespaces) {
      const now = Date.now();
      for (const [k, t] of this.#cascadeTombstones) if (t.expires <= now) this.#cascadeTombstones.delete(k);
      for (const inner of this.table.all) {
        if (!inner.namespaced) continue;
        for (const obj of this.list(inner, name, () => true).items) {
          const gone = this.#commit(inner, 'DELETED', obj, obj);
          this.#cascadeTombstones.set(`${inner.key} ${objectKey(name, obj.metadata.name)}`,
            { object: gone, expires: now + CASCADE_TOMBSTONE_MS });
        }
      }
    }
    return this.#commit(r, 'DELETED', current, current);
  }

  /** DELETE on a collection: every matching object, one event each. */
  deleteCollection(r: ResourceInfo, namespace: string | undefined, predicate: ObjectPredicate,
    opts: WriteOptions = {}): KubeObject[] {
    const out: KubeObject[] = [];
    for (const obj of this.list(r, namespace, predicate).items) {
      if (r === this.table.namespaces && UNDELETABLE_NAMESPACES.has(obj.metadata.name)) continue;
      out.push(this.delete(r, obj.metadata.namespace, obj.metadata.name, {}, opts));
    }
    return out;
  }

  // ---------------------------------------------------------------- internals

  #checkBody(r: ResourceInfo, body: unknown): Record<string, unknown> {
    if (!isPlainObject(body)) throw badRequest('the request body must be a JSON object');
    if (body.apiVersion !== undefined && body.apiVersion !== r.apiVersion) {
      throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${r.apiVersion})`);
    }
    if (body.kind !== undefined && body.kind !== r.kind) {
      throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${r.kind})`);
    }
    if (body.metadata !== undefined && !isPlainObject(body.metadata)) throw badRequest('metadata must be an object');
    return body;
  }

  #randomSuffix(): string {
    let s = '';
    for (let i = 0; i < 5; i++) s += NAME_SUFFIX_ALPHABET[randomInt(NAME_SUFFIX_ALPHABET.length)];
    return s;
  }

  #applyCreateDefaults(r: ResourceInfo, obj: KubeObject): void {
    if (r.group !== '') return;
    if (r.resource === 'pods' && !isPlainObject(obj.status)) obj.status = { phase: 'Pending' };
    else if (r.resource === 'pods' && (obj.status as Record<string, unknown>).phase === undefined) {
      obj.status = { ...(obj.status as Record<string, unknown>), phase: 'Pending' };
    } else if (r.resource === 'namespaces') {
      obj.spec = isPlainObject(obj.spec) ? obj.spec : { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
      // Since 1.22 every namespace carries its own name as a label, and selectors rely on it.
      obj.metadata.labels = { ...obj.metadata.labels, 'kubernetes.io/metadata.name': obj.metadata.name };
    }
  }

  #runValidation(r: ResourceInfo, obj: KubeObject): void {
    if (!this.#validate) return;
    const faults = this.#validate(obj);
    if (faults.length > 0) {
      throw invalid(r, obj.metadata.name, faults.map((f) => ({ field: f.path, message: f.message })));
    }
  }

  /** Builds the next version of `current` from a full object `next` (rules 2–4) and commits it. */
  #replace(r: ResourceInfo, current: KubeObject, next: Record<string, unknown>,
    subresource: 'status' | undefined, opts: WriteOptions): KubeObject {
    let candidate: KubeObject;
    if (subresource === 'status') {
      candidate = { ...current };
      if (next.status === undefined) delete candidate.status; else candidate.status = next.status;
    } else {
      const { apiVersion: _a, kind: _k, metadata, ...content } = next;
      const meta = isPlainObject(metadata) ? metadata : {};
      candidate = {
        apiVersion: r.apiVersion,
        kind: r.kind,
        metadata: {
          ...meta,
          name: current.metadata.name,
          ...(current.metadata.namespace !== undefined ? { namespace: current.metadata.namespace } : {}),
          uid: current.metadata.uid,
          creationTimestamp: current.metadata.creationTimestamp,
          resourceVersion: current.metadata.resourceVersion,
          generation: current.metadata.generation ?? 1,
        },
        ...content,
      };
      if (r.subresources.includes('status')) {
        if (current.status === undefined) delete candidate.status; else candidate.status = current.status;
      }
      if (r === this.table.namespaces) {
        candidate.metadata.labels = { ...candidate.metadata.labels, 'kubernetes.io/metadata.name': current.metadata.name };
      }
      if (!deepEqual(specPart(candidate), specPart(current))) {
        candidate.metadata.generation = (current.metadata.generation ?? 1) + 1;
      }
    }
    // An update that changes nothing is not a change: same object, same rv, no event.
    if (deepEqual(candidate, current)) return current;
    this.#runValidation(r, candidate);
    if (opts.dryRun) return candidate;
    return this.#commit(r, 'MODIFIED', candidate, current);
  }

  /**
   * The single place a change becomes real: next rv, swap the snapshot in,
   * record it in history, tell the watchers, tell persistence.
   */
  #commit(r: ResourceInfo, type: EventType, obj: KubeObject, previous: KubeObject | undefined): KubeObject {
    const b = this.#bucket(r);
    const rv = ++this.#rv;
    const stored: KubeObject = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(rv) } };
    const key = objectKey(stored.metadata.namespace, stored.metadata.name);
    if (type === 'DELETED') b.objects.delete(key); else b.objects.set(key, stored);
    const ev: WatchEvent = { rv, type, object: stored, previous };
    b.history.push(ev);
    for (const w of b.watchers) w.deliver(ev);
    this.#onCommit?.({ rv, resource: r.key, type, object: stored });
    return stored;
  }
}
