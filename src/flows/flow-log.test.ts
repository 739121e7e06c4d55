/** Flow logs: JSON lines, include/exclude filters, size rotation with a bounded number of files. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envelope, makeFlow } from './flow.ts';
import { FlowLog } from './flow-log.ts';
import { at } from '../../test/kit/flows.ts';

let dir: string;
before(async () => { dir = await mkdtemp(join(tmpdir(), 'palisade-flowlog-')); });
after(() => rm(dir, { recursive: true, force: true }));

const flow = (i: number, verdict: 'FORWARDED' | 'DROPPED') => envelope(makeFlow({ time: at(i), verdict, uuid: `f${String(i).padStart(3, '0')}`, node_name: 'n1' }));

test('only included flows are written, one Hubble JSON object per line', async () => {
  const path = join(dir, 'drops.log');
  const log = new FlowLog({ path, include: [{ verdict: ['DROPPED'] }], exclude: [{ uuid: ['f003'] }] });
  for (let i = 0; i < 6; i++) log.write(flow(i, i % 2 ? 'DROPPED' : 'FORWARDED'));
  await log.close();
  const lines = (await readFile(path, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { flow: { uuid: string; verdict: string }; node_name: string; time: string });
  assert.deepEqual(lines.map((l) => l.flow.uuid), ['f001', 'f005']);
  assert.equal(lines[0]?.node_name, 'n1');
  assert.equal(lines[0]?.time, at(1));
  assert.equal(log.written, 2);
  assert.equal(log.filtered, 4);
});

test('rotation keeps at most maxFiles files, each under maxSizeBytes, newest in the base file', async () => {
  const path = join(dir, 'flows.log');
  const lineBytes = JSON.stringify(flow(0, 'FORWARDED')).length + 1;
  const log = new FlowLog({ path, maxSizeBytes: lineBytes * 3, maxFiles: 3 });
  for (let i = 0; i < 20; i++) {
    log.write(flow(i, 'FORWARDED'));
    await log.flush(); // one line per batch, so rotation is exact
  }
  await log.close();
  const files = (await readdir(dir)).filter((f) => f.startsWith('flows.log')).sort();
  assert.deepEqual(files, ['flows.log', 'flows.log.1', 'flows.log.2']);
  const uuids = async (f: string): Promise<string[]> =>
    (await readFile(join(dir, f), 'utf8')).trimEnd().split('\n').map((l) => (JSON.parse(l) as { flow: { uuid: string } }).flow.uuid);
  assert.deepEqual(await uuids('flows.log'), ['f018', 'f019']);
  assert.deepEqual(await uuids('flows.log.1'), ['f015', 'f016', 'f017']);
  assert.deepEqual(await uuids('flows.log.2'), ['f012', 'f013', 'f014']);
});

test('a burst is written in one batch and survives reopening (append)', async () => {
  const path = join(dir, 'burst.log');
  let log = new FlowLog({ path });
  for (let i = 0; i < 1000; i++) log.write(flow(i, 'DROPPED'));
  await log.close();
  log = new FlowLog({ path });
  log.write(flow(1000, 'DROPPED'));
  await log.close();
  assert.equal((await readFile(path, 'utf8')).trimEnd().split('\n').length, 1001);
});
