/**
 * Where Palisade's programs sit on a device: its tcx hooks where the kernel
 * has them (6.6+), else a cls_bpf filter under a clsact qdisc. tcx runs the
 * program straight from the device's hook; measured here on a same-node
 * request/response, the clsact path cost about 150 ns more per packet
 * (tc_run, cls_bpf_classify, tcf_classify), a fifth of all the eBPF path adds.
 *
 * One Palisade program per hook: an attach puts the new program in place of
 * the one there (a restarted agent loads new programs; the old ones forward
 * until replaced, so no packet goes unjudged in between), never beside it.
 * Palisade's programs are known on a tcx hook by name. Switching kinds
 * leaves nothing behind: a filter left by an agent that used clsact comes
 * off once tcx holds the hook (the tcx program answers first, and the filter
 * would judge the packets it passes again), and a tcx program comes off once
 * a clsact filter holds it (else the old program would keep answering first).
 */
import { release } from 'node:os';
import { type Libbpf } from './libbpf.ts';

/** tc filter handle and priority of every Palisade program (clsact): a re-attach replaces, never stacks. */
export const TC_HANDLE = 0xa15a;
export const TC_PRIORITY = 1;

export type HookKind = 'tcx' | 'tc';
/** What the operator asks for: one kind, or auto (tcx where the kernel has it). */
export type AttachMode = HookKind | 'auto';

export interface DeviceHooks {
  readonly kind: HookKind;
  /** `point`: BPF_TC_INGRESS or BPF_TC_EGRESS. */
  attach(ifindex: number, point: number, progFd: number, progId: number): void;
  /** The id of the Palisade program on the hook, or 0. */
  attached(ifindex: number, point: number): number;
  detach(ifindex: number, point: number): void;
}

export function deviceHooks(bpf: Libbpf, programNames: ReadonlySet<string>, mode: AttachMode = 'auto'): DeviceHooks {
  if (mode === 'tcx' && !bpf.hasTcx()) {
    throw new Error(`ebpf datapath: bpfAttach is tcx, but this kernel (${release()}) has no tcx hooks (Linux 6.6+); set it to tc or auto`);
  }
  const tcx = bpf.hasTcx();
  // Program ids are not reused while the kernel runs, so a name once read stays true.
  const names = new Map<number, string>();
  const ours = (ifindex: number, point: number): number[] =>
    tcx
      ? bpf.tcxQuery(ifindex, point).filter((id) => {
          if (!names.has(id)) names.set(id, bpf.programName(id));
          return programNames.has(names.get(id)!);
        })
      : [];
  /** Takes Palisade's tcx programs off the hook, all but `keep`. */
  const dropTcx = (ifindex: number, point: number, there = ours(ifindex, point), keep = 0): void => {
    for (const id of there) if (id !== keep) bpf.tcxDetach(ifindex, point, id);
  };
  const clsact = {
    attach(ifindex: number, point: number, progFd: number): void {
      bpf.tcHookCreate(ifindex);
      bpf.tcAttach(ifindex, point, progFd, TC_HANDLE, TC_PRIORITY);
    },
    attached: (ifindex: number, point: number): number => bpf.tcQuery(ifindex, point, TC_HANDLE, TC_PRIORITY),
    detach: (ifindex: number, point: number): void => bpf.tcDetach(ifindex, point, TC_HANDLE, TC_PRIORITY),
  };
  if (mode === 'tc' || !tcx) {
    return {
      kind: 'tc',
      attach(ifindex, point, progFd) {
        clsact.attach(ifindex, point, progFd);
        // An agent that used tcx before the switch: its program would run first.
        dropTcx(ifindex, point);
      },
      attached: clsact.attached,
      detach(ifindex, point) {
        clsact.detach(ifindex, point);
        dropTcx(ifindex, point);
      },
    };
  }
  return {
    kind: 'tcx',
    attach(ifindex, point, progFd, progId) {
      const there = ours(ifindex, point);
      if (!there.includes(progId)) bpf.tcxAttach(ifindex, point, progFd, there.shift());
      dropTcx(ifindex, point, there, progId);
      clsact.detach(ifindex, point);
    },
    attached: (ifindex, point) => ours(ifindex, point)[0] ?? 0,
    detach(ifindex, point) {
      dropTcx(ifindex, point);
      clsact.detach(ifindex, point);
    },
  };
}
