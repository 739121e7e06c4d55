/** src/k8s: its public surface. */
export { validateObject, pathSegmentNameError, STDIN_SOURCE, labelValueError, qualifiedNameError, formatFault, loadManifestRefs, loadManifests, EXTERNAL_HOST_DEFAULT_PORTS, externalAddressError, LAB_RANGES, type Fault, type ManifestEntry, type ManifestRef } from './manifest/index.ts';
export type { KubeObject, Pod, Service, LabelSelector, SelectorOperator, Namespace, PolicyObject, Entity, PortRuleHTTP, PolicyKind, CiliumPortProtocol, ICMPField, NetworkPolicyPort, CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, CiliumRule, CIDRRule, FQDNSelector, ICMPRule, PortRule, NetworkPolicy, NetworkPolicyPeer } from './objects.ts';
export { humanDuration } from './human-duration.ts';
export { labelsMatch, serviceSelector } from './service-selector.ts';
export { compileHttpRegex, type HttpRegex } from './http-regex.ts';
export { ICMPV4_TYPES, ICMPV6_TYPES } from './icmp-types.ts';
