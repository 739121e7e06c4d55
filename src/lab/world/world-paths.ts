/**
 * Where the lab's outside world lives: every name derives from the lab's,
 * like the rest of the lab (src/lab/paths.ts).
 *
 *   pl-<lab>-ext-<host>                   one network namespace per ExternalHost
 *   /run/palisade/<lab>/world/hosts.json   the hosts: address, namespace, pids
 *   /run/palisade/<lab>/world/dns-hosts/   one hosts file per ExternalHost (dnsmasq --hostsdir)
 *   /run/palisade/<lab>/world/ca/          the lab CA (ca.pem, ca-key.pem)
 *   /run/palisade/<lab>/world/ca-bundle.pem  system roots + lab CA, for lab clients
 *   /run/palisade/<lab>/world/certs/<host>/  each host's server certificate and key
 */
import { labDir, labNetnsPrefix } from '../paths.ts';

export const worldDir = (lab: string): string => `${labDir(lab)}/world`;
export const hostsJsonPath = (lab: string): string => `${worldDir(lab)}/hosts.json`;
export const dnsHostsDir = (lab: string): string => `${worldDir(lab)}/dns-hosts`;
export const labCaDir = (lab: string): string => `${worldDir(lab)}/ca`;
export const trustBundlePath = (lab: string): string => `${worldDir(lab)}/ca-bundle.pem`;
export const hostCertDir = (lab: string, host: string): string => `${worldDir(lab)}/certs/${host}`;
export const externalHostNetns = (lab: string, host: string): string => `${labNetnsPrefix(lab)}ext-${host}`;

/** The fabric's address on the world side: every ExternalHost's default gateway. */
export const WORLD_GATEWAY = '198.18.0.1';
export const WORLD_PREFIX = 16;

/**
 * ExternalHost names become namespace, file and process names: a DNS label
 * (RFC 1123), like a Kubernetes object name without dots.
 */
export const HOST_NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A DNS name an ExternalHost answers to (RFC 1123 labels, at most 253 characters, no wildcard). */
export const DNS_NAME_RE = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;
