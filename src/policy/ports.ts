/**
 * Ports of policy rules: numbers, ranges (endPort), named ports and ICMP types.
 *
 * A named port means "the port that name has on the destination pod": on
 * ingress the selected endpoint's own container ports, on egress the peer's
 * (Kubernetes NetworkPolicyPort; Cilium resolves both the same way).
 */
import type { CiliumPortProtocol, ICMPField, NetworkPolicyPort } from '../k8s/index.ts';
import type { PortSpec, Protocol } from './model.ts';
import { ICMPV4_TYPES, ICMPV6_TYPES } from '../k8s/index.ts';

export interface NamedPort {
  readonly port: number;
  readonly protocol: Protocol;
}
export type NamedPorts = ReadonlyMap<string, readonly NamedPort[]>;

export function icmpTypeNumber(type: number | string, family: 'IPv4' | 'IPv6'): number {
  if (typeof type === 'number') return type;
  if (/^\d+$/.test(type)) return Number(type);
  const n = (family === 'IPv6' ? ICMPV6_TYPES : ICMPV4_TYPES)[type];
  if (n === undefined) throw new Error(`unknown ${family} ICMP type ${JSON.stringify(type)}`);
  return n;
}

export function icmpPortSpec(f: ICMPField): PortSpec {
  const family = f.family ?? 'IPv4';
  const t = icmpTypeNumber(f.type, family);
  return { protocol: family === 'IPv6' ? 'ICMPv6' : 'ICMP', port: t, endPort: t };
}

function numericOrName(port: string | number | undefined): { port: number; name?: string } {
  if (port === undefined || port === '') return { port: 0 };
  if (typeof port === 'number') return { port };
  if (/^\d+$/.test(port)) return { port: Number(port) };
  return { port: 0, name: port };
}

/** Cilium PortProtocol: port "0" or absent = all ports; protocol absent = ANY. */
export function ciliumPortSpec(p: CiliumPortProtocol): PortSpec {
  const { port, name } = numericOrName(p.port);
  const protocol = p.protocol ?? 'ANY';
  if (name !== undefined) return { protocol, port: 0, endPort: 0, name };
  return { protocol, port, endPort: port === 0 ? 0 : Math.max(port, p.endPort ?? port) };
}

/** Kubernetes NetworkPolicyPort: protocol absent = TCP; port absent = every port of the protocol. */
export function k8sPortSpec(p: NetworkPolicyPort): PortSpec {
  const { port, name } = numericOrName(p.port);
  const protocol = p.protocol ?? 'TCP';
  if (name !== undefined) return { protocol, port: 0, endPort: 0, name };
  return { protocol, port, endPort: port === 0 ? 0 : Math.max(port, p.endPort ?? port) };
}

function protocolMatches(spec: PortSpec['protocol'], proto: Protocol): boolean {
  if (spec === proto) return true;
  return spec === 'ANY' && (proto === 'TCP' || proto === 'UDP' || proto === 'SCTP');
}

/**
 * Whether `proto`/`port` falls under one spec. `namedPorts` are those of the
 * destination pod (the subject on ingress, the peer on egress); without them a
 * named port matches nothing.
 */
export function portSpecMatches(spec: PortSpec, proto: Protocol, port: number, namedPorts: NamedPorts | undefined): boolean {
  if (!protocolMatches(spec.protocol, proto)) return false;
  if (spec.name !== undefined) {
    const candidates = namedPorts?.get(spec.name);
    if (candidates === undefined) return false;
    for (const c of candidates) if (c.port === port && protocolMatches(spec.protocol, c.protocol)) return true;
    return false;
  }
  if (spec.port === 0) return true;
  return port >= spec.port && port <= spec.endPort;
}

export function portsMatch(
  specs: readonly PortSpec[] | null,
  proto: Protocol,
  port: number,
  namedPorts: NamedPorts | undefined,
): boolean {
  if (specs === null) return true;
  for (const s of specs) if (portSpecMatches(s, proto, port, namedPorts)) return true;
  return false;
}
