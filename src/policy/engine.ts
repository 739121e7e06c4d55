/**
 * The policy engine: Kubernetes-shaped objects in, compiled per-identity
 * policy and immutable snapshots out. No I/O.
 *
 *   upsert/delete(Namespace | Pod | Service | policy)
 *        │ pods ──► labels ──► identities ──► selector cache (which selectors gained/lost whom)
 *        │ policies ──► translate ──► PolicyRules ──► selector cache (register selectors)
 *        ▼
 *   dirty identities ──► compileEndpointPolicy() ──► fingerprint changed? ──► the next snapshot is new
 *        ▼
 *   snapshot() ──► PolicySnapshot (read-only; verdicts, per-endpoint policy)
 *
 * Incremental: a change recompiles only the identities it can affect — those a
 * changed policy selects, those whose rules use a selector whose selection
 * changed, and new identities — and keeps the compiled policy of an identity
 * whose fingerprint did not change. The engine is
 * single-threaded; every mutating method is *Locked in spirit: callers must not
 * re-enter it from within a change.
 *
 * A change reports nothing: the agent and the datapaths program a whole
 * snapshot, and each datapath diffs it against what it installed (legacy:
 * rendered nft state; eBPF: map contents). The engine's incrementality shows
 * in the snapshot: an endpoint a change cannot affect keeps its very
 * EndpointPolicy object (incremental.test.ts).
 */
import type { KubeObject, Namespace, Pod, PolicyObject, Service } from '../k8s/index.ts';
import { IdentityAllocator, RESERVED_LABELS, DEFAULT_CLUSTER_NAME, endpointLabels } from '../identity/index.ts';
import type { PolicyRule, RuleEntry } from './model.ts';
import { type CachedSelector, SelectorCache } from './selector-cache.ts';
import { compileEndpointPolicy, type EndpointPolicy } from './compiled.ts';
import { type EndpointInfo, endpointDiffers, endpointKey, podIps, podNamedPorts } from './endpoint.ts';
import { translateCiliumPolicy } from './translate-cilium.ts';
import { translateNetworkPolicy } from './translate-k8s.ts';
import { PolicySnapshot } from './snapshot.ts';

interface RegisteredRule {
  readonly rule: PolicyRule;
  readonly subject: CachedSelector;
  readonly entrySelectors: Map<RuleEntry, CachedSelector[]>;
}

export function policyKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

export class PolicyEngine {
  readonly cluster: string;
  /** Kubernetes NetworkPolicy ipBlocks select pod addresses too (translate-k8s.ts). */
  readonly ipBlockSelectsPods: boolean;
  readonly #alloc = new IdentityAllocator();
  readonly #cache = new SelectorCache();
  readonly #namespaces = new Map<string, Record<string, string>>();
  readonly #pods = new Map<string, Pod>();
  readonly #endpoints = new Map<string, EndpointInfo>();
  readonly #byIdentity = new Map<number, Set<string>>();
  readonly #services = new Map<string, Service>();
  readonly #policies = new Map<string, { object: PolicyObject; rules: RegisteredRule[] }>();
  readonly #rules = new Set<RegisteredRule>();
  /** selector key → rules that use it as a peer selector. */
  readonly #peerUsers = new Map<string, Set<RegisteredRule>>();
  readonly #compiled = new Map<number, EndpointPolicy>();

  #batchDepth = 0;
  readonly #dirty = new Set<number>();
  readonly #changed = new Set<string>();
  readonly #removed = new Set<string>();
  #snapshot: PolicySnapshot | null = null;

  constructor(opts: { cluster?: string; ipBlockSelectsPods?: boolean } = {}) {
    this.cluster = opts.cluster ?? DEFAULT_CLUSTER_NAME;
    this.ipBlockSelectsPods = opts.ipBlockSelectsPods ?? true;
    for (const [id, labels] of RESERVED_LABELS) this.#cache.addIdentityLocked(id, labels);
  }

  // ------------------------------------------------------------ public API

  /** Applies several changes and recompiles once at the end. */
  batch(fn: (engine: this) => void): void {
    this.#batchDepth++;
    try {
      fn(this);
    } finally {
      this.#batchDepth--;
    }
    if (this.#batchDepth === 0) this.#flush();
  }

  upsert(obj: KubeObject): void {
    this.batch(() => {
      switch (obj.kind) {
        case 'Namespace':
          this.#upsertNamespace(obj);
          break;
        case 'Pod':
          this.#upsertPod(obj);
          break;
        case 'Service':
          this.#services.set(endpointKey(obj.metadata.namespace ?? 'default', obj.metadata.name), obj);
          this.#snapshot = null;
          break;
        case 'NetworkPolicy':
        case 'CiliumNetworkPolicy':
        case 'CiliumClusterwideNetworkPolicy':
          this.#upsertPolicy(obj);
          break;
        default:
          // Other kinds (ExternalHost) carry no policy meaning.
          break;
      }
    });
  }

  delete(kind: KubeObject['kind'], namespace: string | undefined, name: string): void {
    this.batch(() => {
      switch (kind) {
        case 'Namespace':
          this.#namespaces.delete(name);
          this.#relabelNamespace(name);
          break;
        case 'Pod':
          this.#deletePod(endpointKey(namespace ?? 'default', name));
          break;
        case 'Service':
          this.#services.delete(endpointKey(namespace ?? 'default', name));
          this.#snapshot = null;
          break;
        case 'NetworkPolicy':
        case 'CiliumNetworkPolicy':
        case 'CiliumClusterwideNetworkPolicy': {
          const ns = kind === 'CiliumClusterwideNetworkPolicy' ? undefined : (namespace ?? 'default');
          this.#removePolicy(policyKey(kind, ns, name));
          break;
        }
        default:
          break;
      }
    });
  }

  /** The current state as an immutable snapshot (shared until the next change). */
  snapshot(): PolicySnapshot {
    this.#snapshot ??= new PolicySnapshot({
      endpoints: new Map(this.#endpoints),
      compiled: new Map(this.#compiled),
      services: new Map(this.#services),
      policies: new Map([...this.#policies].map(([k, v]) => [k, v.object])),
      cluster: this.cluster,
    });
    return this.#snapshot;
  }

  get stats(): { endpoints: number; identities: number; policies: number; rules: number; selectors: number } {
    return {
      endpoints: this.#endpoints.size,
      identities: this.#byIdentity.size,
      policies: this.#policies.size,
      rules: this.#rules.size,
      selectors: this.#cache.size,
    };
  }

  // ------------------------------------------------------------ namespaces and pods

  #upsertNamespace(ns: Namespace): void {
    const labels = ns.metadata.labels ?? {};
    const old = this.#namespaces.get(ns.metadata.name);
    this.#namespaces.set(ns.metadata.name, labels);
    if (old === undefined || JSON.stringify(old) !== JSON.stringify(labels)) this.#relabelNamespace(ns.metadata.name);
  }

  #relabelNamespace(name: string): void {
    for (const pod of this.#pods.values()) {
      if ((pod.metadata.namespace ?? 'default') === name) this.#upsertPod(pod);
    }
  }

  #upsertPod(pod: Pod): void {
    const namespace = pod.metadata.namespace ?? 'default';
    const key = endpointKey(namespace, pod.metadata.name);
    this.#pods.set(key, pod);
    const serviceAccount = pod.spec.serviceAccountName ?? 'default';
    const labels = endpointLabels({
      namespace,
      podLabels: pod.metadata.labels ?? {},
      namespaceLabels: this.#namespaces.get(namespace) ?? {},
      serviceAccount,
      cluster: this.cluster,
    });
    const identity = this.#alloc.acquire(labels);
    if (this.#cache.labelsOf(identity) === undefined) {
      this.#markSelectorsDirty(this.#cache.addIdentityLocked(identity, labels));
      this.#dirty.add(identity);
    }
    const old = this.#endpoints.get(key);
    if (old) this.#dropIdentityRef(old.identity, key);
    let members = this.#byIdentity.get(identity);
    if (!members) this.#byIdentity.set(identity, (members = new Set()));
    members.add(key);
    const ep: EndpointInfo = {
      key,
      namespace,
      name: pod.metadata.name,
      ...(pod.spec.nodeName !== undefined ? { node: pod.spec.nodeName } : {}),
      serviceAccount,
      podLabels: pod.metadata.labels ?? {},
      labels,
      identity,
      ips: podIps(pod),
      namedPorts: podNamedPorts(pod),
    };
    this.#endpoints.set(key, ep);
    if (!this.#compiled.has(identity)) this.#dirty.add(identity);
    if (!old || endpointDiffers(old, ep)) this.#changed.add(key);
    this.#removed.delete(key);
    this.#snapshot = null;
  }

  #deletePod(key: string): void {
    const old = this.#endpoints.get(key);
    this.#pods.delete(key);
    if (!old) return;
    this.#endpoints.delete(key);
    this.#dropIdentityRef(old.identity, key);
    this.#changed.delete(key);
    this.#removed.add(key);
    this.#snapshot = null;
  }

  #dropIdentityRef(identity: number, key: string): void {
    const members = this.#byIdentity.get(identity);
    members?.delete(key);
    if (members?.size === 0) this.#byIdentity.delete(identity);
    if (this.#alloc.release(identity)) {
      this.#markSelectorsDirty(this.#cache.removeIdentityLocked(identity));
      this.#compiled.delete(identity);
      this.#dirty.delete(identity);
    }
  }

  // ------------------------------------------------------------ policies

  #upsertPolicy(obj: PolicyObject): void {
    const ns = obj.kind === 'CiliumClusterwideNetworkPolicy' ? undefined : (obj.metadata.namespace ?? 'default');
    const key = policyKey(obj.kind, ns, obj.metadata.name);
    const rules = obj.kind === 'NetworkPolicy' ? translateNetworkPolicy(obj, { ipBlockSelectsPods: this.ipBlockSelectsPods }) : translateCiliumPolicy(obj, this.cluster);
    this.#removePolicy(key);
    const registered = rules.map((r) => this.#registerRule(r));
    this.#policies.set(key, { object: obj, rules: registered });
    for (const r of registered) for (const id of r.subject.selection) this.#dirty.add(id);
    this.#snapshot = null;
  }

  #removePolicy(key: string): void {
    const old = this.#policies.get(key);
    if (!old) return;
    this.#policies.delete(key);
    for (const r of old.rules) {
      for (const id of r.subject.selection) this.#dirty.add(id);
      this.#unregisterRule(r);
    }
    this.#snapshot = null;
  }

  #registerRule(rule: PolicyRule): RegisteredRule {
    const reg: RegisteredRule = { rule, subject: this.#cache.registerLocked(rule.subject), entrySelectors: new Map() };
    for (const dir of [rule.ingress, rule.egress]) {
      for (const e of dir?.entries ?? []) {
        const sels = e.peers.selectors.map((s) => this.#cache.registerLocked(s));
        reg.entrySelectors.set(e, sels);
        for (const s of sels) {
          let users = this.#peerUsers.get(s.selector.key);
          if (!users) this.#peerUsers.set(s.selector.key, (users = new Set()));
          users.add(reg);
        }
      }
    }
    this.#rules.add(reg);
    return reg;
  }

  #unregisterRule(reg: RegisteredRule): void {
    this.#rules.delete(reg);
    this.#cache.unregisterLocked(reg.rule.subject);
    for (const sels of reg.entrySelectors.values()) {
      for (const s of sels) {
        const users = this.#peerUsers.get(s.selector.key);
        users?.delete(reg);
        if (users?.size === 0) this.#peerUsers.delete(s.selector.key);
        this.#cache.unregisterLocked(s.selector);
      }
    }
  }

  /** A peer selector's selection changed: every identity whose rules use it must be recompiled. */
  #markSelectorsDirty(changed: CachedSelector[]): void {
    for (const c of changed) {
      for (const reg of this.#peerUsers.get(c.selector.key) ?? []) {
        for (const id of reg.subject.selection) this.#dirty.add(id);
      }
    }
  }

  // ------------------------------------------------------------ compile

  #flush(): void {
    for (const id of this.#dirty) {
      const members = this.#byIdentity.get(id);
      if (!members || members.size === 0) {
        this.#compiled.delete(id);
        continue;
      }
      const rules: PolicyRule[] = [];
      for (const reg of this.#rules) if (reg.subject.selection.has(id)) rules.push(reg.rule);
      const next = compileEndpointPolicy(id, rules, this.#selectorsOf);
      const prev = this.#compiled.get(id);
      if (prev?.fingerprint === next.fingerprint) continue;
      this.#compiled.set(id, next);
      for (const key of members) this.#changed.add(key);
    }
    this.#dirty.clear();
    if (this.#changed.size || this.#removed.size) this.#snapshot = null;
    this.#changed.clear();
    this.#removed.clear();
  }

  // Every peer selector of a registered rule is in the cache, so the lookup always hits.
  readonly #selectorsOf = (e: RuleEntry): CachedSelector[] => {
    const out: CachedSelector[] = [];
    for (const s of e.peers.selectors) {
      const c = this.#cache.get(s);
      if (c) out.push(c);
    }
    return out;
  };
}
