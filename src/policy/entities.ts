/**
 * Cilium entities (from/toEntities) as selectors over identity labels
 * (pkg/policy/api/entity.go). `cluster` is every identity inside the cluster:
 * the reserved cluster identities plus every endpoint of this cluster.
 */
import type { Entity } from '../k8s/index.ts';
import { Selector } from '../labels/index.ts';
import { LABEL_CLUSTER } from '../identity/index.ts';

function reserved(name: string): Selector {
  return new Selector([{ key: `reserved:${name}`, operator: 'Exists', values: [] }]);
}

const CLUSTER_RESERVED = ['host', 'remote-node', 'init', 'health', 'unmanaged', 'kube-apiserver', 'ingress'];

export interface EntityPeers {
  /** `all`: no L3 restriction. */
  any: boolean;
  selectors: Selector[];
}

export function entityPeers(entities: readonly Entity[], cluster: string): EntityPeers {
  const out: EntityPeers = { any: false, selectors: [] };
  for (const e of entities) {
    switch (e) {
      case 'all':
        out.any = true;
        break;
      case 'none':
        break;
      case 'cluster':
        for (const r of CLUSTER_RESERVED) out.selectors.push(reserved(r));
        out.selectors.push(new Selector([{ key: `k8s:${LABEL_CLUSTER}`, operator: 'In', values: [cluster] }]));
        break;
      default:
        out.selectors.push(reserved(e));
    }
  }
  return out;
}
