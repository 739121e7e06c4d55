/**
 * The validation hook main.ts wires in: Palisade's manifest validator for the
 * kinds it knows (Namespace, Pod, Service, the policies), so a policy that
 * `palisade apply` would reject is rejected by `kubectl create` too — and a
 * rejected policy leaves the old one in force. Other kinds (Node,
 * EndpointSlice, ExternalHost) are written by the lab itself and pass as they are.
 */
import { validateObject } from '../k8s/manifest/index.ts';

const CHECKED = new Set(['Namespace', 'Pod', 'Service', 'NetworkPolicy', 'CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy']);

export function validateKnownKinds(obj: Record<string, unknown>): { path: string; message: string }[] {
  if (!CHECKED.has(String(obj['kind']))) return [];
  return validateObject(obj).faults;
}
