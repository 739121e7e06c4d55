/**
 * @kubernetes/client-node, with objects kept as the server's JSON.
 *
 * client-node turns known kinds into its model classes: dates become Date
 * objects, fields its models lack are dropped, and some are renamed (a
 * NetworkPolicy rule's `from` becomes `_from`). Palisade reads policies field
 * by field, so every object it consumes must stay plain JSON: RawObjectApi
 * hands back the body of every answer its caller asked for without a type,
 * and sends objects as they are — the stock create/replace/patch would run a
 * plain object through the model classes and silently drop such fields.
 */
import * as k8s from '@kubernetes/client-node';

export class RawObjectApi extends k8s.KubernetesObjectApi {
  static makeRaw(kc: k8s.KubeConfig, withDefaultNamespace = true): RawObjectApi {
    const api = kc.makeApiClient(RawObjectApi);
    if (withDefaultNamespace) api.setDefaultNamespace(kc);
    return api;
  }

  override create<T extends k8s.KubernetesObject>(spec: T, _pretty?: string, dryRun?: string, fieldManager?: string): Promise<T> {
    return this.#send(spec, 'create', k8s.HttpMethod.POST, 'application/json', { dryRun, fieldManager });
  }

  override replace<T extends k8s.KubernetesObject>(spec: T, _pretty?: string, dryRun?: string, fieldManager?: string): Promise<T> {
    return this.#send(spec, 'replace', k8s.HttpMethod.PUT, 'application/json', { dryRun, fieldManager });
  }

  override patch<T extends k8s.KubernetesObject>(
    spec: T,
    _pretty?: string,
    dryRun?: string,
    fieldManager?: string,
    force?: boolean,
    patchStrategy: k8s.PatchStrategy = k8s.PatchStrategy.StrategicMergePatch,
  ): Promise<T> {
    return this.#send(spec, 'patch', k8s.HttpMethod.PATCH, patchStrategy, { dryRun, fieldManager, force: force === undefined ? undefined : String(force) });
  }

  async #send<T extends k8s.KubernetesObject>(
    spec: T,
    action: 'create' | 'replace' | 'patch',
    method: k8s.HttpMethod,
    contentType: string,
    query: Record<string, string | undefined>,
  ): Promise<T> {
    const path = await this.specUriPath(spec, action);
    const ctx = this.configuration.baseServer.makeRequestContext(path, method);
    ctx.setHeaderParam('Accept', 'application/json, */*;q=0.8');
    ctx.setHeaderParam('Content-Type', contentType);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) ctx.setQueryParam(k, v);
    ctx.setBody(JSON.stringify(spec));
    return this.requestPromise<T>(ctx);
  }

  protected override async processResponse<T extends k8s.KubernetesObject>(response: k8s.ResponseContext, type?: string): Promise<T> {
    // Discovery (resource()) asks for a typed V1APIResourceList: leave that path alone.
    if (type !== undefined || response.httpStatusCode < 200 || response.httpStatusCode > 299) {
      return super.processResponse<T>(response, type);
    }
    return JSON.parse(await response.body.text()) as T;
  }
}

/** A list function for an informer: every object of a kind, in all namespaces, as plain JSON. */
export function rawLister(kc: k8s.KubeConfig, apiVersion: string, kind: string): () => Promise<k8s.KubernetesListObject<k8s.KubernetesObject>> {
  const api = RawObjectApi.makeRaw(kc, false);
  return () => api.list(apiVersion, kind);
}
