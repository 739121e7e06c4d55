/**
 * The one drop reason table (constants.ts DROP_REASONS) against what the
 * kernel side emits and what Hubble clients decode: every `#define DROP_* <n>`
 * of bpf/palisade.h has a name there (never DROP_REASON_UNKNOWN), the same
 * name its comment in the header gives, and the gRPC enum of flow.proto
 * carries each name with the same code. A reason added to the C without a
 * name would show as DROP_REASON_UNKNOWN.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DROP_REASONS, dropReasonCode, dropReasonName } from './constants.ts';

const header = readFileSync(new URL('../../bpf/palisade.h', import.meta.url), 'utf8');
const proto = readFileSync(new URL('../flows/proto/flow.proto', import.meta.url), 'utf8');

const emitted = [...header.matchAll(/^#define (DROP_\w+)\s+(\d+)\s*\/\*\s*([A-Z0-9_]+)/gm)].map(([, macro, code, comment]) => ({ macro: macro!, code: Number(code), comment: comment! }));
const protoEnum = new Map([...(/enum DropReason \{([^}]*)\}/.exec(proto)?.[1] ?? '').matchAll(/(\w+) = (\d+);/g)].map(([, name, code]) => [name!, Number(code)]));

test('palisade.h defines the drop reasons the program emits', () => {
  // The parse itself: a header rewritten out of this shape must not pass silently.
  const defines = [...header.matchAll(/^#define (DROP_\w+)\s+\d+/gm)].length;
  assert.equal(emitted.length, defines, 'every DROP_* define carries its Hubble name in a comment');
  assert.ok(emitted.length >= 15, `found only ${emitted.map((e) => e.macro).join(', ')}`);
  assert.ok(emitted.some((e) => e.macro === 'DROP_FRAG_NOT_FOUND' && e.code === 175));
});

test('each DROP_* of palisade.h has its Hubble name in the table and the gRPC enum', () => {
  for (const { macro, code, comment } of emitted) {
    const name = dropReasonName(code);
    assert.notEqual(name, 'DROP_REASON_UNKNOWN', `${macro} (${code}) has no name in DROP_REASONS of src/datapath/constants.ts`);
    assert.equal(name, comment, `${macro}: the header calls ${code} ${comment}`);
    assert.equal(dropReasonCode(name), code);
    assert.equal(protoEnum.get(name), code, `${macro}: ${name} = ${code} missing from enum DropReason in flow.proto`);
  }
});

test('the table and the gRPC enum agree on every reason; codes are unique', () => {
  for (const [name, [code]] of Object.entries(DROP_REASONS)) assert.equal(protoEnum.get(name), code, name);
  assert.equal(protoEnum.size, Object.keys(DROP_REASONS).length);
  const codes = Object.values(DROP_REASONS).map(([code]) => code);
  assert.equal(new Set(codes).size, codes.length);
  assert.equal(dropReasonName(250), 'DROP_REASON_UNKNOWN');
  assert.equal(dropReasonCode('toString'), undefined);
});
