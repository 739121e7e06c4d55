/**
 * A synthetic cluster's flows, as a Hubble Relay would stream them: 200
 * namespaces of 10 pods each (web ×4, api ×3, db ×1, worker ×2), spread over
 * nodes, plus CoreDNS in kube-system and a few hosts outside. Each node's
 * FlowSource emits a realistic mix at its share of the rate:
 *
 *   45 % forwarded TCP (web→api, api→db, worker→api, web→api of the next namespace)
 *   10 % policy verdicts (allowed, naming the policy)
 *   10 % drops (worker→db POLICY_DENIED naming db-from-api; some egress to the world)
 *   15 % DNS (queries to CoreDNS: NOERROR, some NXDOMAIN and REFUSED)
 *   15 % HTTP (request/response pairs: 200, 404, 403 denied by policy; latencies)
 *    5 % to the world by FQDN (api.github.com, …)
 *
 * Flows are drawn from a pool of pre-built templates (per node) and stamped
 * with a fresh time and uuid as they are sent, so generating costs little next
 * to the gRPC encoding the relay does anyway.
 */
import { performance } from 'node:perf_hooks';
import { makeFlow, parseFlowsQuery, type Endpoint, type Flow, type FlowSource } from '../../src/flows/index.ts';

type FlowInit = Parameters<typeof makeFlow>[0];

interface Pod {
  namespace: string;
  app: string;
  name: string;
  ip: string;
  node: string;
  endpoint: Endpoint;
}

export interface SyntheticCluster {
  namespaces: string[];
  nodes: string[];
  pods: Pod[];
  /** "<namespace>/<app>" of every pod workload, CoreDNS included. */
  workloads: string[];
}

const APPS: readonly [string, number][] = [['web', 4], ['api', 3], ['db', 1], ['worker', 2]];
const WORLD = [
  { name: 'api.github.com', ip: '140.82.112.6' },
  { name: 'registry.npmjs.org', ip: '104.16.24.35' },
  { name: 's3.amazonaws.com', ip: '52.216.20.3' },
];

/** A small deterministic PRNG: the same cluster and mix every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HASH = 'bcdfghjklmnpqrstvwxz2456789';
function podSuffix(r: () => number): string {
  let s = '';
  for (let i = 0; i < 10; i++) s += HASH[Math.floor(r() * HASH.length)];
  return `${s.slice(0, 5)}c9d-${s.slice(5)}`;
}

export function syntheticCluster(opts: { namespaces: number; podsPerNamespace: 10; nodes: number }): SyntheticCluster {
  const r = rng(1);
  const nodes = Array.from({ length: opts.nodes }, (_, i) => `node-${i + 1}`);
  const namespaces: string[] = [];
  const pods: Pod[] = [];
  const workloads: string[] = [];
  let podIndex = 0;
  const identities = new Map<string, number>();
  const add = (namespace: string, app: string): void => {
    const id = `${namespace}/${app}`;
    if (!identities.has(id)) {
      identities.set(id, 10_000 + identities.size);
      workloads.push(id);
    }
    const i = podIndex++;
    const node = nodes[i % nodes.length] as string;
    const name = `${app}-${podSuffix(r)}`;
    pods.push({
      namespace,
      app,
      name,
      node,
      ip: `10.${100 + (i % nodes.length)}.${i >> 8}.${i & 255}`,
      endpoint: {
        ID: 100 + i,
        identity: identities.get(id) as number,
        namespace,
        pod_name: name,
        labels: [`k8s:app=${app}`, `k8s:io.kubernetes.pod.namespace=${namespace}`, 'k8s:io.cilium.k8s.policy.serviceaccount=default', 'k8s:io.cilium.k8s.policy.cluster=default'],
        workloads: [{ name: app, kind: 'Deployment' }],
      },
    });
  };
  for (let n = 0; n < opts.namespaces; n++) {
    const ns = `team-${String(n).padStart(3, '0')}`;
    namespaces.push(ns);
    for (const [app, count] of APPS) for (let k = 0; k < count; k++) add(ns, app);
  }
  add('kube-system', 'coredns');
  add('kube-system', 'coredns');
  return { namespaces, nodes, pods, workloads };
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

function worldEndpoint(): Endpoint {
  return { identity: 2, labels: ['reserved:world'] };
}

/** One node's template pool: every kind in the mix, endpoints as the node would see them. */
function templates(cluster: SyntheticCluster, node: string, size: number, seed: number): FlowInit[] {
  const r = rng(seed);
  const byNsApp = new Map<string, Pod[]>();
  for (const p of cluster.pods) {
    const k = `${p.namespace}/${p.app}`;
    const list = byNsApp.get(k) ?? [];
    list.push(p);
    byNsApp.set(k, list);
  }
  const mine = cluster.pods.filter((p) => p.node === node && p.namespace !== 'kube-system');
  const inNs = (ns: string, app: string): Pod => pick(r, byNsApp.get(`${ns}/${app}`) as Pod[]);
  const nextNs = (ns: string): string => cluster.namespaces[(cluster.namespaces.indexOf(ns) + 1) % cluster.namespaces.length] as string;
  const coredns = byNsApp.get('kube-system/coredns') as Pod[];
  const tcp = (src: Pod, dst: { ip: string; endpoint: Endpoint }, port: number, extra: Partial<Flow> = {}): FlowInit => ({
    verdict: 'FORWARDED',
    node_name: node,
    IP: { source: src.ip, destination: dst.ip, ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 32768 + Math.floor(r() * 28000), destination_port: port, flags: pick(r, [{ SYN: true }, { ACK: true }, { ACK: true, PSH: true }, { FIN: true, ACK: true }]) } },
    source: src.endpoint,
    destination: dst.endpoint,
    traffic_direction: 'EGRESS',
    trace_observation_point: 'to-endpoint',
    ...extra,
  });
  const policy = (name: string, namespace: string) => ({ name, namespace, kind: 'CiliumNetworkPolicy', labels: [`k8s:io.cilium.k8s.policy.name=${name}`, `k8s:io.cilium.k8s.policy.namespace=${namespace}`], revision: '7' });

  const out: FlowInit[] = [];
  while (out.length < size) {
    const src = pick(r, mine);
    const ns = src.namespace;
    const x = r();
    if (x < 0.45) {
      // Forwarded TCP along the app's call graph.
      const [dstApp, port, dstNs] = src.app === 'web' ? (r() < 0.2 ? ['api', 8080, nextNs(ns)] : ['api', 8080, ns]) : src.app === 'api' ? ['db', 5432, ns] : src.app === 'worker' ? ['api', 8080, ns] : ['api', 8080, ns];
      out.push(tcp(src, inNs(dstNs as string, dstApp as string), port as number, { is_reply: r() < 0.4 }));
    } else if (x < 0.55) {
      const dst = inNs(ns, src.app === 'api' ? 'db' : 'api');
      out.push(tcp(src, dst, dst.app === 'db' ? 5432 : 8080, {
        event_type: { type: 9, sub_type: 0 },
        traffic_direction: 'INGRESS',
        policy_match_type: 1,
        ingress_allowed_by: [policy(`${dst.app}-from-${dst.app === 'db' ? 'api' : 'web'}`, ns)],
      }));
    } else if (x < 0.65) {
      if (r() < 0.8) {
        const dst = inNs(ns, 'db');
        out.push(tcp(src, dst, 5432, { verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', traffic_direction: 'INGRESS', ingress_denied_by: [policy('db-from-api', ns)], l4: { TCP: { source_port: 40000 + Math.floor(r() * 20000), destination_port: 5432, flags: { SYN: true } } } }));
      } else {
        const w = pick(r, WORLD);
        out.push(tcp(src, { ip: w.ip, endpoint: worldEndpoint() }, 443, { verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', destination_names: [w.name], egress_denied_by: [policy('egress-allowlist', ns)], l4: { TCP: { source_port: 40000 + Math.floor(r() * 20000), destination_port: 443, flags: { SYN: true } } } }));
      }
    } else if (x < 0.8) {
      const dns = pick(r, coredns);
      const external = r() < 0.3;
      const name = external ? `${pick(r, WORLD).name}.` : r() < 0.1 ? `nope-${Math.floor(r() * 50)}.${ns}.svc.cluster.local.` : `${pick(r, ['api', 'db', 'web'])}.${ns}.svc.cluster.local.`;
      const rcode = name.startsWith('nope-') ? 3 : r() < 0.03 ? 5 : 0;
      const response = r() < 0.5;
      out.push({
        verdict: 'FORWARDED',
        node_name: node,
        IP: response ? { source: dns.ip, destination: src.ip, ipVersion: 'IPv4' } : { source: src.ip, destination: dns.ip, ipVersion: 'IPv4' },
        l4: { UDP: response ? { source_port: 53, destination_port: 30000 + Math.floor(r() * 30000) } : { source_port: 30000 + Math.floor(r() * 30000), destination_port: 53 } },
        source: response ? dns.endpoint : src.endpoint,
        destination: response ? src.endpoint : dns.endpoint,
        traffic_direction: 'EGRESS',
        is_reply: response,
        l7: {
          type: response ? 'RESPONSE' : 'REQUEST',
          ...(response ? { latency_ns: String(200_000 + Math.floor(r() * 3_000_000)) } : {}),
          dns: {
            query: name,
            qtypes: ['A'],
            observation_source: 'proxy',
            ...(response ? { rcode, rrtypes: rcode === 0 ? ['A'] : [], ips: rcode === 0 ? [external ? (WORLD.find((w) => `${w.name}.` === name)?.ip ?? '1.2.3.4') : inNs(ns, 'api').ip] : [], ttl: 30 } : {}),
          },
        },
      });
    } else if (x < 0.95) {
      const dstNs = r() < 0.2 ? nextNs(ns) : ns;
      const dst = inNs(dstNs, 'api');
      const method = pick(r, ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE']);
      const path = pick(r, ['/v1/items', '/v1/items/42', '/v1/orders', '/healthz', '/admin/config']);
      const code = path.startsWith('/admin') ? 403 : r() < 0.05 ? 404 : r() < 0.02 ? 500 : 200;
      const response = r() < 0.5;
      const denied = code === 403;
      out.push({
        verdict: denied ? 'DROPPED' : 'FORWARDED',
        node_name: node,
        IP: response ? { source: dst.ip, destination: src.ip, ipVersion: 'IPv4' } : { source: src.ip, destination: dst.ip, ipVersion: 'IPv4' },
        l4: { TCP: response ? { source_port: 8080, destination_port: 40000 + Math.floor(r() * 20000) } : { source_port: 40000 + Math.floor(r() * 20000), destination_port: 8080 } },
        source: response ? dst.endpoint : src.endpoint,
        destination: response ? src.endpoint : dst.endpoint,
        traffic_direction: 'INGRESS',
        is_reply: response,
        ...(denied ? { ingress_denied_by: [policy('api-l7', dstNs)] } : { ingress_allowed_by: [policy('api-l7', dstNs)] }),
        l7: {
          type: response ? 'RESPONSE' : 'REQUEST',
          ...(response ? { latency_ns: String(Math.floor(1_000_000 * (0.5 + 40 * r() ** 3))) } : {}),
          http: { method, url: `http://api.${dstNs}:8080${path}`, protocol: 'HTTP/1.1', ...(response ? { code } : {}) },
        },
      });
    } else {
      const w = pick(r, WORLD);
      out.push(tcp(src, { ip: w.ip, endpoint: worldEndpoint() }, 443, { destination_names: [w.name] }));
    }
  }
  return out;
}

export interface SyntheticFeed {
  sources: FlowSource[];
  /** Distinct flows handed to the relay since the start (all nodes; a flow sent to two followers counts once). */
  readonly sent: number;
  /** Follow streams open now (all nodes): the UI server should hold one per node. */
  readonly followers: number;
}

/**
 * One FlowSource per node. Each node's flows exist at `rate / nodes` per
 * second on one clock, and every follow stream gets all of them from when it
 * opened, as a relay's followers do. A stream that falls behind by more than a
 * second forgets the debt: the achieved rate is what `sent` shows, not what was asked.
 */
export function syntheticFeed(cluster: SyntheticCluster, rate: number): SyntheticFeed {
  let sent = 0;
  let followers = 0;
  const started = performance.now();
  const perNode = rate / cluster.nodes.length;
  const sources = cluster.nodes.map((node, i): FlowSource => {
    const pool = templates(cluster, node, 8192, 100 + i);
    let next = 0;
    const one = (time?: string): ReturnType<typeof makeFlow> => {
      const init = pool[next++ & 8191] as FlowInit;
      return makeFlow(time === undefined ? init : { ...init, time });
    };
    /** How many of this node's flows exist by now; `produced`: how many any stream has sent. */
    const due = (): number => Math.floor(((performance.now() - started) / 1000) * perNode);
    let produced = due();
    return {
      node,
      async *fetch(query: string, signal: AbortSignal) {
        const q = parseFlowsQuery(new URLSearchParams(query));
        if (q.follow !== true) {
          // History: the last N (at most a ring's worth), spread over the last two seconds.
          const n = Math.min(q.last ?? q.first ?? 0, 4095);
          const now = Date.now();
          for (let k = 0; k < n; k++) {
            const f = one(new Date(now - 2000 + (2000 * k) / Math.max(1, n)).toISOString());
            yield { flow: f, node_name: node, time: f.time };
          }
          return;
        }
        followers++;
        try {
          let cursor = due();
          while (!signal.aborted) {
            const target = due();
            if (target - cursor > perNode) cursor = target - Math.floor(perNode / 10);
            if (target <= cursor) {
              await new Promise((res) => setTimeout(res, 5));
              continue;
            }
            for (; cursor < target && !signal.aborted; cursor++) {
              const f = one();
              if (cursor >= produced) {
                produced = cursor + 1;
                sent++;
              }
              yield { flow: f, node_name: node, time: f.time };
            }
          }
        } finally {
          followers--;
        }
      },
      async status() {
        return { node_name: node, num_flows: 4095, max_flows: 4095, seen_flows: sent, uptime_ns: Math.round((performance.now() - started) * 1e6), lost: {} };
      },
    };
  });
  return {
    sources,
    get sent() {
      return sent;
    },
    get followers() {
      return followers;
    },
  };
}
