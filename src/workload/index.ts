/**
 * Workloads a lab pod can run as its container command:
 *   palisade workload http-echo --port N   JSON echo of each request
 *   palisade workload tcp-echo  --port N   byte echo
 *   palisade workload udp-echo  --port N   datagram echo
 *   palisade workload https-echo --port N --cert F --key F   the JSON echo over TLS
 * They bind to all addresses (IPv4 and IPv6) of the pod's network namespace.
 */
export { startHttpEcho, echoRequestListener, podName, type EchoReply } from './http-echo.ts';
export { startHttpsEcho, type TlsIdentity } from './https-echo.ts';
export { startTcpEcho } from './tcp-echo.ts';
export { startUdpEcho } from './udp-echo.ts';
/** `palisade workload …`: the lean entry point (main.ts), run when imported. */
export const runWorkloadMain = (): Promise<unknown> => import('./main.ts');
