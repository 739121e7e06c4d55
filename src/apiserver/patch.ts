/**
 * The three PATCH bodies kubectl and client-node send. Every function returns
 * a new document and never mutates its inputs (stored objects are immutable
 * snapshots shared with watchers).
 *
 * - application/merge-patch+json: RFC 7386 JSON Merge Patch.
 * - application/json-patch+json: RFC 6902 JSON Patch (add, remove, replace,
 *   move, copy, test) with RFC 6901 pointers.
 * - application/strategic-merge-patch+json: Kubernetes' strategic merge patch,
 *   approximated: maps merge as in RFC 7386; lists whose Go type declares a
 *   `patchMergeKey` (containers by name, ports by containerPort, …, see
 *   MERGE_KEYS) merge element by element; every other list is replaced. The
 *   directives `$patch: delete|replace` (on maps and list elements),
 *   `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>` and
 *   `$retainKeys` are honoured; other `$` keys are dropped. This is what
 *   `kubectl apply`, `label`, `annotate` and `patch` produce for built-in kinds.
 */

import { badRequest, ApiError } from './status-errors.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// ------------------------------------------------------------ RFC 7386

/**
 * RFC 7386 §2: "If the patch is not an Object, replace the target with the
 * patch"; null members delete; other members recurse.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v) as Json;
  }
  return out;
}

// ------------------------------------------------------------ RFC 6902

function parsePointer(ptr: string): string[] {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw badRequest(`invalid JSON pointer: "${ptr}"`);
  // RFC 6901 §4: "first transforming any occurrence of ~1 to /, and then ~0 to ~".
  return ptr.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function clone<T>(v: T): T { return structuredClone(v); }

function arrayIndex(arr: Json[], token: string, forInsert: boolean): number {
  if (forInsert && token === '-') return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw badRequest(`invalid array index "${token}"`);
  const i = Number(token);
  if (i > arr.length || (!forInsert && i === arr.length)) throw badRequest(`array index ${i} out of bounds`);
  return i;
}

/** Walks to the parent of the pointer's last token (the document is a private clone). */
function parentOf(doc: Json, tokens: string[]): { parent: Json; last: string } {
  let cur = doc;
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = tokens[i]!;
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false)]!;
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t]!;
    else throw badRequest(`JSON patch path not found: /${tokens.slice(0, i + 1).join('/')}`);
  }
  return { parent: cur, last: tokens[tokens.length - 1]! };
}

function getAt(doc: Json, ptr: string): Json {
  let cur = doc;
  for (const t of parsePointer(ptr)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false)]!;
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t]!;
    else throw badRequest(`JSON patch path not found: ${ptr}`);
  }
  return cur;
}

function removeAt(doc: Json, ptr: string): { doc: Json; removed: Json } {
  const tokens = parsePointer(ptr);
  if (tokens.length === 0) throw badRequest('cannot remove the whole document');
  const { parent, last } = parentOf(doc, tokens);
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, last, false);
    const [removed] = parent.splice(i, 1);
    return { doc, removed: removed! };
  }
  if (isObject(parent) && Object.hasOwn(parent, last)) {
    const removed = parent[last]!;
    delete parent[last];
    return { doc, removed };
  }
  throw badRequest(`JSON patch path not found: ${ptr}`);
}

function addAt(doc: Json, ptr: string, value: Json, replace: boolean): Json {
  const tokens = parsePointer(ptr);
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens);
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, last, !replace);
    if (replace) parent[i] = value; else parent.splice(i, 0, value);
  } else if (isObject(parent)) {
    if (replace && !Object.hasOwn(parent, last)) throw badRequest(`JSON patch path not found: ${ptr}`);
    parent[last] = value;
  } else {
    throw badRequest(`JSON patch path not found: ${ptr}`);
  }
  return doc;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('a JSON patch must be an array of operations');
  let doc = clone(target) as Json;
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw badRequest('each JSON patch operation needs "op" and "path"');
    }
    const { op, path } = raw;
    switch (op) {
      case 'add': doc = addAt(doc, path, clone(raw.value ?? null), false); break;
      case 'replace': doc = addAt(doc, path, clone(raw.value ?? null), true); break;
      case 'remove': doc = removeAt(doc, path).doc; break;
      case 'move': {
        if (typeof raw.from !== 'string') throw badRequest('"move" needs "from"');
        const r = removeAt(doc, raw.from);
        doc = addAt(r.doc, path, r.removed, false);
        break;
      }
      case 'copy': {
        if (typeof raw.from !== 'string') throw badRequest('"copy" needs "from"');
        doc = addAt(doc, path, clone(getAt(doc, raw.from)), false);
        break;
      }
      case 'test': {
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(raw.value ?? null)) {
          throw new ApiError(422, 'Invalid', `JSON patch test operation failed at ${path}`);
        }
        break;
      }
      default: throw badRequest(`unknown JSON patch operation "${op}"`);
    }
  }
  return doc;
}

// ------------------------------------------------------------ strategic merge

/**
 * patchMergeKey of list fields, by field name and the name of the map that
 * holds the list (from the core/v1 Go types: `patchStrategy:"merge"
 * patchMergeKey:"..."`). Keyed "<parent>.<field>" so that Service ports
 * (merge key port) and container ports (containerPort) differ.
 */
const MERGE_KEYS: Record<string, string> = {
  'spec.containers': 'name',
  'spec.initContainers': 'name',
  'spec.ephemeralContainers': 'name',
  'spec.volumes': 'name',
  'spec.imagePullSecrets': 'name',
  'spec.hostAliases': 'ip',
  'spec.topologySpreadConstraints': 'topologyKey',
  'spec.resourceClaims': 'name',
  'containers.env': 'name',
  'containers.ports': 'containerPort',
  'containers.volumeMounts': 'mountPath',
  'containers.volumeDevices': 'devicePath',
  'initContainers.env': 'name',
  'initContainers.ports': 'containerPort',
  'initContainers.volumeMounts': 'mountPath',
  'metadata.ownerReferences': 'uid',
  'status.conditions': 'type',
  'status.addresses': 'type',
  'status.podIPs': 'ip',
  'status.hostIPs': 'ip',
  'spec.podCIDRs': '',   // list of strings with merge strategy
  'spec.taints': 'key',
};

/** Service ports merge by `port`; pod spec ports do not exist at that level. */
function mergeKeyFor(parent: string, field: string, grand: string): string | undefined {
  if (field === 'ports' && parent === 'spec' && grand === '') return 'port';
  return MERGE_KEYS[`${parent}.${field}`];
}

function mergeList(orig: Json[], patch: Json[], key: string, order: Json[] | undefined, path: string[]): Json[] {
  const out = orig.map((e) => e);
  const indexOf = (k: Json | undefined) => out.findIndex((e) => isObject(e) && e[key] === k);
  for (const p of patch) {
    if (!isObject(p)) {
      if (!out.includes(p)) out.push(p);
      continue;
    }
    const i = indexOf(p[key]);
    if (p.$patch === 'delete') { if (i >= 0) out.splice(i, 1); continue; }
    if (p.$patch === 'replace') {
      const { $patch: _, ...rest } = p;
      if (i >= 0) out[i] = rest; else out.push(rest);
      continue;
    }
    if (i >= 0) out[i] = strategicMergeAt(out[i], p, path) as Json;
    else out.push(strategicMergeAt(undefined, p, path) as Json);
  }
  if (order) {
    // $setElementOrder lists every element the client wants, in order; the
    // server keeps elements it does not name after them.
    const ranked: Json[] = [];
    for (const o of order) {
      const k = isObject(o) ? o[key] : o;
      const i = out.findIndex((e) => (isObject(e) ? e[key] === k : e === k));
      if (i >= 0) ranked.push(out.splice(i, 1)[0]!);
    }
    return ranked.concat(out);
  }
  return out;
}

function strategicMergeAt(target: unknown, patch: unknown, path: string[]): unknown {
  if (!isObject(patch)) return patch;
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const base: JsonObject = isObject(target) ? { ...target } : {};
  const retain = patch.$retainKeys;
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) {
      const del = /^\$deleteFromPrimitiveList\/(.+)$/.exec(k);
      if (del && Array.isArray(v) && Array.isArray(base[del[1]!])) {
        base[del[1]!] = (base[del[1]!] as Json[]).filter((e) => !v.includes(e));
      }
      continue;
    }
    if (v === null) { delete base[k]; continue; }
    const parent = path[path.length - 1] ?? '';
    const grand = path.length >= 2 ? path[path.length - 2]! : '';
    const key = Array.isArray(v) ? mergeKeyFor(parent, k, grand) : undefined;
    if (Array.isArray(v) && key !== undefined && Array.isArray(base[k])) {
      const order = patch[`$setElementOrder/${k}`];
      base[k] = key === ''
        ? Array.from(new Set([...(base[k] as Json[]), ...v]))
        : mergeList(base[k] as Json[], v, key, Array.isArray(order) ? order : undefined, [...path, k]);
    } else if (Array.isArray(v)) {
      base[k] = v.filter((e) => !(isObject(e) && e.$patch === 'delete')).map((e) => stripDirectives(e) as Json);
    } else {
      const merged = strategicMergeAt(base[k], v, [...path, k]);
      if (merged === undefined) delete base[k]; else base[k] = merged as Json;
    }
  }
  if (Array.isArray(retain)) {
    for (const k of Object.keys(base)) if (!retain.includes(k)) delete base[k];
  }
  return base;
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, e] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(e) as Json;
  return out;
}

export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) throw badRequest('a strategic merge patch must be a JSON object');
  return strategicMergeAt(target, patch, []);
}

export type PatchType = 'merge' | 'json' | 'strategic';

/** Maps a PATCH Content-Type to its patch type (parameters after ";" ignored). */
export function patchTypeOf(contentType: string | undefined): PatchType | undefined {
  const base = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (base === 'application/merge-patch+json') return 'merge';
  if (base === 'application/json-patch+json') return 'json';
  if (base === 'application/strategic-merge-patch+json') return 'strategic';
  return undefined;
}

export function applyPatch(type: PatchType, target: unknown, patch: unknown): unknown {
  switch (type) {
    case 'merge': return mergePatch(target, patch);
    case 'json': return jsonPatch(target, patch);
    case 'strategic': return strategicMergePatch(target, patch);
  }
}
