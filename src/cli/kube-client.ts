/**
 * The commands' one way to the API server: a KubeConfig (the lab's, or
 * --kubeconfig) for where the server is and how to authenticate, and plain
 * HTTP requests over one keep-alive connection pool, so every command works
 * the same against the lab API server and a real kube-apiserver.
 *
 *   --lab / $PALISADE_LAB ──► kubeconfigPath(lab) ─┐
 *   --kubeconfig FILE ─────────────────────────────┴─► KubeConfig ──► TLS + auth options ──► node:http(s), keep-alive
 *
 * Objects travel as plain JSON both ways, as the server wrote them (no model
 * classes that would turn dates into Date objects or drop fields `get -o yaml`
 * must show). Paths come from the kind table (kube-kinds.ts), not discovery:
 * a request is one round trip. client-node's own request stack made a new
 * connection for every request to a server without verified TLS (the lab's)
 * and cost about three times the CPU per request, which is what 10,000
 * objects in one apply feel.
 *
 * Errors: "cannot connect" becomes a CliError naming the server and the lab,
 * and so does a kind the server does not serve; API errors are client-node's
 * ApiException (as its own calls throw), read through `apiStatus`.
 */
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { Command } from 'commander';
import * as k8s from '@kubernetes/client-node';
import { kubeconfigPath, labFromEnv, validateLabName } from '../lab/index.ts';
import { kindByKind, type KindInfo } from './kube-kinds.ts';
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

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN']);

/** A socket error ("cannot connect"), possibly wrapped as the cause of another error. */
function isUnreachable(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 5; cur = cur.cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
  }
  return false;
}

/** How long the TLS and auth options taken from the kubeconfig are reused (exec plugins hand out expiring tokens). */
const OPTIONS_TTL_MS = 60_000;

export class KubeClient {
  readonly lab: string;
  /** The API server URL from the kubeconfig's current cluster. */
  readonly server: string;
  /** The current context's namespace, else "default": what -n defaults to. */
  readonly defaultNamespace: string;
  readonly #kc: k8s.KubeConfig;
  readonly #base: URL;
  readonly #explicitKubeconfig: boolean;
  /** Our own pool: client-node's agents do not keep connections alive. */
  readonly #agent: http.Agent;
  #options: { value: Promise<https.RequestOptions>; at: number } | undefined;

  constructor(lab: string, kc: k8s.KubeConfig, explicitKubeconfig: boolean) {
    this.lab = lab;
    this.server = kc.getCurrentCluster()?.server ?? '(no server in kubeconfig)';
    const context = kc.getContextObject(kc.getCurrentContext());
    this.defaultNamespace = context?.namespace ?? 'default';
    this.#kc = kc;
    this.#base = new URL(this.server);
    this.#explicitKubeconfig = explicitKubeconfig;
    const pool = { keepAlive: true, maxSockets: REQUEST_CONCURRENCY };
    this.#agent = this.#base.protocol === 'https:' ? new https.Agent(pool) : new http.Agent(pool);
  }

  read(k: KindInfo, name: string, namespace?: string): Promise<ApiObject> {
    return this.#request(k, 'GET', this.#path(k, namespace, name));
  }

  /** Every object of a kind: in one namespace, or in all of them when `namespace` is undefined. */
  async list(k: KindInfo, namespace?: string): Promise<ApiObject[]> {
    const list = await this.#request<{ items?: ApiObject[] }>(k, 'GET', this.#path(k, k.namespaced ? namespace : undefined));
    // Items of a list answer may omit apiVersion and kind (kube-apiserver does): put them back.
    return (list.items ?? []).map((item) => ({ apiVersion: k.apiVersion, kind: k.kind, ...item }));
  }

  create(obj: ApiObject): Promise<ApiObject> {
    const k = this.#kindOf(obj);
    return this.#request(k, 'POST', this.#path(k, obj.metadata?.namespace ?? this.defaultNamespace), obj);
  }

  /** JSON merge patch (RFC 7386); `patch` carries apiVersion, kind, name and namespace to address the object. */
  mergePatch(patch: MergePatch): Promise<ApiObject> {
    const k = this.#kindOf(patch);
    const path = `${this.#path(k, patch.metadata.namespace ?? this.defaultNamespace, patch.metadata.name)}?fieldManager=palisade`;
    return this.#request(k, 'PATCH', path, patch, 'application/merge-patch+json');
  }

  async delete(k: KindInfo, name: string, namespace?: string): Promise<void> {
    await this.#request(k, 'DELETE', this.#path(k, namespace ?? this.defaultNamespace, name));
  }

  /** `/api/v1/namespaces/shop/pods/frontend`, `/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies`, under the server's own path. */
  #path(k: KindInfo, namespace: string | undefined, name?: string): string {
    const prefix = k.group === '' ? `/api/${k.apiVersion}` : `/apis/${k.apiVersion}`;
    const ns = k.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    const base = this.#base.pathname.replace(/\/$/, '');
    return `${base}${prefix}${ns}/${k.resource}${name !== undefined ? `/${encodeURIComponent(name)}` : ''}`;
  }

  #kindOf(obj: { apiVersion?: string; kind?: string }): KindInfo {
    const k = kindByKind(obj.kind ?? '', obj.apiVersion);
    if (k === undefined) throw new CliError(`the API server at ${this.server} does not serve ${obj.apiVersion ?? ''} ${obj.kind ?? ''}`, 1);
    return k;
  }

  /** TLS material and auth headers from the kubeconfig, reused for OPTIONS_TTL_MS (reading them re-reads files). */
  #requestOptions(): Promise<https.RequestOptions> {
    const now = Date.now();
    if (this.#options === undefined || now - this.#options.at > OPTIONS_TTL_MS) {
      const value = (async () => {
        const opts: https.RequestOptions = {};
        await this.#kc.applyToHTTPSOptions(opts);
        // A proxy needs client-node's agent; otherwise ours, which keeps connections open.
        if (!this.#kc.getCurrentCluster()?.proxyUrl) opts.agent = this.#agent;
        return opts;
      })();
      this.#options = { value, at: now };
    }
    return this.#options.value;
  }

  /** One HTTP exchange; a failure carries whether it went out on a kept-alive connection (`reusedSocket`). */
  async #send(method: string, path: string, payload: string | undefined, contentType: string): Promise<HttpAnswer> {
    const opts = await this.#requestOptions();
    return new Promise((resolve, reject) => {
      const req = (this.#base.protocol === 'https:' ? https : http).request({
        ...opts,
        protocol: this.#base.protocol,
        hostname: this.#base.hostname.replace(/^\[|\]$/g, ''),
        port: this.#base.port,
        method,
        path,
        headers: {
          ...(opts.headers as Record<string, string> | undefined),
          accept: 'application/json',
          'user-agent': 'palisade',
          ...(payload !== undefined ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', reject);
      });
      req.on('error', (e) => reject(Object.assign(e, { reusedSocket: req.reusedSocket })));
      req.end(payload);
    });
  }

  /**
   * One request, its JSON answer parsed. "Cannot connect" and "kind not
   * served" become CliErrors that say what to do; other answers outside 2xx
   * are ApiExceptions carrying the server's Status.
   */
  async #request<T = ApiObject>(k: KindInfo, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let answer: HttpAnswer;
    try {
      answer = await this.#send(method, path, payload, contentType).catch((e: unknown) => {
        // A kept-alive connection the server closed while it sat idle: the request never reached it. Once more, on a new one.
        if ((e as { reusedSocket?: boolean }).reusedSocket === true && (e as NodeJS.ErrnoException).code === 'ECONNRESET') return this.#send(method, path, payload, contentType);
        throw e;
      });
    } catch (e) {
      if (isUnreachable(e)) {
        const hint = this.#explicitKubeconfig ? 'is it running?' : `is the lab '${this.lab}' up? palisade lab status`;
        throw new CliError(`cannot reach the lab API server at ${this.server} (${hint})`, 1);
      }
      throw e;
    }
    if (answer.status >= 200 && answer.status < 300) return JSON.parse(answer.text) as T;
    let status: unknown;
    try { status = JSON.parse(answer.text); } catch { status = answer.text; }
    // A missing object's 404 names it (details.name); a 404 without a name is a path the server does not serve.
    if (answer.status === 404 && !hasDetailsName(status)) {
      throw new CliError(`the API server at ${this.server} does not serve ${k.apiVersion} ${k.kind}`, 1);
    }
    throw new k8s.ApiException(answer.status, `${method} ${path}`, status, answer.headers as Record<string, string>);
  }
}

interface HttpAnswer { status: number; text: string; headers: http.IncomingHttpHeaders }

function hasDetailsName(status: unknown): boolean {
  const details = (status as { details?: { name?: unknown } } | null)?.details;
  return typeof details?.name === 'string' && details.name !== '';
}

/** Requests a command keeps in flight at once: each is cheap, and concurrent writes share the API server's fsyncs. */
export const REQUEST_CONCURRENCY = 16;

/**
 * Runs `op` over `items` with at most `limit` in flight, and hands each
 * outcome to `report` in the items' order, as a one-by-one loop would.
 * Items with the same `key` (one object named twice) run one after another.
 * A CliError (the server cannot be reached) stops new work and is thrown once
 * what is in flight has settled.
 */
export async function forEachInOrder<T, R>(
  items: readonly T[],
  op: (item: T) => Promise<R>,
  report: (item: T, outcome: PromiseSettledResult<R>) => void,
  opts: { limit?: number; key?: (item: T) => string } = {},
): Promise<void> {
  const outcomes: (PromiseSettledResult<R> | undefined)[] = new Array(items.length);
  const lastByKey = new Map<string, Promise<unknown>>();
  let reported = 0;
  let started = 0;
  // The first item that could not reach the server: what came before it is still reported, nothing after.
  // (An object, not a variable: the workers change it across awaits.)
  const stop: { index: number; error?: CliError } = { index: items.length };
  const reportReady = (): void => {
    while (reported < stop.index && outcomes[reported] !== undefined) {
      report(items[reported]!, outcomes[reported]!);
      outcomes[reported++] = undefined;
    }
  };
  const worker = async (): Promise<void> => {
    while (started < items.length && stop.error === undefined) {
      const i = started++;
      const item = items[i]!;
      const key = opts.key?.(item);
      const before = key === undefined ? undefined : lastByKey.get(key);
      const run = (before ?? Promise.resolve()).catch(() => undefined).then(() => op(item));
      if (key !== undefined) lastByKey.set(key, run);
      try {
        outcomes[i] = { status: 'fulfilled', value: await run };
      } catch (reason) {
        if (reason instanceof CliError && i < stop.index) Object.assign(stop, { index: i, error: reason });
        outcomes[i] = { status: 'rejected', reason };
      }
      reportReady();
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.limit ?? REQUEST_CONCURRENCY, items.length) }, worker));
  reportReady();
  if (stop.error !== undefined) throw stop.error;
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
