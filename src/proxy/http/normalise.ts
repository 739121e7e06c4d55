/**
 * Request-target normalisation: the one form both policy and upstream see.
 *
 * The proxy decides on the normalised target and forwards that same target,
 * so a trick that makes the upstream read a different path than the policy
 * matched has nothing to work with. The rules, in order (RFC 3986 §6.2.2 and
 * §5.2.4, RFC 9112 §3.2):
 *
 *  1. Form. origin-form (`/…`) is kept; absolute-form (`http://authority/…`)
 *     is split into its authority and an origin-form target (the proxy
 *     forwards origin-form); asterisk-form (`*`) only for OPTIONS; anything
 *     else (authority-form, `https://`, relative) is 400.
 *  2. Characters. CTL, SP, DEL and non-ASCII bytes are 400; `#` is 400 (a
 *     fragment is never part of a request target); `\` in the path is 400
 *     (some servers read it as `/`).
 *  3. Percent-encoding in the path (the query is left as sent):
 *     a. `%` not followed by two hex digits is 400;
 *     b. `%00` is 400; `%2F` and `%5C` (encoded slash, backslash) are 400 —
 *        we REJECT rather than keep them, since servers disagree on whether
 *        they separate segments;
 *     c. encoded unreserved characters (ALPHA DIGIT `-` `.` `_` `~`, so also
 *        `%2e`/`%2E`) are decoded (§6.2.2.2);
 *     d. every other encoding is kept, hex upper-cased (§6.2.2.1).
 *  4. Empty segments are dropped (`//admin` → `/admin`, duplicate slashes
 *     merged), before dot segments are removed.
 *  5. remove_dot_segments (§5.2.4): `.` dropped, `..` drops the previous
 *     segment, never above the root; a trailing `.`/`..`/empty segment
 *     leaves a trailing slash.
 *  6. A segment that is `.` or `..` followed by `;params` (`/..;/admin`,
 *     read as `..` by Tomcat-style servers) is 400. Other `;` are kept:
 *     `/admin;x` is forwarded as `/admin;x` and a rule for `/admin` does not
 *     match it.
 *  7. Case is kept: paths are case-sensitive; `/ADMIN` is forwarded as
 *     `/ADMIN` and does not match a rule for `/admin`.
 *
 * Fast path: a target with no `%`, no `//` and no `/.` is returned as is
 * (same string, no allocation).
 */
import { malformed } from './errors.ts';

export interface NormalisedTarget {
  /** Normalised path plus `?query` (as sent): what policy matches and upstream receives. */
  target: string;
  /** From an absolute-form target, as sent; undefined for origin- and asterisk-form. */
  authority: string | undefined;
  /** False when `target` is the request's own target unchanged (the head can be forwarded byte for byte). */
  changed: boolean;
}

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}

/** Authority characters (RFC 3986 §3.2: reg-name / IP-literal, optional port); no userinfo. */
const AUTHORITY_CHAR: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) {
    // unreserved, sub-delims ! $ & ' ( ) * + , ; =   and : [ ] %
    if (isUnreserved(c) || c === 0x21 || c === 0x24 || (c >= 0x26 && c <= 0x2c) || c === 0x3b || c === 0x3d || c === 0x3a || c === 0x5b || c === 0x5d || c === 0x25) t[c] = 1;
  }
  return t;
})();

export function isValidAuthority(a: string): boolean {
  if (a.length === 0) return false;
  for (let i = 0; i < a.length; i++) if (AUTHORITY_CHAR[a.charCodeAt(i)] !== 1) return false;
  return true;
}

/** isValidAuthority on the bytes buf[start, end) (a Host field value, before it is a string). */
export function isAuthority(buf: Buffer, start: number, end: number): boolean {
  if (start === end) return false;
  for (let i = start; i < end; i++) if (AUTHORITY_CHAR[buf[i] as number] !== 1) return false;
  return true;
}

/** Fills `out` from a raw request target; throws HttpProxyError('malformed') per the rules above. */
export function normaliseTarget(raw: string, method: string, out: NormalisedTarget): void {
  out.authority = undefined;
  out.changed = false;
  // Rule 2 over the whole target, and find where the path and query start.
  let query = -1;
  let needsWork = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) throw malformed(c === 0 ? 'nul-in-target' : 'ctl-in-target');
    if (c === 0x23) throw malformed('fragment-in-target');
    if (query >= 0) continue;
    if (c === 0x3f) query = i;
    else if (c === 0x5c) throw malformed('backslash-in-path');
    else if (c === 0x25) needsWork = true;
    else if (c === 0x2f && i + 1 < raw.length) {
      const n = raw.charCodeAt(i + 1);
      if (n === 0x2f || n === 0x2e) needsWork = true;
    }
  }
  // Rule 1: the form.
  let pathStart = 0;
  const first = raw.charCodeAt(0);
  if (first !== 0x2f) {
    if (raw === '*') {
      if (method !== 'OPTIONS') throw malformed('asterisk-form-not-options');
      out.target = raw;
      return;
    }
    if (raw.length > 7 && raw.slice(0, 7).toLowerCase() === 'http://') {
      let a = 7;
      while (a < raw.length && raw.charCodeAt(a) !== 0x2f && raw.charCodeAt(a) !== 0x3f) a++;
      const authority = raw.slice(7, a);
      if (!isValidAuthority(authority)) throw malformed(authority.includes('@') ? 'userinfo-in-target' : 'bad-authority');
      out.authority = authority;
      out.changed = true;
      pathStart = a;
      needsWork = true;
    } else {
      throw malformed(raw.slice(0, 8).toLowerCase() === 'https://' ? 'absolute-https' : 'bad-target-form');
    }
  }
  if (!needsWork) {
    out.target = raw;
    return;
  }
  const pathEnd = query >= 0 ? query : raw.length;
  const rawPath = pathStart === pathEnd ? '/' : raw.slice(pathStart, pathEnd);
  if (rawPath.charCodeAt(0) !== 0x2f) throw malformed('bad-target-form');
  const path = normalisePath(rawPath);
  const target = query >= 0 ? path + raw.slice(query) : path;
  out.target = target;
  if (target !== raw) out.changed = true;
}

/** Rules 3–6 on a path that starts with `/`. */
export function normalisePath(rawPath: string): string {
  // Rule 3: percent-encoding.
  let decoded = rawPath;
  let pct = rawPath.indexOf('%');
  if (pct >= 0) {
    decoded = '';
    let from = 0;
    while (pct >= 0) {
      const hi = pct + 2 < rawPath.length ? hexValue(rawPath.charCodeAt(pct + 1)) : -1;
      const lo = hi >= 0 ? hexValue(rawPath.charCodeAt(pct + 2)) : -1;
      if (lo < 0) throw malformed('bad-percent-encoding');
      const b = hi * 16 + lo;
      if (b === 0) throw malformed('encoded-nul');
      if (b === 0x2f || b === 0x5c) throw malformed('encoded-slash');
      decoded += rawPath.slice(from, pct) + (isUnreserved(b) ? String.fromCharCode(b) : '%' + HEX[hi] + HEX[lo]);
      from = pct + 3;
      pct = rawPath.indexOf('%', from);
    }
    decoded += rawPath.slice(from);
  }
  // Rules 4–6: segments.
  const segs = decoded.split('/');
  const kept: string[] = [];
  let trailing = false;
  for (let k = 1; k < segs.length; k++) {
    const s = segs[k] as string;
    const last = k === segs.length - 1;
    if (s === '' || s === '.') {
      if (last) trailing = true;
      continue;
    }
    if (s === '..') {
      kept.pop();
      if (last) trailing = true;
      continue;
    }
    const semi = s.indexOf(';');
    if (semi >= 0) {
      const base = s.slice(0, semi);
      if (base === '.' || base === '..') throw malformed('dot-segment-with-params');
    }
    kept.push(s);
  }
  if (kept.length === 0) return '/';
  return '/' + kept.join('/') + (trailing ? '/' : '');
}
