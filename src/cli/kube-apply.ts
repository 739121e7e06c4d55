/**
 * `palisade apply -f`: create or update every object of the manifests, then
 * (by default) wait for the applied Pods to run.
 *
 *   manifests ──kube-manifests.ts──► valid objects (or: every fault, exit 1, nothing applied)
 *        │ Namespaces first, then the rest (a Pod's namespace must exist before it)
 *        ▼ per object, up to REQUEST_CONCURRENCY at once, reported in file order
 *   read live ── 404 ──► create (with the last-applied annotation)         "created"
 *        │
 *        └──► kube-merge.ts three-way merge patch ── empty ──► "unchanged"
 *                                                  └─ else ──► PATCH      "configured"
 *        ▼
 *   --wait: kube-wait.ts until every applied Pod is Running with a podIP
 *
 * An object the server refuses is reported and the others still go through
 * (as kubectl apply); the command then exits 1 and does not wait.
 */
import type { Command } from 'commander';
import type { KubeObject, Fault, ManifestEntry } from '../k8s/index.ts';
import { addConnectionOptions, apiStatus, connectKube, describeApiError, forEachInOrder, type ApiObject, type ConnectionOptions, type KubeClient, type MergePatch } from './kube-client.ts';
import type { KubeIo } from './kube-io.ts';
import { kindByKind, objectRef, type KindInfo } from './kube-kinds.ts';
import { faultsError, loadManifestsOrFail } from './kube-manifests.ts';
import { isJsonObject, LAST_APPLIED_ANNOTATION, lastAppliedOf, threeWayMergePatch } from './kube-merge.ts';
import { parseDuration, waitForPods, type PodRef } from './kube-wait.ts';
import { CliError, dim, green, red, yellow } from './style.ts';

interface ApplyOptions extends ConnectionOptions {
  filename: string[];
  namespace?: string;
  wait?: boolean;
  timeout: string;
}

export type ApplyResult = 'created' | 'configured' | 'unchanged';

/** Metadata only the server sets: dropped, so that `get -o yaml` output applies again. */
const SERVER_SET_METADATA = ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'selfLink', 'deletionTimestamp'];

/** The object as apply wants it: namespace defaulted, server-set metadata and status left out. */
export function desiredObject(obj: KubeObject, kind: KindInfo, defaultNamespace: string): ApiObject {
  const copy = structuredClone(obj) as unknown as ApiObject;
  delete copy.status;
  const metadata = { ...copy.metadata };
  for (const key of SERVER_SET_METADATA) delete metadata[key];
  if (kind.namespaced) metadata.namespace ??= defaultNamespace;
  else delete metadata.namespace;
  copy.metadata = metadata;
  return copy;
}

function withAnnotation(obj: ApiObject, value: string): ApiObject {
  return { ...obj, metadata: { ...obj.metadata, annotations: { ...obj.metadata?.annotations, [LAST_APPLIED_ANNOTATION]: value } } };
}

/** Create-or-update of one object; throws what the API server answered. */
export async function applyObject(client: KubeClient, obj: KubeObject, kind: KindInfo, defaultNamespace: string): Promise<{ result: ApplyResult; live: ApiObject }> {
  const desired = desiredObject(obj, kind, defaultNamespace);
  const applied = JSON.stringify(desired);
  const name = desired.metadata?.name ?? '';
  let live: ApiObject;
  try {
    live = await client.read(kind, name, desired.metadata?.namespace);
  } catch (e) {
    if (apiStatus(e)?.code !== 404) throw e;
    // Status given in a manifest (the lab's fixtures pin pod IPs that way) is kept on create only:
    // afterwards status belongs to whoever runs the object, as the status subresource rule says.
    const body = withAnnotation(desired, applied);
    if (isJsonObject((obj as { status?: unknown }).status)) body.status = structuredClone((obj as { status?: unknown }).status);
    return { result: 'created', live: await client.create(body) };
  }
  const { status: _status, ...liveWithoutStatus } = live;
  const lastApplied = lastAppliedOf(live);
  if (lastApplied !== undefined) delete lastApplied.status;
  const patch = threeWayMergePatch(lastApplied, desired, liveWithoutStatus);
  const annotationStale = live.metadata?.annotations?.[LAST_APPLIED_ANNOTATION] !== applied;
  if (Object.keys(patch).length === 0 && !annotationStale) return { result: 'unchanged', live };
  // The patch addresses the object by apiVersion, kind, name and namespace; the same values in the body change nothing.
  const metadata = isJsonObject(patch.metadata) ? patch.metadata : {};
  // `annotations: null` (the manifest dropped all of its annotations) would also drop the one written below:
  // remove the previously applied keys one by one instead.
  const previous = isJsonObject(lastApplied?.metadata) ? lastApplied.metadata.annotations : undefined;
  const annotations = isJsonObject(metadata.annotations) ? metadata.annotations
    : metadata.annotations === null && isJsonObject(previous) ? Object.fromEntries(Object.keys(previous).map((k) => [k, null])) : {};
  const body: MergePatch = {
    ...patch,
    apiVersion: kind.apiVersion,
    kind: kind.kind,
    metadata: { ...metadata, name, ...(kind.namespaced ? { namespace: desired.metadata?.namespace } : {}), annotations: { ...annotations, [LAST_APPLIED_ANNOTATION]: applied } },
  };
  const updated = await client.mergePatch(body);
  // Only the annotation was behind (the object was made by something else, or by an older apply): the object itself did not change.
  return { result: Object.keys(patch).length === 0 ? 'unchanged' : 'configured', live: updated };
}

/**
 * An ExternalHost address belongs to one host (the lab refuses a second
 * claim, but only in its controller's log): checked across the manifests and
 * against the hosts already in the cluster, before anything is applied.
 */
export async function externalAddressFaults(client: KubeClient, entries: readonly ManifestEntry[]): Promise<Fault[]> {
  const claims = entries.flatMap((e) => (e.object.kind === 'ExternalHost' && (e.object.spec.addresses ?? []).length > 0 ? [{ entry: e, host: e.object }] : []));
  if (claims.length === 0) return [];
  const owners = new Map<string, { host: string; where: string }>();
  const applied = new Set(claims.map((c) => c.host.metadata.name));
  for (const live of await client.list(kindByKind('ExternalHost')!)) {
    const name = live.metadata?.name ?? '';
    // A host the manifests apply gets their addresses instead of its present ones.
    if (applied.has(name)) continue;
    const addresses = (live['spec'] as { addresses?: unknown } | undefined)?.addresses;
    for (const a of Array.isArray(addresses) ? addresses : []) owners.set(String(a), { host: name, where: 'in the cluster' });
  }
  const faults: Fault[] = [];
  for (const { entry, host } of claims) {
    (host.spec.addresses ?? []).forEach((a, i) => {
      const owner = owners.get(a);
      if (owner === undefined || owner.host === host.metadata.name) {
        owners.set(a, { host: host.metadata.name, where: `${entry.source}#${entry.doc}` });
        return;
      }
      const path = `${entry.path === '' ? '' : `${entry.path}.`}spec.addresses[${i}]`;
      faults.push({ source: entry.source, doc: entry.doc, path, message: `${a} is already ExternalHost ${owner.host}'s (${owner.where})` });
    });
  }
  return faults;
}

const RESULT_STYLE: Record<ApplyResult, (s: string) => string> = { created: green, configured: yellow, unchanged: dim };

export function registerApply(program: Command, io: KubeIo): void {
  const cmd = program
    .command('apply')
    .description('Create or update objects from manifests (Namespaces first), then wait for their Pods to run')
    .requiredOption('-f, --filename <path...>', 'file, directory (its *.yaml, *.yml, *.json) or - for stdin; repeatable')
    .option('-n, --namespace <ns>', 'namespace for objects that name none (default: the kubeconfig context\'s, "default" in a lab)')
    .option('--wait', 'wait until every applied Pod is Running with an IP (the default)')
    .option('--no-wait', 'return as soon as the objects are stored')
    .option('--timeout <duration>', 'how long --wait waits, e.g. 60s, 2m, 500ms', '60s');
  addConnectionOptions(cmd)
    .addHelpText('after', `
Every manifest is validated first; if any file has any fault, every fault is
listed and nothing is applied (exit 1). Objects are then created or updated,
Namespaces first, several requests at a time, and reported in file order as
kubectl does:
  pod/frontend created
  ciliumnetworkpolicy.cilium.io/allow-fe configured
  service/frontend unchanged

Examples:
  palisade apply -f examples/star-wars/
  palisade apply -f app.yaml -f policy.yaml --timeout 2m
  cat policy.yaml | palisade apply -f - --no-wait`)
    .action(async (opts: ApplyOptions) => {
      const timeoutMs = parseDuration(opts.timeout);
      const entries = await loadManifestsOrFail(opts.filename, io, 'applied');
      const client = connectKube(opts);
      const defaultNamespace = opts.namespace ?? client.defaultNamespace;
      const addressFaults = await externalAddressFaults(client, entries);
      if (addressFaults.length > 0) throw faultsError(addressFaults, 'nothing was applied');

      const pods: PodRef[] = [];
      let failed = 0;
      const targets = entries.map((entry) => {
        const kind = kindByKind(entry.object.kind, entry.object.apiVersion);
        if (kind === undefined) throw new CliError(`${entry.source}#${entry.doc}: kind ${entry.object.kind} cannot be applied by this command`, 1);
        return { entry, kind, ref: objectRef(kind, entry.object.metadata.name) };
      });
      type Target = (typeof targets)[number];
      const report = (t: Target, outcome: PromiseSettledResult<{ result: ApplyResult; live: ApiObject }>): void => {
        if (outcome.status === 'fulfilled') {
          io.out(`${t.ref} ${RESULT_STYLE[outcome.value.result](outcome.value.result)}\n`);
          if (t.kind.kind === 'Pod') pods.push({ namespace: outcome.value.live.metadata?.namespace ?? defaultNamespace, name: t.entry.object.metadata.name });
        } else {
          failed++;
          io.err(`${red('error:')} ${t.ref} (${t.entry.source}#${t.entry.doc}): ${describeApiError(outcome.reason)}\n`);
        }
      };
      // Namespaces are all in place before anything that may live in one; within each phase, requests overlap.
      const namespaceOf = (t: Target): string => (t.kind.namespaced ? t.entry.object.metadata.namespace ?? defaultNamespace : '');
      const key = (t: Target): string => `${t.kind.apiVersion}/${t.kind.kind}/${namespaceOf(t)}/${t.entry.object.metadata.name}`;
      const apply = (t: Target) => applyObject(client, t.entry.object, t.kind, defaultNamespace);
      await forEachInOrder(targets.filter((t) => t.kind.kind === 'Namespace'), apply, report, { key });
      await forEachInOrder(targets.filter((t) => t.kind.kind !== 'Namespace'), apply, report, { key });
      if (failed > 0) throw new CliError(`${failed} of ${targets.length} objects were not applied`, 1);
      if (opts.wait !== false) await waitForPods(client, pods, { timeoutMs }, io);
    });
}
