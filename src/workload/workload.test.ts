// The workloads against real sockets on loopback (port 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type AddressInfo } from 'node:net';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { startHttpEcho, startTcpEcho, startUdpEcho } from './index.ts';

test('http-echo describes the request it got', async () => {
  process.env['POD_NAME'] = 'web-1';
  const server = await startHttpEcho(0, '127.0.0.1');
  try {
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/a/b?c=1`, { method: 'POST', body: 'hello', headers: { 'x-test': 'yes' } });
    const body = (await res.json()) as { method: string; path: string; headers: Record<string, string>; client: { address: string }; pod: string; bodyBytes: number };
    assert.equal(body.method, 'POST');
    assert.equal(body.path, '/a/b?c=1');
    assert.equal(body.headers['x-test'], 'yes');
    assert.equal(body.client.address, '127.0.0.1');
    assert.equal(body.pod, 'web-1');
    assert.equal(body.bodyBytes, 5);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('tcp-echo writes back what it receives', async () => {
  const server = await startTcpEcho(0, '127.0.0.1');
  try {
    const { port } = server.address() as AddressInfo;
    const sock = connect(port, '127.0.0.1');
    sock.end('ping\n');
    const chunks: Buffer[] = [];
    for await (const c of sock) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'ping\n');
  } finally {
    server.close();
  }
});

test('udp-echo sends each datagram back', async () => {
  const server = await startUdpEcho(0, '127.0.0.1');
  const client = createSocket('udp4');
  try {
    const { port } = server.address();
    client.send('datagram', port, '127.0.0.1');
    const [msg] = (await once(client, 'message')) as [Buffer];
    assert.equal(msg.toString(), 'datagram');
  } finally {
    client.close();
    server.close();
  }
});
