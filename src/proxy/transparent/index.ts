/**
 * The proxies' sockets: IP_TRANSPARENT listeners and upstream connections
 * that keep the pod's addresses (TCP), and batched transparent UDP
 * (recvmmsg/sendmmsg through libc). Both datapaths steer L7 and DNS to these;
 * proxy-ports.ts refuses traffic aimed at a proxy port itself.
 */
export { listenTransparent, connectTransparent } from './transparent-tcp.ts';
export { openTransparentUdp, openUdp, openUdpFrom, type TransparentUdp } from './transparent-udp.ts';
