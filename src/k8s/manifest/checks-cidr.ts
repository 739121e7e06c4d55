/**
 * IP and CIDR syntax for fromCIDR/toCIDR, cidrSet and Kubernetes ipBlock.
 *
 * Upstream differs per field, and we follow it:
 * - Cilium `fromCIDR`/`toCIDR` (api.CIDR.sanitize): netip.ParsePrefix, and if
 *   that fails netip.ParseAddr, so a bare IP is accepted (as /32 or /128).
 * - Cilium `cidrSet.cidr` and `except` (api.CIDRRule.sanitize): "Only allow
 *   notation <IP address>/<prefix>", and "allow CIDR prefix %s does not
 *   contain exclude CIDR prefix %s".
 * - Kubernetes `ipBlock` (ValidateIPBlock): cidr and except must be CIDRs, and
 *   each except "must be a strict subset of `cidr`".
 */
import { BlockList, isIP } from 'node:net';
import { quote } from './checks-names.ts';

export interface ParsedCIDR {
  family: 4 | 6;
  address: string;
  bits: number;
}

/** 4 or 6 for a plain IP address (no zone, no brackets, no leading zeros), else 0. */
export function ipFamily(s: string): 0 | 4 | 6 {
  if (s.includes('%')) return 0;
  const family = isIP(s);
  return family === 4 || family === 6 ? family : 0;
}

export function ipError(s: string): string | undefined {
  return ipFamily(s) === 0 ? `${quote(s)} is not an IP address (write IPv4 like 10.0.0.1 or IPv6 like fd00::1)` : undefined;
}

/** A parsed CIDR, or an error message. `bareIP` accepts an address without a prefix length. */
export function parseCIDR(s: string, bareIP: boolean): ParsedCIDR | string {
  const slash = s.indexOf('/');
  if (slash < 0) {
    const family = ipFamily(s);
    if (family === 0) return `${quote(s)} is not a CIDR (write an address and a prefix length, like 10.0.0.0/8 or fd00::/64)`;
    if (!bareIP) return `${quote(s)} is not a CIDR: add a prefix length, like ${quote(`${s}/${family === 4 ? 32 : 128}`)}`;
    return { family, address: s, bits: family === 4 ? 32 : 128 };
  }
  const address = s.slice(0, slash);
  const prefix = s.slice(slash + 1);
  const family = ipFamily(address);
  if (family === 0) return `${quote(s)} is not a CIDR: ${quote(address)} is not an IP address`;
  const max = family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefix) || Number(prefix) > max) {
    return `${quote(s)} is not a CIDR: the prefix length must be a number from 0 to ${max} for IPv${family}`;
  }
  return { family, address, bits: Number(prefix) };
}

/** Whether `inner` lies within `outer` (same family, at least as long a prefix); `strict` requires a longer prefix. */
export function cidrContains(outer: ParsedCIDR, inner: ParsedCIDR, strict: boolean): boolean {
  if (outer.family !== inner.family) return false;
  if (strict ? inner.bits <= outer.bits : inner.bits < outer.bits) return false;
  const type = outer.family === 4 ? 'ipv4' : 'ipv6';
  const block = new BlockList();
  block.addSubnet(outer.address, outer.bits, type);
  // With inner.bits >= outer.bits, inner lies in outer iff any one of its addresses does.
  return block.check(inner.address, type);
}
