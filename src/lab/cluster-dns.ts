/**
 * Cluster DNS: Debian's dnsmasq, run as the kube-dns pod in kube-system
 * behind the kube-dns Service (10.96.0.10), answering
 * `<svc>.<ns>.svc.cluster.local` from files the lab controller keeps current,
 * and forwarding every other name to the lab's upstream DNS on the fabric.
 *
 *   Services ──► controller ──► dns/cluster/services   (A records; dnsmasq re-reads a --hostsdir on change)
 *                          └──► dns/srv.conf           (SRV for named ports; read at start, so a change restarts the pod's dnsmasq)
 *   pods: /etc/netns/<pod netns>/resolv.conf → nameserver 10.96.0.10, search <ns>.svc.cluster.local …, ndots:5
 */
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { Pod, Service } from '../k8s/index.ts';
import { labDir } from './paths.ts';

export const CLUSTER_DOMAIN = 'cluster.local';
export const KUBE_DNS_IP = '10.96.0.10';
export const DNS_POD = { namespace: 'kube-system', name: 'kube-dns' };

export const dnsDir = (lab: string): string => `${labDir(lab)}/dns`;
const hostsDir = (lab: string): string => `${dnsDir(lab)}/cluster`;
const srvFile = (lab: string): string => `${dnsDir(lab)}/srv.conf`;

/** The Service and Pod objects of cluster DNS, created by `lab up`. */
export function clusterDnsObjects(lab: string, upstream: string, node: string): [Service, Pod] {
  const labels = { 'k8s-app': 'kube-dns' };
  const service: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kube-dns', namespace: 'kube-system', labels },
    spec: {
      selector: labels,
      clusterIP: KUBE_DNS_IP,
      ports: [
        { name: 'dns', protocol: 'UDP', port: 53, targetPort: 53 },
        { name: 'dns-tcp', protocol: 'TCP', port: 53, targetPort: 53 },
      ],
    },
  };
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: DNS_POD.name, namespace: DNS_POD.namespace, labels },
    spec: {
      nodeName: node,
      containers: [
        {
          name: 'dnsmasq',
          command: [
            '/usr/sbin/dnsmasq',
            '--keep-in-foreground',
            '--log-facility=-',
            '--user=root',
            '--pid-file=',
            // Naming the interfaces turns off dnsmasq's default "answer local
            // subnets only": the pod's eth0 is a /32, so every client is remote.
            '--interface=eth0',
            '--interface=lo',
            '--no-resolv',
            '--no-hosts',
            `--hostsdir=${hostsDir(lab)}`,
            `--conf-file=${srvFile(lab)}`,
            `--local=/${CLUSTER_DOMAIN}/`,
            `--server=${upstream}`,
            '--cache-size=1000',
            // Each query with its client's address in the container's log, as kube-dns logs show clients.
            '--log-queries',
          ],
          ports: [
            { name: 'dns', containerPort: 53, protocol: 'UDP' },
            { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
          ],
        },
      ],
    },
  };
  return [service, pod];
}

export async function prepareClusterDns(lab: string): Promise<void> {
  await mkdir(hostsDir(lab), { recursive: true });
  await writeFile(`${hostsDir(lab)}/services`, '');
  await writeFile(srvFile(lab), '');
}

export interface DnsRecords {
  hosts: string;
  srv: string;
}

/** A records for every Service with a ClusterIP, SRV for every named port. */
export function renderDnsRecords(services: Iterable<Service>): DnsRecords {
  const hosts: string[] = [];
  const srv: string[] = [];
  for (const s of [...services].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))) {
    const ip = s.spec.clusterIP;
    if (!ip || ip === 'None') continue;
    const fqdn = `${s.metadata.name}.${s.metadata.namespace ?? 'default'}.svc.${CLUSTER_DOMAIN}`;
    hosts.push(`${ip} ${fqdn}`);
    for (const p of s.spec.ports ?? []) {
      if (p.name) srv.push(`srv-host=_${p.name}._${(p.protocol ?? 'TCP').toLowerCase()}.${fqdn},${fqdn},${p.port}`);
    }
  }
  return { hosts: hosts.join('\n') + (hosts.length ? '\n' : ''), srv: srv.join('\n') + (srv.length ? '\n' : '') };
}

/** Writes the records; returns true when the SRV set changed (dnsmasq must restart to see it). */
export async function writeDnsRecords(lab: string, r: DnsRecords): Promise<boolean> {
  const file = `${hostsDir(lab)}/services`;
  const tmp = `${dnsDir(lab)}/services.tmp`;
  await writeFile(tmp, r.hosts);
  await rename(tmp, file); // an atomic swap: dnsmasq never reads half a file
  const oldSrv = await readFile(srvFile(lab), 'utf8').catch(() => '');
  if (oldSrv === r.srv) return false;
  await writeFile(srvFile(lab), r.srv);
  return true;
}

/** ip netns exec bind-mounts /etc/netns/<name>/* over /etc: a pod's own resolv.conf. */
export const podEtcDir = (netns: string): string => `/etc/netns/${netns}`;

/**
 * A pod's /etc overlay: its resolv.conf, and /etc/ssl with a CA bundle that
 * also trusts the lab CA (so curl in a pod verifies ExternalHost certificates).
 */
export async function writePodEtc(netns: string, namespace: string, trustBundle: string): Promise<void> {
  await mkdir(`${podEtcDir(netns)}/ssl/certs`, { recursive: true });
  await copyFile(trustBundle, `${podEtcDir(netns)}/ssl/certs/ca-certificates.crt`).catch(() => undefined);
  await copyFile('/etc/ssl/openssl.cnf', `${podEtcDir(netns)}/ssl/openssl.cnf`).catch(() => undefined);
  await writePodResolvConf(netns, namespace);
}

export async function writePodResolvConf(netns: string, namespace: string): Promise<void> {
  await mkdir(podEtcDir(netns), { recursive: true });
  await writeFile(
    `${podEtcDir(netns)}/resolv.conf`,
    `nameserver ${KUBE_DNS_IP}\nsearch ${namespace}.svc.${CLUSTER_DOMAIN} svc.${CLUSTER_DOMAIN} ${CLUSTER_DOMAIN}\noptions ndots:5\n`,
  );
}

export async function removePodEtc(netns: string): Promise<void> {
  await rm(podEtcDir(netns), { recursive: true, force: true });
}
