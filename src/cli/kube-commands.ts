/**
 * The kubectl-like commands of `palisade`, for the lab and for any cluster a
 * kubeconfig names:
 *
 *   apply -f     kube-apply.ts   create-or-update (three-way merge), wait for pods
 *   delete       kube-delete.ts  by manifest or by kind and name
 *   get          kube-get.ts     tables (kube-tables.ts), json, yaml, name
 *   exec         kube-exec.ts    ip netns exec into a lab pod
 *   logs         kube-logs.ts    a lab container's log file, -f to follow
 *   label        kube-label.ts   merge patch on metadata.labels
 *
 * All of them reach the API through kube-client.ts (client-node KubeConfig +
 * KubernetesObjectApi) and write through a KubeIo (kube-io.ts), so tests run
 * them in-process against a real API server on port 0.
 */
import type { Command } from 'commander';
import { registerApply } from './kube-apply.ts';
import { registerDelete } from './kube-delete.ts';
import { registerExec } from './kube-exec.ts';
import { registerGet } from './kube-get.ts';
import { processIo, type KubeIo } from './kube-io.ts';
import { registerLabel } from './kube-label.ts';
import { registerLogs } from './kube-logs.ts';

export type { KubeIo } from './kube-io.ts';

export function registerKubeCommands(program: Command, io: KubeIo = processIo()): void {
  registerApply(program, io);
  registerDelete(program, io);
  registerGet(program, io);
  registerExec(program, io);
  registerLogs(program, io);
  registerLabel(program, io);
}
