/**
 * Test support: a small cluster (two namespaces, five pods) and a helper that
 * loads policies written as YAML and asks for verdicts. Objects are parsed
 * with `yaml` and cast, not validated — the tests here are about semantics,
 * the validator has its own tests.
 */
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../src/k8s/objects.ts';
import { PolicyEngine } from '../../src/policy/engine.ts';
import type { Protocol } from '../../src/policy/model.ts';
import type { HttpRequest } from '../../src/policy/http-rules.ts';
import type { PeerRef, Verdict } from '../../src/policy/verdict.ts';

export const WORLD_YAML = `
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
---
apiVersion: v1
kind: Pod
metadata: {name: frontend, namespace: prod, labels: {app: frontend}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: backend, namespace: prod, labels: {app: backend}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]}]}
status: {podIP: 10.0.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, ports: [{name: pg, containerPort: 5432}]}]}
status: {podIP: 10.0.1.3}
---
apiVersion: v1
kind: Pod
metadata: {name: tester, namespace: dev, labels: {app: tester}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.2.1}
---
apiVersion: v1
kind: Pod
metadata: {name: backend, namespace: dev, labels: {app: backend}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 9090}]}]}
status: {podIP: 10.0.2.2}
`;

export function objects(yamlText: string): KubeObject[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

export function world(policiesYaml = '', opts: { ipBlockSelectsPods?: boolean } = {}): PolicyEngine {
  const engine = new PolicyEngine(opts);
  engine.batch((e) => {
    for (const o of objects(WORLD_YAML + '\n---\n' + policiesYaml)) e.upsert(o);
  });
  return engine;
}

export interface Ask {
  src: string;
  dst: string;
  port: number;
  proto?: Protocol;
  http?: HttpRequest;
  dns?: string;
  fqdn?: Record<string, string[]>;
}

/** `ns/pod`, an IP, or an entity name. */
export function ref(s: string): PeerRef {
  if (s.includes('/')) return { endpoint: s };
  if (/^[\d.:a-f]+$/.test(s) && (s.includes('.') || s.includes(':'))) return { ip: s };
  return { entity: s as 'world' };
}

export function ask(engine: PolicyEngine, a: Ask): Verdict {
  const byIp = new Map<string, string[]>();
  for (const [name, ips] of Object.entries(a.fqdn ?? {})) for (const ip of ips) byIp.set(ip, [...(byIp.get(ip) ?? []), name]);
  return engine.snapshot().verdict(
    {
      src: ref(a.src),
      dst: ref(a.dst),
      protocol: a.proto ?? 'TCP',
      port: a.port,
      ...(a.http ? { http: a.http } : {}),
      ...(a.dns !== undefined ? { dnsName: a.dns } : {}),
    },
    (ip) => byIp.get(ip) ?? [],
  );
}
