// The endpoint registry on disk: pods registered at once (one CNI ADD each)
// are all saved, and a fresh registry loads them back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { EndpointRegistry } from './endpoint-registry.ts';

test('twenty registrations at once all succeed and are all on disk', async () => {
  const dir = mkdtempSync(`${tmpdir()}/palisade-registry-`);
  try {
    const reg = new EndpointRegistry(`${dir}/endpoints.json`);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        reg.add({ containerId: `c${i}`, namespace: 'x', pod: `p${i}`, ifname: 'eth0', hostIfname: `lxc${i}`, ip: `10.244.1.${i + 2}` }),
      ),
    );
    const again = new EndpointRegistry(`${dir}/endpoints.json`);
    await again.load();
    assert.equal(again.all().length, 20);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
