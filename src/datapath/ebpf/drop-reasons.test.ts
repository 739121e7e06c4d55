/**
 * Every drop reason the BPF program can emit (each `#define DROP_* <n>` of
 * bpf/palisade.h) has a name: in the flow layer's table (what `palisade
 * observe` prints), in the gRPC enum (what Hubble clients decode), and the
 * same name in the datapath's own table (counters, events). A reason added to
 * the C without them would show as DROP_REASON_UNKNOWN.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DROP_REASONS as FLOW_DROP_REASONS } from '../../flows/index.ts';
import { DROP_REASONS } from './events.ts';

const header = readFileSync(new URL('../../../bpf/palisade.h', import.meta.url), 'utf8');
const proto = readFileSync(new URL('../../flows/proto/flow.proto', import.meta.url), 'utf8');

const emitted = [...header.matchAll(/^#define (DROP_\w+)\s+(\d+)\b/gm)].map(([, macro, code]) => ({ macro: macro!, code: Number(code) }));
const flowNameOf = new Map(Object.entries(FLOW_DROP_REASONS).map(([name, [code]]) => [code as number, name]));
const protoEnum = new Map([...(/enum DropReason \{([^}]*)\}/.exec(proto)?.[1] ?? '').matchAll(/(\w+) = (\d+);/g)].map(([, name, code]) => [name!, Number(code)]));

test('palisade.h defines the drop reasons the program emits', () => {
  // The parse itself: a header rewritten out of this shape must not pass silently.
  assert.ok(emitted.length >= 15, `found only ${emitted.map((e) => e.macro).join(', ')}`);
  assert.ok(emitted.some((e) => e.macro === 'DROP_FRAG_NOT_FOUND' && e.code === 175));
});

test('each DROP_* of palisade.h has a Hubble name in the flow table, the gRPC enum and the datapath table', () => {
  for (const { macro, code } of emitted) {
    const name = flowNameOf.get(code);
    assert.ok(name, `${macro} (${code}) has no name in DROP_REASONS of src/flows/flow.ts`);
    assert.notEqual(name, 'DROP_REASON_UNKNOWN', macro);
    assert.equal(protoEnum.get(name), code, `${macro}: ${name} = ${code} missing from enum DropReason in flow.proto`);
    assert.equal(DROP_REASONS[code], name, `${macro}: src/datapath/ebpf/events.ts names ${code} differently`);
  }
});

test('the flow table and the gRPC enum agree on every reason', () => {
  for (const [name, [code]] of Object.entries(FLOW_DROP_REASONS)) assert.equal(protoEnum.get(name), code, name);
  assert.equal(protoEnum.size, Object.keys(FLOW_DROP_REASONS).length);
});
