/** The byte scanners: head end found exactly where indexOf would find it; response framing read on bytes as it was on strings. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headEnd, indexOfByte } from './bytes.ts';
import { BODY_CHUNKED, BODY_LENGTH, BODY_UNTIL_CLOSE } from './body.ts';
import { HttpProxyError } from './errors.ts';
import { newResponseHead, parseResponseHead, type ResponseHead } from './response.ts';

test('headEnd (which skips bytes) agrees with indexOf("\\r\\n\\r\\n") on every CR/LF/x string up to 9 bytes, from every offset', () => {
  const alphabet = ['\r', '\n', 'x'];
  for (let len = 0; len <= 9; len++) {
    for (let n = 0; n < 3 ** len; n++) {
      let s = '';
      for (let k = 0, v = n; k < len; k++, v = Math.floor(v / 3)) s += alphabet[v % 3];
      const buf = Buffer.from(`${s}\r\n\r\n`, 'latin1'); // bytes past `end` must not be looked at
      for (let from = 0; from <= len; from++) {
        const i = s.indexOf('\r\n\r\n', from);
        assert.equal(headEnd(buf, from, len), i < 0 ? -1 : i + 4, `${JSON.stringify(s)} from ${from}`);
      }
    }
  }
});

test('indexOfByte stays inside [from, end)', () => {
  const buf = Buffer.from('ab\ncd\n', 'latin1');
  assert.equal(indexOfByte(buf, 10, 0, 6), 2);
  assert.equal(indexOfByte(buf, 10, 3, 6), 5);
  assert.equal(indexOfByte(buf, 10, 3, 5), -1);
});

function response(fields: string, isHead = false): ResponseHead {
  const buf = Buffer.from(`HTTP/1.1 200 OK\r\n${fields}\r\n`, 'latin1');
  const r = newResponseHead();
  parseResponseHead(buf, 0, buf.length, r, isHead, false);
  return r;
}

test('response framing fields: names case-insensitive, lists, OWS (SP, HTAB) trimmed', () => {
  assert.equal(response('CONTENT-LENGTH: 13\r\n').contentLength, 13);
  assert.equal(response('content-length: 5, 5 ,5\r\n').contentLength, 5);
  assert.equal(response('Content-Length: \t7 \r\n').contentLength, 7);
  assert.equal(response('Transfer-Encoding: chunked\xa0\r\n').bodyMode, BODY_UNTIL_CLOSE); // NBSP is not OWS
  assert.equal(response('Content-Length: 007\r\n').bodyMode, BODY_LENGTH);
  assert.equal(response('Transfer-Encoding: gzip, Chunked\r\n').bodyMode, BODY_CHUNKED);
  assert.equal(response('Transfer-Encoding: chunked, gzip\r\n').bodyMode, BODY_UNTIL_CLOSE);
  const c = response('Connection: Keep-Alive ,  CLOSE\r\nConnection: upgrade\r\n');
  assert.equal(c.connClose, true);
  assert.equal(c.connKeepAlive, true);
  const d = response('Connection: closed, keep-alive-ish\r\n');
  assert.equal(d.connClose, false);
  assert.equal(d.connKeepAlive, false);
});

test('response framing errors (502, reason)', () => {
  const cases: [fields: string, reason: string][] = [
    ['Content-Length: 1, 2\r\n', 'response-differing-content-length'],
    ['Content-Length: 1\r\nContent-Length: 2\r\n', 'response-differing-content-length'],
    ['Content-Length: +1\r\n', 'response-bad-content-length'],
    ['Content-Length: 1,\r\n', 'response-bad-content-length'],
    ['Content-Length: 1 2\r\n', 'response-bad-content-length'],
    ['Content-Length: \xa07\r\n', 'response-bad-content-length'],
    ['Content-Length: 7\x0b\r\n', 'response-bad-content-length'],
    ['Content-Length: 99999999999999999999\r\n', 'response-bad-content-length'],
    ['Content-Length: 1\r\nTransfer-Encoding: chunked\r\n', 'response-cl-and-te'],
    ['X-A: 1\nY: 2\r\n', 'response-bare-lf'],
    ['X A: 1\r\n', 'response-bad-header'],
    [' X: 1\r\n', 'response-obs-fold'],
  ];
  for (const [fields, reason] of cases) {
    assert.throws(
      () => response(fields),
      (e: unknown) => e instanceof HttpProxyError && e.status === 502 && e.reason === reason,
      `${JSON.stringify(fields)} → ${reason}`,
    );
  }
});
