/**
 * The transparent DNS proxy: every DNS query a pod sends (steered here by
 * TPROXY, UDP and TCP port 53) is checked against the pod's DNS rules.
 *
 *   pod ─query─► TPROXY ─► handleUdp(d) / handleTcp(socket)
 *     1. parse (dns-wire): malformed → FORMERR / NOTIMP / drop, counted per reason
 *     2. authorise: allowedFor(pod) → the name must match one matcher (the type is not checked)
 *          denied → REFUSED with the question echoed; never forwarded
 *          the server's ingress policy does not admit the pod ('server-denies') → SERVFAIL; never forwarded
 *     3. forward to the original destination from the pod's own address (UdpUpstream / upstreamTcp)
 *     4. learn: A/AAAA through CNAMEs → fqdnCache.record → onLearned(pod, name, ips, ttl)
 *          unless every IP is confirmed already (an earlier onLearned for the name resolved with it)
 *     5. hold the answer until onLearned resolves, at most holdMs (then release, count it)
 *     6. answer the pod with the server's bytes unchanged (same ID, same records)
 *   events: one per query (FORWARDED | DROPPED) and one per response, through onEvent
 *
 * Rules quoted (DESIGN.md, from Cilium): "A denied query is answered REFUSED
 * (rcode 5) with the question echoed. Only the name is checked, not the
 * type. An allowed answer is held until its IPs are in the datapath (give up
 * after 100 ms and answer anyway, counting it)."
 *
 * The fast path allocates no promise and sets no timer: a UDP query is one
 * UdpExchange object (the upstream's waiter), and an answer whose IPs are
 * all confirmed goes back to the pod in the callback that read it. Only an
 * answer with new IPs takes a promise (onLearned's) and joins the holds.
 *
 * Callbacks (allowedFor, onLearned, onEvent, onForgotten, hasLiveConnections)
 * run synchronously on the packet path: they must be quick and must not call
 * back into the proxy. A throwing callback is counted, never fatal.
 */
import type net from 'node:net';
import type { NameMatcher } from '../../fqdn/index.ts';
import { NameCache } from '../../fqdn/index.ts';
import { ConnectionAdmission } from '../admission/index.ts';
import { UdpUpstream, UpstreamSocketError, UpstreamTimeoutError, type UpstreamWaiter } from './dns-upstream.ts';
import { handleTcpDns, type DnsTcpContext } from './dns-tcp.ts';
import {
  buildReply,
  MALFORMED_REASONS,
  maxAnswerBytes,
  parseAnswer,
  parseQuery,
  problemReply,
  qtypeNames,
  RCODE,
  type DnsAnswer,
  type DnsQuery,
  type MalformedReason,
  type Transport,
} from './dns-wire.ts';
import type { DnsDatagram, DnsEvent, DnsEventReason, DnsReplySink, OpenUpstreamSocket, UdpEndpoint } from './dns-types.ts';
import nodeNet from 'node:net';

export interface DnsProxyOptions {
  /**
   * The DNS rules that apply to a pod's queries to `server`: its allowed
   * names, 'all', or null when they are not subject to DNS rules (everything
   * is forwarded). 'server-denies': the server's ingress policy does not
   * admit the pod — the query would leave in the pod's name and be dropped
   * (on this node, where the proxy sends it, nothing else may judge that):
   * SERVFAIL at once, never forwarded.
   */
  allowedFor(podIp: string, server: UdpEndpoint, transport: Transport): readonly NameMatcher[] | 'all' | 'server-denies' | null;
  /**
   * Where upstream queries leave from: the querying pod's address ('pod',
   * as Cilium does: the server's policy and logs see the real client) or the
   * node's ('node': tests and tools). Default 'pod'; over UDP it needs
   * `openUpstreamSocket` that can send from a pod's address, over TCP
   * `upstreamTcp`: without them every query fails (SERVFAIL), never leaving
   * from the node's address instead.
   */
  upstreamFrom?: 'pod' | 'node';
  /** The sockets the default UdpUpstream sends from (the agent's: the datapath's openUdpFrom). Default: dgram. */
  openUpstreamSocket?: OpenUpstreamSocket;
  /** Sends a pod's query to the real server and resolves with its answer (under the pod's ID). Default: UdpUpstream. */
  forwardUdp?(origDst: UdpEndpoint, payload: Buffer, timeoutMs: number, pod: UdpEndpoint): Promise<Buffer>;
  /**
   * A connected TCP socket from the pod's address (upstreamFrom 'pod') to
   * the real server; a synchronous throw means the socket could not be made
   * (counted). Default: net.connect from the node's address for 'node', none for 'pod'.
   */
  upstreamTcp?(origDst: UdpEndpoint, pod: UdpEndpoint): net.Socket | Promise<net.Socket>;
  /**
   * New IPs for a name: program them; the answer waits (≤ holdMs) for the
   * promise. Not called for an answer whose IPs are all in the datapath
   * already (an earlier call for the name resolved with them, and the cache
   * has held them since): their TTLs are refreshed in fqdnCache.
   */
  onLearned?(podIp: string, name: string, ips: readonly string[], ttl: number): Promise<void> | void;
  /** IPs that left a name (expired or evicted): remove them from the datapath. */
  onForgotten?(name: string, ips: readonly string[]): void;
  /** Whether an IP still has open connections (expired IPs are kept while true). */
  hasLiveConnections?(ip: string): boolean;
  onEvent?(e: DnsEvent): void;
  /** Seconds. Default 60. */
  minTtl?: number;
  /** Default 1000. */
  maxIpsPerName?: number;
  /** Default 100 ms. */
  holdMs?: number;
  /** Persist the name cache here (reloaded by start()). */
  cacheFile?: string;
  /** Default 2000 ms (per query over UDP; per silent upstream over TCP). */
  upstreamTimeoutMs?: number;
  /** TCP: idle pod connections are closed after this. Default 10 s. */
  tcpIdleMs?: number;
  /** TCP: queries in flight per pod connection before reading pauses. Default 64. */
  tcpMaxInFlight?: number;
  /** TCP: open connections one pod (source address) may hold; more are reset. Default 32. */
  tcpMaxPerSource?: number;
  /** TCP: open connections in all; more are reset, so the proxy's descriptors stay bounded. Default 1024. */
  tcpMaxConnections?: number;
}

export interface DnsProxyStats {
  queries: number;
  forwarded: number;
  refused: number;
  answered: number;
  /** Malformed queries per reason (answered FORMERR/NOTIMP or dropped). */
  malformed: Record<MalformedReason, number>;
  upstreamTimeouts: number;
  upstreamErrors: number;
  /** Queries not sent: no socket in the pod's name could be made (or none was free); the pod got SERVFAIL. Part of upstreamErrors. */
  upstreamSocketErrors: number;
  /** Queries the server's ingress policy does not admit from the pod: SERVFAIL, not forwarded. */
  serverDenied: number;
  /** Upstream answers that did not parse or match (the pod got SERVFAIL). */
  upstreamMalformed: number;
  /** Answers too large for the client's UDP size (the pod got TC=1). */
  truncatedToTcp: number;
  learnedAnswers: number;
  /** Answers with IPs, all of them confirmed in the datapath already: sent at once, onLearned not called. */
  knownAnswers: number;
  /** Answers released after holdMs without onLearned resolving. */
  holdTimeouts: number;
  /** onLearned threw or rejected (the answer was released anyway). */
  learnErrors: number;
  /** onEvent threw. */
  eventErrors: number;
  tcpConnections: number;
  /** TCP connections reset at accept: their pod, or the proxy, held the most allowed. */
  tcpRefused: number;
  cache: ReturnType<NameCache['stats']>;
}

interface Hold {
  deadline: number;
  done: boolean;
  release(): void;
}


/** IPs a sweep looks at before it lets the event loop run. */
const SWEEP_CHUNK = 2000;

export class DnsProxy {
  readonly fqdnCache: NameCache;
  readonly #o: DnsProxyOptions;
  readonly #holdMs: number;
  readonly #timeoutMs: number;
  readonly #upstream: UdpUpstream | undefined;
  readonly #forwardUdp: ((origDst: UdpEndpoint, payload: Buffer, timeoutMs: number, pod: UdpEndpoint) => Promise<Buffer>) | undefined;
  readonly #tcp: DnsTcpContext;
  /** Insertion order is deadline order (holdMs is one constant): the first hold is always the next to expire. */
  readonly #holds = new Set<Hold>();
  /** One timer for all holds, set for the first one's deadline. */
  #holdTimer: NodeJS.Timeout | undefined;
  readonly #sweepTimer: NodeJS.Timeout;
  readonly #tcpSockets = new Set<net.Socket>();
  readonly #tcpAdmission: ConnectionAdmission;
  #closed = false;
  #sweeping = false;
  readonly #s = {
    queries: 0,
    forwarded: 0,
    refused: 0,
    answered: 0,
    malformed: Object.fromEntries(MALFORMED_REASONS.map((r) => [r, 0])) as Record<MalformedReason, number>,
    upstreamTimeouts: 0,
    upstreamErrors: 0,
    upstreamSocketErrors: 0,
    serverDenied: 0,
    upstreamMalformed: 0,
    truncatedToTcp: 0,
    learnedAnswers: 0,
    knownAnswers: 0,
    holdTimeouts: 0,
    learnErrors: 0,
    eventErrors: 0,
    tcpConnections: 0,
    tcpRefused: 0,
  };

  constructor(opts: DnsProxyOptions) {
    this.#o = opts;
    this.#holdMs = opts.holdMs ?? 100;
    this.#timeoutMs = opts.upstreamTimeoutMs ?? 2000;
    this.#tcpAdmission = new ConnectionAdmission({
      maxConnectionsPerSource: opts.tcpMaxPerSource ?? 32,
      maxConnections: opts.tcpMaxConnections ?? 1024,
    });
    this.fqdnCache = new NameCache({
      ...(opts.minTtl !== undefined ? { minTtl: opts.minTtl } : {}),
      ...(opts.maxIpsPerName !== undefined ? { maxIpsPerName: opts.maxIpsPerName } : {}),
      ...(opts.hasLiveConnections ? { hasLiveConnections: opts.hasLiveConnections } : {}),
      ...(opts.onForgotten ? { onForgotten: opts.onForgotten } : {}),
      ...(opts.cacheFile !== undefined ? { file: opts.cacheFile } : {}),
    });
    const from = opts.upstreamFrom ?? 'pod';
    if (opts.forwardUdp) this.#forwardUdp = opts.forwardUdp.bind(opts);
    else this.#upstream = new UdpUpstream({ from, ...(opts.openUpstreamSocket ? { openSocket: opts.openUpstreamSocket } : {}) });
    const connect = opts.upstreamTcp ? opts.upstreamTcp.bind(opts) : from === 'node' ? defaultUpstreamTcp : noPodUpstreamTcp;
    const upstreamTcp = (server: UdpEndpoint, pod: UdpEndpoint): Promise<net.Socket> => {
      try {
        return Promise.resolve(connect(server, pod));
      } catch (err) {
        this.#s.upstreamSocketErrors++;
        return Promise.reject(err as Error);
      }
    };
    this.#tcp = {
      check: (msg, pod, server) => this.#check(msg, 'tcp', pod, server),
      complete: (pod, server, q, query, answer, t0) => Promise.resolve(this.#complete('tcp', pod, server, q, query, answer, t0)),
      failed: (pod, server, q, query, reason, t0) => this.#failed('tcp', pod, server, q, query, reason, t0),
      upstreamTcp,
      idleMs: opts.tcpIdleMs ?? 10_000,
      upstreamTimeoutMs: this.#timeoutMs,
      maxInFlight: opts.tcpMaxInFlight ?? 64,
    };
    this.#sweepTimer = setInterval(this.#sweep, 1000);
    this.#sweepTimer.unref();
  }

  /** Loads the persisted name cache (call once before serving); returns the entries loaded. */
  async start(): Promise<number> {
    const n = await this.fqdnCache.load();
    this.fqdnCache.sweep();
    return n;
  }

  /** One datagram from the transparent UDP socket; the answer goes to `sink.reply(d, …)`. Never throws. */
  handleUdp(d: DnsDatagram, sink: DnsReplySink): void {
    if (this.#closed) return;
    const t0 = performance.now();
    const r = this.#check(d.payload, 'udp', d.src, d.origDst);
    if (r === null) return;
    if (Buffer.isBuffer(r)) return safeReply(sink, d, r);
    const x = new UdpExchange(this.#udpOutcome, d, r, sink, t0);
    if (this.#upstream) return this.#upstream.send(d.src.ip, d.origDst, d.payload, this.#timeoutMs, r.questionEnd, x);
    let forwarded: Promise<Buffer>;
    try {
      forwarded = Promise.resolve(this.#forwardUdp!(d.origDst, d.payload, this.#timeoutMs, d.src));
    } catch (err) {
      return x.onError(err as Error);
    }
    forwarded.then(
      (answer) => x.onAnswer(answer),
      (err: unknown) => x.onError(err as Error),
    );
  }

  /** One accepted TCP connection whose local address is the real server (`origDst`). */
  handleTcp(socket: net.Socket, origDst?: UdpEndpoint): void {
    if (this.#closed) return void socket.destroy();
    const server = origDst ?? { ip: socket.localAddress ?? '', port: socket.localPort ?? 53 };
    // One pod must not take every descriptor: a bound per pod, and one for all.
    const source = socket.remoteAddress ?? '';
    if (!this.#tcpAdmission.admit(source)) {
      this.#s.tcpRefused++;
      return void socket.resetAndDestroy();
    }
    this.#s.tcpConnections++;
    this.#tcpSockets.add(socket);
    socket.once('close', () => {
      this.#tcpSockets.delete(socket);
      this.#tcpAdmission.release(source);
    });
    handleTcpDns(socket, server, this.#tcp);
  }

  stats(): DnsProxyStats {
    return { ...this.#s, malformed: { ...this.#s.malformed }, cache: this.fqdnCache.stats() };
  }

  /** Stops serving, releases held answers, closes sockets, saves the cache. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    for (const h of this.#holds) {
      h.done = true;
      h.release();
    }
    this.#holds.clear();
    if (this.#holdTimer) clearTimeout(this.#holdTimer);
    for (const s of this.#tcpSockets) s.destroy();
    this.#upstream?.close();
    await this.fqdnCache.close();
  }

  // ---- phases ------------------------------------------------------------

  /** Phases 1–2: a query to forward, a reply to send now, or null to drop. */
  #check(msg: Buffer, transport: Transport, pod: UdpEndpoint, server: UdpEndpoint): DnsQuery | Buffer | null {
    this.#s.queries++;
    const p = parseQuery(msg, transport);
    if (!p.ok) {
      this.#s.malformed[p.reason]++;
      return problemReply(msg, p.answer);
    }
    const q = p.query;
    let allowed: readonly NameMatcher[] | 'all' | 'server-denies' | null;
    try {
      allowed = this.#o.allowedFor(pod.ip, server, transport);
    } catch {
      allowed = []; // fail closed
    }
    if (allowed === 'server-denies') {
      // Sent in the pod's name, the server's ingress policy would drop it: it never leaves.
      this.#s.serverDenied++;
      this.#event({
        type: 'query', protocol: transport, pod, server, id: q.id, query: q.name, qtypes: qtypeNames(q.qtype),
        verdict: 'DROPPED', rcode: RCODE.SERVFAIL, reason: 'server-denied',
      });
      return buildReply(msg, q, RCODE.SERVFAIL);
    }
    if (allowed !== null && allowed !== 'all' && !anyMatches(allowed, q.name)) {
      this.#s.refused++;
      this.#event({
        type: 'query', protocol: transport, pod, server, id: q.id, query: q.name, qtypes: qtypeNames(q.qtype),
        verdict: 'DROPPED', rcode: RCODE.REFUSED, reason: 'policy-denied',
      });
      return buildReply(msg, q, RCODE.REFUSED);
    }
    this.#s.forwarded++;
    this.#event({
      type: 'query', protocol: transport, pod, server, id: q.id, query: q.name, qtypes: qtypeNames(q.qtype), verdict: 'FORWARDED',
    });
    return q;
  }

  /** Phases 4–6 over UDP, once the upstream answered or failed (phase 3). */
  readonly #udpOutcome: UdpOutcome = {
    answer: (x, answer) => {
      const { d, q } = x;
      let out: Buffer | Promise<Buffer>;
      if (answer.length > maxAnswerBytes(q, 'udp')) {
        // RFC 1035 §4.2.1 / RFC 6891 §7: too large for the client's buffer → TC=1, the client retries over TCP.
        this.#s.truncatedToTcp++;
        out = this.#failed('udp', d.src, d.origDst, q, d.payload, 'answer-too-large', x.t0);
      } else {
        out = this.#complete('udp', d.src, d.origDst, q, d.payload, answer, x.t0);
      }
      if (Buffer.isBuffer(out)) this.#replyUdp(x, out);
      else void out.then((b) => this.#replyUdp(x, b));
    },
    error: (x, err) => {
      if (err instanceof UpstreamSocketError) this.#s.upstreamSocketErrors++;
      const reason = err instanceof UpstreamTimeoutError || isTimeout(err) ? 'upstream-timeout' : 'upstream-error';
      this.#replyUdp(x, this.#failed('udp', x.d.src, x.d.origDst, x.q, x.d.payload, reason, x.t0));
    },
  };

  #replyUdp(x: UdpExchange, out: Buffer): void {
    if (!this.#closed) safeReply(x.sink, x.d, out);
  }

  /**
   * Phases 4–6: learn the answer's IPs, hold it for the datapath, return the
   * bytes to send: at once when nothing is to wait for, else a promise that
   * never rejects.
   */
  #complete(
    protocol: Transport, pod: UdpEndpoint, server: UdpEndpoint, q: DnsQuery, query: Buffer, answer: Buffer, t0: number,
  ): Buffer | Promise<Buffer> {
    const a = parseAnswer(answer, query, q);
    if (!a.ok) {
      this.#s.upstreamMalformed++;
      return this.#failed(protocol, pod, server, q, query, 'upstream-malformed', t0);
    }
    const { ips, ttl } = a.answer;
    if (ips.length > 0) {
      this.#s.learnedAnswers++;
      if (this.fqdnCache.record(pod.ip, q.name, ips, ttl)) {
        this.#s.knownAnswers++;
      } else {
        const held = this.#learn(pod.ip, q.name, ips, Math.max(ttl, this.#o.minTtl ?? 60));
        if (held) return held.then(() => this.#answered(protocol, pod, server, q, a.answer, answer, t0));
      }
    }
    return this.#answered(protocol, pod, server, q, a.answer, answer, t0);
  }

  /** Phase 6's count and event; returns the answer. */
  #answered(protocol: Transport, pod: UdpEndpoint, server: UdpEndpoint, q: DnsQuery, a: DnsAnswer, answer: Buffer, t0: number): Buffer {
    this.#s.answered++;
    this.#event({
      type: 'response', protocol, pod, server, id: q.id, query: q.name, qtypes: qtypeNames(q.qtype), verdict: 'FORWARDED',
      rcode: a.rcode, ips: a.ips, ttl: a.ttl, latencyNs: Math.round((performance.now() - t0) * 1e6),
    });
    return answer;
  }

  /** SERVFAIL (or TC=1 for answer-too-large) with the question echoed, and its event. */
  #failed(protocol: Transport, pod: UdpEndpoint, server: UdpEndpoint, q: DnsQuery, query: Buffer, reason: DnsEventReason, t0: number): Buffer {
    if (reason === 'upstream-timeout') this.#s.upstreamTimeouts++;
    else if (reason === 'upstream-error') this.#s.upstreamErrors++;
    const tc = reason === 'answer-too-large';
    const rcode = tc ? RCODE.NOERROR : RCODE.SERVFAIL;
    this.#event({
      type: 'response', protocol, pod, server, id: q.id, query: q.name, qtypes: qtypeNames(q.qtype), verdict: 'FORWARDED',
      rcode, reason, latencyNs: Math.round((performance.now() - t0) * 1e6),
    });
    return buildReply(query, q, rcode, tc);
  }

  /**
   * Phase 5: onLearned, waited for at most holdMs (one timer for all holds,
   * not one per answer, and not re-armed per answer: holds settled in time
   * cost it nothing); undefined when there is nothing to wait for.
   * What it resolves with is confirmed in the cache (rule 4 there).
   */
  #learn(podIp: string, name: string, ips: readonly string[], ttl: number): Promise<void> | undefined {
    const cb = this.#o.onLearned;
    if (!cb) return undefined;
    const generation = this.fqdnCache.generation;
    let r: Promise<void> | void;
    try {
      r = cb(podIp, name, ips, ttl);
    } catch {
      this.#s.learnErrors++;
      return undefined;
    }
    if (!r || typeof (r as Promise<void>).then !== 'function') {
      this.fqdnCache.confirm(name, ips, generation); // programmed synchronously
      return undefined;
    }
    return new Promise<void>((release) => {
      const h: Hold = { deadline: performance.now() + this.#holdMs, done: false, release };
      const settle = (): void => {
        if (h.done) return;
        h.done = true;
        this.#holds.delete(h);
        release();
      };
      (r as Promise<void>).then(
        () => {
          this.fqdnCache.confirm(name, ips, generation);
          settle();
        },
        () => {
          if (!h.done) this.#s.learnErrors++;
          settle();
        },
      );
      if (h.done) return;
      this.#holds.add(h);
      this.#armHoldTimer();
    });
  }

  #armHoldTimer(): void {
    if (this.#holdTimer || this.#closed) return;
    const first = this.#holds.values().next();
    if (first.done) return;
    this.#holdTimer = setTimeout(this.#expireHolds, Math.max(0, Math.ceil(first.value.deadline - performance.now())));
  }

  readonly #expireHolds = (): void => {
    this.#holdTimer = undefined;
    const now = performance.now();
    for (const h of this.#holds) {
      if (h.deadline > now) break;
      h.done = true;
      this.#holds.delete(h);
      this.#s.holdTimeouts++;
      h.release();
    }
    this.#armHoldTimer();
  };

  /** Expired addresses out, in chunks with the event loop free in between (a mass expiry must not delay answers). */
  readonly #sweep = (): void => {
    if (this.#sweeping || this.#closed) return;
    this.#sweeping = true;
    const step = (): void => {
      this.fqdnCache.sweep(SWEEP_CHUNK);
      if (!this.#closed && this.fqdnCache.sweepPending()) setImmediate(step);
      else this.#sweeping = false;
    };
    step();
  };

  #event(e: DnsEvent): void {
    const cb = this.#o.onEvent;
    if (!cb) return;
    try {
      cb(e);
    } catch {
      this.#s.eventErrors++;
    }
  }
}

/** What a UDP exchange reports back to its proxy (one object per proxy, not a closure per query). */
interface UdpOutcome {
  answer(x: UdpExchange, answer: Buffer): void;
  error(x: UdpExchange, err: Error): void;
}

/** One forwarded UDP query: the upstream's waiter, and all the proxy needs to answer it. */
class UdpExchange implements UpstreamWaiter {
  readonly outcome: UdpOutcome;
  readonly d: DnsDatagram;
  readonly q: DnsQuery;
  readonly sink: DnsReplySink;
  readonly t0: number;

  constructor(outcome: UdpOutcome, d: DnsDatagram, q: DnsQuery, sink: DnsReplySink, t0: number) {
    this.outcome = outcome;
    this.d = d;
    this.q = q;
    this.sink = sink;
    this.t0 = t0;
  }

  onAnswer(answer: Buffer): void {
    this.outcome.answer(this, answer);
  }

  onError(err: Error): void {
    this.outcome.error(this, err);
  }
}

function anyMatches(matchers: readonly NameMatcher[], name: string): boolean {
  for (let i = 0; i < matchers.length; i++) if (matchers[i]!.matches(name)) return true;
  return false;
}

function safeReply(sink: DnsReplySink, d: DnsDatagram, payload: Buffer): void {
  try {
    sink.reply(d, payload);
  } catch {
    // A failed send is the socket's to count; the proxy goes on.
  }
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || /timed? ?out/i.test(err.message));
}

/** upstreamFrom 'pod' with no way to connect in the pod's name: the query fails, it does not leave from the node. */
function noPodUpstreamTcp(): never {
  throw new UpstreamSocketError('DNS upstream: no transparent TCP connect (upstreamTcp) to send from the pod\'s address');
}

function defaultUpstreamTcp(server: UdpEndpoint): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = nodeNet.connect({ host: server.ip, port: server.port, noDelay: true });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}
