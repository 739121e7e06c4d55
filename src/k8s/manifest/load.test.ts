/** loadManifests on real temporary files: a directory, a single file, stdin, unreadable paths. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { formatFault, loadManifests } from './index.ts';

let dir: string;

const NS_A = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n';
const NS_B_JSON = JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'b' } });
const BAD_CNP = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: a}
spec: {endpointSelector: {}, egress: [{toEntities: [internet]}]}
`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'palisade-manifest-'));
  await mkdir(join(dir, 'manifests'));
  await mkdir(join(dir, 'manifests', 'nested.yaml')); // a directory with a manifest-like name: skipped
  await writeFile(join(dir, 'manifests', 'b.json'), NS_B_JSON);
  await writeFile(join(dir, 'manifests', 'a.yaml'), `${NS_A}---\n${BAD_CNP}`);
  await writeFile(join(dir, 'manifests', 'notes.txt'), 'not a manifest');
  await mkdir(join(dir, 'empty'));
  await writeFile(join(dir, 'single.yml'), NS_A);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a directory: its .yaml/.yml/.json files, sorted, not recursive', async () => {
  const files = await loadManifests([join(dir, 'manifests')]);
  assert.deepEqual(
    files.map((f) => f.source),
    [join(dir, 'manifests', 'a.yaml'), join(dir, 'manifests', 'b.json')],
  );
  const [a, b] = files;
  assert.deepEqual(a!.faults.map(formatFault), [
    `${join(dir, 'manifests', 'a.yaml')}#2 spec.egress[0].toEntities[0]: must be one of all, world, cluster, host, remote-node, kube-apiserver, ingress, init, health, unmanaged, none (got the string "internet")`,
  ]);
  assert.deepEqual(
    a!.entries.map((e) => e.object.metadata.name),
    ['a'],
  );
  assert.deepEqual(b!.faults, []);
  assert.deepEqual(
    b!.entries.map((e) => [e.object.kind, e.object.metadata.name, e.doc, e.path]),
    [['Namespace', 'b', 1, '']],
  );
});

test('a single file', async () => {
  const path = join(dir, 'single.yml');
  const files = await loadManifests([path]);
  assert.equal(files.length, 1);
  assert.equal(files[0]!.source, path);
  assert.deepEqual(files[0]!.faults, []);
  assert.deepEqual(files[0]!.entries[0]!.object, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } });
});

test("'-' reads standard input as <stdin>", async () => {
  const files = await loadManifests(['-'], { stdin: Readable.from([Buffer.from(NS_A)]) });
  assert.equal(files[0]!.source, '<stdin>');
  assert.equal(files[0]!.entries[0]!.source, '<stdin>');
  assert.equal(files[0]!.entries[0]!.object.metadata.name, 'a');
});

test('missing paths and empty directories are faults of that path; the rest still loads', async () => {
  const missing = join(dir, 'nope.yaml');
  const empty = join(dir, 'empty');
  const files = await loadManifests([missing, empty, join(dir, 'single.yml')]);
  assert.equal(files.length, 3);
  assert.equal(files[0]!.source, missing);
  assert.match(formatFault(files[0]!.faults[0]!), new RegExp(`^${missing.replaceAll('.', '\\.')}: cannot read: .*ENOENT`));
  assert.deepEqual(files[1]!.faults.map(formatFault), [`${empty}: the directory holds no .yaml, .yml or .json files`]);
  assert.deepEqual(files[2]!.faults, []);
});
