/** Compact lines as `hubble observe` prints them: a drop, an allow, HTTP and DNS; then table, dict and json. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envelope } from './flow.ts';
import { formatCompact, makePrinter } from './flow-printer.ts';
import { allowFlow, dnsFlow, dropFlow, httpFlow, worldFlow } from '../../test/kit/flows.ts';

const utc = { utc: true };

test('compact lines', () => {
  const cases: [string, ReturnType<typeof envelope>, string][] = [
    ['drop', envelope(dropFlow()),
      'Nov 26 06:41:02.123: default/frontend:43210 (ID:1234) -> default/backend:80 (ID:5678) Policy denied DROPPED (TCP Flags: SYN) POLICY_DENIED by CiliumNetworkPolicy default/deny-frontend'],
    ['allow (policy verdict)', envelope(allowFlow()),
      'Nov 26 06:41:02.123: default/frontend:43210 (ID:1234) -> default/backend:80 (ID:5678) policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN)'],
    ['http request', envelope(httpFlow(undefined, 'REQUEST')),
      'Nov 26 06:41:02.123: default/frontend:43210 (ID:1234) -> default/backend:80 (ID:5678) http-request FORWARDED (HTTP/1.1 GET http://backend/api/v1?x=1)'],
    ['http response (reply: shown from the client)', envelope(httpFlow(undefined, 'RESPONSE')),
      'Nov 26 06:41:02.123: default/backend:80 (ID:5678) <- default/frontend:43210 (ID:1234) http-response FORWARDED (HTTP/1.1 503 12ms (GET http://backend/api/v1?x=1))'],
    ['dns request', envelope(dnsFlow(undefined, 'REQUEST')),
      'Nov 26 06:41:02.123: default/frontend:53001 (ID:1234) -> kube-system/coredns-5d78c9869d-abcde:53 (ID:4321) dns-request FORWARDED (DNS Query api.github.com. A)'],
    ['dns response', envelope(dnsFlow(undefined, 'RESPONSE')),
      'Nov 26 06:41:02.123: kube-system/coredns-5d78c9869d-abcde:53 (ID:4321) <- default/frontend:53001 (ID:1234) dns-response FORWARDED (DNS Answer "140.82.121.6" TTL: 30 (Proxy api.github.com. A))'],
    ['world by name', envelope(worldFlow()),
      'Nov 26 06:41:02.123: default/frontend:40000 (ID:1234) -> api.github.com:443 (world) to-network FORWARDED (TCP Flags: ACK, PSH)'],
  ];
  for (const [name, e, want] of cases) assert.equal(formatCompact(e, utc), want, name);
  assert.equal(
    formatCompact({ lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: 7 }, node_name: 'n1', time: '2024-11-26T06:41:02Z' }),
    'EVENTS LOST: HUBBLE_RING_BUFFER CPU(0) 7',
  );
  assert.equal(formatCompact(envelope(dropFlow()), { ...utc, nodeName: true }).split(': ')[0], 'node1');
});

test('table aligns columns at the end; dict prints blocks; json prints envelopes', () => {
  let out = '';
  const table = makePrinter('table', (t) => { out += t; }, utc);
  table.write(envelope(dropFlow()));
  table.write(envelope(httpFlow()));
  assert.equal(out, '', 'held until end()');
  table.end();
  const rows = out.trimEnd().split('\n');
  assert.equal(rows.length, 3);
  assert.match(rows[0] ?? '', /^TIMESTAMP\s+SOURCE\s+DESTINATION\s+TYPE\s+VERDICT\s+SUMMARY$/);
  assert.equal(rows[1]?.indexOf('DROPPED'), rows[0]?.indexOf('VERDICT'));

  out = '';
  const dict = makePrinter('dict', (t) => { out += t; }, utc);
  dict.write(envelope(dropFlow()));
  dict.write(envelope(allowFlow()));
  assert.match(out, /^  TIMESTAMP: Nov 26 06:41:02\.123\n     SOURCE: default\/frontend:43210 \(ID:1234\)\n/);
  assert.match(out, /DROP REASON: POLICY_DENIED\n  DENIED BY: CiliumNetworkPolicy default\/deny-frontend\n------------\n/);

  out = '';
  const json = makePrinter('json', (t) => { out += t; });
  const e = envelope(dropFlow());
  json.write(e);
  assert.deepEqual(JSON.parse(out), JSON.parse(JSON.stringify(e)));
  assert.ok(out.endsWith('}\n'));
});
