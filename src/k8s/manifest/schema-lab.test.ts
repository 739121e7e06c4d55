/** ExternalHost manifests: spec.addresses — IPv4 unicast, outside the lab's ranges, each once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExternalHost } from '../objects.ts';
import { validateObject } from './index.ts';

const host = (spec: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'lab.palisade.dev/v1', kind: 'ExternalHost', metadata: { name: 'one' }, spec: { names: ['one.one.one.one'], ...spec },
});
const faults = (spec: Record<string, unknown>): string[] => validateObject(host(spec)).faults.map((f) => `${f.path}: ${f.message}`);

test('public IPv4 addresses are accepted, and addresses may be left out', () => {
  assert.deepEqual(faults({ addresses: ['1.1.1.1', '1.0.0.1'] }), []);
  assert.deepEqual(faults({ addresses: ['169.254.169.254'] }), [], 'link-local is unicast: a metadata-server stand-in');
  assert.deepEqual(faults({}), []);
  assert.deepEqual((validateObject(host({ addresses: ['1.1.1.1'] })).object as ExternalHost | undefined)?.spec, { names: ['one.one.one.one'], addresses: ['1.1.1.1'] });
});

test('each address that cannot be a lab host is refused, with its field path and why', () => {
  const table: [string, RegExp][] = [
    ['1.1.1', /"1\.1\.1" is not an IPv4 address/],
    ['01.1.1.1', /is not an IPv4 address/],
    ['2001:db8::1', /is not an IPv4 address/],
    ['0.1.2.3', /0\.0\.0\.0\/8, "this network"/],
    ['127.0.0.53', /127\.0\.0\.0\/8, loopback/],
    ['224.0.0.251', /multicast/],
    ['255.255.255.255', /240\.0\.0\.0\/4, reserved/],
    ['10.244.1.7', /10\.244\.0\.0\/16, the lab's pod range/],
    ['10.96.0.10', /10\.96\.0\.0\/16, the lab's Service range/],
    ['172.31.0.11', /172\.31\.0\.0\/24, the lab's node network/],
    ['198.18.5.5', /198\.18\.0\.0\/16, the range the lab allocates .*leave spec\.addresses out/],
  ];
  for (const [address, message] of table) {
    const got = faults({ addresses: ['1.1.1.1', address] });
    assert.equal(got.length, 1, `${address}: ${got.join('; ')}`);
    assert.match(got[0]!, /^spec\.addresses\[1\]: /, address);
    assert.match(got[0]!, message, address);
  }
});

test('an address listed twice, an empty list and a non-string are refused', () => {
  assert.deepEqual(faults({ addresses: ['1.1.1.1', '1.0.0.1', '1.1.1.1'] }), ['spec.addresses[2]: 1.1.1.1 is listed twice (also spec.addresses[0])']);
  assert.match(faults({ addresses: [] }).join(), /^spec\.addresses: spec\.addresses is empty: leave it out/);
  assert.match(faults({ addresses: [16843009] }).join(), /^spec\.addresses\[0\]: /);
});
