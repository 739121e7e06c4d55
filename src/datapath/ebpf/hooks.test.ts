/**
 * Unit: what deviceHooks asks of libbpf on each kind of kernel. The kernel
 * boundary is faked (a Libbpf whose hooks are arrays of program ids); the
 * privileged test checks the same outcome on the real kernel's tcx hooks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deviceHooks, TC_HANDLE, TC_PRIORITY } from './hooks.ts';
import { BPF_TC_EGRESS, BPF_TC_INGRESS, type Libbpf } from './libbpf.ts';

const OURS = new Set(['from_container', 'to_container', 'from_netdev']);

/** Hooks of one device: tcx program lists and clsact filters at our handle, by point. */
function fakeKernel(tcx: boolean, names: Record<number, string>) {
  const lists = new Map<number, number[]>([
    [BPF_TC_INGRESS, []],
    [BPF_TC_EGRESS, []],
  ]);
  const filters = new Map<number, number>();
  const calls: string[] = [];
  const fdToId = (fd: number): number => fd - 1000;
  const bpf = {
    hasTcx: () => tcx,
    tcxQuery: (_i: number, point: number) => [...lists.get(point)!],
    tcxAttach(_i: number, point: number, fd: number, replaceId?: number) {
      calls.push(`tcxAttach ${point} ${fdToId(fd)}${replaceId ? ` replacing ${replaceId}` : ''}`);
      const l = lists.get(point)!;
      if (replaceId) l[l.indexOf(replaceId)] = fdToId(fd);
      else l.push(fdToId(fd));
    },
    tcxDetach(_i: number, point: number, id: number) {
      calls.push(`tcxDetach ${point} ${id}`);
      lists.set(point, lists.get(point)!.filter((x) => x !== id));
    },
    programName: (id: number) => names[id] ?? '',
    tcHookCreate: () => void calls.push('tcHookCreate'),
    tcAttach(_i: number, point: number, fd: number, handle: number, prio: number) {
      assert.deepEqual([handle, prio], [TC_HANDLE, TC_PRIORITY]);
      filters.set(point, fdToId(fd));
      return fdToId(fd);
    },
    tcQuery: (_i: number, point: number) => filters.get(point) ?? 0,
    tcDetach(_i: number, point: number) {
      filters.delete(point);
    },
  } as unknown as Libbpf;
  return { bpf, lists, filters, calls };
}

test('tcx: an attach replaces the Palisade program in place, leaves foreign ones, drops extra copies and old clsact filters', () => {
  const k = fakeKernel(true, { 7: 'from_container', 8: 'someone_else', 9: 'from_container', 20: 'from_container' });
  k.lists.set(BPF_TC_INGRESS, [7, 8, 9]);
  k.filters.set(BPF_TC_INGRESS, 7);
  const hooks = deviceHooks(k.bpf, OURS);
  assert.equal(hooks.kind, 'tcx');
  hooks.attach(3, BPF_TC_INGRESS, 1020, 20);
  assert.deepEqual(k.lists.get(BPF_TC_INGRESS), [20, 8], 'in the old one’s place, the stranger kept');
  assert.deepEqual(k.calls, [`tcxAttach ${BPF_TC_INGRESS} 20 replacing 7`, `tcxDetach ${BPF_TC_INGRESS} 9`]);
  assert.equal(k.filters.get(BPF_TC_INGRESS), undefined, 'the clsact filter is gone');
  assert.equal(hooks.attached(3, BPF_TC_INGRESS), 20);

  // Attaching what is already there changes nothing.
  k.calls.length = 0;
  hooks.attach(3, BPF_TC_INGRESS, 1020, 20);
  assert.deepEqual(k.calls, []);

  hooks.detach(3, BPF_TC_INGRESS);
  assert.deepEqual(k.lists.get(BPF_TC_INGRESS), [8]);
  assert.equal(hooks.attached(3, BPF_TC_INGRESS), 0);
});

test('tcx: an empty hook gets the program appended', () => {
  const k = fakeKernel(true, { 30: 'to_container' });
  const hooks = deviceHooks(k.bpf, OURS);
  hooks.attach(3, BPF_TC_EGRESS, 1030, 30);
  assert.deepEqual(k.lists.get(BPF_TC_EGRESS), [30]);
  assert.deepEqual(k.lists.get(BPF_TC_INGRESS), []);
});

test('before tcx: a clsact qdisc and a filter at the fixed handle, replaced in place', () => {
  const k = fakeKernel(false, {});
  const hooks = deviceHooks(k.bpf, OURS);
  assert.equal(hooks.kind, 'tc');
  hooks.attach(3, BPF_TC_INGRESS, 1040, 40);
  hooks.attach(3, BPF_TC_INGRESS, 1041, 41);
  assert.equal(hooks.attached(3, BPF_TC_INGRESS), 41);
  assert.deepEqual(k.calls, ['tcHookCreate', 'tcHookCreate']);
  hooks.detach(3, BPF_TC_INGRESS);
  assert.equal(hooks.attached(3, BPF_TC_INGRESS), 0);
});

test('clsact asked for on a tcx kernel: the filter goes on and a Palisade tcx program left on the hook comes off', () => {
  const k = fakeKernel(true, { 7: 'from_container', 8: 'someone_else' });
  k.lists.set(BPF_TC_INGRESS, [7, 8]);
  const hooks = deviceHooks(k.bpf, OURS, 'tc');
  hooks.attach(3, BPF_TC_INGRESS, 1020, 20);
  assert.equal(hooks.attached(3, BPF_TC_INGRESS), 20);
  assert.deepEqual(k.lists.get(BPF_TC_INGRESS), [8]);
});

test('the operator may ask for clsact on a tcx kernel, and asking for tcx where there is none is an error naming the setting', () => {
  assert.equal(deviceHooks(fakeKernel(true, {}).bpf, OURS, 'tc').kind, 'tc');
  assert.equal(deviceHooks(fakeKernel(true, {}).bpf, OURS, 'tcx').kind, 'tcx');
  assert.throws(() => deviceHooks(fakeKernel(false, {}).bpf, OURS, 'tcx'), /bpfAttach is tcx, but this kernel .* has no tcx hooks/);
});
