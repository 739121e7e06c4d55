/**
 * The commands' one way to the API server: a KubeConfig (the lab's, or
 * --kubeconfig) and @kubernetes/client-node's KubernetesObjectApi, so every
 * command works the same against the lab API server and a real kube-apiserver.
 *
 *   --lab / $PALISADE_LAB ──► kubeconfigPath(lab) ─┐
 *   --kubeconfig FILE ─────────────────────────────┴─► KubeConfig ──► RawObjectApi ──► HTTP
 *
 * Objects travel as plain JSON both ways. client-node would turn known kinds
 * into its model classes (V1Pod …): dates become Date objects and fields its
 * models lack are dropped, which `get -o yaml` must not do. RawObjectApi keeps
 * the server's JSON for every answer a caller asked for without a type.
 *
 * Errors: "cannot connect" becomes a CliError naming the server and the lab;
 * API errors stay ApiException, read through `apiStatus`.
 */
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import * as k8s from '@kubernetes/client-node';
import { kubeconfigPath, labFromEnv, validateLabName } from '../lab/paths.ts';
import { RawObjectApi } from '../k8s/raw-client.ts';
import type { KindInfo } from './kube-kinds.ts';
import { CliError } from './style.ts';

/** What every kubectl-like command accepts to find its cluster. */
export interface ConnectionOptions {
  lab?: string;
  kubeconfig?: string;
}

export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--lab <name>', 'the lab to talk to (default: $PALISADE_LAB, else "default")')
    .option('--kubeconfig <file>', "kubeconfig to use instead of the lab's (/run/palisade/<lab>/kubeconfig)");
}

/** A JSON object as the API server sends it. */
export type JsonObject = Record<string, unknown>;

/** Any object read from the API: apiVersion, kind, metadata and whatever else. */
export interface ApiObject extends JsonObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
    resourceVersion?: string;
    [k: string]: unknown;
  };
}

/** A JSON merge patch that also names its object (null removes a field). */
export interface MergePatch extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string; namespace?: string };
}

/** The parts of a metav1.Status error a command needs. */
export interface ApiStatus {
  code: number;
  reason: string;
  message: string;
}

/** The Status of an API error, or undefined when `e` is not an answer from the server. */
export function apiStatus(e: unknown): ApiStatus | undefined {
  if (!(e instanceof k8s.ApiException)) return undefined;
  const code = (e as k8s.ApiException<unknown>).code;
  const raw = (e as k8s.ApiException<unknown>).body;
  let body: unknown = raw;
  if (typeof raw === 'string') {
    try { body = JSON.parse(raw); } catch { body = undefined; }
  }
  const status = (body ?? {}) as { reason?: unknown; message?: unknown };
  return {
    code,
    reason: typeof status.reason === 'string' ? status.reason : `HTTP ${code}`,
    message: typeof status.message === 'string' ? status.message : typeof raw === 'string' && raw !== '' ? raw : e.message,
  };
}

export function isNotFound(e: unknown): boolean {
  return apiStatus(e)?.code === 404;
}

/** kubectl's wording: `Error from server (NotFound): pods "x" not found`. */
export function describeApiError(e: unknown): string {
  const s = apiStatus(e);
  if (s !== undefined) return `Error from server (${s.reason}): ${s.message}`;
  return e instanceof Error ? e.message : String(e);
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

/** fetch() reports "cannot connect" as TypeError('fetch failed') with the socket error as its cause. */
function isUnreachable(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 5; cur = cur.cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
    if (cur instanceof TypeError && cur.message === 'fetch failed') return true;
  }
  return false;
}

export class KubeClient {
  readonly lab: string;
  /** The API server URL from the kubeconfig's current cluster. */
  readonly server: string;
  /** The current context's namespace, else "default": what -n defaults to. */
  readonly defaultNamespace: string;
  readonly #api: RawObjectApi;
  readonly #explicitKubeconfig: boolean;

  constructor(lab: string, kc: k8s.KubeConfig, explicitKubeconfig: boolean) {
    this.lab = lab;
    this.server = kc.getCurrentCluster()?.server ?? '(no server in kubeconfig)';
    const context = kc.getContextObject(kc.getCurrentContext());
    this.defaultNamespace = context?.namespace ?? 'default';
    this.#api = RawObjectApi.makeRaw(kc);
    this.#explicitKubeconfig = explicitKubeconfig;
  }

  /** Runs one API call; "cannot connect" and "kind not served" become CliErrors that say what to do. */
  async #call<T>(what: { apiVersion: string; kind: string }, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isUnreachable(e)) {
        const hint = this.#explicitKubeconfig ? 'is it running?' : `is the lab '${this.lab}' up? palisade lab status`;
        throw new CliError(`cannot reach the lab API server at ${this.server} (${hint})`, 1);
      }
      const message = e instanceof Error ? e.message : '';
      if (message.startsWith('Unrecognized API version and kind') || (message.startsWith('Failed to fetch resource metadata') && apiStatus(e)?.code === 404)) {
        throw new CliError(`the API server at ${this.server} does not serve ${what.apiVersion} ${what.kind}`, 1);
      }
      throw e;
    }
  }

  read(k: KindInfo, name: string, namespace?: string): Promise<ApiObject> {
    const metadata = k.namespaced ? { name, namespace } : { name };
    return this.#call(k, () => this.#api.read({ apiVersion: k.apiVersion, kind: k.kind, metadata }) as Promise<unknown> as Promise<ApiObject>);
  }

  /** Every object of a kind: in one namespace, or in all of them when `namespace` is undefined. */
  async list(k: KindInfo, namespace?: string): Promise<ApiObject[]> {
    const list = await this.#call(k, () => this.#api.list(k.apiVersion, k.kind, k.namespaced ? namespace : undefined));
    // Items of a list answer may omit apiVersion and kind (kube-apiserver does): put them back.
    return (list.items as unknown as ApiObject[]).map((item) => ({ apiVersion: k.apiVersion, kind: k.kind, ...item }));
  }

  create(obj: ApiObject): Promise<ApiObject> {
    return this.#call(kindOf(obj), () => this.#api.create(obj as k8s.KubernetesObject) as Promise<unknown> as Promise<ApiObject>);
  }

  /** JSON merge patch (RFC 7386); `patch` carries apiVersion, kind, name and namespace to address the object. */
  mergePatch(patch: MergePatch): Promise<ApiObject> {
    return this.#call(patch, () => this.#api.patch(patch as k8s.KubernetesObject, undefined, undefined, 'palisade', undefined, k8s.PatchStrategy.MergePatch) as Promise<unknown> as Promise<ApiObject>);
  }

  async delete(k: KindInfo, name: string, namespace?: string): Promise<void> {
    const metadata = k.namespaced ? { name, namespace } : { name };
    await this.#call(k, () => this.#api.delete({ apiVersion: k.apiVersion, kind: k.kind, metadata }));
  }
}

function kindOf(obj: ApiObject): { apiVersion: string; kind: string } {
  return { apiVersion: obj.apiVersion ?? '', kind: obj.kind ?? '' };
}

/** The client for --lab / --kubeconfig; a missing kubeconfig is reported as "is the lab up?". */
export function connectKube(opts: ConnectionOptions): KubeClient {
  const lab = labFromEnv(opts.lab);
  const labError = validateLabName(lab);
  if (labError !== null) throw new CliError(labError, 2);
  const file = opts.kubeconfig ?? kubeconfigPath(lab);
  if (!existsSync(file)) {
    throw new CliError(opts.kubeconfig !== undefined
      ? `kubeconfig ${file} does not exist`
      : `lab '${lab}' has no kubeconfig at ${file}: is the lab up? (palisade lab up, palisade lab status)`, 1);
  }
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (e) {
    throw new CliError(`cannot read kubeconfig ${file}: ${(e as Error).message}`, 1);
  }
  if (kc.getCurrentCluster() === null) throw new CliError(`kubeconfig ${file} has no current cluster`, 1);
  return new KubeClient(lab, kc, opts.kubeconfig !== undefined);
}
