/**
 * L7 HTTP rules (CiliumNetworkPolicy `toPorts[].rules.http`).
 *
 * Cilium hands these to Envoy as full-match regular expressions: "method,
 * path and host are extended POSIX regexes matched against the whole value";
 * in fact RE2 syntax (Go's regexp validates them, Envoy's RE2 matches them),
 * compiled here once per rule by ../k8s/http-regex.ts, never per request.
 * The path is the request target including its query string. Fields of one
 * rule AND; the rules of a port OR — a request passes when any rule matches.
 * `headers` entries are `Name` (must be present) or `Name: value` (exact).
 */
import { compileHttpRegex } from '../k8s/index.ts';
import type { PortRuleHTTP } from '../k8s/index.ts';
import type { HttpHeaderRule, HttpRule } from './model.ts';

export interface HttpRequest {
  method: string;
  /** Request target as sent: path plus query string. */
  path: string;
  host?: string;
  /** Header names lower-case. */
  headers?: Readonly<Record<string, string>>;
}

function headerRule(entry: string): HttpHeaderRule {
  const colon = entry.indexOf(':');
  if (colon < 0) return { name: entry.trim().toLowerCase() };
  return { name: entry.slice(0, colon).trim().toLowerCase(), value: entry.slice(colon + 1).trim() };
}

export function compileHttpRule(r: PortRuleHTTP): HttpRule {
  const headers: HttpHeaderRule[] = (r.headers ?? []).map(headerRule);
  // A headerMatch with a mismatch action does not gate the request: Envoy
  // applies the action (log, add, replace…) and lets it through.
  for (const h of r.headerMatches ?? []) {
    if (h.mismatch === undefined) headers.push({ name: h.name.toLowerCase(), ...(h.value !== undefined ? { value: h.value } : {}) });
  }
  const parts: string[] = [];
  if (r.method !== undefined) parts.push(`method=${r.method}`);
  if (r.path !== undefined) parts.push(`path=${r.path}`);
  if (r.host !== undefined) parts.push(`host=${r.host}`);
  for (const h of headers) parts.push(h.value === undefined ? `header ${h.name}` : `header ${h.name}: ${h.value}`);
  return {
    text: parts.length ? parts.join(' ') : 'any request',
    ...(r.method !== undefined ? { method: compileHttpRegex(r.method) } : {}),
    ...(r.path !== undefined ? { path: compileHttpRegex(r.path) } : {}),
    ...(r.host !== undefined ? { host: compileHttpRegex(r.host) } : {}),
    headers,
  };
}

export function httpRuleMatches(rule: HttpRule, req: HttpRequest): boolean {
  if (rule.method && !rule.method.matches(req.method)) return false;
  if (rule.path && !rule.path.matches(req.path)) return false;
  if (rule.host && !rule.host.matches(req.host ?? '')) return false;
  for (const h of rule.headers) {
    const v = req.headers?.[h.name];
    if (v === undefined) return false;
    if (h.value !== undefined && v !== h.value) return false;
  }
  return true;
}
