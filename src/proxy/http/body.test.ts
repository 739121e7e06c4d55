/** Streamed body framing: chunked split at every offset, length, errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BODY_CHUNKED, BODY_LENGTH, BodyFraming } from './body.ts';
import { HttpProxyError } from './errors.ts';

const CHUNKED = '5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer-A: 1\r\nB: 2\r\n\r\n';

test('chunked with extension and trailers ends exactly at the final CRLF, whatever the split', () => {
  const all = Buffer.from(CHUNKED + 'NEXT', 'latin1');
  const bodyLen = CHUNKED.length;
  for (let split = 0; split <= all.length; split++) {
    const f = new BodyFraming();
    f.reset(BODY_CHUNKED, -1, 'malformed');
    const a = f.consume(all.subarray(0, split), 0, split);
    let total = a;
    if (!f.done) {
      const rest = all.subarray(split);
      total = split + f.consume(rest, 0, rest.length);
    }
    assert.equal(f.done, true, `split ${split}`);
    assert.equal(total, bodyLen, `split ${split}`);
  }
});

test('byte at a time', () => {
  const all = Buffer.from(CHUNKED, 'latin1');
  const f = new BodyFraming();
  f.reset(BODY_CHUNKED, -1, 'malformed');
  for (let i = 0; i < all.length; i++) {
    assert.equal(f.done, false, `before byte ${i}`);
    assert.equal(f.consume(all, i, i + 1), i + 1);
  }
  assert.equal(f.done, true);
});

test('content-length stops at the length', () => {
  const f = new BodyFraming();
  f.reset(BODY_LENGTH, 3, 'malformed');
  const b = Buffer.from('abcdef');
  assert.equal(f.consume(b, 0, 2), 2);
  assert.equal(f.consume(b, 2, 6), 3);
  assert.equal(f.done, true);
});

test('malformed chunked bodies: 400 for requests, 502 for responses', () => {
  const bad = ['x\r\n', '5\nhello\r\n', '5\r\nhelloX', '5\r\nhello\n', '0\r\nA: 1\n\r\n', '0\r\n folded\r\n\r\n', '5;\x01\r\n', '0\r\n\n', 'fffffffffffffffff\r\n'];
  for (const kind of ['malformed', 'upstream-failed'] as const) {
    for (const text of bad) {
      const f = new BodyFraming();
      f.reset(BODY_CHUNKED, -1, kind);
      const b = Buffer.from(text, 'latin1');
      assert.throws(
        () => f.consume(b, 0, b.length),
        (e: unknown) => e instanceof HttpProxyError && (kind === 'malformed' ? e.status === 400 || e.status === 413 : e.status === 502),
        `${kind} ${JSON.stringify(text)}`,
      );
    }
  }
});
