/**
 * FQDN selector syntax for `toFQDNs[]` and `toPorts[].rules.dns[]`.
 *
 * Upstream (api.FQDNSelector.sanitize):
 *   allowedMatchNameChars = "^[-a-zA-Z0-9_.]+$"
 *   allowedPatternChars   = "^[-a-zA-Z0-9_.*]+$"
 *   "only one of MatchName or MatchPattern is allowed in an FQDNSelector"
 * and the pattern grammar of pkg/fqdn/matchpattern: `*` matches within one
 * label, a leading `**.` matches one or more whole labels, and a pattern made
 * only of stars matches every name. A `**` anywhere else has no meaning, so it
 * is refused rather than silently read as `*`.
 */

const MAX_DNS_NAME = 255;
const NAME_CHAR = /[-a-zA-Z0-9_.]/;
const PATTERN_CHAR = /[-a-zA-Z0-9_.*]/;

function firstBadChar(s: string, allowed: RegExp): string | undefined {
  for (const ch of s) if (!allowed.test(ch)) return ch;
  return undefined;
}

function showChar(ch: string): string {
  return ch === "'" ? '"\'"' : ch.trim() === '' ? JSON.stringify(ch) : `'${ch}'`;
}

export function matchNameError(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_DNS_NAME) return `must be at most ${MAX_DNS_NAME} characters (got ${name.length})`;
  const bad = firstBadChar(name, NAME_CHAR);
  if (bad !== undefined) {
    const hint = bad === '*' ? ' (use matchPattern for wildcards)' : '';
    return `${showChar(bad)} is not allowed in a DNS name: use letters, digits, '-', '_' and '.'${hint}`;
  }
  return undefined;
}

export function matchPatternError(pattern: string): string | undefined {
  if (pattern.length === 0) return 'must not be empty';
  if (pattern.length > MAX_DNS_NAME) return `must be at most ${MAX_DNS_NAME} characters (got ${pattern.length})`;
  const bad = firstBadChar(pattern, PATTERN_CHAR);
  if (bad !== undefined) {
    return `${showChar(bad)} is not allowed in a DNS pattern: use letters, digits, '-', '_', '.' and '*'`;
  }
  if (/^\*+$/.test(pattern)) return undefined;
  const rest = pattern.startsWith('**.') ? pattern.slice(3) : pattern;
  if (rest.includes('**')) {
    return `'**' is only allowed as a leading '**.' label (as in "**.example.com"): use '*' to match within one label`;
  }
  return undefined;
}
