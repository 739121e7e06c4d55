/**
 * The node proxy ↔ agent link over a real unix socket (both ends in this
 * process): names on connect, learned addresses answered once programmed,
 * questions answered, flow records queued while no agent listens.
 */
import { test } from 'node:test';
import { within } from '../../test/kit/wait.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { AgentLink, dialProxy, type ProxyLinkHandlers } from './proxy-link.ts';
import { makeFlow, type Flow } from '../flows/index.ts';
import type { NameCacheEntry } from '../fqdn/index.ts';
import type { DnsProxyStats } from '../proxy/dns/index.ts';


const ENTRY: NameCacheEntry = { name: 'a.test.', ip: '198.18.0.5', expiresAt: Date.now() + 60_000, resolvedBy: ['10.244.1.2'] };
const STATS = { queries: 7 } as unknown as DnsProxyStats;

function agentEnd(): { h: ProxyLinkHandlers; got: { names: NameCacheEntry[][]; learned: string[]; flows: Flow[]; lost: number; unlinked: number } } {
  const got = { names: [] as NameCacheEntry[][], learned: [] as string[], flows: [] as Flow[], lost: 0, unlinked: 0 };
  return {
    got,
    h: {
      names: (e) => void got.names.push(e),
      unlinked: () => void got.unlinked++,
      learned: async (pod, name, ips) => void got.learned.push(`${pod} ${name} ${ips.join(',')}`),
      forgotten: () => undefined,
      flow: (f) => void got.flows.push(f),
      lost: (n) => void (got.lost += n),
    },
  };
}

test('names on connect, learned answered, questions answered; records queue while no agent listens; a new agent gets the names again', async () => {
  const dir = mkdtempSync(`${tmpdir()}/pl-link-`);
  const path = `${dir}/proxy.sock`;
  const proxy = new AgentLink(
    () => [ENTRY],
    () => STATS,
  );
  await proxy.serve(path);
  try {
    // No agent yet: a record waits, a learned address is never answered.
    proxy.flow(makeFlow({ verdict: 'FORWARDED', node_name: 'n1' }));
    const a = agentEnd();
    const link = dialProxy(path, a.h, 20);
    await within(3000, 'names', () => a.got.names.length > 0);
    assert.deepEqual(a.got.names[0], [ENTRY]);
    await within(3000, 'queued record', () => a.got.flows.length > 0);
    await proxy.learned('10.244.1.2', 'b.test.', ['198.18.0.6'], 30);
    assert.deepEqual(a.got.learned, ['10.244.1.2 b.test. 198.18.0.6']);
    assert.deepEqual(await link.stats(), STATS);
    assert.deepEqual(await link.names(), [ENTRY]);
    // Twice in a row, and concurrently: each question gets its own answer.
    const [s1, n1] = await Promise.all([link.stats(), link.names()]);
    assert.deepEqual([s1, n1], [STATS, [ENTRY]]);
    link.close();
    await within(3000, 'agent gone', () => !proxy.connected);
    for (let i = 0; i < 3; i++) proxy.flow(makeFlow({ verdict: 'DROPPED', node_name: 'n1' }));
    const b = agentEnd();
    const link2 = dialProxy(path, b.h, 20);
    await within(3000, 'names for the new agent', () => b.got.names.length > 0);
    await within(3000, 'three queued records', () => b.got.flows.length === 3);
    assert.deepEqual(await link2.stats(), STATS);
    link2.close();
  } finally {
    proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
