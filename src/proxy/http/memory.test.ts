/**
 * Memory budget: 50 MiB up and 50 MiB down through the proxy (chunked both
 * ways). The proxy runs alone in a child process (test-proxy-child.ts) and
 * its RSS must grow by less than the budget — a proxy that buffered a body
 * whole would add at least 50 MiB. (Measured in-process, the client and
 * server's own garbage would swamp the figure.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fork } from 'node:child_process';
import { once } from 'node:events';

const TOTAL = 50 * 1024 * 1024;
const BUDGET = 16 * 1024 * 1024;
const block = Buffer.alloc(64 * 1024, 0x61);

async function pump(w: NodeJS.WritableStream, total: number): Promise<void> {
  for (let sent = 0; sent < total; sent += block.length) {
    if (!w.write(block)) await new Promise((r) => w.once('drain', r));
  }
}

test(`50 MiB upload and download stream through with RSS growth under ${BUDGET / 1048576} MiB`, async () => {
  const server = http.createServer((req, res) => {
    if (req.method === 'POST') {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => res.end(String(n)));
      return;
    }
    res.writeHead(200, { 'transfer-encoding': 'chunked' });
    pump(res, TOTAL).then(() => res.end(), () => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const child = fork(new URL('../../../test/kit/http-proxy-child.ts', import.meta.url), [String((server.address() as AddressInfo).port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, '--expose-gc'] });
  const [hello] = (await once(child, 'message')) as [{ port: number }];
  const px = { port: hello.port };
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const uploaded = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: px.port, method: 'POST', path: '/public/up', agent, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let t = '';
        res.on('data', (d: Buffer) => (t += d));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      pump(req, TOTAL).then(() => req.end(), reject);
    });
    assert.equal(Number(uploaded), TOTAL);
    const downloaded = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: px.port, path: '/public/down', agent }, (res) => {
          let n = 0;
          res.on('data', (d: Buffer) => (n += d.length));
          res.on('end', () => resolve(n));
        })
        .on('error', reject);
    });
    assert.equal(downloaded, TOTAL);
    agent.destroy();
    child.send('report');
    const [{ base, peak }] = (await once(child, 'message')) as [{ base: number; peak: number }];
    const grown = peak - base;
    assert.ok(grown < BUDGET, `proxy RSS grew ${(grown / 1048576).toFixed(1)} MiB (base ${(base / 1048576).toFixed(1)} MiB)`);
  } finally {
    if (child.connected) child.disconnect();
    child.kill();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
