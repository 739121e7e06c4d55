/**
 * Reserved identities, numbered as Cilium numbers them (pkg/identity/numericidentity.go):
 * 0 unknown, 1 host, 2 world, 3 unmanaged, 4 health, 5 init, 6 remote-node,
 * 7 kube-apiserver, 8 ingress. Cluster-local identities start at 256.
 */
import { LabelSet, SOURCE_RESERVED } from '../labels/index.ts';

export const IDENTITY_HOST = 1;
export const IDENTITY_WORLD = 2;
export const IDENTITY_UNMANAGED = 3;
export const IDENTITY_HEALTH = 4;
export const IDENTITY_INIT = 5;
export const IDENTITY_REMOTE_NODE = 6;
export const IDENTITY_KUBE_APISERVER = 7;
export const IDENTITY_INGRESS = 8;

/** First identity handed to label sets (Cilium: MinimalAllocationIdentity). */
export const MIN_ALLOCATED_IDENTITY = 256;
/** Last cluster-local identity (Cilium: MaximumAllocationIdentity for a 16-bit cluster). */
export const MAX_ALLOCATED_IDENTITY = 65535;

export const RESERVED_NAMES: ReadonlyMap<number, string> = new Map([
  [IDENTITY_HOST, 'host'],
  [IDENTITY_WORLD, 'world'],
  [IDENTITY_UNMANAGED, 'unmanaged'],
  [IDENTITY_HEALTH, 'health'],
  [IDENTITY_INIT, 'init'],
  [IDENTITY_REMOTE_NODE, 'remote-node'],
  [IDENTITY_KUBE_APISERVER, 'kube-apiserver'],
  [IDENTITY_INGRESS, 'ingress'],
]);

/** The label set of each reserved identity: `reserved:<name>`. */
export const RESERVED_LABELS: ReadonlyMap<number, LabelSet> = new Map(
  [...RESERVED_NAMES].map(([id, name]) => [id, new LabelSet([{ source: SOURCE_RESERVED, key: name, value: '' }])]),
);
