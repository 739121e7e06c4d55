// PolicySnapshot.serviceBackends: which pods back a Service port, and on which target port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { world } from '../../test/kit/policy-world.ts';

const svc = (selector: string, ports: string): string =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: prod}\nspec: {clusterIP: 10.96.0.20, selector: ${selector}, ports: [${ports}]}\n`;

const backends = (yaml: string, port: number): string[] => {
  const snap = world(yaml).snapshot();
  const s = [...snap.services()].find((x) => x.metadata.name === 'web')!;
  return snap.serviceBackends(s, port).map((b) => `${b.endpoint.namespace}/${b.endpoint.name}:${b.targetPort}`);
};

test('a named targetPort resolves per pod; a pod without that name is no backend', () => {
  assert.deepEqual(backends(svc('{app: backend}', '{port: 80, targetPort: http}'), 80), ['prod/backend:8080']);
  assert.deepEqual(backends(svc('{app: db}', '{port: 80, targetPort: http}'), 80), []);
});

test('a numeric or absent targetPort is the same on every pod', () => {
  assert.deepEqual(backends(svc('{app: backend}', '{port: 80, targetPort: 9000}'), 80), ['prod/backend:9000']);
  assert.deepEqual(backends(svc('{app: backend}', '{port: 80}'), 80), ['prod/backend:80']);
});

test('an empty selector selects no pod, as no selector does', () => {
  assert.deepEqual(backends(svc('{}', '{port: 80}'), 80), []);
});
