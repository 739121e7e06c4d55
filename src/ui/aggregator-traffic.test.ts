/** The heat map's bytes: the agents' traffic counters (Aggregator.setTraffic), not flows, which carry none. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envelope } from '../flows/index.ts';
import { allowFlow } from '../../test/kit/flows.ts';
import { Aggregator } from './aggregator.ts';

const NOW = Date.parse('2026-12-07T22:00:00Z');

test("a cell's bytes are both ways of its pair (answers count on the request's cell); the series gets what grew between readings", () => {
  let now = NOW;
  const a = new Aggregator({ source: 'lab test', now: () => now });
  a.add(envelope({ ...allowFlow(), time: new Date(NOW - 1000).toISOString() }), 0);
  const cell = () => a.snapshot().heat.cells.find((c) => c.source === 'default/frontend' && c.destination === 'default/backend');
  assert.equal(cell()?.bytes, 0, 'no reading yet');

  a.setTraffic([
    { source: 'default/frontend', destination: 'default/backend', bytes: 1000 },
    { source: 'default/backend', destination: 'default/frontend', bytes: 50_000 },
    { source: 'default/other', destination: 'default/backend', bytes: 7 },
  ]);
  assert.equal(cell()?.bytes, 51_000);
  // The first reading is the baseline (cumulative since the pairs were first counted), not traffic of this bucket.
  assert.equal(a.snapshot().heat.series.reduce((n, p) => n + (p.values['bytes'] ?? 0), 0), 0);

  const changes = a.changes;
  now += 2000;
  a.setTraffic([
    { source: 'default/frontend', destination: 'default/backend', bytes: 1500 },
    { source: 'default/backend', destination: 'default/frontend', bytes: 90_000 },
    { source: 'default/other', destination: 'default/backend', bytes: 7 },
  ]);
  assert.equal(cell()?.bytes, 91_500);
  assert.ok(a.changes > changes);
  assert.equal(a.snapshot().heat.series.reduce((n, p) => n + (p.values['bytes'] ?? 0), 0), 40_500);

  // A reading that shrank (a node's agent gone) moves the baseline only.
  now += 2000;
  a.setTraffic([{ source: 'default/frontend', destination: 'default/backend', bytes: 1500 }]);
  assert.equal(cell()?.bytes, 1500);
  now += 2000;
  a.setTraffic([{ source: 'default/frontend', destination: 'default/backend', bytes: 1600 }]);
  assert.equal(a.snapshot().heat.series.reduce((n, p) => n + (p.values['bytes'] ?? 0), 0), 40_600);
});
