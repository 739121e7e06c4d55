/**
 * The link between a node's proxy process and its agent: one unix socket
 * (`proxy.sock` in the node's run directory) that the proxy serves, since it
 * outlives agent restarts, and the agent dials (again and again, while it
 * runs). JSON lines both ways:
 *
 *   proxy → agent  {"t":"names","entries":[…]}   the whole name cache, first on every connection
 *                  {"t":"learned","id","pod","name","ips","ttl"}  new addresses: answer once they are in the datapath
 *                  {"t":"forgotten","name","ips"}  addresses left the cache (expired, evicted)
 *                  {"t":"flow","flow":{…}}        an L7 HTTP or DNS flow record
 *                  {"t":"lost","n"}               records dropped while no agent was there to take them
 *                  {"t":"answer","id","stats"|"names"}  what the agent asked
 *   agent → proxy  {"t":"programmed","id"}        those addresses are in the datapath
 *                  {"t":"ask","id","what":"stats"|"names"}  the DNS proxy's counters, or its name cache now
 *
 * While no agent is connected the proxies go on deciding from their own
 * cluster cache; learned addresses wait for a datapath that is not there
 * (the DNS proxy releases the answer after its hold, counted), and flow
 * records queue up to a bound, then count as lost.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import type { Flow } from '../flows/index.ts';
import type { NameCacheEntry } from '../fqdn/index.ts';
import type { DnsProxyStats } from '../proxy/dns/index.ts';

export type ProxyMessage =
  | { t: 'names'; entries: NameCacheEntry[] }
  | { t: 'learned'; id: number; pod: string; name: string; ips: string[]; ttl: number }
  | { t: 'forgotten'; name: string; ips: string[] }
  | { t: 'flow'; flow: Flow }
  | { t: 'lost'; n: number }
  | { t: 'answer'; id: number; stats?: DnsProxyStats; names?: NameCacheEntry[] };

export type AgentMessage = { t: 'programmed'; id: number } | { t: 'ask'; id: number; what: 'stats' | 'names' };

/** Flow records kept for an agent that is not there (a restart's worth). */
const QUEUE_MAX = 4096;
/** Bytes of one line, at most: longer input is a broken peer. */
const MAX_LINE = 16 << 20;

/** Calls `onMessage` with each JSON line of `socket`; a malformed line ends the connection. */
function readLines<T>(socket: Socket, onMessage: (m: T) => void): void {
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        onMessage(JSON.parse(line) as T);
      } catch {
        socket.destroy();
        return;
      }
    }
    if (buf.length > MAX_LINE) socket.destroy();
  });
}

const send = (socket: Socket, m: ProxyMessage | AgentMessage): void => void socket.write(JSON.stringify(m) + '\n');

/** The proxy's end: serves one agent at a time (a newer connection replaces an older one). */
export class AgentLink {
  #agent: Socket | undefined;
  #server: Server | undefined;
  #nextId = 1;
  readonly #waiting = new Map<number, () => void>();
  readonly #queue: Flow[] = [];
  #lost = 0;
  readonly #names: () => NameCacheEntry[];

  readonly #stats: () => DnsProxyStats;

  /** `names` exports the name cache for each agent that connects; `stats` answers its questions. */
  constructor(names: () => NameCacheEntry[], stats: () => DnsProxyStats) {
    this.#names = names;
    this.#stats = stats;
  }

  get connected(): boolean {
    return this.#agent !== undefined;
  }

  async serve(path: string): Promise<void> {
    await rm(path, { force: true });
    const server = createServer((s) => this.#adopt(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    await chmod(path, 0o600);
    this.#server = server;
  }

  #adopt(s: Socket): void {
    this.#agent?.destroy();
    this.#agent = s;
    s.on('error', () => undefined);
    s.once('close', () => {
      if (this.#agent === s) this.#agent = undefined;
    });
    readLines<AgentMessage>(s, (m) => {
      if (m.t === 'ask') {
        return send(s, m.what === 'stats' ? { t: 'answer', id: m.id, stats: this.#stats() } : { t: 'answer', id: m.id, names: this.#names() });
      }
      if (m.t !== 'programmed') return;
      const done = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      done?.();
    });
    send(s, { t: 'names', entries: this.#names() });
    for (const flow of this.#queue.splice(0)) send(s, { t: 'flow', flow });
    if (this.#lost > 0) send(s, { t: 'lost', n: this.#lost });
    this.#lost = 0;
  }

  /**
   * New addresses for `name`: resolves once the agent has them in the
   * datapath. With no agent it never resolves; the DNS proxy's hold bounds the wait.
   */
  learned(pod: string, name: string, ips: readonly string[], ttl: number): Promise<void> {
    const agent = this.#agent;
    if (!agent) return new Promise(() => {});
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      // Answered or not, the hold is over long before this: forget the waiter.
      setTimeout(() => this.#waiting.delete(id), 5000).unref();
      send(agent, { t: 'learned', id, pod, name, ips: [...ips], ttl });
    });
  }

  forgotten(name: string, ips: readonly string[]): void {
    // Without an agent, the next connection's names message carries the loss.
    if (this.#agent) send(this.#agent, { t: 'forgotten', name, ips: [...ips] });
  }

  flow(flow: Flow): void {
    if (this.#agent) return send(this.#agent, { t: 'flow', flow });
    if (this.#queue.length < QUEUE_MAX) this.#queue.push(flow);
    else this.#lost++;
  }

  close(): void {
    this.#agent?.destroy();
    this.#server?.close();
  }
}

export interface ProxyLinkHandlers {
  /** The first message of every connection. */
  names(entries: NameCacheEntry[]): void;
  /** The connection dropped (the proxy restarts, or is gone). */
  unlinked(): void;
  /** Resolves once the addresses are in the datapath. */
  learned(pod: string, name: string, ips: readonly string[], ttl: number): Promise<void>;
  forgotten(name: string, ips: readonly string[]): void;
  flow(flow: Flow): void;
  lost(n: number): void;
}

export interface ProxyLink {
  /** The proxy's DNS counters now; undefined when it does not answer within `timeoutMs`. */
  stats(timeoutMs?: number): Promise<DnsProxyStats | undefined>;
  /** The proxy's name cache now (TTLs refreshed by answers the agent never heard of); likewise. */
  names(timeoutMs?: number): Promise<NameCacheEntry[] | undefined>;
  close(): void;
}

/** The agent's end: dials the proxy until stopped, again whenever the connection drops. */
export function dialProxy(path: string, h: ProxyLinkHandlers, retryMs = 200): ProxyLink {
  let closed = false;
  let socket: Socket | undefined;
  let linked = false;
  let nextId = 1;
  /** Questions waiting for their answer, by id. */
  const asked = new Map<number, (m: Extract<ProxyMessage, { t: 'answer' }> | undefined) => void>();
  const ask = (what: 'stats' | 'names', timeoutMs: number): Promise<Extract<ProxyMessage, { t: 'answer' }> | undefined> => {
    const s = socket;
    if (!s || !linked) return Promise.resolve(undefined);
    const id = nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        asked.delete(id);
        resolve(undefined);
      }, timeoutMs);
      asked.set(id, (m) => {
        clearTimeout(timer);
        asked.delete(id);
        resolve(m);
      });
      send(s, { t: 'ask', id, what });
    });
  };
  const dial = (): void => {
    if (closed) return;
    const s = connect(path);
    socket = s;
    s.on('error', () => undefined);
    s.once('close', () => {
      if (socket === s && linked) h.unlinked();
      if (socket === s) linked = false;
      for (const answer of [...asked.values()]) answer(undefined);
      if (!closed) setTimeout(dial, retryMs).unref();
    });
    readLines<ProxyMessage>(s, (m) => {
      switch (m.t) {
        case 'names':
          linked = true;
          return h.names(m.entries);
        case 'learned':
          return void h.learned(m.pod, m.name, m.ips, m.ttl).then(
            () => send(s, { t: 'programmed', id: m.id }),
            () => undefined,
          );
        case 'forgotten':
          return h.forgotten(m.name, m.ips);
        case 'flow':
          return h.flow(m.flow);
        case 'lost':
          return h.lost(m.n);
        case 'answer':
          return asked.get(m.id)?.(m);
      }
    });
  };
  dial();
  return {
    stats: (timeoutMs = 1000) => ask('stats', timeoutMs).then((m) => m?.stats),
    names: (timeoutMs = 1000) => ask('names', timeoutMs).then((m) => m?.names),
    close() {
      closed = true;
      socket?.destroy();
    },
  };
}
