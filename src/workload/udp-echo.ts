/** udp-echo: sends every datagram back to its sender. */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';

export function startUdpEcho(port: number, host = '::'): Promise<Socket> {
  const sock = isIPv4(host) ? createSocket('udp4') : createSocket({ type: 'udp6', ipv6Only: false });
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, host, () => resolve(sock));
  });
}
