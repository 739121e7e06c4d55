/**
 * The policy engine: everything that decides whether traffic may pass. Pure
 * TypeScript, no I/O. Datapaths, proxies, `policy trace` and the UI ask it;
 * nothing re-implements policy semantics elsewhere.
 *
 *   CiliumNetworkPolicy ─┐
 *   CiliumClusterwide…  ─┼─► translate ─► PolicyRule ─┐
 *   NetworkPolicy       ─┘                            ├─► PolicyEngine ─► EndpointPolicy per identity
 *   Namespace, Pod ─► labels ─► identity ─────────────┘        │               │
 *                                                                         PolicySnapshot.verdict()
 *
 * Datapaths program snapshots and diff them against what they installed;
 * a change reports nothing of its own.
 *
 * Semantics: shared/DESIGN.md "Compatibility facts", quoted where implemented
 * (compiled.ts for precedence, translate-*.ts for the object kinds).
 */
export { PolicyEngine } from './engine.ts';
export { decide, decisionAllows, type CompiledEntry, type DirectionPolicy, type FqdnLookup, type Peer } from './compiled.ts';
export type { CidrPeer, MatchKind, PortSpec, Protocol, RuleOrigin } from './model.ts';
export type { DirectionVerdict, PeerRef, Verdict } from './verdict.ts';
export type { HttpRequest } from './http-rules.ts';
export { PolicySnapshot } from './snapshot.ts';
export type { EndpointInfo } from './endpoint.ts';
export { cidrContains } from './cidr.ts';
export { translateCiliumPolicy } from './translate-cilium.ts';
export { translateNetworkPolicy } from './translate-k8s.ts';
