/**
 * `palisade get TYPE [NAME]`: objects as kubectl-style tables, or as JSON,
 * YAML or `type/name` lines.
 *
 *   TYPE ──kube-kinds.ts──► one kind, or `policies` = CNP + CCNP + KNP
 *     │ list (one namespace | -A) or read NAME, per kind
 *     ▼ sorted by namespace, kind, name
 *   -o (table) | wide ──kube-tables.ts──► aligned columns
 *   -o json | yaml   ──► the object (one NAME) or a v1 List, as kubectl prints them
 *   -o name          ──► ciliumnetworkpolicy.cilium.io/allow-fe
 *
 * `get policies -n NS` also shows the CiliumClusterwideNetworkPolicies: they
 * apply to that namespace's pods too, and a person asking "what policies
 * apply here" should see them.
 */
import { Option, type Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { addConnectionOptions, apiStatus, connectKube, type ApiObject, type ConnectionOptions, type KubeClient } from './kube-client.ts';
import type { KubeIo } from './kube-io.ts';
import { knownKindWords, objectRef, POLICIES_WORDS, POLICY_KINDS, resolveKind, type KindInfo } from './kube-kinds.ts';
import { buildTable, COLUMNS, formatTable } from './kube-tables.ts';
import { CliError } from './style.ts';

interface GetOptions extends ConnectionOptions {
  namespace?: string;
  allNamespaces?: boolean;
  output?: 'wide' | 'json' | 'yaml' | 'name';
}

interface Target {
  kinds: readonly KindInfo[];
  /** Key into COLUMNS. */
  columns: string;
  /** What a person called it, for messages. */
  noun: string;
}

function resolveTarget(word: string): Target {
  if (POLICIES_WORDS.includes(word.toLowerCase())) return { kinds: POLICY_KINDS, columns: 'policies', noun: 'policy' };
  const kind = resolveKind(word);
  if (kind === undefined) {
    throw new CliError(`unknown resource type ${JSON.stringify(word)}: use one of ${knownKindWords()}, or policies (pol) for all policy kinds`, 2);
  }
  return { kinds: [kind], columns: POLICY_KINDS.includes(kind) ? 'policies' : kind.kind, noun: kind.singular };
}

function sortKey(o: ApiObject): string {
  return `${o.metadata?.namespace ?? ''}\u0000${o.kind ?? ''}\u0000${o.metadata?.name ?? ''}`;
}

async function fetchObjects(client: KubeClient, target: Target, name: string | undefined, namespace: string | undefined): Promise<ApiObject[]> {
  const found: ApiObject[] = [];
  for (const kind of target.kinds) {
    if (name === undefined) {
      found.push(...await client.list(kind, namespace));
      continue;
    }
    try {
      found.push({ apiVersion: kind.apiVersion, kind: kind.kind, ...await client.read(kind, name, namespace) });
    } catch (e) {
      // With several kinds (policies), a name missing from one of them is expected.
      if (apiStatus(e)?.code !== 404) throw e;
    }
  }
  return found.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
}

/** The v1 List kubectl prints for several objects. */
function asList(items: ApiObject[]): ApiObject {
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items };
}

export function registerGet(program: Command, io: KubeIo): void {
  const cmd = program
    .command('get')
    .description('Show objects: pods, services, policies, nodes, externalhosts, namespaces, endpointslices')
    .argument('<type>', 'pods (po), services (svc), policies (pol), nodes (no), externalhosts (eh), namespaces (ns), endpointslices, or one policy kind (cnp, ccnp, netpol)')
    .argument('[name]', 'one object by name')
    .option('-n, --namespace <ns>', 'namespace (default: the kubeconfig context\'s, "default" in a lab)')
    .option('-A, --all-namespaces', 'objects of every namespace, with a NAMESPACE column')
    .addOption(new Option('-o, --output <format>', 'wide (more columns), json, yaml, or name (type/name lines)').choices(['wide', 'json', 'yaml', 'name']));
  addConnectionOptions(cmd)
    .addHelpText('after', `
Tables:
  pods            NAME READY STATUS IP NODE AGE (wide: + LABELS)
  services        NAME CLUSTER-IP PORTS SELECTOR AGE
  policies        KIND (CNP | CCNP | KNP) NAME SUMMARY AGE (wide: + SELECTOR LABELS)
  nodes           NAME INTERNAL-IP POD-CIDR AGE
  externalhosts   NAME NAMES PORTS IP AGE

Examples:
  palisade get pods -A
  palisade get pol -n star-wars -o wide
  palisade get cnp allow-fe -o yaml
  palisade get svc -o name`)
    .action(async (type: string, name: string | undefined, opts: GetOptions) => {
      const target = resolveTarget(type);
      if (opts.allNamespaces === true && opts.namespace !== undefined) throw new CliError('use -n NAMESPACE or -A, not both', 2);
      const client = connectKube(opts);
      const allNamespaces = opts.allNamespaces === true && name === undefined;
      const namespace = allNamespaces ? undefined : opts.namespace ?? client.defaultNamespace;
      const namespaced = target.kinds.some((k) => k.namespaced);
      const objects = await fetchObjects(client, target, name, namespace);

      if (name !== undefined && objects.length === 0) {
        throw new CliError(`${target.noun} ${JSON.stringify(name)} not found${namespaced ? ` in namespace ${JSON.stringify(namespace)}` : ''}`, 1);
      }
      switch (opts.output) {
        case 'json':
        case 'yaml': {
          const doc = name !== undefined && objects.length === 1 ? objects[0]! : asList(objects);
          io.out(opts.output === 'json' ? `${JSON.stringify(doc, null, 4)}\n` : toYaml(doc));
          return;
        }
        case 'name':
          for (const o of objects) {
            const kind = target.kinds.find((k) => k.kind === o.kind) ?? target.kinds[0]!;
            io.out(`${objectRef(kind, o.metadata?.name ?? '')}\n`);
          }
          return;
        default: {
          if (objects.length === 0) {
            io.err(namespaced && !allNamespaces ? `No resources found in ${namespace} namespace.\n` : 'No resources found\n');
            return;
          }
          const table = buildTable(COLUMNS[target.columns]!, objects, { now: Date.now(), wide: opts.output === 'wide', withNamespace: allNamespaces && namespaced });
          io.out(formatTable(table));
        }
      }
    });
}
