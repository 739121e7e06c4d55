/**
 * The ports this process's transparent proxies listen on. A proxy port is
 * never a destination: steering keeps the pod's original destination, so
 * traffic that arrives with a proxy port as its destination was addressed to
 * a proxy directly (refused), and no proxy forwards to one (it would be
 * talking to itself or to its sibling).
 */
const ports = new Map<number, number>();

export function isProxyPort(port: number): boolean {
  return ports.has(port);
}

/** Counted: a UDP and a TCP listener may share one port number. */
export function addProxyPort(port: number): void {
  ports.set(port, (ports.get(port) ?? 0) + 1);
}

export function removeProxyPort(port: number): void {
  const n = (ports.get(port) ?? 0) - 1;
  if (n > 0) ports.set(port, n);
  else ports.delete(port);
}
