// The cluster cache against the lab's real API server (in-process, on a temp unix socket): no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startTestServer } from '../../test/kit/apiserver-fixtures.ts';
import { ClusterCache } from './cluster-cache.ts';
import type { AgentConfig } from './config.ts';

async function withCache(fn: (cache: ClusterCache, createPod: (name: string) => Promise<void>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'palisade-cluster-cache-'));
  const socket = join(dir, 'api.sock');
  const server = await startTestServer({ socketPath: socket }, dir);
  const cfg = {
    node: 'node-1',
    runDir: dir,
    apiSocket: socket,
    network: { underlayIp: '172.31.0.2', underlayIf: 'eth0', underlayCIDR: '172.31.0.0/24', podCIDR: '10.244.1.0/24', clusterPodCIDR: '10.244.0.0/16' },
  } as AgentConfig;
  const cache = new ClusterCache({ cfg, log: pino({ level: 'silent' }), localAddress: () => undefined, onChange: () => undefined });
  try {
    await cache.start();
    const createPod = async (name: string): Promise<void> => {
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels: { app: name } }, spec: { nodeName: 'node-1', containers: [{ name: 'c', image: 'x' }] } };
      const r = await server.call('POST', '/api/v1/namespaces/default/pods', pod);
      assert.equal(r.status, 201, JSON.stringify(r.body));
    };
    await fn(cache, createPod);
  } finally {
    await cache.stop();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('waitForPod resolves when the pod\'s watch event arrives, with the pod in the engine', async () => {
  await withCache(async (cache, createPod) => {
    let arrived = false;
    const waiting = cache.waitForPod('default', 'late', 5000).then(() => {
      arrived = true;
      assert.ok(cache.pods.has('default/late'));
      assert.ok(cache.snapshot().endpoint('default/late'), 'the engine has the pod once the waiter resolves');
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(arrived, false, 'nothing resolves before the pod exists');
    await createPod('late');
    await waiting;
    // A pod already known resolves at once.
    await cache.waitForPod('default', 'late', 0);
  });
});

test('waitForPod rejects after its timeout with the message CNI callers see', async () => {
  await withCache(async (cache) => {
    const t0 = Date.now();
    await assert.rejects(cache.waitForPod('default', 'never', 150), { message: 'pod default/never is not known to the API server' });
    assert.ok(Date.now() - t0 >= 140);
  });
});
