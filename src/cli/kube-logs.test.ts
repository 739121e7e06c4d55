/** `palisade logs`: the log file reader (tail, follow, truncation), and the command against a lab layout (privileged: /run/palisade). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rm, rmdir, truncate, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { containerLogPath, labDir, RUN_ROOT } from '../lab/index.ts';
import { streamLog } from './kube-logs.ts';
import { startKubeTestLab, type KubeTestLab } from '../../test/kit/kube.ts';

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

test('privileged: logs reads the container\'s file in the lab layout, first container by default', async () => {
  assert.equal(process.getuid?.(), 0, 'this test writes under /run/palisade: run it as root (it must not be skipped)');
  const labName = `kt${randomBytes(4).toString('hex')}`;
  const hadRunRoot = existsSync(RUN_ROOT);
  const lab: KubeTestLab = await startKubeTestLab();
  try {
    const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec: {containers: [{name: web}, {name: sidecar}]}\n';
    assert.equal((await lab.run(['apply', '-f', await lab.file('pod.yaml', pod), '--no-wait'])).code, 0);
    const web = containerLogPath(labName, 'default', 'p1', 'web');
    await mkdir(dirname(web), { recursive: true });
    await writeFile(web, 'listening on :80\nGET /\nGET /health\n');
    await writeFile(containerLogPath(labName, 'default', 'p1', 'sidecar'), 'sidecar up\n');

    const all = await lab.run(['logs', '--lab', labName, 'p1']);
    assert.deepEqual([all.code, all.stdout], [0, 'listening on :80\nGET /\nGET /health\n']);
    const tail = await lab.run(['logs', '--lab', labName, 'p1', '--tail', '2']);
    assert.equal(tail.stdout, 'GET /\nGET /health\n');
    const sidecar = await lab.run(['logs', '--lab', labName, '-n', 'default', 'p1', '-c', 'sidecar']);
    assert.equal(sidecar.stdout, 'sidecar up\n');
    const wrong = await lab.run(['logs', '--lab', labName, 'p1', '-c', 'nope']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /pod default\/p1 has no container "nope"; its containers: web, sidecar/);
    const noPod = await lab.run(['logs', '--lab', labName, 'ghost']);
    assert.match(noPod.stderr, /pod "ghost" not found in namespace "default"/);
  } finally {
    await lab.close();
    await rm(labDir(labName), { recursive: true, force: true });
    // Leave /run/palisade as found: remove it only if this test made it and nothing else moved in.
    if (!hadRunRoot) await rmdir(RUN_ROOT).catch(() => {});
  }
});
