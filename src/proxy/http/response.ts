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
 * replace it, we never rewrite the head).
 */
import { HttpProxyError } from './errors.ts';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE } from './body.ts';
import { TCHAR, latin1 } from './head-parser.ts';

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

function bad(reason: string): HttpProxyError {
  return new HttpProxyError('upstream-failed', `response-${reason}`);
}

function lineEnd(buf: Buffer, pos: number, end: number): number {
  const lf = buf.indexOf(LF, pos);
  if (lf < 0 || lf >= end || lf === pos || buf[lf - 1] !== CR) throw bad('bare-lf');
  return lf;
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
    const eol = lineEnd(buf, pos, end);
    const stop = eol - 1;
    let c = pos;
    while (c < stop && TCHAR[buf[c] as number] === 1) c++;
    if (c === pos || c === stop || buf[c] !== 58) throw bad('bad-header');
    let vs = c + 1;
    while (vs < stop && (buf[vs] === SP || buf[vs] === HT)) vs++;
    let ve = stop;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
    const len = c - pos;
    // Only a few names matter for framing; recognise them by length before making strings.
    if (len === 10 || len === 14 || len === 17 || r.headers !== undefined) {
      const name = latin1(buf, pos, c).toLowerCase();
      const value = latin1(buf, vs, ve);
      r.headers?.push([name, value]);
      if (len === 14 && name === 'content-length') {
        for (const part of value.split(',')) {
          const t = part.trim();
          if (!/^\d+$/.test(t)) throw bad('bad-content-length');
          const n = Number(t);
          if (!Number.isSafeInteger(n)) throw bad('bad-content-length');
          if (r.contentLength >= 0 && r.contentLength !== n) throw bad('differing-content-length');
          r.contentLength = n;
        }
      } else if (len === 17 && name === 'transfer-encoding') {
        te = te === undefined ? value : `${te},${value}`;
      } else if (len === 10 && name === 'connection') {
        for (const part of value.split(',')) {
          const t = part.trim().toLowerCase();
          if (t === 'close') r.connClose = true;
          else if (t === 'keep-alive') r.connKeepAlive = true;
        }
      }
    }
    pos = eol + 1;
  }

  // Framing, §6.3.
  if (requestMethodIsHead || status < 200 || status === 204 || status === 304) {
    r.bodyMode = BODY_NONE;
  } else if (te !== undefined) {
    if (r.contentLength >= 0) throw bad('cl-and-te');
    const codings = te.split(',');
    const last = (codings[codings.length - 1] as string).trim().toLowerCase();
    r.bodyMode = last === 'chunked' ? BODY_CHUNKED : BODY_UNTIL_CLOSE;
  } else if (r.contentLength >= 0) {
    r.bodyMode = BODY_LENGTH;
  } else {
    r.bodyMode = BODY_UNTIL_CLOSE;
  }
}

/** Whether the upstream keeps the connection open after this response (RFC 9112 §9.3). */
export function responseKeepsAlive(r: ResponseHead): boolean {
  if (r.bodyMode === BODY_UNTIL_CLOSE) return false;
  return r.minor === 1 ? !r.connClose : r.connKeepAlive && !r.connClose;
}
