/**
 * CNI result types (spec 1.0.0, "Section 5: Result Types") and the older
 * 0.3.x/0.4.0 shape we also speak.
 *
 * Example 1.0.0 ADD result of this plugin:
 *   {"cniVersion":"1.0.0",
 *    "interfaces":[{"name":"lxc1a2b3c4d5e6f","mac":"…"},{"name":"eth0","mac":"…","sandbox":"/run/netns/pl-lab-pod-default-web"}],
 *    "ips":[{"address":"10.244.1.7/24","gateway":"10.244.1.1","interface":1}],
 *    "routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"}],
 *    "dns":{}}
 */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: CniVersion = '1.0.0';

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** CHECK appeared in spec 0.4.0; older configurations cannot ask for it. */
export function versionHasCheck(v: CniVersion): boolean {
  return v === '0.4.0' || v === '1.0.0';
}

export interface CniInterface {
  name: string;
  mac?: string;
  /** "container/namespace-based environments should return the full filesystem path to the network namespace" */
  sandbox?: string;
}

export interface CniIpConfig {
  /** IP and prefix in CIDR notation. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** 0.3.0–0.4.0: each ip also says its family ("version": "4" | "6"); 1.0.0 dropped the field. */
export interface CniResultV04 extends Omit<CniResult, 'ips'> {
  ips?: (CniIpConfig & { version: '4' | '6' })[];
}

export interface VersionResult {
  cniVersion: string;
  supportedVersions: readonly string[];
}

/** The result in the version the network config asked for. */
export function resultForVersion(result: CniResult, version: CniVersion): CniResult | CniResultV04 {
  if (version === '1.0.0') return { ...result, cniVersion: version };
  return {
    ...result,
    cniVersion: version,
    ips: result.ips?.map((ip) => ({ ...ip, version: ip.address.includes(':') ? '6' : '4' })),
  };
}
