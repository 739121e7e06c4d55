// The endpoint registry on disk: pods registered at once (one CNI ADD each)
// are all saved, and a fresh registry loads them back. And the registration
// itself: what the CNI plugin sends is what the agent accepts, field for field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { registerEndpoint, type EndpointRegistration } from '../cni/index.ts';
import { WEB_REGISTRATION } from '../../test/kit/cni.ts';
import { EndpointRegistry, Registration } from './endpoint-registry.ts';

test('twenty registrations at once all succeed and are all on disk', async () => {
  const dir = mkdtempSync(`${tmpdir()}/palisade-registry-`);
  try {
    const reg = new EndpointRegistry(`${dir}/endpoints.json`);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        reg.add({ containerId: `c${i}`, namespace: 'x', pod: `p${i}`, ifname: 'eth0', hostIfname: `lxc${i}`, ip: `10.244.1.${i + 2}`, mac: '02:00:00:00:00:01', netns: `/run/netns/p${i}` }),
      ),
    );
    const again = new EndpointRegistry(`${dir}/endpoints.json`);
    await again.load();
    assert.equal(again.all().length, 20);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const plugin = WEB_REGISTRATION;

/** The body the plugin's client POSTs, caught by a unix-socket server that judges it as the agent's API does. */
async function pluginBody(ep: EndpointRegistration): Promise<{ body: unknown; accepted: boolean }> {
  const dir = mkdtempSync(`${tmpdir()}/pl-h4-registration-`);
  let caught: { body: unknown; accepted: boolean } | undefined;
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (d: string) => (text += d));
    req.on('end', () => {
      const body: unknown = JSON.parse(text);
      const accepted = Registration.safeParse(body).success;
      caught = { body, accepted };
      res.writeHead(accepted ? 200 : 400).end(JSON.stringify({ error: 'refused' }));
    });
  });
  try {
    await new Promise<void>((resolve) => server.listen(`${dir}/agent.sock`, resolve));
    await registerEndpoint(`${dir}/agent.sock`, ep, { retryForMs: 0 });
    assert.ok(caught, 'the agent saw no request');
    return caught;
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the CNI plugin's registration request validates on the agent side", async () => {
  const { body, accepted } = await pluginBody(plugin);
  assert.equal(accepted, true);
  assert.deepEqual(Registration.parse(body), plugin);
});

test('optional fields agree: the agent requires exactly the fields the plugin sends, and no others', async () => {
  const { body } = await pluginBody(plugin);
  const sent = Object.keys(body as object).sort();
  const required = Object.keys(Registration.shape)
    .filter((k) => !Registration.shape[k as keyof typeof Registration.shape].safeParse(undefined).success)
    .sort();
  assert.deepEqual(required, sent);
  // Each field the plugin sends is needed: without it the agent refuses the registration.
  for (const k of sent) {
    const without: Record<string, unknown> = { ...(body as object) };
    delete without[k];
    assert.equal(Registration.safeParse(without).success, false, `accepted without ${k}`);
  }
  // Strict both ways: a field the plugin does not send is refused, not dropped.
  assert.equal(Registration.safeParse({ ...(body as object), labels: {} }).success, false);
});
