// https-echo against a real TLS server on loopback (port 0), with a lab-CA certificate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { ensureLabCa, issueServerCert } from '../lab/index.ts';
import { startHttpsEcho } from './https-echo.ts';

test('https-echo answers the http-echo JSON over TLS the lab CA verifies; no TLS 1.1', async () => {
  const dir = mkdtempSync(`${tmpdir()}/palisade-https-echo-`);
  process.env['POD_NAME'] = 'github';
  const ca = await ensureLabCa(dir, 'wtest');
  const server = await startHttpsEcho(0, await issueServerCert(ca, ['api.github.com'], ['127.0.0.1']), '127.0.0.1');
  try {
    const { port } = server.address() as AddressInfo;
    const req = request({ host: '127.0.0.1', port, path: '/repos?x=1', method: 'POST', servername: 'api.github.com', ca: ca.certPem });
    req.end('hello');
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { method: string; path: string; pod: string; bodyBytes: number; client: { address: string } };
    assert.equal(res.statusCode, 200);
    assert.deepEqual([body.method, body.path, body.pod, body.bodyBytes, body.client.address], ['POST', '/repos?x=1', 'github', 5, '127.0.0.1']);

    const old = connect({ host: '127.0.0.1', port, servername: 'api.github.com', ca: ca.certPem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
    const [err] = (await once(old, 'error')) as [Error];
    assert.match(err.message, /version|protocol|alert/i);
  } finally {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
