/**
 * `palisade exec` without root: a pod it cannot enter is named clearly, and
 * the exit status convention. The CLI runs as a subprocess, as a person runs
 * it. (Entering a pod's namespace: kube-exec-privileged.test.ts.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { runCliProcess, startKubeTestLab, type KubeTestLab } from '../../test/kit/kube.ts';
import { exitStatus } from './kube-exec.ts';

const labName = `kt${randomBytes(4).toString('hex')}`;

let lab: KubeTestLab;
before(async () => {
  lab = await startKubeTestLab();
  const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p2}\nspec: {containers: [{name: c}]}\n';
  assert.equal((await lab.run(['apply', '-f', await lab.file('pods.yaml', pod), '--no-wait'])).code, 0);
});
after(() => lab.close());

const execArgs = (pod: string, ...argv: string[]): string[] =>
  ['exec', '--kubeconfig', lab.kubeconfig, '--lab', labName, '-n', 'default', pod, '--', ...argv];

test('exec: a pod missing from the API, or without a network namespace, is named clearly', async () => {
  const missing = await runCliProcess(execArgs('ghost', 'true'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /pod "ghost" not found in namespace "default"/);

  const noNetns = await runCliProcess(execArgs('p2', 'true'));
  assert.equal(noNetns.code, 1);
  assert.match(noNetns.stderr, new RegExp(`pod default/p2 has no network namespace on this machine \\(/run/netns/pl-${labName}-pod-default-p2\\): is the lab '${labName}' up\\?`));
});

test('exit status convention', () => {
  assert.equal(exitStatus(0, null), 0);
  assert.equal(exitStatus(3, null), 3);
  assert.equal(exitStatus(null, 'SIGKILL'), 137);
  assert.equal(exitStatus(null, 'SIGINT'), 130);
});
