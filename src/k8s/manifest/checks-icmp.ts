/** Validation of ICMP types in `icmps[].fields[]` (the names: ../icmp-types.ts). */
import { ICMPV4_TYPES, ICMPV6_TYPES } from '../icmp-types.ts';

export { ICMPV4_TYPES, ICMPV6_TYPES };

/** An error for an ICMP type that is neither a number 0–255 nor a type name of the family. */
export function icmpTypeError(type: unknown, family: 'IPv4' | 'IPv6'): string | undefined {
  if (typeof type === 'number') {
    return Number.isInteger(type) && type >= 0 && type <= 255 ? undefined : `ICMP type must be a number from 0 to 255 (got ${type})`;
  }
  if (typeof type === 'string') {
    const names = family === 'IPv4' ? ICMPV4_TYPES : ICMPV6_TYPES;
    if (Object.hasOwn(names, type)) return undefined;
    const other = family === 'IPv4' ? ICMPV6_TYPES : ICMPV4_TYPES;
    const hint = Object.hasOwn(other, type) ? ` (${type} is an ${family === 'IPv4' ? 'IPv6' : 'IPv4'} type: set family accordingly)` : '';
    return `${JSON.stringify(type)} is not an ${family} ICMP type name${hint}; use a number 0-255 or one of ${Object.keys(names).join(', ')}`;
  }
  return 'ICMP type must be a number from 0 to 255 or an ICMP type name';
}
