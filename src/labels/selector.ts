/**
 * Label selectors (metav1.LabelSelector) compiled once into a flat list of
 * requirements, then matched against LabelSets many times. Requirements AND;
 * an empty selector matches every label set.
 */
import type { LabelSelector, SelectorOperator } from '../k8s/index.ts';
import type { LabelSet } from './labels.ts';
import { parseLabelKey } from './labels.ts';

export interface Requirement {
  /** Selector key including its source prefix as written (`k8s:app`, `app`). */
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
}

export class Selector {
  readonly requirements: readonly Requirement[];
  /** Canonical text: equal selectors have equal keys, so caches can share them. */
  readonly key: string;

  constructor(requirements: Requirement[]) {
    const norm = requirements.map((r) => ({
      key: normaliseKey(r.key),
      operator: r.operator,
      values: [...new Set(r.values)].sort(),
    }));
    norm.sort((a, b) => (a.key === b.key ? cmp(a.operator, b.operator) : cmp(a.key, b.key)));
    this.requirements = norm;
    this.key = norm.length === 0 ? '{}' : norm.map(requirementText).join(',');
  }

  static fromLabelSelector(sel: LabelSelector | undefined, defaultSource?: string): Selector {
    const reqs: Requirement[] = [];
    for (const [key, value] of Object.entries(sel?.matchLabels ?? {})) {
      reqs.push({ key: withSource(key, defaultSource), operator: 'In', values: [value] });
    }
    for (const e of sel?.matchExpressions ?? []) {
      reqs.push({ key: withSource(e.key, defaultSource), operator: e.operator, values: e.values ?? [] });
    }
    return new Selector(reqs);
  }

  /** A selector that also requires every requirement of `other`. */
  and(other: Selector): Selector {
    return new Selector([...this.requirements, ...other.requirements]);
  }

  isEmpty(): boolean {
    return this.requirements.length === 0;
  }

  /** True when any requirement is on `key` (source-insensitive, as Cilium's HasKey with both prefixes). */
  mentionsKey(key: string): boolean {
    return this.requirements.some((r) => parseLabelKey(r.key).key === key);
  }

  mentionsKeyPrefix(prefix: string): boolean {
    return this.requirements.some((r) => parseLabelKey(r.key).key.startsWith(prefix));
  }

  mentionsSource(source: string): boolean {
    return this.requirements.some((r) => parseLabelKey(r.key).source === source);
  }

  matches(labels: LabelSet): boolean {
    for (const r of this.requirements) {
      const v = labels.get(r.key);
      switch (r.operator) {
        case 'In':
          if (v === undefined || !r.values.includes(v)) return false;
          break;
        case 'NotIn':
          // Kubernetes: NotIn also matches when the key is absent.
          if (v !== undefined && r.values.includes(v)) return false;
          break;
        case 'Exists':
          if (v === undefined) return false;
          break;
        case 'DoesNotExist':
          if (v !== undefined) return false;
          break;
      }
    }
    return true;
  }

  toString(): string {
    return this.key;
  }
}

function withSource(key: string, source: string | undefined): string {
  if (source === undefined) return key;
  const parsed = parseLabelKey(key, source);
  return `${parsed.source}:${parsed.key}`;
}

// `app` and `any:app` select the same labels: one canonical spelling.
function normaliseKey(key: string): string {
  const p = parseLabelKey(key);
  return `${p.source}:${p.key}`;
}

function requirementText(r: Requirement): string {
  switch (r.operator) {
    case 'In':
      return r.values.length === 1 ? `${r.key}=${r.values[0]}` : `${r.key} in (${r.values.join(',')})`;
    case 'NotIn':
      return `${r.key} notin (${r.values.join(',')})`;
    case 'Exists':
      return r.key;
    case 'DoesNotExist':
      return `!${r.key}`;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
