/**
 * core/v1 kinds Palisade reads: Namespace, Pod, Service. Only the fields of
 * objects.ts exist; any other field is refused by name, so a manifest never
 * silently means more than Palisade understands.
 */
import * as z from 'zod';
import type { Namespace, Pod, Service } from '../objects.ts';
import { ipError } from './checks-cidr.ts';
import { dns1035LabelError, dns1123LabelError, dns1123SubdomainError, envVarNameError, portNameError } from './checks-names.ts';
import { intOrPortNameField, portNumberField } from './checks-ports.ts';
import { labelMap, objectMeta } from './schema-meta.ts';
import { apiVersionField, checkedString, isRecord, list, STATUS_REFUSED, strictObject, withChecks, type Report } from './schema-kit.ts';

export const k8sProtocol = z.enum(['TCP', 'UDP', 'SCTP']);

const ipField = checkedString(ipError);

/** "a cluster-scoped object must not have a namespace" */
export function refuseNamespace(kind: string, value: Record<string, unknown>, report: Report): void {
  if (isRecord(value.metadata) && value.metadata.namespace !== undefined) {
    report(['metadata', 'namespace'], `${kind} is cluster-scoped: remove metadata.namespace`);
  }
}

/** Upstream requires distinct names in a list (containers, Service ports). */
function reportDuplicateNames(items: unknown[], what: string, report: Report, listKey: string): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    if (!isRecord(item) || typeof item.name !== 'string') return;
    const first = seen.get(item.name);
    if (first === undefined) seen.set(item.name, i);
    else report([listKey, i, 'name'], `duplicate ${what} name ${JSON.stringify(item.name)} (also ${listKey}[${first}])`);
  });
}

// ---------------------------------------------------------------- Namespace

export const namespaceSchema: z.ZodType<Namespace> = withChecks(
  strictObject(
    {
      apiVersion: apiVersionField('v1', 'Namespace'),
      kind: z.literal('Namespace'),
      // Namespace names are DNS-1123 labels upstream (ValidateNamespaceName).
      metadata: objectMeta(dns1123LabelError),
    },
    { refused: { spec: 'Namespace spec is not supported by Palisade: remove it', status: STATUS_REFUSED } },
  ),
  (ns, report) => refuseNamespace('Namespace', ns, report),
);

// ---------------------------------------------------------------- Pod

const containerPort = strictObject({
  name: checkedString(portNameError).optional(),
  containerPort: portNumberField(1),
  protocol: k8sProtocol.optional(),
});

const container = strictObject({
  name: checkedString(dns1123LabelError),
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  ports: z.array(containerPort).optional(),
  env: z.array(strictObject({ name: checkedString(envVarNameError), value: z.string().optional() })).optional(),
});

const podSpec = withChecks(
  strictObject(
    {
      nodeName: checkedString(dns1123SubdomainError).optional(),
      serviceAccountName: checkedString(dns1123SubdomainError).optional(),
      hostNetwork: z.boolean().optional(),
      containers: z.array(container).min(1, { error: 'a Pod needs at least one container' }),
    },
    { missing: 'required field is missing: a Pod needs spec.containers' },
  ),
  (spec, report) => reportDuplicateNames(list(spec.containers), 'container', report, 'containers'),
);

const podStatus = strictObject({
  phase: z.string().optional(),
  podIP: ipField.optional(),
  podIPs: z.array(strictObject({ ip: ipField })).optional(),
  hostIP: ipField.optional(),
  conditions: z.array(z.unknown()).optional(),
  message: z.string().optional(),
});

export const podSchema: z.ZodType<Pod> = strictObject({
  apiVersion: apiVersionField('v1', 'Pod'),
  kind: z.literal('Pod'),
  metadata: objectMeta(dns1123SubdomainError),
  spec: podSpec,
  status: podStatus.optional(),
});

// ---------------------------------------------------------------- Service

const clusterIPField = z.string().superRefine((s, ctx) => {
  if (s === 'None') {
    ctx.addIssue({ code: 'custom', message: 'headless Services (clusterIP: None) are not supported by Palisade: give an IP or leave clusterIP out', input: s });
    return;
  }
  const error = ipError(s);
  if (error !== undefined) ctx.addIssue({ code: 'custom', message: error, input: s });
});

const servicePort = strictObject({
  name: checkedString(dns1123LabelError).optional(),
  protocol: k8sProtocol.optional(),
  port: portNumberField(1),
  targetPort: intOrPortNameField.optional(),
});

const serviceSpec = withChecks(
  strictObject(
    {
      type: z
        .literal('ClusterIP', {
          error: (iss) => `only type ClusterIP is supported by Palisade (got ${JSON.stringify(iss.input)}): remove type or set it to ClusterIP`,
        })
        .optional(),
      selector: labelMap('k8s').optional(),
      ports: z.array(servicePort).optional(),
      clusterIP: clusterIPField.optional(),
      clusterIPs: z.array(clusterIPField).optional(),
      sessionAffinity: z.enum(['None', 'ClientIP']).optional(),
    },
    { missing: 'required field is missing: a Service needs spec' },
  ),
  (spec, report) => {
    const ports = list(spec.ports);
    // "when multiple ports are specified, each must have a name" (ValidateService)
    if (ports.length > 1) {
      ports.forEach((p, i) => {
        if (isRecord(p) && p.name === undefined) report(['ports', i, 'name'], 'required when a Service has more than one port');
      });
    }
    reportDuplicateNames(ports, 'port', report, 'ports');
  },
);

export const serviceSchema: z.ZodType<Service> = strictObject(
  {
    apiVersion: apiVersionField('v1', 'Service'),
    kind: z.literal('Service'),
    // Service names are DNS-1035 labels upstream (ValidateServiceName).
    metadata: objectMeta(dns1035LabelError),
    spec: serviceSpec,
  },
  { refused: { status: STATUS_REFUSED } },
);
