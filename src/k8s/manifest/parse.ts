/**
 * Manifest text → documents → objects. YAML (one or more documents split by
 * `---`) and JSON (a YAML 1.2 subset, read by the same parser) both land here.
 *
 * - Documents are numbered from 1 in file order; empty ones are skipped but
 *   still counted, so `#3` is the third document a person sees.
 * - A syntax error is reported with its line and column; other documents are
 *   still checked, so one run shows every fault of the file.
 * - `kind: List` (v1) and `<Kind>List` documents are unpacked into their items,
 *   whose paths start with `items[i]`. Items of a `<Kind>List` may omit
 *   apiVersion and kind, as the API server's list responses do.
 *
 * parseManifestText validates each object whole; parseManifestRefs reads only
 * which object each one names (for delete -f).
 */
import { parseAllDocuments, type YAMLError } from 'yaml';
import * as z from 'zod';
import type { KubeObject } from '../objects.ts';
import { compareFieldPaths, issuesToFaults, joinPath, manifestErrorMap, type Fault, type FieldFault } from './fault.ts';
import { isRecord, isSet, strictObject } from './schema-kit.ts';
import { identifyObject, KINDS, listElementKind, validateObject, type ObjectRef } from './validate.ts';

export interface ManifestEntry {
  object: KubeObject;
  source: string;
  doc: number;
  /** '' for a whole document, 'items[3]' for a List member. */
  path: string;
}

export interface ManifestFile {
  source: string;
  entries: ManifestEntry[];
  /** When non-empty, callers apply nothing of the file. */
  faults: Fault[];
}

export interface ManifestRef {
  ref: ObjectRef;
  source: string;
  doc: number;
  /** '' for a whole document, 'items[3]' for a List member. */
  path: string;
}

export interface ManifestRefFile {
  source: string;
  refs: ManifestRef[];
  /** When non-empty, callers delete nothing of the file. */
  faults: Fault[];
}

/** What is read of one object: validateObject or identifyObject. */
type ReadObject<T> = (raw: unknown) => { value?: T; faults: FieldFault[] };

interface Read<T> {
  value: T;
  doc: number;
  path: string;
}

// Aliases expand; cap them so a small file cannot expand into gigabytes ("billion laughs").
const MAX_ALIAS_COUNT = 100;

function syntaxFault(error: YAMLError): FieldFault {
  const pos = error.linePos?.[0];
  // The library's message ends with " at line L, column C:" and a code frame; keep the first sentence only.
  const firstLine = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?\s*$/, '');
  const where = pos !== undefined ? ` at line ${pos.line}, column ${pos.col}` : '';
  return { path: '', message: `YAML syntax error${where}: ${firstLine}` };
}

const listShell = strictObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: strictObject({
    resourceVersion: z.string().optional(),
    continue: z.string().optional(),
    remainingItemCount: z.number().int().optional(),
    selfLink: z.string().optional(),
  }).optional(),
  items: z.array(z.unknown(), { error: (iss) => (iss.input === undefined ? 'required field is missing: a List needs items' : undefined) }),
});

interface Member {
  raw: unknown;
  path: string;
}

/** The objects of one document: itself, or the items of a List. */
function documentMembers(value: Record<string, unknown>, faults: FieldFault[]): Member[] {
  const kind = typeof value.kind === 'string' ? value.kind : '';
  const element = listElementKind(kind);
  if (element === undefined) return [{ raw: value, path: '' }];

  const shell = listShell.safeParse(value, { error: manifestErrorMap });
  if (!shell.success) faults.push(...issuesToFaults(shell.error.issues));
  const expectedVersion = element === '' ? 'v1' : KINDS[element]!.apiVersion;
  if (typeof value.apiVersion === 'string' && value.apiVersion !== expectedVersion) {
    faults.push({ path: 'apiVersion', message: `${kind} is served by apiVersion ${expectedVersion}, not ${JSON.stringify(value.apiVersion)}` });
  }
  if (!Array.isArray(value.items)) return [];
  return value.items.map((item, i): Member => {
    const path = `items[${i}]`;
    if (element === '' || !isRecord(item)) return { raw: item, path };
    if (isSet(item.kind) && item.kind !== element) {
      faults.push({ path: `${path}.kind`, message: `a ${kind} holds ${element} objects, not ${JSON.stringify(item.kind)}` });
      return { raw: undefined, path };
    }
    // An item's apiVersion/kind may be left out (or null): the List names them.
    const { apiVersion, kind: _kind, ...rest } = item;
    return { raw: { apiVersion: apiVersion ?? expectedVersion, kind: element, ...rest }, path };
  });
}

type YAMLDocument = ReturnType<typeof parseAllDocuments>[number];

/** One document's faults; `read` receives what is read of its valid objects. */
function checkDocument<T>(document: YAMLDocument, source: string, doc: number, readObject: ReadObject<T>, read: Read<T>[]): Fault[] {
  const faults: Fault[] = [];
  const place = (f: FieldFault, prefix = ''): void => {
    faults.push({ source, doc, path: joinPath(prefix, f.path), message: f.message });
  };
  if (document.errors.length > 0) {
    for (const error of document.errors) place(syntaxFault(error));
    return faults;
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    place({ path: '', message: `YAML could not be read: ${(e as Error).message}` });
    return faults;
  }
  if (value === null || value === undefined) return faults; // an empty document
  if (!isRecord(value)) {
    const got = Array.isArray(value) ? 'a list (to give several objects, use --- between documents or a kind: List)' : typeof value;
    place({ path: '', message: `a manifest document must be a mapping with apiVersion, kind and metadata, not ${got}` });
    return faults;
  }
  const listFaults: FieldFault[] = [];
  const members = documentMembers(value, listFaults);
  for (const f of listFaults) place(f);
  for (const member of members) {
    if (member.raw === undefined) continue;
    const result = readObject(member.raw);
    for (const f of result.faults) place(f, member.path);
    if (result.value !== undefined) read.push({ value: result.value, doc, path: member.path });
  }
  return faults;
}

function parseDocuments<T>(text: string, source: string, readObject: ReadObject<T>): { read: Read<T>[]; faults: Fault[] } {
  const read: Read<T>[] = [];
  const faults: Fault[] = [];
  const docs = parseAllDocuments(text, { merge: true, uniqueKeys: true, prettyErrors: true });
  docs.forEach((document, index) => {
    const docFaults = checkDocument(document, source, index + 1, readObject, read);
    faults.push(...docFaults.sort((a, b) => compareFieldPaths(a.path, b.path)));
  });
  return { read, faults };
}

export function parseManifestText(text: string, source: string): ManifestFile {
  const { read, faults } = parseDocuments(text, source, (raw) => {
    const { object, faults } = validateObject(raw);
    return { ...(object !== undefined ? { value: object } : {}), faults };
  });
  return { source, entries: read.map(({ value, doc, path }) => ({ object: value, source, doc, path })), faults };
}

/** The objects a manifest names, by apiVersion, kind, namespace and name; the rest is not read. */
export function parseManifestRefs(text: string, source: string): ManifestRefFile {
  const { read, faults } = parseDocuments(text, source, (raw) => {
    const { ref, faults } = identifyObject(raw);
    return { ...(ref !== undefined ? { value: ref } : {}), faults };
  });
  return { source, refs: read.map(({ value, doc, path }) => ({ ref: value, source, doc, path })), faults };
}
