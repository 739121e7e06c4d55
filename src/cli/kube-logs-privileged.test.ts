/** `palisade logs` against a lab layout: privileged, it writes under /run/palisade; fails (never skips) without root. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { containerLogPath, labDir, RUN_ROOT } from '../lab/index.ts';
import { startKubeTestLab, type KubeTestLab } from '../../test/kit/kube.ts';

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
