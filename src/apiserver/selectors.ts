/**
 * Label and field selectors as plain predicates, parsed and validated once per
 * request (never per object), then applied to every object of a list or watch.
 *
 * Label selector grammar (k8s.io/apimachinery/pkg/labels, Parse):
 *   selector    = requirement ( "," requirement )*
 *   requirement = key | "!" key | key ("=" | "==" | "!=") value
 *               | key ("in" | "notin") "(" value ( "," value )* ")"
 *               | key (">" | "<") integer
 * "Requirements are ANDed"; `!=` and `notin` also match objects without the key.
 *
 * Field selectors (k8s.io/apimachinery/pkg/fields): `field=value`, `field==value`,
 * `field!=value`, ANDed by ",", with `\` escaping `,`, `=` and `\` in values. Each
 * resource supports only a fixed set of fields; anything else is a 400, as in
 * kube-apiserver ("field label not supported").
 */

import { badRequest } from './status-errors.ts';
import type { ResourceInfo } from './resources.ts';

export type ObjectPredicate = (obj: Record<string, unknown>) => boolean;
type LabelPredicate = (labels: Record<string, string> | undefined) => boolean;

const MATCH_ALL: ObjectPredicate = () => true;

// ------------------------------------------------------------------ labels

/** Characters that end a key or value token. */
function isDelimiter(ch: string): boolean {
  return ch === ',' || ch === '(' || ch === ')' || ch === '=' || ch === '!' || ch === '<' || ch === '>' ||
    ch === ' ' || ch === '\t';
}

class LabelSelectorParser {
  readonly #src: string;
  #pos = 0;

  constructor(src: string) { this.#src = src; }

  parse(): LabelPredicate[] {
    const out: LabelPredicate[] = [];
    this.#skipSpace();
    if (this.#pos >= this.#src.length) return out;
    for (;;) {
      out.push(this.#requirement());
      this.#skipSpace();
      if (this.#pos >= this.#src.length) return out;
      this.#expect(',');
    }
  }

  #requirement(): LabelPredicate {
    this.#skipSpace();
    if (this.#peek() === '!') {
      this.#pos++;
      const key = this.#word('key');
      return (labels) => labels === undefined || !Object.hasOwn(labels, key);
    }
    const key = this.#word('key');
    this.#skipSpace();
    const ch = this.#peek();
    if (ch === '' || ch === ',') return (labels) => labels !== undefined && Object.hasOwn(labels, key);
    if (ch === '=' || ch === '!') {
      const negate = ch === '!';
      this.#pos++;
      if (negate) this.#expect('=');
      else if (this.#peek() === '=') this.#pos++;
      this.#skipSpace();
      const value = this.#optionalWord();
      return negate
        ? (labels) => labels === undefined || labels[key] !== value
        : (labels) => labels !== undefined && labels[key] === value;
    }
    if (ch === '<' || ch === '>') {
      this.#pos++;
      this.#skipSpace();
      const raw = this.#word('value');
      const bound = Number(raw);
      if (!Number.isInteger(bound)) throw badRequest(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: ${raw}`);
      const greater = ch === '>';
      return (labels) => {
        const v = labels?.[key];
        if (v === undefined || !/^-?\d+$/.test(v)) return false;
        return greater ? Number(v) > bound : Number(v) < bound;
      };
    }
    const op = this.#word('operator');
    if (op !== 'in' && op !== 'notin') throw badRequest(`unable to parse requirement: found '${op}', expected: in, notin, =, ==, !=, gt, lt`);
    this.#skipSpace();
    this.#expect('(');
    const values = new Set<string>();
    for (;;) {
      this.#skipSpace();
      values.add(this.#optionalWord());
      this.#skipSpace();
      if (this.#peek() === ')') { this.#pos++; break; }
      this.#expect(',');
    }
    return op === 'in'
      ? (labels) => labels !== undefined && Object.hasOwn(labels, key) && values.has(labels[key]!)
      : (labels) => labels === undefined || !Object.hasOwn(labels, key) || !values.has(labels[key]!);
  }

  #peek(): string { return this.#src[this.#pos] ?? ''; }

  #skipSpace(): void {
    while (this.#src[this.#pos] === ' ' || this.#src[this.#pos] === '\t') this.#pos++;
  }

  #expect(ch: string): void {
    if (this.#src[this.#pos] !== ch) {
      throw badRequest(`unable to parse requirement: expected '${ch}' at position ${this.#pos} in "${this.#src}"`);
    }
    this.#pos++;
  }

  /** A key or value; values may be empty ("a=" selects a="" ). */
  #optionalWord(): string {
    const start = this.#pos;
    while (this.#pos < this.#src.length && !isDelimiter(this.#src[this.#pos]!)) this.#pos++;
    return this.#src.slice(start, this.#pos);
  }

  #word(what: string): string {
    const w = this.#optionalWord();
    if (w === '') throw badRequest(`unable to parse requirement: expected a ${what} at position ${this.#pos} in "${this.#src}"`);
    return w;
  }
}

/** Parses a labelSelector query value; throws ApiError 400 when malformed. */
export function parseLabelSelector(src: string | null | undefined): ObjectPredicate {
  if (!src) return MATCH_ALL;
  const reqs = new LabelSelectorParser(src).parse();
  if (reqs.length === 0) return MATCH_ALL;
  return (obj) => {
    const labels = (obj.metadata as { labels?: Record<string, string> } | undefined)?.labels;
    for (const req of reqs) if (!req(labels)) return false;
    return true;
  };
}

// ------------------------------------------------------------------ fields

/**
 * Fields each resource can be selected by, beyond metadata.name and
 * metadata.namespace which every resource has (pkg/registry/.../strategy.go
 * ToSelectableFields upstream).
 */
const EXTRA_SELECTABLE_FIELDS: Record<string, readonly string[]> = {
  '/v1/pods': ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName',
    'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  '/v1/namespaces': ['status.phase'],
  '/v1/nodes': ['spec.unschedulable'],
  '/v1/services': ['spec.clusterIP', 'spec.type'],
};

function fieldValue(obj: Record<string, unknown>, path: readonly string[]): string {
  let cur: unknown = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[p];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'string' ? cur : String(cur);
}

/** Splits on an unescaped separator; `\x` keeps x literally. */
function splitEscaped(src: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === '\\' && i + 1 < src.length) { cur += ch + src[i + 1]; i++; continue; }
    if (ch === sep) { out.push(cur); cur = ''; continue; }
    cur += ch;
  }
  out.push(cur);
  return out;
}

function unescape(v: string): string { return v.replace(/\\(.)/g, '$1'); }

export function parseFieldSelector(src: string | null | undefined, r: ResourceInfo): ObjectPredicate {
  if (!src) return MATCH_ALL;
  const extra = EXTRA_SELECTABLE_FIELDS[r.key] ?? [];
  const reqs: ObjectPredicate[] = [];
  for (const term of splitEscaped(src, ',')) {
    if (term.trim() === '') continue;
    const m = /^([^=!]+?)\s*(==|!=|=)\s*(.*)$/s.exec(term);
    if (!m) throw badRequest(`invalid selector: '${src}'; can't understand '${term}'`);
    const field = m[1]!.trim();
    const op = m[2]!;
    const value = unescape(m[3]!);
    if (field !== 'metadata.name' && field !== 'metadata.namespace' && !extra.includes(field)) {
      throw badRequest(`field label not supported: ${field}`);
    }
    const path = field.split('.');
    reqs.push(op === '!=' ? (o) => fieldValue(o, path) !== value : (o) => fieldValue(o, path) === value);
  }
  if (reqs.length === 0) return MATCH_ALL;
  return (obj) => {
    for (const req of reqs) if (!req(obj)) return false;
    return true;
  };
}

export function bothSelectors(a: ObjectPredicate, b: ObjectPredicate): ObjectPredicate {
  if (a === MATCH_ALL) return b;
  if (b === MATCH_ALL) return a;
  return (o) => a(o) && b(o);
}

export { MATCH_ALL };
