/**
 * The lab's outside world: hosts beyond the cluster that pods reach by name,
 * over HTTP and HTTPS, as they would reach api.github.com — without the lab
 * ever sending a packet off the machine.
 *
 *   ExternalHost object (lab.palisade.dev/v1, cluster-scoped)
 *     { metadata.name, spec.names: [api.github.com, …], spec.ports: [80, 443], spec.addresses?: [1.1.1.1, …] }
 *        │  controller: addExternalHost / removeExternalHost
 *        ▼
 *   pl-<lab>-ext-<name>  ── veth x-<name> ── br0 in pl-<lab>-fabric (198.18.0.1/16 gateway)
 *     eth0 198.18.a.b/16 (hash of the name, first free; world/hosts.json)
 *       or eth0 1.1.1.1/32 … (spec.addresses; the fabric routes each to it, and
 *       has no route anywhere else: such an address exists only inside the lab)
 *     http-echo on each plain port, https-echo on 443   (replies name the host)
 *        │
 *        ├─ names ──► world/dns-hosts/<name> ──inotify──► dnsmasq in the fabric,
 *        │            172.31.0.1:53 UDP+TCP, NXDOMAIN for the rest, never forwards
 *        │            ◄── cluster DNS forwards here
 *        │
 *        └─ 443 certificate ◄── lab CA (world/ca: ECDSA P-256, 10 years)
 *                                 └─► trust bundle = system roots + lab CA
 *                                     (world/ca-bundle.pem, for lab pods)
 *
 * Caveats: one process (the lab controller) owns a lab's world — changes are
 * serialised inside it, not between processes. Answers carry a 5 s TTL, so
 * caches downstream forget a removed host soon, not at once. `lab down` needs
 * nothing of this module: the namespaces share the lab's `pl-<lab>-` prefix
 * and the files live under /run/palisade/<lab>/.
 */
export {
  addExternalHost,
  removeExternalHost,
  listExternalHosts,
  ensureWorldGateway,
  allocateWorldIp,
  fabricPortName,
  type ExternalHostHandle,
} from './external-hosts.ts';
export { startUpstreamDns, stopUpstreamDns } from './upstream-dns.ts';
export { ensureLabCa, issueServerCert, trustBundle, writeTrustBundle } from './lab-ca.ts';
export { labCaDir, trustBundlePath, externalHostNetns } from './world-paths.ts';
