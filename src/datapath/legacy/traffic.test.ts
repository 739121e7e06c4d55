/** The legacy traffic table: its script and `nft -j list set` read back (the kernel side is in test/datapath/conformance.test.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTrafficSet, trafficTableScript } from './traffic.ts';

test('elements with counters are read back per address pair; anything else in the document is skipped', () => {
  // As nft 1.0.6 prints it (one element of a set with `counter`).
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      {
        set: {
          family: 'inet', name: 'traffic', table: 'palisade_traffic', type: ['ipv4_addr', 'ipv4_addr'], size: 16384, flags: ['timeout'], timeout: 600,
          elem: [
            { elem: { val: { concat: ['10.244.1.10', '10.244.1.11'] }, expires: 599, counter: { packets: 57, bytes: 1051548 } } },
            { elem: { val: { concat: ['10.244.1.11', '10.244.1.10'] }, expires: 598 } },
            { elem: { val: { concat: ['10.244.1.11', 'not-an-address'] }, counter: { packets: 1, bytes: 1 } } },
          ],
        },
      },
    ],
  });
  assert.deepEqual(parseTrafficSet(json), [{ source: '10.244.1.10', destination: '10.244.1.11', packets: 57, bytes: 1051548 }]);
});

test('the table script keeps existing elements (add, flush chain only) and counts deliveries only from outside the cluster\'s pods', () => {
  const script = trafficTableScript('10.244.0.0/16');
  assert.doesNotMatch(script, /delete|flush set|flush table/);
  assert.match(script, /oifname "lxc\*" ip saddr != 10\.244\.0\.0\/16 update @traffic \{ ip saddr \. ip daddr \}/);
  assert.throws(() => trafficTableScript('10.244.0.0/16; flush ruleset'), /not an IPv4 CIDR/);
});
