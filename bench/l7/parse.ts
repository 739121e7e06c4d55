/**
 * Head-parser micro-benchmark (no test runner): request heads parsed per
 * second on one core, for three heads, each through the proxy's per-request
 * front half — find the end (headEnd), parseRequestHead,
 * normaliseTarget — with the RequestHead and NormalisedTarget reused as the
 * connection reuses them.
 *
 *   node bench/l7/parse.ts [iterations=2000000]
 */
import { headEnd } from '../../src/proxy/http/bytes.ts';
import { newRequestHead, parseRequestHead } from '../../src/proxy/http/head-parser.ts';
import { normaliseTarget, type NormalisedTarget } from '../../src/proxy/http/normalise.ts';

const N = Number(process.argv[2] ?? 2_000_000);

const heads: [string, string][] = [
  ['wrk GET (2 fields)', 'GET /public/index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n'],
  [
    'curl-like (4 fields)',
    'GET /public/api/v1/items?id=42&x=y HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Request-Id: 5d1c3a8e\r\n\r\n',
  ],
  [
    'browser-like (11 fields, dot segments)',
    'GET /public/app/../static/%7Euser/main.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\nConnection: keep-alive\r\n' +
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36\r\n' +
      'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\n' +
      'Accept-Language: en-US,en;q=0.9\r\nCache-Control: no-cache\r\nPragma: no-cache\r\nReferer: https://www.example.com/\r\n' +
      'Cookie: session=abcdef0123456789; theme=dark\r\nSec-Fetch-Mode: navigate\r\n\r\n',
  ],
];

const head = newRequestHead();
const norm: NormalisedTarget = { target: '', authority: undefined, changed: false };

for (const [name, text] of heads) {
  const buf = Buffer.from(text, 'latin1');
  const run = (n: number): number => {
    let sink = 0;
    for (let i = 0; i < n; i++) {
      const end = headEnd(buf, 0, buf.length);
      parseRequestHead(buf, 0, end, head, 100);
      normaliseTarget(head.target, head.method, norm);
      sink += norm.target.length;
    }
    return sink;
  };
  run(Math.min(N, 200_000)); // warm-up
  const t0 = process.hrtime.bigint();
  run(N);
  const ns = Number(process.hrtime.bigint() - t0);
  const perSec = (N / ns) * 1e9;
  console.log(`${name.padEnd(40)} ${(perSec / 1e6).toFixed(2)} M heads/s  ${(ns / N).toFixed(0)} ns/head  ${((buf.length * N) / ns * 1e9 / 1048576).toFixed(0)} MiB/s  (${buf.length} B)`);
}
