/**
 * The lab's address plan. Every lab uses the same ranges: they exist only
 * inside the lab's own namespaces, so labs never see each other's.
 */
import type { LabNetwork, LabNode } from './paths.ts';

export const LAB_NETWORK: LabNetwork = {
  underlayCIDR: '172.31.0.0/24',
  fabricIp: '172.31.0.1',
  clusterPodCIDR: '10.244.0.0/16',
  serviceCIDR: '10.96.0.0/16',
  worldCIDR: '198.18.0.0/16',
};

export const MAX_NODES = 200;

export function labNodes(count: number): LabNode[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) throw new Error(`--nodes must be 1–${MAX_NODES}`);
  return Array.from({ length: count }, (_, i) => ({
    name: `node-${i + 1}`,
    underlayIp: `172.31.0.${10 + i + 1}`,
    podCIDR: `10.244.${i + 1}.0/24`,
  }));
}
