/**
 * Faults: what is wrong with a manifest, where. A fault names the file, the
 * 1-based document within it, the field path (`spec.egress[0].toFQDNs[1].matchPattern`,
 * keys that are not identifiers quoted: `metadata.labels["app.kubernetes.io/name"]`)
 * and a message for a platform engineer: what is wrong and what is allowed.
 *
 * Zod issues are turned into faults here: the per-parse error map words zod's
 * own issues (wrong type, missing field, value not in an enum), and the
 * unknown-field marker left by strictObject (schema-kit.ts) becomes one fault
 * per field, with a "did you mean" hint or a "not supported by Palisade" reason.
 */
import type * as z from 'zod';
import { closest, quote } from './checks-names.ts';

export interface Fault {
  source: string;
  /** 1-based index of the document within the file; 0 for a fault about the whole file. */
  doc: number;
  path: string;
  message: string;
}

/** A fault inside one object, before it is placed in a file. */
export interface FieldFault {
  path: string;
  message: string;
}

export type PathSegment = string | number;

/** "policy.yaml#2 spec.egress[0].toFQDNs[1].matchPattern: '%' is not allowed in a DNS pattern" */
export function formatFault(f: Fault): string {
  const where = f.doc > 0 ? `${f.source}#${f.doc}` : f.source;
  return f.path === '' ? `${where}: ${f.message}` : `${where} ${f.path}: ${f.message}`;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${quote(s)}]`;
  }
  return out;
}

/** Joins a path prefix (such as `items[2]`) and a path inside the object. */
export function joinPath(prefix: string, path: string): string {
  if (prefix === '') return path;
  if (path === '') return prefix;
  return path.startsWith('[') ? prefix + path : `${prefix}.${path}`;
}

/** Orders paths parent-first, fields by name, indexes by number: `a` < `a.b` < `a[2]` < `a[10]`. */
export function compareFieldPaths(a: string, b: string): number {
  const sa = a.match(/\[\d+\]|\["(?:[^"\\]|\\.)*"\]|[^.[]+/g) ?? [];
  const sb = b.match(/\[\d+\]|\["(?:[^"\\]|\\.)*"\]|[^.[]+/g) ?? [];
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const x = sa[i]!;
    const y = sb[i]!;
    if (x === y) continue;
    const nx = /^\[\d+\]$/.test(x) ? Number(x.slice(1, -1)) : undefined;
    const ny = /^\[\d+\]$/.test(y) ? Number(y.slice(1, -1)) : undefined;
    if (nx !== undefined && ny !== undefined) return nx - ny;
    return x < y ? -1 : 1;
  }
  return sa.length - sb.length;
}

// ---------------------------------------------------------------- unknown fields

/** The `params` key by which strictObject marks an unknown field. */
export const UNKNOWN_FIELD = 'palisadeUnknownField';

export interface UnknownFieldParams {
  known: readonly string[];
  /** Upstream fields Palisade refuses, with the reason shown instead of "unknown field". */
  refused: Readonly<Record<string, string>>;
}

function unknownFieldMessage(field: string, params: UnknownFieldParams): string {
  const reason = params.refused[field];
  if (reason !== undefined) return reason;
  const hint = closest(field, params.known);
  return hint !== undefined ? `unknown field ${quote(field)} (did you mean ${hint}?)` : `unknown field ${quote(field)}`;
}

// ---------------------------------------------------------------- zod issues

function describeInput(input: unknown): string {
  if (input === null) return 'null (an empty value: give it a value, or remove it)';
  if (Array.isArray(input)) return 'a list';
  switch (typeof input) {
    case 'string':
      return `the string ${quote(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`;
    case 'number':
      return `the number ${input}`;
    case 'boolean':
      return String(input);
    case 'object':
      return 'a mapping';
    default:
      return typeof input;
  }
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (object)',
  record: 'a mapping (object)',
};

interface RawIssueView {
  code?: string;
  input?: unknown;
  expected?: string;
  values?: readonly unknown[];
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
}

/**
 * Words zod's own issues for a person. Passed per parse (`safeParse(x, { error })`),
 * so it never changes zod's global configuration for other users in the process.
 */
export const manifestErrorMap: z.core.$ZodErrorMap = (raw) => {
  const iss = raw as RawIssueView;
  switch (iss.code) {
    case 'invalid_type': {
      const expected = EXPECTED[iss.expected ?? ''] ?? iss.expected ?? 'another type';
      if (iss.input === undefined) return `required field is missing (expected ${expected})`;
      const hint = iss.expected === 'string' && typeof iss.input === 'number' ? ' (quote it in YAML)' : '';
      return `expected ${expected}, got ${describeInput(iss.input)}${hint}`;
    }
    case 'invalid_value': {
      const values = (iss.values ?? []).map((v) => (typeof v === 'string' ? v : String(v)));
      const got = describeInput(iss.input);
      const hint = typeof iss.input === 'string' ? closest(iss.input, values) : undefined;
      const allowed = values.length === 1 ? `must be ${values[0]}` : `must be one of ${values.join(', ')}`;
      return `${allowed} (got ${got})${hint !== undefined ? `; did you mean ${hint}?` : ''}`;
    }
    case 'too_small': {
      const min = Number(iss.minimum);
      if (iss.origin === 'array') return min === 1 ? 'must not be an empty list' : `must have at least ${min} entries`;
      if (iss.origin === 'string') return min === 1 ? 'must not be empty' : `must be at least ${min} characters`;
      return `must be ${iss.inclusive === false ? 'more than' : 'at least'} ${min} (got ${describeInput(iss.input)})`;
    }
    case 'too_big': {
      const max = Number(iss.maximum);
      if (iss.origin === 'array') return `must have at most ${max} entries`;
      if (iss.origin === 'string') return `must be at most ${max} characters`;
      return `must be ${iss.inclusive === false ? 'less than' : 'at most'} ${max} (got ${describeInput(iss.input)})`;
    }
    default:
      return undefined;
  }
};

/** One field fault per zod issue; an unknown-field marker becomes a fault on that field. */
export function issuesToFaults(issues: readonly z.core.$ZodIssue[], prefix: readonly PathSegment[] = []): FieldFault[] {
  const faults: FieldFault[] = [];
  for (const issue of issues) {
    const segments = [...prefix, ...issue.path.filter((p): p is PathSegment => typeof p !== 'symbol')];
    const params = issue.code === 'custom' ? (issue.params?.[UNKNOWN_FIELD] as UnknownFieldParams | undefined) : undefined;
    const field = segments.at(-1);
    if (params !== undefined && typeof field === 'string') {
      faults.push({ path: formatPath(segments), message: unknownFieldMessage(field, params) });
    } else {
      faults.push({ path: formatPath(segments), message: issue.message });
    }
  }
  return faults;
}
