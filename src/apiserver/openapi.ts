/**
 * The smallest OpenAPI v3 that kubectl needs: no schemas, only the PATCH
 * operation of each resource, tagged with its x-kubernetes-group-version-kind
 * and listing the `fieldValidation` query parameter.
 *
 * Why it exists: `kubectl create/apply` validate by default (--validate=strict).
 * kubectl first asks whether the server validates fields itself
 * (k8s.io/cli-runtime resource.queryParamVerifierV3: "look in the OpenAPI if
 * the specific group-version-kind supports the specific query parameter for
 * the PATCH end-point"). With /openapi/v3 and /openapi/v2 both 404, it falls
 * back to client-side validation, which needs the schema and fails with
 * "failed to download openapi". Answering "yes, fieldValidation is supported"
 * makes kubectl send ?fieldValidation=Strict and leave validation to the
 * server, i.e. to the `validate` hook. (The parameter itself is accepted and
 * ignored: without schemas there are no unknown fields to find.)
 *
 *   GET /openapi/v3                 {"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=…"},…}}
 *   GET /openapi/v3/api/v1          OpenAPI 3.0 document for core/v1
 *   GET /openapi/v3/apis/<g>/<v>    … for each group version
 * /openapi/v2 stays 404: kubectl only falls back to it when v3 is missing.
 */

import { createHash } from 'node:crypto';
import { groupVersions, type GroupVersion, type ResourceInfo } from './resources.ts';
import { VERSION_INFO } from './discovery.ts';

export interface OpenApiDocuments {
  root: string;
  /** By path key: "api/v1", "apis/cilium.io/v2". */
  byGroupVersion: Map<string, string>;
}

function itemPath(r: ResourceInfo): string {
  const prefix = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  return r.namespaced ? `${prefix}/namespaces/{namespace}/${r.resource}/{name}` : `${prefix}/${r.resource}/{name}`;
}

function groupVersionDocument(gv: GroupVersion): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const r of gv.resources) {
    paths[itemPath(r)] = {
      patch: {
        description: `partially update the specified ${r.kind}`,
        operationId: `patch${r.kind}`,
        parameters: [
          { name: 'fieldValidation', in: 'query', description: 'accepted; validation is done by the server\'s validate hook', schema: { type: 'string', uniqueItems: true } },
          { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
        ],
        requestBody: {
          content: {
            'application/json-patch+json': { schema: { type: 'object' } },
            'application/merge-patch+json': { schema: { type: 'object' } },
            'application/strategic-merge-patch+json': { schema: { type: 'object' } },
          },
          required: true,
        },
        responses: { '200': { description: 'OK' } },
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': { group: r.group, version: r.version, kind: r.kind },
      },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: VERSION_INFO.gitVersion },
    paths,
    components: { schemas: {} },
  };
}

export function buildOpenApi(resources: readonly ResourceInfo[]): OpenApiDocuments {
  const byGroupVersion = new Map<string, string>();
  const rootPaths: Record<string, { serverRelativeURL: string }> = {};
  for (const gv of groupVersions(resources)) {
    const key = gv.group === '' ? `api/${gv.version}` : `apis/${gv.group}/${gv.version}`;
    const doc = JSON.stringify(groupVersionDocument(gv));
    byGroupVersion.set(key, doc);
    const hash = createHash('sha512').update(doc).digest('hex').slice(0, 32).toUpperCase();
    rootPaths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
  }
  return { root: JSON.stringify({ paths: rootPaths }), byGroupVersion };
}
