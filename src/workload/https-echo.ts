/**
 * https-echo: http-echo over TLS (1.2 or later). The same JSON reply — method,
 * path, headers, client address, which pod (or ExternalHost) answered — so a
 * test reads HTTPS answers exactly as it reads plain ones.
 *
 *   palisade workload https-echo --port 443 --cert FILE --key FILE
 */
import { createServer as createHttpsServer, type Server } from 'node:https';
import { echoRequestListener } from './http-echo.ts';

export interface TlsIdentity {
  certPem: string;
  keyPem: string;
}

export async function startHttpsEcho(port: number, tls: TlsIdentity, host = '::'): Promise<Server> {
  const server = createHttpsServer({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' }, echoRequestListener);
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ipv6Only: false }, () => resolve(server));
  });
}
