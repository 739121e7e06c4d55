/**
 * A kubeconfig for the lab API server, accepted by kubectl and by
 * @kubernetes/client-node's KubeConfig.loadFromFile. The server speaks plain
 * http on loopback with no authentication, so the user entry is empty.
 *
 * `insecure-skip-tls-verify: true` looks odd for http, but client-node 2.x
 * refuses an http:// server without it ("HTTP protocol is not allowed when
 * skipTLSVerify is not set or false", config.js); kubectl ignores it for http.
 */

import { writeFile, rename, mkdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { stringify } from 'yaml';

export interface KubeconfigOptions {
  /** Name of the cluster, user and context entries (default "palisade-lab"). */
  name?: string;
  /** The context's default namespace (default "default"). */
  namespace?: string;
}

export function kubeconfigDocument(server: string, opts: KubeconfigOptions = {}): Record<string, unknown> {
  const name = opts.name ?? 'palisade-lab';
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, 'insecure-skip-tls-verify': server.startsWith('http:') } }],
    users: [{ name, user: {} }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: opts.namespace ?? 'default' } }],
    'current-context': name,
    preferences: {},
  };
}

/** Writes the kubeconfig atomically (temp file + rename), mode 0600 as kubectl writes its own. */
export async function writeKubeconfig(file: string, server: string, opts: KubeconfigOptions = {}): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, stringify(kubeconfigDocument(server, opts)), { mode: 0o600 });
  await rename(tmp, file);
}
