/**
 * Local identities for the pod addresses Kubernetes ipBlocks select (pure; no I/O).
 *
 *   ipBlock peers that select pods (CidrPeer.selectsPods) in local endpoints' policies
 *     ─► every pod address of the cluster: the ipBlocks holding it (inside
 *        cidr, outside every except, exactly as the engine's cidrContains)
 *     ─► one identity per distinct set of ipBlocks (1<<24 + 0x20000 + n)
 *     ─► ipblock_pods map: address → identity; policy keys
 *        {peer: identity, proto, port} for each entry naming one of its ipBlocks
 *
 * Why a map of its own and not the ipcache: a pod's address must keep
 * resolving to its pod identity (every other rule, flow records, the
 * endpoint map of local pods), and that identity is shared by every pod with
 * the same labels, while an ipBlock with an `except` may select one of them
 * and not another. So the datapath looks the peer's address up a second
 * time (policy_decide in bpf/palisade.bpf.c) and probes the policy map with
 * both identities: exact by address, as Calico matches ipBlocks. Addresses
 * come and go with pods; a change of pods re-renders the map.
 */
import { fnv1a } from '../../identity/index.ts';
import { cidrContains, type CidrPeer, type EndpointInfo } from '../../policy/index.ts';
import { LOCAL_IDENTITY_BASE } from './cidr-identities.ts';

/** Above the CIDR (LOCAL_IDENTITY_BASE + 0..0xffff) and FQDN (+ 0x10000..0x1ffff) identities. */
export const IPBLOCK_IDENTITY_BASE = LOCAL_IDENTITY_BASE + 0x20000;
export const IPBLOCK_IDENTITY_COUNT = 0x10000;

/** What makes two ipBlocks the same block: the prefix and its excepts, as written. */
export const ipBlockKey = (c: CidrPeer): string => [c.cidr, ...[...c.exceptCidrs].sort()].join(' ');

export class IpBlockIdentities {
  /** pod address → identity */
  readonly #addresses = new Map<string, number>();
  /** ipBlock key → identities of the address sets it holds */
  readonly #byBlock = new Map<string, number[]>();
  readonly #endpoints = new Map<number, EndpointInfo[]>();

  constructor(blocks: readonly CidrPeer[], endpoints: Iterable<EndpointInfo>) {
    const distinct = new Map<string, CidrPeer>();
    for (const b of blocks) if (b.selectsPods && !b.cidr.includes(':')) distinct.set(ipBlockKey(b), b);
    if (distinct.size === 0) return;
    // address → the keys of the blocks holding it, as one text (the membership)
    const membershipOf = new Map<string, { ep: EndpointInfo; keys: string[] }>();
    for (const ep of endpoints) {
      for (const ip of ep.ips) {
        if (ip.includes(':')) continue; // the datapath is IPv4-only
        const keys = [...distinct].filter(([, b]) => cidrContains(b, ip)).map(([k]) => k);
        if (keys.length > 0) membershipOf.set(ip, { ep, keys: keys.sort() });
      }
    }
    // Numbered in a stable order, so a membership keeps its number while the set of memberships stays.
    const memberships = [...new Set([...membershipOf.values()].map((m) => m.keys.join('|')))].sort();
    const idOf = new Map<string, number>();
    const used = new Set<number>();
    for (const m of memberships) {
      let n = fnv1a(m) % IPBLOCK_IDENTITY_COUNT;
      while (used.has(n)) n = (n + 1) % IPBLOCK_IDENTITY_COUNT;
      used.add(n);
      const id = IPBLOCK_IDENTITY_BASE + n;
      idOf.set(m, id);
      for (const k of m.split('|')) {
        const list = this.#byBlock.get(k) ?? [];
        list.push(id);
        this.#byBlock.set(k, list);
      }
    }
    for (const [ip, { ep, keys }] of membershipOf) {
      const id = idOf.get(keys.join('|'))!;
      this.#addresses.set(ip, id);
      const eps = this.#endpoints.get(id) ?? [];
      if (!eps.includes(ep)) eps.push(ep);
      this.#endpoints.set(id, eps);
    }
  }

  /** address → identity, for the ipblock_pods map. */
  addresses(): IterableIterator<[string, number]> {
    return this.#addresses.entries();
  }

  /** The identities of pod addresses inside the block (and outside its excepts). */
  selectedBy(block: CidrPeer): readonly number[] {
    return block.selectsPods ? (this.#byBlock.get(ipBlockKey(block)) ?? []) : [];
  }

  /** The pods behind an ipBlock identity (named ports on egress resolve on them); undefined for other identities. */
  endpointsOf(id: number): readonly EndpointInfo[] | undefined {
    return this.#endpoints.get(id);
  }
}
