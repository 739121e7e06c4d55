/**
 * ICMP type names accepted in `icmps[].fields[].type`, per family, as in
 * Cilium's pkg/policy/api/icmp.go (icmpIpv4TypeNameToCode / icmpIpv6TypeNameToCode).
 */

export const ICMPV4_TYPES: Readonly<Record<string, number>> = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  Redirect: 5,
  Echo: 8,
  EchoRequest: 8,
  RouterAdvertisement: 9,
  RouterSelection: 10,
  TimeExceeded: 11,
  ParameterProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
  Photuris: 40,
  ExtendedEchoRequest: 42,
  ExtendedEchoReply: 43,
};

export const ICMPV6_TYPES: Readonly<Record<string, number>> = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  MulticastListenerQuery: 130,
  MulticastListenerReport: 131,
  MulticastListenerDone: 132,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  RedirectMessage: 137,
  RouterRenumbering: 138,
  ICMPNodeInformationQuery: 139,
  ICMPNodeInformationResponse: 140,
  InverseNeighborDiscoverySolicitation: 141,
  InverseNeighborDiscoveryAdvertisement: 142,
  HomeAgentAddressDiscoveryRequest: 144,
  HomeAgentAddressDiscoveryReply: 145,
  MobilePrefixSolicitation: 146,
  MobilePrefixAdvertisement: 147,
  DuplicateAddressRequestCodeSuffix: 157,
  DuplicateAddressConfirmationCodeSuffix: 158,
  ExtendedEchoRequest: 160,
  ExtendedEchoReply: 161,
};

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
