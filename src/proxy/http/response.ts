/**
 * Response head parser: just enough of RFC 9112 to frame the response and
 * report it. The head is relayed to the client byte for byte; nothing here
 * rewrites it.
 *
 *   status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF   (§4)
 *
 * Framing (§6.3), as response.ts tells connection.ts:
 *  1. a response to HEAD, any 1xx, 204 and 304 have no body;
 *  2. Transfer-Encoding whose final coding is chunked → chunked;
 *     Transfer-Encoding otherwise → read until close;
 *     Transfer-Encoding together with Content-Length → 502 (the client
 *     would have to drop the Content-Length we relay verbatim);
 *  3. a valid Content-Length → that many bytes; differing values → 502;
 *  4. otherwise read until close.
 * Lines must end in CRLF; obs-fold is 502 (§5.2: a proxy MUST reject or
 * replace it, we never rewrite the head). Values and list items are trimmed of
 * OWS — SP and HTAB — only (RFC 9110 §5.6.3), as request heads are: a
 * `Content-Length: 7\xa0` is 502, not 7 to us and something else to the client.
 */
import { HttpProxyError } from './errors.ts';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE } from './body.ts';
import { TCHAR, bytesEqualLower, indexOfByte, latin1 } from './bytes.ts';

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;

export interface ResponseHead {
  status: number;
  minor: number;
  /** BODY_* from body.ts, decided by §6.3 given the request method. */
  bodyMode: number;
  contentLength: number;
  connClose: boolean;
  connKeepAlive: boolean;
  /** Filled only when asked (events wanted): lower-case names, values as sent. */
  headers: [string, string][] | undefined;
}

export function newResponseHead(): ResponseHead {
  return { status: 0, minor: 1, bodyMode: BODY_NONE, contentLength: -1, connClose: false, connKeepAlive: false, headers: undefined };
}

// Field names and tokens that matter for framing, as lower-case bytes.
const CONTENT_LENGTH = Buffer.from('content-length', 'latin1');
const TRANSFER_ENCODING = Buffer.from('transfer-encoding', 'latin1');
const CONNECTION = Buffer.from('connection', 'latin1');
const CLOSE = Buffer.from('close', 'latin1');
const KEEP_ALIVE = Buffer.from('keep-alive', 'latin1');

function bad(reason: string): HttpProxyError {
  return new HttpProxyError('upstream-failed', `response-${reason}`);
}

function lineEnd(buf: Buffer, pos: number, end: number): number {
  const lf = indexOfByte(buf, LF, pos, end);
  if (lf < 0 || lf === pos || buf[lf - 1] !== CR) throw bad('bare-lf');
  return lf;
}

/**
 * Calls `visit` with each comma-separated item of the value in [vs, ve),
 * trimmed of SP and HTAB. `visit` is a
 * module-level function and `r` its state, so a response costs no closure.
 */
function eachListItem(buf: Buffer, vs: number, ve: number, r: ResponseHead, visit: (buf: Buffer, a: number, b: number, r: ResponseHead) => void): void {
  let p = vs;
  for (;;) {
    let q = indexOfByte(buf, 0x2c, p, ve);
    if (q < 0) q = ve;
    let a = p;
    let b = q;
    while (a < b && (buf[a] === SP || buf[a] === HT)) a++;
    while (b > a && (buf[b - 1] === SP || buf[b - 1] === HT)) b--;
    visit(buf, a, b, r);
    if (q === ve) return;
    p = q + 1;
  }
}

/**
 * Content-Length = 1*DIGIT, a list of identical values being one value (RFC 9110 §8.6):
 * each item must be digits only and a safe integer.
 */
function contentLength(buf: Buffer, vs: number, ve: number, r: ResponseHead): void {
  eachListItem(buf, vs, ve, r, contentLengthItem);
}

function contentLengthItem(buf: Buffer, a: number, b: number, r: ResponseHead): void {
  if (a === b) throw bad('bad-content-length');
  let n = 0;
  for (let k = a; k < b; k++) {
    const d = (buf[k] as number) - 48;
    if (d < 0 || d > 9) throw bad('bad-content-length');
    n = n * 10 + d;
  }
  if (!Number.isSafeInteger(n)) throw bad('bad-content-length');
  if (r.contentLength >= 0 && r.contentLength !== n) throw bad('differing-content-length');
  r.contentLength = n;
}

/** Connection tokens (RFC 9110 §7.6.1) that matter here: close and keep-alive, compared ASCII case-insensitively. */
function connectionTokens(buf: Buffer, vs: number, ve: number, r: ResponseHead): void {
  eachListItem(buf, vs, ve, r, connectionToken);
}

function connectionToken(buf: Buffer, a: number, b: number, r: ResponseHead): void {
  if (b - a === CLOSE.length && bytesEqualLower(buf, a, CLOSE)) r.connClose = true;
  else if (b - a === KEEP_ALIVE.length && bytesEqualLower(buf, a, KEEP_ALIVE)) r.connKeepAlive = true;
}

/** Parses buf[start, end) (ending in CRLF CRLF) into `r`. Throws 'upstream-failed'. */
export function parseResponseHead(buf: Buffer, start: number, end: number, r: ResponseHead, requestMethodIsHead: boolean, wantHeaders: boolean): void {
  r.contentLength = -1;
  r.connClose = false;
  r.connKeepAlive = false;
  r.headers = wantHeaders ? [] : undefined;
  const lf = lineEnd(buf, start, end);
  // "HTTP/1.x SP 3DIGIT"
  if (
    lf - 1 - start < 12 ||
    buf[start] !== 0x48 || buf[start + 1] !== 0x54 || buf[start + 2] !== 0x54 || buf[start + 3] !== 0x50 ||
    buf[start + 4] !== 0x2f || buf[start + 5] !== 0x31 || buf[start + 6] !== 0x2e || buf[start + 8] !== SP
  ) {
    throw bad('bad-status-line');
  }
  const minor = (buf[start + 7] as number) - 48;
  if (minor !== 0 && minor !== 1) throw bad('bad-version');
  r.minor = minor;
  let status = 0;
  for (let k = start + 9; k < start + 12; k++) {
    const d = (buf[k] as number) - 48;
    if (d < 0 || d > 9) throw bad('bad-status-code');
    status = status * 10 + d;
  }
  if (status < 100 || (lf - 1 > start + 12 && buf[start + 12] !== SP)) throw bad('bad-status-code');
  r.status = status;

  let te: string | undefined;
  let pos = lf + 1;
  while (pos < end) {
    const b0 = buf[pos];
    if (b0 === CR) break;
    if (b0 === SP || b0 === HT) throw bad('obs-fold');
    // The name first, then the line's end from there: a name holds no LF, so this is the line's
    // first LF all the same, and the name's bytes are read once.
    let c = pos;
    while (TCHAR[buf[c] as number] === 1) c++;
    const eol = lineEnd(buf, c, end);
    const stop = eol - 1;
    if (c === pos || c >= stop || buf[c] !== 58) throw bad('bad-header');
    let vs = c + 1;
    while (vs < stop && (buf[vs] === SP || buf[vs] === HT)) vs++;
    let ve = stop;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
    const len = c - pos;
    if (r.headers !== undefined) r.headers.push([latin1(buf, pos, c).toLowerCase(), latin1(buf, vs, ve)]);
    // Only a few names matter for framing; recognised on the bytes, length first, without making strings.
    if (len === CONTENT_LENGTH.length && bytesEqualLower(buf, pos, CONTENT_LENGTH)) contentLength(buf, vs, ve, r);
    else if (len === TRANSFER_ENCODING.length && bytesEqualLower(buf, pos, TRANSFER_ENCODING)) te = te === undefined ? latin1(buf, vs, ve) : `${te},${latin1(buf, vs, ve)}`;
    else if (len === CONNECTION.length && bytesEqualLower(buf, pos, CONNECTION)) connectionTokens(buf, vs, ve, r);
    pos = eol + 1;
  }

  // Framing, §6.3.
  if (requestMethodIsHead || status < 200 || status === 204 || status === 304) {
    r.bodyMode = BODY_NONE;
  } else if (te !== undefined) {
    if (r.contentLength >= 0) throw bad('cl-and-te');
    r.bodyMode = lastCodingIsChunked(te) ? BODY_CHUNKED : BODY_UNTIL_CLOSE;
  } else if (r.contentLength >= 0) {
    r.bodyMode = BODY_LENGTH;
  } else {
    r.bodyMode = BODY_UNTIL_CLOSE;
  }
}

/** Whether the last coding of a Transfer-Encoding list, OWS-trimmed, is `chunked` (so `chunked\xa0` is not). */
function lastCodingIsChunked(te: string): boolean {
  let b = te.length;
  while (b > 0 && (te.charCodeAt(b - 1) === SP || te.charCodeAt(b - 1) === HT)) b--;
  const a = b - 7;
  if (a < 0 || te.slice(a, b).toLowerCase() !== 'chunked') return false;
  for (let k = a - 1; k >= 0; k--) {
    const c = te.charCodeAt(k);
    if (c === 0x2c) return true;
    if (c !== SP && c !== HT) return false;
  }
  return true;
}

/** Whether the upstream keeps the connection open after this response (RFC 9112 §9.3). */
export function responseKeepsAlive(r: ResponseHead): boolean {
  if (r.bodyMode === BODY_UNTIL_CLOSE) return false;
  return r.minor === 1 ? !r.connClose : r.connKeepAlive && !r.connClose;
}
