/**
 * Entry point: `node src/apiserver/main.ts --port N --data FILE [--host H] [--kubeconfig FILE]`.
 * Prints one JSON line `{"url":"http://127.0.0.1:N"}` once it accepts
 * connections, and shuts down cleanly (pending writes flushed) on SIGTERM/SIGINT.
 */

import { parseArgs } from 'node:util';
import { startApiServer, writeKubeconfig } from './index.ts';
import { validateKnownKinds } from './validate-objects.ts';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    data: { type: 'string' },
    kubeconfig: { type: 'string' },
    socket: { type: 'string' },
    'watch-history': { type: 'string' },
    'bookmark-interval-ms': { type: 'string' },
  },
  strict: true,
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`invalid --port ${values.port}\n`);
  process.exit(2);
}

const server = await startApiServer({
  host: values.host,
  port,
  ...(values.data ? { dataFile: values.data } : {}),
  ...(values.socket ? { socketPath: values.socket } : {}),
  validate: validateKnownKinds,
  ...(values['watch-history'] ? { watchHistory: Number(values['watch-history']) } : {}),
  ...(values['bookmark-interval-ms'] ? { bookmarkIntervalMs: Number(values['bookmark-interval-ms']) } : {}),
});
if (values.kubeconfig) await writeKubeconfig(values.kubeconfig, server.url);
process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port })}\n`);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  server.close().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
