/** lab.palisade.dev/v1 kinds: ExternalHost, a host outside the cluster that the lab builds. */
import * as z from 'zod';
import type { ExternalHost } from '../objects.ts';
import { cidrContains, ipFamily, parseCIDR, type ParsedCIDR } from './checks-cidr.ts';
import { dns1123LabelError, quote } from './checks-names.ts';
import { matchNameError } from './checks-dns.ts';
import { portNumberField } from './checks-ports.ts';
import { objectMeta } from './schema-meta.ts';
import { refuseNamespace } from './schema-core.ts';
import { apiVersionField, checkedString, list, STATUS_REFUSED, strictObject, withChecks } from './schema-kit.ts';

/**
 * The ranges every lab routes inside its cluster: part of this API, since an
 * ExternalHost may not take an address in them (src/lab's address plan is built on these).
 */
export const LAB_RANGES = {
  underlayCIDR: '172.31.0.0/24',
  clusterPodCIDR: '10.244.0.0/16',
  serviceCIDR: '10.96.0.0/16',
  worldCIDR: '198.18.0.0/16',
} as const;

/** The TCP ports an ExternalHost serves when spec.ports is left out; 443 speaks TLS. */
export const EXTERNAL_HOST_DEFAULT_PORTS: readonly number[] = [80, 443];

/**
 * Where an ExternalHost's own address may not be: IPv4's blocks that are not
 * unicast host addresses, and the lab's ranges, which are routed inside the
 * cluster (a host there would shadow pods, Services or nodes).
 */
const NOT_FOR_HOSTS: readonly { cidr: ParsedCIDR; text: string; why: string }[] = [
  ['0.0.0.0/8', '"this network" (RFC 1122), not a host address'],
  ['127.0.0.0/8', 'loopback'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved (255.255.255.255 is broadcast)'],
  [LAB_RANGES.clusterPodCIDR, "the lab's pod range"],
  [LAB_RANGES.serviceCIDR, "the lab's Service range"],
  [LAB_RANGES.underlayCIDR, "the lab's node network"],
  [LAB_RANGES.worldCIDR, 'the range the lab allocates ExternalHost addresses from itself (leave spec.addresses out to get one)'],
].map(([text, why]) => ({ cidr: parseCIDR(text!, false) as ParsedCIDR, text: text!, why: why! }));

/** Why `s` cannot be an ExternalHost address, or undefined when it can (an IPv4 unicast address outside the lab's ranges). */
export function externalAddressError(s: string): string | undefined {
  if (ipFamily(s) !== 4) return `${quote(s)} is not an IPv4 address (write it like 1.1.1.1)`;
  const address: ParsedCIDR = { family: 4, address: s, bits: 32 };
  const range = NOT_FOR_HOSTS.find((r) => cidrContains(r.cidr, address, false));
  if (range) return `${s} is in ${range.text}, ${range.why}: an ExternalHost needs an IPv4 unicast address outside the lab's own ranges`;
  return undefined;
}

const dnsName = checkedString(matchNameError);

export const externalHostSchema: z.ZodType<ExternalHost> = withChecks(
  strictObject(
    {
      apiVersion: apiVersionField('lab.palisade.dev/v1', 'ExternalHost'),
      kind: z.literal('ExternalHost'),
      // The name becomes part of a network namespace name: a DNS label.
      metadata: objectMeta(dns1123LabelError),
      spec: withChecks(
        strictObject(
          {
            names: z.array(dnsName).min(1, { error: 'an ExternalHost needs at least one DNS name in spec.names' }),
            ports: z.array(portNumberField(1)).optional(),
            // Addresses of the outside world it answers on (e.g. 1.1.1.1); left out, the lab picks one in 198.18.0.0/16.
            addresses: z.array(checkedString(externalAddressError)).min(1, { error: 'spec.addresses is empty: leave it out for an address the lab picks' }).optional(),
          },
          { missing: 'required field is missing: an ExternalHost needs spec.names' },
        ),
        (spec, report) => {
          const first = new Map<unknown, number>();
          list(spec['addresses']).forEach((a, i) => {
            const seen = first.get(a);
            if (seen === undefined) first.set(a, i);
            else report(['addresses', i], `${String(a)} is listed twice (also spec.addresses[${seen}])`);
          });
        },
      ),
    },
    { refused: { status: STATUS_REFUSED } },
  ),
  (h, report) => refuseNamespace('ExternalHost', h, report),
);
