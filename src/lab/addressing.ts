/**
 * The lab's address plan. Every lab uses the same ranges: they exist only
 * inside the lab's own namespaces, so labs never see each other's.
 */
import { LAB_RANGES } from '../k8s/index.ts';
import type { LabNetwork, LabNode } from './paths.ts';

/** The ranges come from the lab API (ExternalHost addresses must stay out of them). */
export const LAB_NETWORK: LabNetwork = { ...LAB_RANGES, fabricIp: '172.31.0.1' };

export const MAX_NODES = 200;

export function labNodes(count: number): LabNode[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) throw new Error(`--nodes must be 1–${MAX_NODES}`);
  return Array.from({ length: count }, (_, i) => ({
    name: `node-${i + 1}`,
    underlayIp: `172.31.0.${10 + i + 1}`,
    podCIDR: `10.244.${i + 1}.0/24`,
  }));
}
