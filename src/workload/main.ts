/**
 * `palisade workload …` without the rest of the CLI: pods start many of these
 * at once, and each should cost a process start, not the whole CLI's imports.
 * bin/palisade routes `workload` here.
 */
import { parseArgs } from 'node:util';
import { startHttpEcho, startTcpEcho, startUdpEcho } from './index.ts';

const USAGE = `usage: palisade workload http-echo|tcp-echo|udp-echo --port N

  http-echo   answer every HTTP request with JSON: method, path, headers, client address, pod name
  tcp-echo    echo every byte back on every TCP connection
  udp-echo    send every UDP datagram back to its sender`;

const [kind, ...rest] = process.argv.slice(2);
const starters: Record<string, (port: number) => Promise<unknown>> = {
  'http-echo': startHttpEcho,
  'tcp-echo': startTcpEcho,
  'udp-echo': startUdpEcho,
};
const start = kind ? starters[kind] : undefined;
if (!start || rest.includes('--help') || rest.includes('-h')) {
  console.log(USAGE);
  process.exit(start || kind === undefined || kind === '--help' || kind === '-h' ? 0 : 2);
}
const { values } = parseArgs({ args: rest, options: { port: { type: 'string' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`error: --port: ${JSON.stringify(values.port ?? '')} is not a port (1–65535)`);
  process.exit(2);
}
await start(port);
console.log(`${kind} listening on port ${port}`);
