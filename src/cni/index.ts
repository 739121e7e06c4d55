/**
 * Palisade's CNI plugin: how a pod gets its network (spec 1.0.0; 0.3.x and
 * 0.4.0 configs are answered in their own result shape).
 *
 *   runtime (lab controller / kubelet+containerd), inside the node's netns
 *     │ env CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH
 *     │ stdin network config {cniVersion, name, type, agentSocket?, ipam{type,…}}
 *     ▼
 *   main.ts ─► config.ts (parse + validate; errors name the field)
 *     │
 *     ├─ ADD   ipam.ts: exec <CNI_PATH>/<ipam.type> ADD ─► 10.244.1.7/24
 *     │        datapath/pod-wiring.ts wirePod: veth lxc… ⇄ eth0, /32 + routes
 *     │        agent-client.ts POST /v1/endpoints (unix socket) ─► 200 = policy programmed
 *     │        stdout: result {interfaces, ips, routes, dns}
 *     │        (any failure: deregister, unwire, IPAM DEL, then the error)
 *     ├─ DEL   DELETE /v1/endpoints/<id> (best effort) ─► unwirePod ─► IPAM DEL
 *     ├─ CHECK prevResult ─► IPAM CHECK ─► checkPod (veth up, address, routes, MACs)
 *     └─ VERSION  {cniVersion, supportedVersions}
 *
 *   errors: stdout {cniVersion, code, msg, details}, exit 1 (errors.ts)
 *
 * Caveats: IPv4 only (the first IPv4 of the IPAM result is used); CNI_NETNS
 * must be a named namespace (/run/netns/<name>), because `ip -n` needs a name;
 * CHECK does not ask the agent whether it still knows the endpoint.
 */
export * from './types.ts';
export { EndpointRegistration } from './registration.ts';
export { registerEndpoint } from './agent-client.ts';
export { hostIfname } from './pod-wiring.ts';
