/**
 * The validation hook main.ts wires in: Palisade's manifest validator for the
 * kinds users write and Palisade reads closely (Pod, Service, the policies), so a policy that
 * `palisade apply` would reject is rejected by `kubectl create` too — and a
 * rejected policy leaves the old one in force. Other kinds (Namespace, Node,
 * EndpointSlice, ExternalHost) are written by the lab itself and pass as they are.
 * `status` is the cluster's own business (the server and the lab write it), so
 * it is not held to the manifest rules.
 */
import { validateObject } from '../k8s/index.ts';

const CHECKED = new Set(['Pod', 'Service', 'NetworkPolicy', 'CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy']);

export function validateKnownKinds(obj: Record<string, unknown>): { path: string; message: string }[] {
  if (!CHECKED.has(String(obj['kind']))) return [];
  const { status: _status, ...spec } = obj;
  return validateObject(spec).faults;
}
