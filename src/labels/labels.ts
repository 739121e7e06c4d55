/**
 * Labels as Cilium sees them: every label has a source (`k8s`, `reserved`,
 * `cidr`, …), a key and a value. Selectors may name a source (`k8s:app`) or
 * not (`app`, which Cilium parses as `any:app` and matches whatever the source).
 */

export interface Label {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

export const SOURCE_ANY = 'any';
export const SOURCE_K8S = 'k8s';
export const SOURCE_RESERVED = 'reserved';

// A source prefix is a short word before the first ':' that holds no '.' or
// '/' — so `k8s:app` has one and `app.kubernetes.io/name` does not.
const SOURCE_PREFIX = /^([a-z0-9-]+):(.+)$/;

/** Splits `k8s:app` into source and key; a key with no prefix has source `any`. */
export function parseLabelKey(raw: string, defaultSource = SOURCE_ANY): { source: string; key: string } {
  const m = SOURCE_PREFIX.exec(raw);
  if (m && m[1] !== undefined && m[2] !== undefined) return { source: m[1], key: m[2] };
  return { source: defaultSource, key: raw };
}

/**
 * An immutable set of labels with at most one value per key. Lookups by a
 * selector key honour its source: `k8s:app` only matches a label from k8s,
 * `any:app` (or plain `app`) matches the label whatever its source.
 */
export class LabelSet {
  readonly #byKey: ReadonlyMap<string, Label>;
  /** Canonical text, `source:key=value` sorted and comma-joined: equal sets, equal text. */
  readonly canonical: string;

  constructor(labels: Iterable<Label>) {
    const byKey = new Map<string, Label>();
    for (const l of labels) byKey.set(l.key, l);
    this.#byKey = byKey;
    this.canonical = [...byKey.values()]
      .map((l) => `${l.source}:${l.key}=${l.value}`)
      .sort()
      .join(',');
  }

  static fromRecord(source: string, record: Record<string, string> | undefined): LabelSet {
    return new LabelSet(Object.entries(record ?? {}).map(([key, value]) => ({ source, key, value })));
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** The value for a selector key (`k8s:app`, `any:app`, `app`), or undefined when absent. */
  get(selectorKey: string): string | undefined {
    const { source, key } = parseLabelKey(selectorKey);
    const l = this.#byKey.get(key);
    if (l === undefined) return undefined;
    if (source !== SOURCE_ANY && l.source !== source) return undefined;
    return l.value;
  }

  has(selectorKey: string): boolean {
    return this.get(selectorKey) !== undefined;
  }

  [Symbol.iterator](): Iterator<Label> {
    return this.#byKey.values();
  }

  /** Labels as `source:key=value` strings, the way Hubble prints them. */
  toStrings(): string[] {
    return this.canonical === '' ? [] : this.canonical.split(',');
  }
}
