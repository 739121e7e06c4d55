/**
 * Test fixtures (no test runner here): real servers on 127.0.0.1 port 0.
 *
 *   rawUpstream()   a net.Server that records exactly the bytes it receives and
 *                   answers every complete head with `200 ok` (bodiless requests only)
 *   startProxy()    a net.Server handing each socket to handleConnection, with
 *                   decide() from real compiled Cilium rules and connectUpstream = net.connect
 *                   (and a ConnectionAdmission when given one)
 *   exchange()      a raw client: write bytes, collect everything until the proxy closes
 *                   (or `until` holds), with a deadline
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { compileHttpRule, httpRuleMatches } from '../../src/policy/http-rules.ts';
import type { PortRuleHTTP } from '../../src/k8s/objects.ts';
import { handleConnection, type ConnectionAdmission, type HttpProxyContext, type HttpProxyEvent } from '../../src/proxy/http/index.ts';

export interface RawUpstream {
  server: net.Server;
  port: number;
  /** Every byte received, all connections, in arrival order (latin1). */
  received(): string;
  connections: number;
  close(): Promise<void>;
}

export async function rawUpstream(answer = true): Promise<RawUpstream> {
  let all = '';
  const state = { connections: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let mine = '';
    let answered = 0;
    s.on('data', (d: Buffer) => {
      all += d.toString('latin1');
      mine += d.toString('latin1');
      if (!answer) return;
      const heads = mine.split('\r\n\r\n').length - 1;
      for (; answered < heads; answered++) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    received: () => all,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface TestProxy {
  port: number;
  events: HttpProxyEvent[];
  close(): Promise<void>;
}

export function ruleDecider(rules: PortRuleHTTP[]): HttpProxyContext['decide'] {
  const compiled = rules.map(compileHttpRule);
  return (req) => {
    const hit = compiled.find((r) => httpRuleMatches(r, req));
    return hit ? { allowed: true, by: [hit.text] } : { allowed: false };
  };
}

export function connectTo(port: number): () => Promise<net.Socket> {
  return () =>
    new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.removeListener('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
}

export async function startProxy(upstreamPort: number, over: Partial<HttpProxyContext> = {}, admission?: ConnectionAdmission): Promise<TestProxy> {
  const events: HttpProxyEvent[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    handleConnection(s, {
      client: { ip: s.remoteAddress ?? '', port: s.remotePort ?? 0 },
      original: { ip: '127.0.0.1', port: upstreamPort },
      decide: ruleDecider([{ path: '/public.*' }]),
      connectUpstream: connectTo(upstreamPort),
      onEvent: (e) => events.push(e),
      ...over,
    }, admission);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    events,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface Exchange {
  text: string;
  /** True when the proxy closed the connection (FIN or reset) before the deadline. */
  closed: boolean;
}

/**
 * Writes `parts` (with a tick between them), collects the answer until close, `until(text)` or `ms`.
 * `from`: the client's own address (any of 127/8), so tests can be several sources.
 */
export function exchange(
  port: number,
  parts: (string | Buffer)[] | string,
  opts: { until?: (text: string) => boolean; ms?: number; end?: boolean; from?: string } = {},
): Promise<Exchange> {
  const list = typeof parts === 'string' ? [parts] : parts;
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', ...(opts.from !== undefined ? { localAddress: opts.from } : {}) });
    let text = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), opts.ms ?? 2000);
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (opts.until?.(text)) finish(false);
    });
    s.once('connect', async () => {
      for (const p of list) {
        if (s.destroyed) return;
        s.write(p);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (opts.end) s.end();
    });
  });
}

/** Number of complete `HTTP/1.x NNN` status lines in a response stream. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
}
