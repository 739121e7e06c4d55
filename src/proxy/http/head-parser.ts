/**
 * Request head parser (RFC 9112 §2–§7), strict where leniency lets a
 * request mean one thing to policy and another to the upstream.
 *
 * Input: the bytes of one complete head, request line to the blank line
 * (the connection finds the end with bytes.ts headEnd()). Output: a
 * RequestHead owned by the connection and refilled for every request (only
 * `headers`, the object handed to policy, is new each time).
 *
 * Rejected with 400 (HttpProxyError 'malformed', reason in parentheses):
 *  - a line not ended by CRLF — bare LF or bare CR (`bare-lf`): we are strict,
 *    RFC 9112 §2.2 allows but does not require accepting bare LF;
 *  - request line not `method SP target SP HTTP/d.d` with single spaces
 *    (`bad-request-line`), method not a token (`bad-method`);
 *    HTTP/d.d other than 1.0/1.1 → 505 (`version-unsupported`);
 *  - a header line starting with SP/HT, i.e. obs-fold (`obs-fold`, §5.2);
 *  - whitespace between name and colon (`space-before-colon`, §5.1),
 *    a name that is not a token (`bad-header-name`);
 *  - CTL (other than HTAB), NUL or DEL in a value (`ctl-in-header`);
 *  - Content-Length not exactly 1*DIGIT between OWS (`bad-content-length`),
 *    or more than one value — a list (`35, 35`) or a second field line —
 *    even when the values agree (`content-length-list`,
 *    `differing-content-length`; §6.3 item 5 lets a recipient accept equal
 *    values, we do not: it is where parsers disagree);
 *  - Transfer-Encoding in HTTP/1.0 (`te-in-http10`, §6.1), any value other
 *    than exactly `chunked` between OWS (`bad-transfer-encoding`; so
 *    `gzip, chunked` too), both Transfer-Encoding and Content-Length
 *    (`cl-and-te`, §6.1: "a server MAY reject such a request" — we do);
 *  - a Connection or Upgrade item that is not a token (Upgrade:
 *    token ["/" token]) between OWS (`bad-connection`, `bad-upgrade`);
 *  - HTTP/1.1 without Host, more than one Host, or a Host that is not an
 *    authority (`missing-host`, `duplicate-host`, `bad-host`, §3.2).
 * Too many header lines → 431 (`too-many-headers`).
 *
 * Leading empty lines before the request line are skipped by the caller
 * (§2.2 "SHOULD ignore at least one empty line").
 *
 * Headers handed to policy: names lower-case, values with leading/trailing
 * OWS trimmed, repeated fields joined with "," (Envoy's join for matching).
 * Known names are recognised by length first, then by value.
 *
 * OWS is exactly SP and HTAB (RFC 9110 §5.6.3), nothing more: a value is never
 * trimmed with String.prototype.trim(), which also strips NBSP (0xA0), VT and
 * FF. `Content-Length: \xa035` must be 400 here, not 35 here and garbage (or
 * 35 again, with the body read as a second request) to the upstream.
 *
 * `Upgrade: h2c` (HTTP/2 over cleartext) is removed with its
 * `HTTP2-Settings` before policy and forwarding: a 101 to HTTP/2 would turn
 * the rest of the connection into frames this proxy does not police. The
 * request then goes on as HTTP/1.1, which RFC 9113 §3.1 clients expect.
 */
import { FIELD_VALUE, LOWER, TCHAR, indexOfByte, latin1 } from './bytes.ts';
import { HttpProxyError, malformed } from './errors.ts';
import { isAuthority } from './normalise.ts';

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const COLON = 58;

/**
 * Field names seen on most requests, grouped by length. A name on the wire
 * is compared (case-insensitively, byte by byte against the name's bytes)
 * only against the names of its own length; a hit yields this constant
 * string, so the common case makes no string and no lower-casing, and stores
 * into the headers object with an already-internalised key.
 */
const KNOWN_NAMES = byteTable([
  'te', 'via', 'host', 'date', 'from', 'range', 'accept', 'cookie', 'expect', 'origin', 'pragma', 'referer',
  'upgrade', 'priority', 'connection', 'keep-alive', 'user-agent', 'content-type', 'x-request-id', 'authorization',
  'cache-control', 'if-none-match', 'content-length', 'http2-settings', 'accept-encoding', 'accept-language',
  'x-forwarded-for', 'x-forwarded-proto', 'transfer-encoding', 'if-modified-since', 'sec-fetch-mode', 'sec-fetch-site',
  'sec-fetch-dest', 'x-real-ip', 'traceparent', 'content-encoding',
]);

/** Registered methods (RFC 9110 §9, and PATCH): the common case yields a constant, not a new string. Methods are case-sensitive. */
const KNOWN_METHODS = byteTable(['GET', 'PUT', 'POST', 'HEAD', 'PATCH', 'TRACE', 'DELETE', 'OPTIONS', 'CONNECT']);

interface ByteTable {
  /** By length: the strings of that length and their bytes. */
  strings: string[][];
  bytes: Uint8Array[][];
}

function byteTable(list: string[]): ByteTable {
  const t: ByteTable = { strings: [], bytes: [] };
  for (const s of list) {
    (t.strings[s.length] ??= []).push(s);
    (t.bytes[s.length] ??= []).push(Buffer.from(s, 'latin1'));
  }
  return t;
}

/** The table's string for buf[start, end), compared exactly or (`fold`) ASCII case-insensitively; undefined if absent. */
function lookup(t: ByteTable, buf: Buffer, start: number, end: number, fold: boolean): string | undefined {
  const len = end - start;
  const list = t.bytes[len];
  if (list === undefined) return undefined;
  outer: for (let k = 0; k < list.length; k++) {
    const n = list[k] as Uint8Array;
    for (let i = 0; i < len; i++) {
      const b = buf[start + i] as number;
      if ((fold ? LOWER[b] : b) !== n[i]) continue outer;
    }
    return (t.strings[len] as string[])[k];
  }
  return undefined;
}

/**
 * Header objects handed to policy inherit from an empty null-prototype
 * object: no Object.prototype keys (a rule for header `constructor` must not
 * see one), yet V8 keeps them in fast mode (Object.create(null) itself would
 * make a slow dictionary object).
 */
const HEADERS_PROTO: object = Object.freeze(Object.create(null) as object);

export function newHeaders(): Record<string, string> {
  return Object.create(HEADERS_PROTO) as Record<string, string>;
}

export interface RequestHead {
  method: string;
  target: string;
  /** 0 or 1: HTTP/1.<minor>. */
  minor: number;
  /** Offset of the first header line (just past the request line's CRLF). */
  fieldsStart: number;
  /** Lower-case name → value(s) joined by ","; new per request (newHeaders()). */
  headers: Record<string, string>;
  host: string | undefined;
  hostCount: number;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  connClose: boolean;
  connKeepAlive: boolean;
  connUpgrade: boolean;
  upgrade: string | undefined;
  expectContinue: boolean;
  /** [start, end) byte ranges of header lines not forwarded (h2c upgrade), flat pairs. */
  drop: number[];
}

export function newRequestHead(): RequestHead {
  return {
    method: '',
    target: '',
    minor: 1,
    fieldsStart: 0,
    headers: newHeaders(),
    host: undefined,
    hostCount: 0,
    contentLength: -1,
    chunked: false,
    connClose: false,
    connKeepAlive: false,
    connUpgrade: false,
    upgrade: undefined,
    expectContinue: false,
    drop: [],
  };
}

function resetHead(h: RequestHead): void {
  h.method = '';
  h.target = '';
  h.minor = 1;
  h.headers = newHeaders();
  h.host = undefined;
  h.hostCount = 0;
  h.contentLength = -1;
  h.chunked = false;
  h.connClose = false;
  h.connKeepAlive = false;
  h.connUpgrade = false;
  h.upgrade = undefined;
  h.expectContinue = false;
  // (Setting an array's length is a runtime call even when it is already 0.)
  if (h.drop.length !== 0) h.drop.length = 0;
}

/** Index of the LF ending the line that starts at `pos`; throws on a bare LF/CR. */
function lineEnd(buf: Buffer, pos: number, end: number): number {
  const lf = indexOfByte(buf, LF, pos, end);
  if (lf < 0) throw malformed('bare-cr');
  if (lf === pos || buf[lf - 1] !== CR) throw malformed('bare-lf');
  return lf;
}

/**
 * The field line at `pos` failed the one-pass scan: throw what is wrong with it,
 * checking in this order — line ending, header count, name, colon, value bytes.
 * (`count` is the number of field lines before this one.)
 */
function fieldLineError(buf: Buffer, pos: number, end: number, count: number, maxHeaders: number): never {
  const stop = lineEnd(buf, pos, end) - 1;
  if (count + 1 > maxHeaders) throw new HttpProxyError('head-too-large', 'too-many-headers');
  let c = pos;
  while (c < stop && TCHAR[buf[c] as number] === 1) c++;
  if (c === stop || buf[c] !== COLON) {
    const b = buf[c];
    throw malformed(b === SP || b === HT ? 'space-before-colon' : 'bad-header-name');
  }
  if (c === pos) throw malformed('bad-header-name');
  for (let k = c + 1; k < stop; k++) {
    const b = buf[k] as number;
    if (FIELD_VALUE[b] !== 1) throw malformed(b === 0 ? 'nul-in-header' : 'ctl-in-header');
  }
  throw new Error('fieldLineError: the line has no error'); // unreachable: the one-pass scan accepts every such line
}

/**
 * Parses buf[start, end), which ends with CRLF CRLF, into `h`.
 * Throws HttpProxyError (400 malformed, 431 head-too-large, 505 version-unsupported).
 */
export function parseRequestHead(buf: Buffer, start: number, end: number, h: RequestHead, maxHeaders: number): void {
  resetHead(h);
  // Request line: method SP request-target SP HTTP-version CRLF (§3).
  const lf = lineEnd(buf, start, end);
  const lineStop = lf - 1;
  let i = start;
  while (i < lineStop && TCHAR[buf[i] as number] === 1) i++;
  if (i === start || i >= lineStop || buf[i] !== SP) throw malformed(i === start || buf[i] !== SP ? 'bad-method' : 'bad-request-line');
  h.method = lookup(KNOWN_METHODS, buf, start, i, false) ?? latin1(buf, start, i);
  const t0 = i + 1;
  const sp2 = indexOfByte(buf, SP, t0, lineStop);
  if (sp2 < 0 || sp2 === t0) throw malformed('bad-request-line');
  h.target = latin1(buf, t0, sp2);
  // HTTP-version = "HTTP/" DIGIT "." DIGIT (§2.3)
  const v = sp2 + 1;
  if (
    lineStop - v !== 8 ||
    buf[v] !== 0x48 || buf[v + 1] !== 0x54 || buf[v + 2] !== 0x54 || buf[v + 3] !== 0x50 || buf[v + 4] !== 0x2f ||
    buf[v + 6] !== 0x2e
  ) {
    throw malformed('bad-request-line');
  }
  const major = (buf[v + 5] as number) - 48;
  const minor = (buf[v + 7] as number) - 48;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) throw malformed('bad-request-line');
  if (major !== 1 || minor > 1) throw new HttpProxyError('version-unsupported', `HTTP/${major}.${minor}`);
  h.minor = minor;
  h.fieldsStart = lf + 1;

  // Field lines (§5).
  const headers = h.headers;
  let te: string | undefined;
  let h2cLines: number[] | undefined;
  let hostValid = true;
  let count = 0;
  let pos = lf + 1;
  while (pos < end) {
    const b0 = buf[pos];
    if (b0 === CR) {
      if (buf[pos + 1] !== LF || pos + 2 !== end) throw malformed('bare-cr');
      break;
    }
    if (b0 === SP || b0 === HT) throw malformed('obs-fold');
    // One pass over the line: name, colon, OWS, value up to CRLF. Anything else
    // (an error, always) is left to fieldLineError, which says which one.
    let c = pos;
    while (TCHAR[buf[c] as number] === 1) c++;
    let vs = c + 1;
    let ve = -1;
    if (c > pos && buf[c] === COLON) {
      while (buf[vs] === SP || buf[vs] === HT) vs++;
      let k = vs;
      while (FIELD_VALUE[buf[k] as number] === 1) k++;
      if (buf[k] === CR && buf[k + 1] === LF && k + 1 < end) ve = k;
    }
    if (ve < 0) fieldLineError(buf, pos, end, count, maxHeaders);
    const eol = ve + 1;
    if (++count > maxHeaders) throw new HttpProxyError('head-too-large', 'too-many-headers');
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
    const name = lookup(KNOWN_NAMES, buf, pos, c, true) ?? latin1(buf, pos, c).toLowerCase();
    const value = latin1(buf, vs, ve);
    const prev = headers[name];
    headers[name] = prev === undefined ? value : `${prev},${value}`;
    // Known names, length first.
    switch (name.length) {
      case 4:
        if (name === 'host') {
          h.hostCount++;
          h.host = value;
          hostValid = vs === ve || isAuthority(buf, vs, ve);
        }
        break;
      case 6:
        if (name === 'expect' && value.toLowerCase() === '100-continue') h.expectContinue = true;
        break;
      case 7:
        if (name === 'upgrade') {
          upgradeProtocols(value);
          h.upgrade = h.upgrade === undefined ? value : `${h.upgrade},${value}`;
          (h2cLines ??= []).push(pos, eol + 1);
        }
        break;
      case 10:
        if (name === 'connection') connectionTokens(value, h);
        break;
      case 14:
        if (name === 'content-length') contentLength(value, h);
        else if (name === 'http2-settings') (h2cLines ??= []).push(pos, eol + 1);
        break;
      case 17:
        if (name === 'transfer-encoding') te = te === undefined ? value : `${te},${value}`;
        break;
    }
    pos = eol + 1;
  }

  // Host (§3.2): "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
  // request message that lacks a Host header field and to any request message that contains
  // more than one Host header field line or a Host header field with an invalid field value."
  if (h.hostCount === 0 && minor === 1) throw malformed('missing-host');
  if (h.hostCount > 1) throw malformed('duplicate-host');
  if (!hostValid) throw malformed('bad-host');
  // Transfer-Encoding (§6.1).
  if (te !== undefined) {
    if (minor === 0) throw malformed('te-in-http10');
    // Already OWS-trimmed; compared whole, so `chunked\xa0` or `\xa0chunked` is not chunked.
    // (toLowerCase maps no Latin-1 byte other than A–Z into ASCII.)
    if (te.toLowerCase() !== 'chunked') throw malformed('bad-transfer-encoding', nonToken(te));
    if (h.contentLength >= 0) throw malformed('cl-and-te');
    h.chunked = true;
  }
  // h2c upgrade is not offered to the upstream (see header comment).
  if (h.upgrade !== undefined && h2cLines !== undefined && isOnlyH2c(h.upgrade)) {
    for (const n of h2cLines) h.drop.push(n);
    h.upgrade = undefined;
    delete headers['upgrade'];
    delete headers['http2-settings'];
  }
}

function isOnlyH2c(upgrade: string): boolean {
  for (const p of upgrade.split(',')) if (trimOws(p).toLowerCase() !== 'h2c') return false;
  return true;
}

/** `s` without leading and trailing SP / HTAB (RFC 9110 §5.6.3 OWS), and nothing else. */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === SP || s.charCodeAt(a) === HT)) a++;
  while (b > a && (s.charCodeAt(b - 1) === SP || s.charCodeAt(b - 1) === HT)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Whether `s` is 1*tchar, or (`slash`) token "/" token as an Upgrade protocol may be (RFC 9110 §7.8). */
function isToken(s: string, slash: boolean): boolean {
  if (s.length === 0) return false;
  let slashAt = -1;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c === 0x2f && slash && slashAt < 0 && k > 0) slashAt = k;
    else if (c > 0xff || TCHAR[c] !== 1) return false;
  }
  return slashAt !== s.length - 1;
}

/** For an error: the first byte of `s` that is neither a token byte, OWS nor a comma. */
function nonToken(s: string): string {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c !== SP && c !== HT && c !== 0x2c && TCHAR[c] !== 1) return `byte 0x${c.toString(16).padStart(2, '0')} at ${k}`;
  }
  return `value ${JSON.stringify(s)}`;
}

/**
 * Connection = #connection-option, each a token (RFC 9110 §7.6.1); empty list
 * items are allowed (§5.6.1). An item that is not a token is 400: `close\xa0`
 * would be a close to a lenient upstream and not to us.
 */
function connectionTokens(value: string, h: RequestHead): void {
  for (const raw of value.split(',')) {
    const item = trimOws(raw);
    if (item.length === 0) continue;
    if (!isToken(item, false)) throw malformed('bad-connection', nonToken(value));
    const t = item.toLowerCase();
    if (t === 'close') h.connClose = true;
    else if (t === 'keep-alive') h.connKeepAlive = true;
    else if (t === 'upgrade') h.connUpgrade = true;
  }
}

/** Upgrade = #protocol, protocol = protocol-name ["/" protocol-version], both tokens (RFC 9110 §7.8). */
function upgradeProtocols(value: string): void {
  for (const raw of value.split(',')) {
    const item = trimOws(raw);
    if (item.length !== 0 && !isToken(item, true)) throw malformed('bad-upgrade', nonToken(value));
  }
}

/**
 * Content-Length = 1*DIGIT (RFC 9110 §8.6), from one field line holding one
 * value. The value comes OWS-trimmed, so any other byte here (NBSP, VT, a
 * comma) makes it invalid; a second value, equal or not, is 400 too (see the
 * header comment).
 */
function contentLength(value: string, h: RequestHead): void {
  if (value.length === 0) throw malformed('bad-content-length', 'empty');
  for (let k = 0; k < value.length; k++) {
    const c = value.charCodeAt(k);
    if (c < 48 || c > 57) {
      throw c === 0x2c ? malformed('content-length-list', `value ${JSON.stringify(value)}`) : malformed('bad-content-length', `byte 0x${c.toString(16).padStart(2, '0')} at ${k}`);
    }
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new HttpProxyError('body-too-large', 'content-length');
  if (h.contentLength >= 0) throw malformed(h.contentLength === n ? 'content-length-list' : 'differing-content-length', 'a second Content-Length field line');
  h.contentLength = n;
}
