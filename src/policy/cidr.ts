/** CIDR parsing into node's BlockList, which matches IPv4 and IPv6 prefixes natively. */
import { BlockList, isIP } from 'node:net';
import type { CidrPeer } from './model.ts';

export function ipFamily(ip: string): 'ipv4' | 'ipv6' | null {
  const v = isIP(ip);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : null;
}

/** Adds `10.0.0.0/8` (or a bare address, taken as a host prefix) to a block list. */
export function addCidr(list: BlockList, cidr: string): void {
  const [addr = '', lenText] = cidr.split('/');
  const family = ipFamily(addr);
  if (family === null) throw new Error(`invalid CIDR ${JSON.stringify(cidr)}`);
  const len = lenText === undefined ? (family === 'ipv4' ? 32 : 128) : Number(lenText);
  list.addSubnet(addr, len, family);
}

export function cidrPeer(cidr: string, except: readonly string[] = [], selectsPods = false): CidrPeer {
  const include = new BlockList();
  addCidr(include, cidr);
  let ex: BlockList | null = null;
  if (except.length > 0) {
    ex = new BlockList();
    for (const e of except) addCidr(ex, e);
  }
  const text = except.length > 0 ? `${cidr} except ${except.join(', ')}` : cidr;
  return { text, cidr, exceptCidrs: [...except], include, except: ex, selectsPods };
}

export function cidrContains(peer: CidrPeer, ip: string): boolean {
  const family = ipFamily(ip);
  if (family === null) return false;
  return peer.include.check(ip, family) && !(peer.except?.check(ip, family) ?? false);
}
