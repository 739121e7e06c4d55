/**
 * The node's transparent HTTP proxy, as the node proxy process runs it:
 *
 *   datapath (TPROXY) ──► listener :15001 ──► admission (per pod, in all) ──► handleConnection (src/proxy/http)
 *        request ──► policy snapshot verdict (same engine as everything else) ──► allowed? forward : 403
 *        upstream ──► transparent connect from the client pod's own address
 *        events ──► L7 HTTP flow records (and metrics through the flow store)
 *
 * While the proxy is down nothing listens on the port and TPROXY drops the
 * steered packets: the datapath fails closed, and resumes by itself when the
 * listener is back.
 *
 * One pod must not take the process's descriptors (the DNS proxy lives in the
 * same process): connections are capped per source pod, and in all at a
 * quarter of the descriptor limit — a connection holds two (client and
 * upstream), so half of them always stay for everything else.
 */
import { readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { connectTransparent, listenTransparent } from '../proxy/transparent/index.ts';
import { ConnectionAdmission, DEFAULT_ADMISSION, handleConnection, type HttpProxyEvent } from '../proxy/http/index.ts';
import { makeFlow, type FlowStore } from '../flows/index.ts';
import type { RuleOrigin } from '../policy/index.ts';
import { endpointOf, policies, type FlowContext } from './flow-events.ts';

export const HTTP_PROXY_PORT = 15001;

/** The agent configuration's `httpProxy` (absent fields: DEFAULT_ADMISSION). */
export interface HttpProxySettings {
  maxConnectionsPerPod?: number | undefined;
  maxConnections?: number | undefined;
}

/** The listening proxy, and the admission whose counters say what it refused. */
export type HttpProxyServer = Server & { readonly admission: ConnectionAdmission };

export async function startHttpProxy(ctx: FlowContext, flows: FlowStore, settings: HttpProxySettings = {}, port = HTTP_PROXY_PORT): Promise<HttpProxyServer> {
  const admission = new ConnectionAdmission({
    maxConnectionsPerSource: settings.maxConnectionsPerPod ?? DEFAULT_ADMISSION.maxConnectionsPerSource,
    maxConnections: Math.max(1, Math.min(settings.maxConnections ?? DEFAULT_ADMISSION.maxConnections, Math.floor(descriptorLimit() / 4))),
  });
  const server = await listenTransparent(port, (client: Socket) => {
    const clientIp = (client.remoteAddress ?? '').replace(/^::ffff:/, '');
    const original = { ip: (client.localAddress ?? '').replace(/^::ffff:/, ''), port: client.localPort ?? 0 };
    const peer = { ip: clientIp, port: client.remotePort ?? 0 };
    handleConnection(client, {
      client: peer,
      original,
      decide(req) {
        const v = ctx.snapshot().verdict({ src: { ip: clientIp }, dst: { ip: original.ip }, protocol: 'TCP', port: original.port, http: req }, ctx.fqdns);
        const side = v.ingress?.l7 ? v.ingress : v.egress;
        return { allowed: v.allowed, by: { direction: side === v.ingress ? 'ingress' : 'egress', allowedBy: side?.allowedBy, l7From: side?.l7?.from } };
      },
      connectUpstream: () => connectTransparent({ ip: clientIp }, original),
      onEvent: (e) => flows.addFlow(httpFlow(ctx, peer, original, e)),
    }, admission);
  });
  return Object.assign(server, { admission });
}

/** This process's soft RLIMIT_NOFILE; Infinity when unlimited or unreadable. */
function descriptorLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m?.[1] !== undefined && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
  } catch {
    return Infinity;
  }
}

function httpFlow(ctx: FlowContext, client: { ip: string; port: number }, original: { ip: string; port: number }, e: HttpProxyEvent) {
  const snap = ctx.snapshot();
  const by = e.by as { direction?: 'ingress' | 'egress'; allowedBy?: RuleOrigin[]; l7From?: RuleOrigin[] } | undefined;
  const ingress = (by?.direction ?? 'ingress') === 'ingress';
  const denied = e.verdict === 'DROPPED';
  const who = policies((denied ? by?.l7From : by?.allowedBy) ?? []);
  return makeFlow({
    verdict: e.verdict,
    node_name: ctx.node,
    IP: { source: client.ip, destination: original.ip, ipVersion: 'IPv4' },
    l4: { TCP: { source_port: client.port, destination_port: original.port } },
    source: endpointOf(ctx, snap, client.ip),
    destination: endpointOf(ctx, snap, original.ip),
    Type: 'L7',
    traffic_direction: ingress ? 'INGRESS' : 'EGRESS',
    l7: {
      type: e.kind === 'request' ? 'REQUEST' : 'RESPONSE',
      ...(e.latencyNs !== undefined ? { latency_ns: String(e.latencyNs) } : {}),
      http: {
        ...(e.code !== undefined ? { code: e.code } : {}),
        method: e.method,
        url: e.url,
        protocol: e.protocol,
        ...(e.headers ? { headers: e.headers.map(([key, value]) => ({ key, value })) } : {}),
      },
    },
    ...(who.length ? (denied ? (ingress ? { ingress_denied_by: who } : { egress_denied_by: who }) : ingress ? { ingress_allowed_by: who } : { egress_allowed_by: who }) : {}),
  });
}
