/**
 * `palisade workload …` without the rest of the CLI: pods start many of these
 * at once, and each should cost a process start, not the whole CLI's imports.
 * bin/palisade routes `workload` here.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { startHttpEcho, startHttpsEcho, startTcpEcho, startUdpEcho } from './index.ts';

const USAGE = `usage: palisade workload http-echo|tcp-echo|udp-echo --port N
       palisade workload https-echo --port N --cert FILE --key FILE

  http-echo    answer every HTTP request with JSON: method, path, headers, client address, pod name
  https-echo   the same over TLS 1.2+, with the given PEM certificate and key
  tcp-echo     echo every byte back on every TCP connection
  udp-echo     send every UDP datagram back to its sender`;

const [kind, ...rest] = process.argv.slice(2);
const starters: Record<string, (port: number, o: { cert?: string; key?: string }) => Promise<unknown>> = {
  'http-echo': (port) => startHttpEcho(port),
  'https-echo': (port, o) => {
    if (!o.cert || !o.key) throw new Error('https-echo needs --cert FILE and --key FILE');
    return startHttpsEcho(port, { certPem: readFileSync(o.cert, 'utf8'), keyPem: readFileSync(o.key, 'utf8') });
  },
  'tcp-echo': (port) => startTcpEcho(port),
  'udp-echo': (port) => startUdpEcho(port),
};
const start = kind ? starters[kind] : undefined;
if (!start || rest.includes('--help') || rest.includes('-h')) {
  console.log(USAGE);
  process.exit(start || kind === undefined || kind === '--help' || kind === '-h' ? 0 : 2);
}
const { values } = parseArgs({ args: rest, options: { port: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`error: --port: ${JSON.stringify(values.port ?? '')} is not a port (1–65535)`);
  process.exit(2);
}
try {
  await start(port, { ...(values.cert ? { cert: values.cert } : {}), ...(values.key ? { key: values.key } : {}) });
} catch (err) {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}
console.log(`${kind} listening on port ${port}`);
