/**
 * A loopback TCP port inside the node's network namespace that leads to the
 * lab API server's unix socket. The agent's Kubernetes client speaks plain
 * HTTP to it, exactly as it would to kube-apiserver, while the lab keeps
 * nothing of its own in the node namespace but this process.
 */
import { connect, createServer, type AddressInfo, type Server } from 'node:net';

export interface Tunnel {
  url: string;
  close(): Promise<void>;
}

export function openApiTunnel(socketPath: string): Promise<Tunnel> {
  const open = new Set<() => void>();
  const server: Server = createServer((client) => {
    const upstream = connect(socketPath);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(drop);
    };
    open.add(drop);
    client.once('close', drop);
    client.on('error', drop);
    upstream.on('error', drop);
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        // Ends open connections too: idle keep-alive ones would hold close() for about a minute.
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            for (const drop of [...open]) drop();
          }),
      });
    });
  });
}
