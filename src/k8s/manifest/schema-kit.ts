/**
 * The few building blocks every schema file uses:
 *
 * - strictObject: a zod object that reports each field it does not know as its
 *   own issue (zod's `.strict()` reports them all in one issue, with no hint),
 *   and words upstream fields Palisade refuses as "not supported by Palisade".
 * - withChecks: a semantic check across the fields of one object. It runs even
 *   when a field below it already failed (zod skips refinements after an
 *   aborting issue by default), so one manifest yields all its faults at once.
 *   The value it sees may therefore be malformed: checks read it through the
 *   guards below, never trusting its type.
 * - checkedString: a string with a syntax check that returns an error message.
 *
 * A field set to null (`to:` with no value in YAML) is read as the field left
 * out, as the API server does: Go's JSON decoding leaves a null field at its
 * zero value (built-in kinds), and null fields of custom resources are pruned.
 * strictObject drops such fields before its shape sees them. A null list item
 * or label value is not a field and stays an error, as is a null unknown field.
 */
import * as z from 'zod';
import { UNKNOWN_FIELD, type PathSegment, type UnknownFieldParams } from './fault.ts';

export type Report = (path: readonly PathSegment[], message: string) => void;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value as a list, or [] when it is absent or not a list. */
export function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** Whether a field is set to something (a YAML null or a missing key is not). */
export function isSet(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** Whether a field holds a non-empty list (upstream checks `len(x) > 0`). */
export function hasItems(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0;
}

export function notSupported(field: string, why = ''): string {
  return `${field} is not supported by Palisade${why === '' ? '' : `: ${why}`}`;
}

export interface StrictObjectOptions {
  /** Upstream fields Palisade refuses: field → message. */
  refused?: Readonly<Record<string, string>>;
  /** Message when the object itself is required and missing. */
  missing?: string;
}

/** The object without its null fields among `fields`; the same object when it has none. */
function withoutNullFields(value: unknown, fields: ReadonlySet<string>): unknown {
  if (!isRecord(value)) return value;
  const isNullField = (key: string): boolean => value[key] === null && fields.has(key);
  if (!Object.keys(value).some(isNullField)) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => !isNullField(key)));
}

export function strictObject<S extends z.core.$ZodShape>(shape: S, options: StrictObjectOptions = {}) {
  const params: UnknownFieldParams = { known: Object.keys(shape), refused: options.refused ?? {} };
  // Refused fields are upstream fields too: null there means "not used", which Palisade can honour.
  const fields = new Set([...params.known, ...Object.keys(params.refused)]);
  const unknownField = z.unknown().superRefine((_value, ctx) => {
    ctx.addIssue({ code: 'custom', message: 'unknown field', params: { [UNKNOWN_FIELD]: params } });
  });
  const missing = options.missing;
  const objectParams = missing === undefined ? undefined : { error: (iss: { input?: unknown }) => (iss.input === undefined ? missing : undefined) };
  return z.preprocess((value) => withoutNullFields(value, fields), z.object(shape, objectParams).catchall(unknownField));
}

const always = (): boolean => true;

export function withChecks<T extends z.ZodType>(schema: T, check: (value: Record<string, unknown>, report: Report) => void): T {
  return schema.superRefine(
    (value, ctx) => {
      if (!isRecord(value)) return;
      check(value, (path, message) => ctx.addIssue({ code: 'custom', message, path: [...path], input: value }));
    },
    { when: always },
  );
}

export function checkedString(check: (s: string) => string | undefined) {
  return z.string().superRefine((s, ctx) => {
    const error = check(s);
    if (error !== undefined) ctx.addIssue({ code: 'custom', message: error, input: s });
  });
}

/** `apiVersion` of a known kind; the message names the one expected. */
export function apiVersionField<V extends string>(apiVersion: V, kind: string) {
  return z.literal(apiVersion, {
    error: (iss) =>
      iss.input === undefined
        ? `required field is missing: ${kind} needs apiVersion: ${apiVersion}`
        : `${kind} is served by apiVersion ${apiVersion}, not ${JSON.stringify(iss.input)}`,
  });
}

export const STATUS_REFUSED = 'status is written by the cluster, not by manifests: remove it';
