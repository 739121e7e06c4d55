/**
 * The proxy end to end, against real servers on 127.0.0.1:0: a raw upstream
 * recording every byte it receives, and node:http servers for bodies,
 * 100-continue and upgrades. Policy is the real rule compiler
 * (path "/public.*" unless a test says otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ACCESS_DENIED_BODY, ConnectionAdmission } from './index.ts';
import type { HttpRequest } from '../../policy/index.ts';
import { exchange, rawUpstream, ruleDecider, startProxy, statuses } from '../../../test/kit/http-servers.ts';

const DENIED = 'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 15\r\n\r\nAccess denied\r\n';

test('denied: exact 403, and the upstream is never even connected', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port);
  try {
    const r = await exchange(px.port, 'GET /admin HTTP/1.1\r\nHost: a\r\n\r\n', { until: (t) => t.length >= DENIED.length, ms: 1000 });
    assert.equal(r.text, DENIED);
    assert.equal(ACCESS_DENIED_BODY, 'Access denied\r\n');
    assert.equal(up.connections, 0);
    assert.equal(up.received(), '');
  } finally {
    await px.close();
    await up.close();
  }
});

test('after a 403 the connection stays usable when the denied body came whole with its head', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port);
  try {
    const r = await exchange(px.port, [
      'POST /admin HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nGET /admin',
      'POST /admin HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nGET \r\n6\r\n/admin\r\n0\r\n\r\n',
      'GET /public/ok HTTP/1.1\r\nHost: a\r\n\r\n',
    ], { until: (t) => t.endsWith('ok') });
    assert.deepEqual(statuses(r.text), [403, 403, 200]);
    assert.equal(up.received(), 'GET /public/ok HTTP/1.1\r\nHost: a\r\n\r\n');
  } finally {
    await px.close();
    await up.close();
  }
});

// Issue #21 item 2: a denied request announcing a body it never sends used to wait for it
// for ever (no deadline in the discard phase); 20,000 of them took the agent's descriptors.
test('after a 403 the connection closes when a body is still to come (Envoy), and on HTTP/1.0 or Connection: close', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port);
  try {
    for (const parts of [
      ['POST /admin HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n'],
      ['POST /admin HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nGET /', 'admin'],
      ['POST /admin HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nGET \r\n', '6\r\n/admin\r\n0\r\n\r\n'],
      ['PUT /admin HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n'],
      ['GET /admin HTTP/1.0\r\n\r\n'],
      ['GET /admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'],
    ]) {
      const name = JSON.stringify(parts[0]);
      // Default limits: no deadline has to pass for this close.
      const r = await exchange(px.port, [...parts, 'GET /public/x HTTP/1.1\r\nHost: a\r\n\r\n'], { ms: 1500 });
      assert.equal(r.closed, true, name);
      assert.deepEqual(statuses(r.text), [403], name);
      assert.match(r.text, /\r\nconnection: close\r\n/, name);
    }
    assert.equal(up.received(), '');
    assert.equal(up.connections, 0);
  } finally {
    await px.close();
    await up.close();
  }
});

// Issue #21 item 4: a naive upstream reads these as Content-Length 35 (or chunked) and parses a
// smuggled request from the body. The policy allows /public.*: without the 400 the head would go
// upstream. Nothing at all may reach the upstream, not even a connection.
test('lenient framing: NBSP or another non-OWS byte around Content-Length / Transfer-Encoding, and a Content-Length list, are 400 and the upstream sees nothing', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port);
  const smuggled = 'GET /admin HTTP/1.1\r\nHost: a\r\n\r\n'; // 35 bytes
  const chunkedSmuggle = `0\r\n\r\n${smuggled}`;
  const cases: [name: string, fields: string, body: string][] = [
    ['Content-Length: NBSP 35', 'Content-Length: \xa035', smuggled],
    ['Content-Length: 35 NBSP', 'Content-Length: 35\xa0', smuggled],
    ['Transfer-Encoding: NBSP chunked', 'Transfer-Encoding: \xa0chunked', chunkedSmuggle],
    ['Transfer-Encoding: chunked NBSP', 'Transfer-Encoding: chunked\xa0', chunkedSmuggle],
    ['Content-Length: 35, 35', 'Content-Length: 35, 35', smuggled],
    ['Content-Length twice, equal', 'Content-Length: 35\r\nContent-Length: 35', smuggled],
    ['Content-Length: VT 35', 'Content-Length: \x0b35', smuggled],
    ['Content-Length: 35 FF', 'Content-Length: 35\x0c', smuggled],
    ['Content-Length: CR 35', 'Content-Length: \r35', smuggled],
    ['Transfer-Encoding: chunked NEL', 'Transfer-Encoding: chunked\x85', chunkedSmuggle],
  ];
  try {
    for (const [name, fields, body] of cases) {
      // latin1: one byte 0xA0 on the wire, as the issue sent it (a string would go out as UTF-8, C2 A0).
      const r = await exchange(px.port, [Buffer.from(`POST /public/x HTTP/1.1\r\nHost: a\r\n${fields}\r\n\r\n${body}`, 'latin1')], { ms: 1500 });
      assert.deepEqual(statuses(r.text), [400], `${name}: client got ${JSON.stringify(r.text.slice(0, 60))}`);
      assert.equal(r.closed, true, name);
      assert.equal(up.received(), '', `${name}: upstream got ${JSON.stringify(up.received())}`);
      assert.equal(up.connections, 0, `${name}: the upstream was connected`);
    }
    const ev = px.events.filter((e) => e.kind === 'response');
    assert.deepEqual(ev.map((e) => [e.code, e.reason]), [
      [400, 'bad-content-length'],
      [400, 'bad-content-length'],
      [400, 'bad-transfer-encoding'],
      [400, 'bad-transfer-encoding'],
      [400, 'content-length-list'],
      [400, 'content-length-list'],
      [400, 'ctl-in-header'],
      [400, 'ctl-in-header'],
      [400, 'ctl-in-header'],
      [400, 'bad-transfer-encoding'],
    ]);
  } finally {
    await px.close();
    await up.close();
  }
});

test('pipelining: each request decided on its own, responses in order, only allowed ones upstream', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port);
  try {
    const reqs = ['/public/1', '/admin', '/public/2', '/public/../admin', '/public/3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');
    const r = await exchange(px.port, reqs, { until: (t) => statuses(t).length === 5 && t.endsWith('ok') });
    assert.deepEqual(statuses(r.text), [200, 403, 200, 403, 200]);
    assert.equal(up.received(), ['/public/1', '/public/2', '/public/3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: a\r\n\r\n`).join(''));
    assert.equal(up.connections, 1, 'one upstream connection for the keep-alive client');
  } finally {
    await px.close();
    await up.close();
  }
});

// The no-bypass table: rule `path: "/public.*"`, everything else denied. Whatever the
// client got, the upstream must never have received a request line for /admin.
test('no bypass: path tricks, smuggling and malformed heads never get /admin upstream', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port);
  const H = 'Host: a\r\n';
  const cases: [name: string, bytes: string, status: number][] = [
    ['dot segments', `GET /public/../admin HTTP/1.1\r\n${H}\r\n`, 403],
    ['percent-encoded dot segments', `GET /public/%2e%2e/admin HTTP/1.1\r\n${H}\r\n`, 403],
    ['upper-case encoded dots', `GET /public/%2E%2E/%2e%2E/admin HTTP/1.1\r\n${H}\r\n`, 403],
    ['mixed dot', `GET /public/.%2e/admin HTTP/1.1\r\n${H}\r\n`, 403],
    ['double slash', `GET //admin HTTP/1.1\r\n${H}\r\n`, 403],
    ['upper case', `GET /ADMIN HTTP/1.1\r\n${H}\r\n`, 403],
    ['path params', `GET /admin;x HTTP/1.1\r\n${H}\r\n`, 403],
    ['tomcat ..;', `GET /public/..;/admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['fragment', `GET /admin#x HTTP/1.1\r\n${H}\r\n`, 400],
    ['fragment after public', `GET /public#/../admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['encoded NUL', `GET /admin%00 HTTP/1.1\r\n${H}\r\n`, 400],
    ['encoded NUL after public', `GET /public%00/../../admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['encoded slash', `GET /public%2f..%2fadmin HTTP/1.1\r\n${H}\r\n`, 400],
    ['backslash', `GET /public\\..\\admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['absolute-form dots', `GET http://a/public/../admin HTTP/1.1\r\n${H}\r\n`, 403],
    ['absolute-form host mismatch', `GET http://b/public/x HTTP/1.1\r\n${H}\r\n`, 400],
    ['CL.TE', `POST /public/x HTTP/1.1\r\n${H}Content-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['TE.CL', `POST /public/x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['TE obfuscated', `POST /public/x HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['TE with vertical tab', `POST /public/x HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['TE space before colon', `POST /public/x HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['differing Content-Length', `POST /public/x HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 35\r\n\r\nGET /admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['obs-fold', `GET /public/x HTTP/1.1\r\n${H}X-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n`, 400],
    ['bare LF', `GET /public/x HTTP/1.1\nHost: a\n\nGET /admin HTTP/1.1\n${H}\n`, 400],
    ['NUL in header', `GET /public/x HTTP/1.1\r\n${H}X-A: \x00\r\n\r\n`, 400],
    ['CTL in target', `GET /public/\x01/../../admin HTTP/1.1\r\n${H}\r\n`, 400],
    ['missing Host', `GET /public/x HTTP/1.1\r\n\r\n`, 400],
    ['bad method', `GE(T /public/x HTTP/1.1\r\n${H}\r\n`, 400],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505],
    ['chunked then pipelined /admin', `POST /public/x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n${H}\r\n`, 403],
  ];
  try {
    for (const [name, bytes, status] of cases) {
      const before = up.received().length;
      const r = await exchange(px.port, bytes, { until: (t) => statuses(t).includes(status) && /\r\n\r\n[^]*\r\n$|ok$/.test(t), ms: 1500 });
      const got = up.received().slice(before);
      assert.ok(statuses(r.text).includes(status), `${name}: client got ${JSON.stringify(r.text.slice(0, 80))}`);
      assert.ok(!/\/admin/.test(got.split('\r\n').filter((l) => /^[A-Z]+ /.test(l)).join('\n')), `${name}: upstream got ${JSON.stringify(got)}`);
      assert.ok(!got.includes('GET /admin'), `${name}: upstream got ${JSON.stringify(got)}`);
    }
  } finally {
    await px.close();
    await up.close();
  }
});

test('paths are case-sensitive: /ADMIN does not pass a rule for /admin, and reaches upstream as /ADMIN', async () => {
  const up = await rawUpstream();
  const onlyAdmin = await startProxy(up.port, { decide: ruleDecider([{ path: '/admin' }]) });
  const onlyUpper = await startProxy(up.port, { decide: ruleDecider([{ path: '/ADMIN' }]) });
  try {
    assert.deepEqual(statuses((await exchange(onlyAdmin.port, 'GET /ADMIN HTTP/1.1\r\nHost: a\r\n\r\n', { until: (t) => t.endsWith('\r\n\r\nAccess denied\r\n') })).text), [403]);
    assert.deepEqual(statuses((await exchange(onlyUpper.port, 'GET /ADMIN HTTP/1.1\r\nHost: a\r\n\r\n', { until: (t) => t.endsWith('ok') })).text), [200]);
    assert.equal(up.received(), 'GET /ADMIN HTTP/1.1\r\nHost: a\r\n\r\n');
  } finally {
    await onlyAdmin.close();
    await onlyUpper.close();
    await up.close();
  }
});

test('upstream receives the normalised target that policy saw; a changed absolute-form gains no extra bytes', async () => {
  const up = await rawUpstream();
  const seen: HttpRequest[] = [];
  const allow = ruleDecider([{ path: '/public.*' }]);
  const px = await startProxy(up.port, { decide: (req) => (seen.push(req), allow(req)) });
  try {
    await exchange(px.port, 'GET /x/../public//a/./b%7e?q=%2e%2e HTTP/1.1\r\nHost: a\r\nX-B: 2\r\n\r\n', { until: (t) => t.endsWith('ok') });
    await exchange(px.port, 'GET http://a:81/public/z HTTP/1.0\r\n\r\n', { until: (t) => t.endsWith('ok') });
    assert.equal(up.received(), 'GET /public/a/b~?q=%2e%2e HTTP/1.1\r\nHost: a\r\nX-B: 2\r\n\r\nGET /public/z HTTP/1.0\r\nhost: a:81\r\n\r\n');
    assert.deepEqual(seen.map((r) => [r.path, r.host]), [['/public/a/b~?q=%2e%2e', 'a'], ['/public/z', 'a:81']]);
  } finally {
    await px.close();
    await up.close();
  }
});

test('decide() gets the method, the Host as sent (port kept, case kept) and lower-case headers', async () => {
  const up = await rawUpstream();
  const seen: HttpRequest[] = [];
  const px = await startProxy(up.port, { decide: (req) => (seen.push(req), { allowed: true }) });
  try {
    await exchange(px.port, 'PUT /p HTTP/1.1\r\nHost: Api.Example:8080\r\nX-Token: abc\r\nx-token: def\r\n\r\n', { until: (t) => t.endsWith('ok') });
    const r = seen[0] as HttpRequest;
    assert.equal(r.method, 'PUT');
    assert.equal(r.host, 'Api.Example:8080');
    assert.equal(r.headers?.['x-token'], 'abc,def');
    assert.equal(r.headers?.['host'], 'Api.Example:8080');
  } finally {
    await px.close();
    await up.close();
  }
});

test('events: request + response per request, with verdict, code, latency, headers, by', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port);
  try {
    await exchange(px.port, 'GET /public/a HTTP/1.1\r\nHost: h\r\n\r\nGET /admin HTTP/1.1\r\nHost: h\r\n\r\n', { until: (t) => t.endsWith('denied\r\n') });
    await exchange(px.port, 'GET /x HTTP/1.1\r\n\r\n');
    const ev = px.events;
    assert.deepEqual(
      ev.map((e) => [e.kind, e.method, e.url, e.protocol, e.verdict, e.code, e.reason]),
      [
        ['request', 'GET', 'http://h/public/a', 'HTTP/1.1', 'FORWARDED', undefined, undefined],
        ['response', 'GET', 'http://h/public/a', 'HTTP/1.1', 'FORWARDED', 200, undefined],
        ['request', 'GET', 'http://h/admin', 'HTTP/1.1', 'DROPPED', undefined, 'denied'],
        ['response', 'GET', 'http://h/admin', 'HTTP/1.1', 'DROPPED', 403, 'denied'],
        ['request', 'GET', '/x', 'HTTP/1.1', 'ERROR', undefined, 'missing-host'],
        ['response', 'GET', '/x', 'HTTP/1.1', 'ERROR', 400, 'missing-host'],
      ],
    );
    const res = ev[1];
    assert.ok(typeof res?.latencyNs === 'bigint' && res.latencyNs > 0n);
    assert.equal(res?.headers, undefined);
    assert.deepEqual(ev[0]?.headers, [['host', 'h']]);
    assert.deepEqual(ev[0]?.by, ['path=/public.*']);
  } finally {
    await px.close();
    await up.close();
  }
});

async function httpServer(handler: http.RequestListener, setup?: (s: http.Server) => void): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(handler);
  setup?.(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function request(port: number, opts: http.RequestOptions, body?: (req: http.ClientRequest) => void): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; trailers: NodeJS.Dict<string>; sawContinue: boolean }> {
  return new Promise((resolve, reject) => {
    let sawContinue = false;
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...opts }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, trailers: res.trailers, sawContinue }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('continue', () => {
      sawContinue = true;
      body?.(req);
    });
    if (!(opts.headers as Record<string, string> | undefined)?.['expect']) body?.(req);
    if (!body) req.end();
  });
}

test('chunked request and response bodies stream through, trailers relayed verbatim', async () => {
  const srv = await httpServer((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => {
      res.writeHead(200, { 'transfer-encoding': 'chunked', trailer: 'x-count' });
      res.write('got ');
      res.write(String(n));
      res.addTrailers({ 'x-count': String(n) });
      res.end();
    });
  });
  const px = await startProxy(srv.port);
  try {
    const r = await request(px.port, { method: 'POST', path: '/public/up', headers: { 'transfer-encoding': 'chunked' } }, (req) => {
      req.write('a'.repeat(1000));
      req.write('b'.repeat(5000));
      req.end();
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'got 6000');
    assert.equal(r.trailers['x-count'], '6000');
  } finally {
    await px.close();
    await srv.close();
  }
});

test('Expect: 100-continue — allowed: the upstream 100 is relayed and the body follows; denied: 403 without reading the body, then close', async () => {
  let checked = 0;
  const srv = await httpServer(
    (req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => res.end(`n=${n}`));
    },
    (s) =>
      s.on('checkContinue', (req, res) => {
        checked++;
        res.writeContinue();
        s.emit('request', req, res);
      }),
  );
  const px = await startProxy(srv.port);
  try {
    const ok = await request(px.port, { method: 'PUT', path: '/public/f', headers: { expect: '100-continue', 'content-length': '5' } }, (req) => req.end('hello'));
    assert.equal(ok.sawContinue, true);
    assert.equal(ok.body, 'n=5');
    assert.equal(checked, 1);
    const r = await exchange(px.port, 'PUT /admin HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    assert.equal(r.closed, true);
    assert.deepEqual(statuses(r.text), [403]);
    assert.ok(!r.text.includes('100 Continue'));
    assert.equal(checked, 1, 'upstream never saw the denied request');
  } finally {
    await px.close();
    await srv.close();
  }
});

test('Upgrade (WebSocket-style): allowed → 101 then raw bytes both ways; denied → 403; h2c is stripped', async () => {
  const heads: string[] = [];
  const srv = await httpServer(
    (req, res) => {
      heads.push(JSON.stringify(req.headers));
      res.end('plain');
    },
    (s) =>
      s.on('upgrade', (req, sock: net.Socket, head: Buffer) => {
        sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        if (head.length) sock.write(head);
        sock.on('data', (d: Buffer) => sock.write(d.toString().toUpperCase()));
        sock.on('end', () => sock.end());
      }),
  );
  const px = await startProxy(srv.port);
  try {
    const ws = await exchange(
      px.port,
      ['GET /public/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly', 'ping', 'pong'],
      { until: (t) => t.endsWith('EARLYPINGPONG') },
    );
    assert.match(ws.text, /^HTTP\/1\.1 101 /);
    assert.ok(ws.text.endsWith('\r\n\r\nEARLYPINGPONG'), ws.text);
    const denied = await exchange(px.port, 'GET /admin/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', { until: (t) => t.endsWith('denied\r\n') });
    assert.deepEqual(statuses(denied.text), [403]);
    const h2c = await exchange(px.port, 'GET /public/h HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n', { until: (t) => t.endsWith('plain') });
    assert.deepEqual(statuses(h2c.text), [200]);
    assert.ok(!(heads[0] as string).includes('h2c') && !(heads[0] as string).includes('http2-settings'), heads[0]);
  } finally {
    await px.close();
    await srv.close();
  }
});

test('HTTP/1.0 and Connection: close end the connection after the response; keep-alive reuses one upstream', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port);
  try {
    const a = await exchange(px.port, 'GET /public/a HTTP/1.0\r\n\r\n');
    assert.equal(a.closed, true);
    assert.deepEqual(statuses(a.text), [200]);
    const b = await exchange(px.port, 'GET /public/b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.equal(b.closed, true);
    const c = await exchange(px.port, ['GET /public/c HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /public/d HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => statuses(t).length === 2 && t.endsWith('ok') });
    assert.equal(c.closed, false);
    assert.equal(up.connections, 3);
  } finally {
    await px.close();
    await up.close();
  }
});

test('a request followed by the client half-closing is still answered', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port);
  try {
    const r = await exchange(px.port, 'GET /public/a HTTP/1.1\r\nHost: a\r\n\r\n', { end: true });
    assert.equal(r.closed, true);
    assert.deepEqual(statuses(r.text), [200]);
    assert.ok(r.text.endsWith('ok'));
  } finally {
    await px.close();
    await up.close();
  }
});

test('an upstream that closed an idle keep-alive connection is reopened for the next request', async () => {
  const srv = await httpServer((_req, res) => res.end('hi'), (s) => (s.keepAliveTimeout = 50));
  const px = await startProxy(srv.port);
  try {
    const r = await exchange(px.port, ['GET /public/1 HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => t.endsWith('hi') });
    assert.deepEqual(statuses(r.text), [200]);
    const s = net.connect(px.port, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.write('GET /public/1 HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((r2) => setTimeout(r2, 300)); // upstream keep-alive timeout passes
    s.write('GET /public/2 HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((r2) => setTimeout(r2, 200));
    s.destroy();
    assert.deepEqual(statuses(text), [200, 200]);
  } finally {
    await px.close();
    await srv.close();
  }
});

test('robustness: head timeout 408, idle close, head too large 431, decide() throwing 503', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port, { limits: { headTimeoutMs: 200, idleTimeoutMs: 300 } });
  const boom = await startProxy(up.port, {
    decide: () => {
      throw new Error('policy not ready');
    },
  });
  try {
    const t0 = performance.now();
    const slow = await exchange(px.port, ['GET /public/a HTTP/1.1\r\n', 'Host: a\r\n'], { ms: 3000 });
    assert.deepEqual(statuses(slow.text), [408]);
    assert.equal(slow.closed, true);
    assert.ok(performance.now() - t0 < 1500);
    const idle = await exchange(px.port, [], { ms: 3000 });
    assert.equal(idle.text, '');
    assert.equal(idle.closed, true);
    const big = await exchange(px.port, `GET /public/a HTTP/1.1\r\nHost: a\r\nX: ${'x'.repeat(70 * 1024)}\r\n\r\n`);
    assert.deepEqual(statuses(big.text), [431]);
    const big2 = await exchange(px.port, ['GET /public/a HTTP/1.1\r\nHost: a\r\n', ...Array.from({ length: 20 }, () => `X: ${'y'.repeat(4000)}\r\n`)]);
    assert.deepEqual(statuses(big2.text), [431]);
    const b = await exchange(boom.port, 'GET /public/a HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.deepEqual(statuses(b.text), [503]);
    assert.equal(up.received(), '');
  } finally {
    await px.close();
    await boom.close();
    await up.close();
  }
});

test('upstream connect failure → 502 and an ERROR event', async () => {
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const port = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const px = await startProxy(port);
  try {
    const r = await exchange(px.port, 'GET /public/a HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.deepEqual(statuses(r.text), [502]);
    assert.equal(r.closed, true);
    const res = px.events.find((e) => e.kind === 'response');
    assert.equal(res?.verdict, 'ERROR');
    assert.equal(res?.code, 502);
    assert.equal(res?.reason, 'upstream-connect');
  } finally {
    await px.close();
  }
});

test('resets mid-stream close both sides', async () => {
  // Upstream resets in the middle of a response body.
  let upstreamSock: net.Socket | undefined;
  const resetter = net.createServer((s) => {
    upstreamSock = s;
    s.on('error', () => {});
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\npartial');
      setTimeout(() => s.resetAndDestroy(), 50);
    });
  });
  await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r));
  const px = await startProxy((resetter.address() as AddressInfo).port);
  try {
    const r = await exchange(px.port, 'GET /public/a HTTP/1.1\r\nHost: a\r\n\r\n', { ms: 2000 });
    assert.equal(r.closed, true);
    assert.ok(r.text.endsWith('partial'));
    // Client resets in the middle of an upload: the upstream connection is closed too.
    const closed = new Promise<void>((r2) => {
      resetter.once('connection', (s: net.Socket) => s.on('close', () => r2()));
    });
    const c = net.connect(px.port, '127.0.0.1');
    c.on('error', () => {});
    c.write('POST /public/up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc');
    await new Promise((r2) => setTimeout(r2, 100));
    c.resetAndDestroy();
    await closed;
    assert.ok(upstreamSock);
  } finally {
    await px.close();
    await new Promise<void>((r) => resetter.close(() => r()));
  }
});

test('malformed input never throws out of the proxy (random bytes and truncations)', async () => {
  const up = await rawUpstream();
  const px = await startProxy(up.port, { limits: { headTimeoutMs: 300, idleTimeoutMs: 300 } });
  const crashes: unknown[] = [];
  const onCrash = (e: unknown): void => void crashes.push(e);
  process.on('uncaughtException', onCrash);
  try {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const base = 'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const b = Buffer.from(base, 'latin1');
      for (let k = 0; k < 3; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      runs.push(exchange(px.port, [b.subarray(0, Math.floor(rnd() * b.length) + 1)], { ms: 800 }));
    }
    await Promise.all(runs);
    assert.deepEqual(crashes, []);
  } finally {
    process.off('uncaughtException', onCrash);
    await px.close();
    await up.close();
  }
});

test('every phase has a deadline: a stalled allowed body is 408, no response 504, a quiet relay or tunnel is reset; bytes moving keep an exchange alive', async () => {
  const silent = await rawUpstream(false);
  const quiet = await startProxy(silent.port, { limits: { streamIdleTimeoutMs: 300 } });
  // Answers the head and part of the body, then nothing.
  const halfway = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial'));
  });
  await new Promise<void>((r) => halfway.listen(0, '127.0.0.1', r));
  const relay = await startProxy((halfway.address() as AddressInfo).port, { limits: { streamIdleTimeoutMs: 300 } });
  const srv = await httpServer(
    (req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => res.end(`n=${n}`));
    },
    (s) =>
      s.on('upgrade', (_req, sock: net.Socket) => {
        sock.on('error', () => {});
        sock.on('end', () => sock.end());
        sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      }),
  );
  const echo = await startProxy(srv.port, { limits: { streamIdleTimeoutMs: 300 } });
  try {
    const body = await exchange(quiet.port, 'POST /public/up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc', { ms: 3000 });
    assert.deepEqual(statuses(body.text), [408]);
    assert.equal(body.closed, true);
    const answer = await exchange(quiet.port, 'GET /public/slow HTTP/1.1\r\nHost: a\r\n\r\n', { ms: 3000 });
    assert.deepEqual(statuses(answer.text), [504]);
    assert.equal(answer.closed, true);
    assert.deepEqual(quiet.events.filter((e) => e.kind === 'response').map((e) => e.reason), ['body-idle', 'response-idle']);
    const partial = await exchange(relay.port, 'GET /public/a HTTP/1.1\r\nHost: a\r\n\r\n', { ms: 3000 });
    assert.equal(partial.closed, true);
    assert.ok(partial.text.endsWith('\r\n\r\npartial'), partial.text);
    const tunnel = await exchange(echo.port, 'GET /public/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', { ms: 3000 });
    assert.match(tunnel.text, /^HTTP\/1\.1 101 /);
    assert.equal(tunnel.closed, true);
    // Ten body bytes 100 ms apart: a second in all, never 300 ms without a byte.
    const c = net.connect(echo.port, '127.0.0.1');
    let text = '';
    c.on('data', (d: Buffer) => (text += d.toString('latin1')));
    c.write('POST /public/t HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n');
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 100));
      c.write('x');
    }
    await new Promise((r) => setTimeout(r, 200));
    c.destroy();
    assert.deepEqual(statuses(text), [200]);
    assert.ok(text.endsWith('n=10'), text);
  } finally {
    await quiet.close();
    await relay.close();
    await echo.close();
    await silent.close();
    await srv.close();
    await new Promise<void>((r) => halfway.close(() => r()));
  }
});

/** A keep-alive connection from `from` that got one 200 (so the proxy admitted it), held open. */
async function held(port: number, from: string): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
  s.on('error', () => {});
  let text = '';
  await new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.endsWith('ok')) resolve();
    });
    s.once('close', () => reject(new Error(`held connection from ${from} closed: ${JSON.stringify(text)}`)));
    s.write('GET /public/h HTTP/1.1\r\nHost: a\r\n\r\n');
  });
  return s;
}

// Issue #21 item 2: connections a source may hold, and all of them; over the limit: reset at once.
test('admission: over-limit connections from one source are refused at once while another source is served; a global cap; slots come back on close', async () => {
  const up = await rawUpstream();
  const admission = new ConnectionAdmission({ maxConnectionsPerSource: 3, maxConnections: 5 });
  const px = await startProxy(up.port, {}, admission);
  const sockets: net.Socket[] = [];
  const get = 'GET /public/x HTTP/1.1\r\nHost: a\r\n\r\n';
  try {
    for (let i = 0; i < 3; i++) sockets.push(await held(px.port, '127.0.0.1'));
    const fourth = await exchange(px.port, get, { from: '127.0.0.1', ms: 2000 });
    assert.equal(fourth.closed, true, 'the fourth connection from 127.0.0.1 is closed');
    assert.equal(fourth.text, '', 'and gets no answer at all');
    const other = await exchange(px.port, get, { from: '127.0.0.2', until: (t) => t.endsWith('ok') });
    assert.deepEqual(statuses(other.text), [200], 'another source is still served');
    for (let i = 0; i < 2; i++) sockets.push(await held(px.port, '127.0.0.2'));
    const third = await exchange(px.port, get, { from: '127.0.0.3', ms: 2000 });
    assert.equal(third.closed, true, 'five open in all: a third source is refused too');
    assert.equal(third.text, '');
    assert.deepEqual(admission.stats(), { maxConnectionsPerSource: 3, maxConnections: 5, open: 5, sources: 2, refusedPerSource: 1, refusedTotal: 1 });
    sockets.shift()?.destroy();
    // The slot comes back when the proxy sees the close.
    for (let t = 0; admission.stats().open !== 4; t++) {
      assert.ok(t < 100, 'the closed connection gave its slot back');
      await new Promise((r) => setTimeout(r, 20));
    }
    const again = await exchange(px.port, get, { from: '127.0.0.1', until: (t) => t.endsWith('ok') });
    assert.deepEqual(statuses(again.text), [200]);
    assert.equal(up.received().split('\r\n\r\n').length - 1, 7, 'refused connections sent nothing upstream');
  } finally {
    for (const s of sockets) s.destroy();
    await px.close();
    await up.close();
  }
});

test('admission limits are validated', () => {
  assert.throws(() => new ConnectionAdmission({ maxConnectionsPerSource: 0 }), /maxConnectionsPerSource must be a whole number ≥ 1, not 0/);
  assert.throws(() => new ConnectionAdmission({ maxConnections: 1.5 }), /maxConnections must be a whole number ≥ 1, not 1.5/);
});
