/**
 * `palisade exec`, privileged: it creates a real network namespace named as the
 * lab names a pod's, and runs the CLI as a subprocess so the command owns the
 * real stdio. Must run as root; it fails (never skips) otherwise.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { podNetns } from '../lab/index.ts';
import { runCliProcess, startKubeTestLab, type KubeTestLab } from '../../test/kit/kube.ts';

const labName = `kt${randomBytes(4).toString('hex')}`;

let lab: KubeTestLab;
before(async () => {
  lab = await startKubeTestLab();
  const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec: {containers: [{name: c}]}\n';
  assert.equal((await lab.run(['apply', '-f', await lab.file('pods.yaml', pod), '--no-wait'])).code, 0);
});
after(() => lab.close());

const execArgs = (pod: string, ...argv: string[]): string[] =>
  ['exec', '--kubeconfig', lab.kubeconfig, '--lab', labName, '-n', 'default', pod, '--', ...argv];

test('privileged: exec runs the command in the pod\'s network namespace; stdout and exit status pass through', async () => {
  assert.equal(process.getuid?.(), 0, 'this test creates network namespaces: run it as root (it must not be skipped)');
  const netns = podNetns(labName, 'default', 'p1');
  assert.equal(netns, `pl-${labName}-pod-default-p1`);
  execFileSync('ip', ['netns', 'add', netns]);
  try {
    const links = await runCliProcess(execArgs('p1', 'ip', '-o', 'link', 'show'));
    assert.equal(links.code, 0, links.stderr);
    assert.deepEqual(links.stdout.trim().split('\n').map((l) => l.split(':')[1]?.trim()), ['lo'], 'only the new namespace\'s loopback is visible');

    const failing = await runCliProcess(execArgs('p1', 'sh', '-c', 'echo out-of-pod; echo to-stderr >&2; exit 7'));
    assert.equal(failing.code, 7);
    assert.equal(failing.stdout, 'out-of-pod\n');
    assert.equal(failing.stderr, 'to-stderr\n');

    const killed = await runCliProcess(execArgs('p1', 'sh', '-c', 'kill -TERM $$'));
    assert.equal(killed.code, 128 + 15, 'a signal n becomes 128+n');
  } finally {
    execFileSync('ip', ['netns', 'delete', netns]);
  }
});
