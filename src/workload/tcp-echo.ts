/** tcp-echo: writes back every byte it receives, on every connection. */
import { createServer, type Server } from 'node:net';

export function startTcpEcho(port: number, host = '::'): Promise<Server> {
  const server = createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.pipe(sock);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ipv6Only: false }, () => resolve(server));
  });
}
