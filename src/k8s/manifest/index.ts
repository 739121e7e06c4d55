/**
 * Manifests: Kubernetes-shaped YAML/JSON in, typed objects (../objects.ts) or
 * precise faults out. Everything that reads objects from a person — the CLI,
 * the lab API server — goes through here, so a policy means the same thing
 * wherever it is applied.
 *
 *   paths ──load.ts──► text (file | directory/*.{yaml,yml,json} | '-' stdin)
 *     │
 *     ▼ parse.ts
 *   documents (`---`; 1-based, empty ones counted) ── YAML syntax error ──► fault (line, column)
 *     │
 *     ▼ List / <Kind>List unpacked into items[i]
 *   one object ──validate.ts: dispatch on kind──► that kind's zod schema
 *     │   schema-core.ts (Namespace, Pod, Service)
 *     │   schema-k8s-networkpolicy.ts (NetworkPolicy)
 *     │   schema-cilium*.ts (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy)
 *     │     structure: strict objects, one fault per unknown / unsupported field
 *     │     semantics: checks-*.ts (names, CIDRs, DNS, ports, ICMP) and
 *     │                cross-field checks that run even below a broken field
 *     ▼
 *   typed KubeObject ──► ManifestFile.entries
 *   zod issues ──fault.ts──► Fault {source, doc, path, message} ──► ManifestFile.faults
 *
 *   (delete -f: one object ──validate.ts identifyObject──► ObjectRef {apiVersion, kind,
 *    namespace, name}; nothing else of it is read)
 *
 * Contract: a file with any fault is applied not at all; every fault of a file
 * is reported in one go. A field set to null is the field left out, as the
 * API server reads it (schema-kit.ts; the table in nulls.test.ts).
 *
 * Caveats: HTTP `method`/`path`/`host` are checked as JavaScript regular
 * expressions, while upstream Cilium compiles them as Go RE2; a pattern using
 * look-around or back-references passes here and would fail in Cilium.
 */
export { formatFault, type Fault } from './fault.ts';
export { parseManifestRefs, parseManifestText, type ManifestEntry, type ManifestRef } from './parse.ts';
export { loadManifestRefs, loadManifests, STDIN_SOURCE } from './load.ts';
export { validateObject } from './validate.ts';
export { labelValueError, pathSegmentNameError, qualifiedNameError } from './checks-names.ts';
export { EXTERNAL_HOST_DEFAULT_PORTS, externalAddressError, LAB_RANGES } from './schema-lab.ts';
