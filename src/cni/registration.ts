/**
 * The endpoint registration the plugin POSTs to the node agent on ADD, and the
 * one schema both sides hold it to: the plugin builds its request as this
 * type, the agent validates the body (and its saved registry) with it.
 * Strict: a field one side adds and the other does not know is refused, not
 * dropped in silence.
 */
import { z } from 'zod';

export const EndpointRegistration = z.strictObject({
  /** CNI_CONTAINERID: the sandbox; DEL names the endpoint by it. */
  containerId: z.string().min(1),
  namespace: z.string().min(1),
  pod: z.string().min(1),
  /** CNI_IFNAME, the interface inside the pod (eth0). */
  ifname: z.string().min(1),
  /** The veth's node end (lxc…), where the datapath attaches. */
  hostIfname: z.string().min(1),
  /** The pod's IPv4 address without prefix. */
  ip: z.string().min(1),
  /** The pod interface's MAC; ADD always knows it, having made the veth. */
  mac: z.string().min(1),
  /** CNI_NETNS, the path of the pod's network namespace; ADD requires it. */
  netns: z.string().min(1),
});
export type EndpointRegistration = z.infer<typeof EndpointRegistration>;
