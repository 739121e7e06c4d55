/**
 * toFQDNs / rules.dns name matching, as Cilium's pkg/fqdn/matchpattern does it.
 *
 * Names and patterns are compared lower-case and fully qualified (trailing
 * dot). In a pattern, `*` matches `[-a-zA-Z0-9_]*` and never crosses a dot;
 * a leading `**.` matches one or more whole labels, so `**.example.com` does
 * not match `example.com`; a pattern made only of stars matches every name.
 */

/** One DNS label's characters, as Cilium's allowedDNSCharsREGroup. */
const LABEL_CHARS = '[-a-zA-Z0-9_]';
const MATCH_ALL_SOURCE = `(^(${LABEL_CHARS}+[.])+$)|(^[.]$)`;
const SUBDOMAIN_WILDCARD_SOURCE = `(${LABEL_CHARS}+([.]${LABEL_CHARS}+){0,})`;

/** Lower-cases and appends the root dot: `API.GitHub.com` → `api.github.com.`. */
export function normaliseName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower : `${lower}.`;
}

/** The regular expression text a pattern compiles to (the same text Cilium builds). */
export function patternToRegexSource(pattern: string): string {
  const p = normaliseName(pattern);
  if (/^\*+\.$/.test(p)) return MATCH_ALL_SOURCE;
  let rest = p;
  let prefix = '';
  if (rest.startsWith('**.')) {
    prefix = SUBDOMAIN_WILDCARD_SOURCE + '[.]';
    rest = rest.slice(3);
  }
  let body = '';
  for (const ch of rest) {
    if (ch === '*') body += `${LABEL_CHARS}*`;
    else if (ch === '.') body += '[.]';
    else body += ch;
  }
  return `^${prefix}${body}$`;
}

/** A compiled matchPattern or matchName. */
export interface NameMatcher {
  /** As written in the policy, for explanations. */
  readonly text: string;
  readonly kind: 'matchName' | 'matchPattern';
  matches(normalisedName: string): boolean;
}

export function compileMatchPattern(pattern: string): NameMatcher {
  const re = new RegExp(patternToRegexSource(pattern));
  return { text: pattern, kind: 'matchPattern', matches: (n) => re.test(n) };
}

export function compileMatchName(name: string): NameMatcher {
  const want = normaliseName(name);
  return { text: name, kind: 'matchName', matches: (n) => n === want };
}

/** Compiles a `{matchName}` or `{matchPattern}` selector (the validator guarantees exactly one). */
export function compileFqdnSelector(sel: { matchName?: string; matchPattern?: string }): NameMatcher {
  if (sel.matchPattern !== undefined) return compileMatchPattern(sel.matchPattern);
  return compileMatchName(sel.matchName ?? '');
}

/** A stable text for a set of selectors (order and case do not matter): names kernel objects that hold their addresses. */
export function fqdnSelectorKey(selectors: readonly NameMatcher[]): string {
  return [...new Set(selectors.map((m) => `${m.kind === 'matchName' ? 'n' : 'p'}:${normaliseName(m.text)}`))].sort().join(',');
}
