/** `palisade logs`: the log file reader (tail, follow, truncation). The command against a lab layout: kube-logs-privileged.test.ts. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streamLog } from './kube-logs.ts';

let dir: string;
before(async () => { dir = await mkdtemp(join(tmpdir(), 'palisade-logs-')); });
after(() => rm(dir, { recursive: true, force: true }));

test('streamLog prints all, or the last N lines', async () => {
  const file = join(dir, 'a.log');
  await writeFile(file, 'one\ntwo\nthree\n');
  const cases: [number | undefined, string][] = [[undefined, 'one\ntwo\nthree\n'], [0, ''], [1, 'three\n'], [2, 'two\nthree\n'], [10, 'one\ntwo\nthree\n']];
  for (const [tail, want] of cases) {
    let out = '';
    await streamLog(file, { tail }, (s) => { out += s; });
    assert.equal(out, want, `tail ${tail}`);
  }
  await writeFile(file, 'no newline at end');
  let out = '';
  await streamLog(file, { tail: 1 }, (s) => { out += s; });
  assert.equal(out, 'no newline at end');
});

test('streamLog -f prints appended output, starts over after truncation, stops when aborted', async () => {
  const file = join(dir, 'f.log');
  await writeFile(file, 'first\n');
  let out = '';
  const stop = new AbortController();
  const following = streamLog(file, { follow: true, signal: stop.signal, pollMs: 20 }, (s) => { out += s; });
  const until = async (want: string): Promise<void> => {
    for (let i = 0; i < 200 && out !== want; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(out, want);
  };
  await until('first\n');
  await appendFile(file, 'second\n');
  await until('first\nsecond\n');
  await truncate(file, 0);
  await new Promise((r) => setTimeout(r, 60));
  await appendFile(file, 'restarted\n');
  await until('first\nsecond\nrestarted\n');
  stop.abort();
  await following;
});
