/**
 * Name syntaxes Kubernetes and Cilium validate: object names, label keys and
 * values, port names, HTTP header names. Each check returns an error message
 * (what is wrong and what is allowed) or undefined when the string is valid.
 * The regular expressions are the upstream ones from
 * k8s.io/apimachinery/pkg/util/validation.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
// "a valid label must be an empty string or consist of alphanumeric characters,
//  '-', '_' or '.', and must start and end with an alphanumeric character"
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const IANA_SVC_NAME = /^[-a-z0-9]+$/;
// RFC 9110 §5.6.2: token = 1*tchar
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit"
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export function quote(s: string): string {
  return JSON.stringify(s);
}

export function dns1123LabelError(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 63) return `must be at most 63 characters (got ${s.length})`;
  if (!DNS1123_LABEL.test(s)) {
    return `${quote(s)} is not a DNS-1123 label: use lowercase letters, digits and '-', starting and ending with a letter or digit`;
  }
  return undefined;
}

export function dns1123SubdomainError(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 253) return `must be at most 253 characters (got ${s.length})`;
  if (!DNS1123_SUBDOMAIN.test(s)) {
    return `${quote(s)} is not a DNS-1123 subdomain: use lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Service names are DNS-1035 labels upstream: like a DNS-1123 label, but starting with a letter. */
/**
 * A name as one segment of an API path (apimachinery IsValidPathSegmentName):
 * what kubectl checks of a name before it asks the server for the object, as
 * `..` or `a/b` would address another path.
 */
export function pathSegmentNameError(s: string): string | undefined {
  if (s === '.' || s === '..') return `invalid resource name ${quote(s)}: [may not be '${s}']`;
  for (const c of ['/', '%']) if (s.includes(c)) return `invalid resource name ${quote(s)}: [may not contain '${c}']`;
  return undefined;
}

export function dns1035LabelError(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 63) return `must be at most 63 characters (got ${s.length})`;
  if (!DNS1035_LABEL.test(s)) {
    return `${quote(s)} is not a DNS-1035 label: use lowercase letters, digits and '-', starting with a letter and ending with a letter or digit`;
  }
  return undefined;
}

/**
 * A label (or annotation) key: `[prefix/]name`, the prefix a DNS-1123 subdomain,
 * the name at most 63 characters of `[-A-Za-z0-9_.]` starting and ending alphanumeric.
 */
export function qualifiedNameError(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `label key ${quote(key)} has more than one '/': write [prefix/]name`;
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix.length === 0) return `label key ${quote(key)} has an empty prefix before '/'`;
    const prefixError = dns1123SubdomainError(prefix);
    if (prefixError) return `label key prefix: ${prefixError}`;
  }
  if (name.length === 0) return `label key ${quote(key)} has an empty name`;
  if (name.length > 63) return `label key name ${quote(name)} must be at most 63 characters (got ${name.length})`;
  if (!QUALIFIED_NAME_PART.test(name)) {
    return `label key name ${quote(name)} is invalid: use letters, digits, '-', '_' and '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

export function labelValueError(value: string): string | undefined {
  if (value.length === 0) return undefined;
  if (value.length > 63) return `label value must be at most 63 characters (got ${value.length})`;
  if (!QUALIFIED_NAME_PART.test(value)) {
    return `label value ${quote(value)} is invalid: use letters, digits, '-', '_' and '.', starting and ending with a letter or digit (or leave it empty)`;
  }
  return undefined;
}

/**
 * A port name (IANA_SVC_NAME, RFC 6335 §5.1): 1–15 characters of lowercase
 * letters, digits and '-', at least one letter, no leading/trailing or double '-'.
 */
export function portNameError(s: string): string | undefined {
  const rule = "a port name is 1-15 lowercase letters, digits and '-', with at least one letter and no leading, trailing or double '-'";
  if (s.length === 0 || s.length > 15) return `${quote(s)} is not a valid port name: ${rule}`;
  if (!IANA_SVC_NAME.test(s)) return `${quote(s)} is not a valid port name: ${rule}`;
  if (!/[a-z]/.test(s)) return `${quote(s)} is not a valid port name: ${rule}`;
  if (s.startsWith('-') || s.endsWith('-') || s.includes('--')) return `${quote(s)} is not a valid port name: ${rule}`;
  return undefined;
}

export function httpHeaderNameError(s: string): string | undefined {
  if (!HTTP_TOKEN.test(s)) {
    return `${quote(s)} is not a valid HTTP header name: use letters, digits and !#$%&'*+-.^_\`|~ (no spaces or ':')`;
  }
  return undefined;
}

export function envVarNameError(s: string): string | undefined {
  if (!ENV_VAR_NAME.test(s)) {
    return `${quote(s)} is not a valid environment variable name: use letters, digits, '_', '-' and '.', not starting with a digit`;
  }
  return undefined;
}

/** Levenshtein distance, for "did you mean" hints on short field names. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The candidate closest to `word` within edit distance 2 (case-insensitive), if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
