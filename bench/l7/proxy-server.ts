/**
 * The Palisade HTTP proxy as a plain (non-transparent) reverse proxy for the
 * benchmark: it listens on 127.0.0.1:0 and every accepted connection gets a
 * context whose `original` is fixed to the backend given as argv[2] (there is
 * no TPROXY here, so the accepted socket's local address is not the
 * destination). Policy is the real rule compiler with one rule
 * (`method: GET, path: "/.*"`), and an onEvent that counts, as the agent's
 * would. Prints `port <n>` once listening.
 *
 *   node bench/l7/proxy-server.ts <backendPort>
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { handleConnection, type HttpProxyContext } from '../../src/proxy/http/index.ts';
import { compileHttpRule, httpRuleMatches } from '../../src/policy/http-rules.ts';

const backendPort = Number(process.argv[2]);
const rules = [compileHttpRule({ method: 'GET', path: '/.*' })];
const original = { ip: '127.0.0.1', port: backendPort };
let events = 0;

const decide: HttpProxyContext['decide'] = (req) => {
  for (const r of rules) if (httpRuleMatches(r, req)) return { allowed: true, by: r.text };
  return { allowed: false };
};
const connectUpstream = (): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const s = net.connect(backendPort, '127.0.0.1');
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
const onEvent = (): void => {
  events++;
};

const server = net.createServer({ noDelay: true }, (sock) => {
  handleConnection(sock, {
    client: { ip: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 },
    original,
    decide,
    connectUpstream,
    onEvent,
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(`port ${(server.address() as AddressInfo).port}`);
});
// On SIGUSR2: CPU time per request since the previous SIGUSR2 (stderr), for the run's report.
let last = process.cpuUsage();
let lastEvents = 0;
process.on('SIGUSR2', () => {
  const now = process.cpuUsage();
  const requests = (events - lastEvents) / 2;
  const us = now.user - last.user + now.system - last.system;
  console.error(`cpu ${requests > 0 ? (us / requests).toFixed(1) : 'NaN'} us/request user+sys over ${requests} requests (user ${((now.user - last.user) / Math.max(1, requests)).toFixed(1)})`);
  last = now;
  lastEvents = events;
});
process.on('SIGTERM', () => process.exit(0));
