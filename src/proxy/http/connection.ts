/**
 * One client connection through the HTTP proxy, request after request.
 *
 *   client ──bytes──► read head ─► parse & validate ─► normalise ─► authorise ──allowed──► forward head ─► stream body ──► upstream
 *                        │ 408/431      │ 400/505          │ 400        │ denied                (lazy connect: 502)
 *                        ▼              ▼                  ▼            ▼
 *                     error response + close            403 "Access denied\r\n" (keep-alive only if no body is still to come)
 *   client ◄── relay (head verbatim, body streamed) ◄── read response head ◄────────────────────────────── upstream
 *                 │ 101 after an allowed Upgrade: splice both sockets raw
 *                 ▼
 *              next request (pipelined bytes waited in the input buffer, each decided on its own)
 *
 * Requests on one connection are handled one at a time: the next head is
 * not parsed before the previous response is complete, so responses leave
 * in request order and the upstream never sees a request policy has not
 * decided yet. One upstream connection per client connection, opened on the
 * first allowed request and reopened if the upstream closed it while idle.
 *
 * Memory per connection: two growable head buffers (≤ maxHeadBytes plus one
 * read each, allocated only when a head spans reads) plus what the sockets'
 * own write queues hold; bodies pass through as the socket chunks they
 * arrive in, with pause/resume backpressure in both directions.
 *
 * Timers: one deadline per connection, watched by deadlines.ts (no timer per
 * socket). Callbacks are bound once per connection in fields; none are made
 * per request. Every phase has one, so no peer can hold a connection (and its
 * descriptors) for ever by going quiet:
 *
 *   phase                                   deadline               on expiry
 *   waiting for a request (keep-alive)      idleTimeoutMs          close, no response
 *   reading a request head                  headTimeoutMs          408
 *   connecting upstream                     connectTimeoutMs       502
 *   request body, response, 101 tunnel,     streamIdleTimeoutMs    408 (body stalled), 504 (no response),
 *     a client not reading our answers        of no byte moving      reset once a response has started
 *   closing (draining input)                lingerMs               destroy
 *
 * A denied request whose body has not all arrived with its head is answered
 * 403 with `connection: close` and the connection closed, as Envoy does: the
 * proxy never waits for the body of a request it refused.
 */
import type * as net from 'node:net';
import type { HttpRequest } from '../../policy/index.ts';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BodyFraming } from './body.ts';
import { coarseNow, watch, unwatch, type Expiring } from './deadlines.ts';
import { DENIED_CLOSE, DENIED_KEEP_ALIVE, ERROR_KINDS, HttpProxyError, malformed } from './errors.ts';
import { eventUrl, headerList, type HttpProxyEvent, type HttpVerdict } from './events.ts';
import { headEnd, indexOfByte } from './bytes.ts';
import { newRequestHead, parseRequestHead } from './head-parser.ts';
import { normaliseTarget, type NormalisedTarget } from './normalise.ts';
import { newResponseHead, parseResponseHead, responseKeepsAlive } from './response.ts';

export interface HttpProxyLimits {
  /** From the first byte of a request head to its blank line (slowloris), → 408. */
  headTimeoutMs: number;
  /** Keep-alive idle: no byte of a next request for this long → close (no response). */
  idleTimeoutMs: number;
  /** ctx.connectUpstream() must settle within this, → 502. */
  connectTimeoutMs: number;
  /** Request head (request line + fields) and response head size, → 431 / 502. */
  maxHeadBytes: number;
  /** Header lines per request, → 431. */
  maxHeaders: number;
  /**
   * Request body, waiting for a response, relaying one, a 101 tunnel: no byte either way for this long →
   * 408 / 504 before a response started, reset after (Envoy's stream_idle_timeout, same default).
   */
  streamIdleTimeoutMs: number;
  /** After the proxy closes, input is drained this long before the socket is destroyed (so the client reads our answer rather than a reset). */
  lingerMs: number;
}

export const DEFAULT_LIMITS: Readonly<HttpProxyLimits> = Object.freeze({
  headTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  connectTimeoutMs: 10_000,
  maxHeadBytes: 64 * 1024,
  maxHeaders: 100,
  streamIdleTimeoutMs: 300_000,
  lingerMs: 2_000,
});

export interface HttpProxyDecision {
  allowed: boolean;
  /** Whatever explains the decision (rule origins); copied into events. */
  by?: unknown;
}

/** Per connection, built by the caller (the agent, or a test). */
export interface HttpProxyContext {
  /** The pod that connected (its real address). */
  client: { ip: string; port: number };
  /** Where it meant to go (the accepted socket's local address under TPROXY). */
  original: { ip: string; port: number };
  /** Policy for one request; must be synchronous and must not re-enter the proxy. Throwing → 503. */
  decide(req: HttpRequest): HttpProxyDecision;
  /** A TCP socket to `original` with the client's source address; resolves once connected. */
  connectUpstream(): Promise<net.Socket>;
  /** Two per request (request, response); see events.ts. Must not throw (errors are swallowed). */
  onEvent?(e: HttpProxyEvent): void;
  limits?: Partial<HttpProxyLimits>;
}

// Client-side phase.
const C_HEAD = 0; // reading / waiting for a request head
const C_BODY = 1; // streaming an allowed request's body upstream
const C_WAIT = 2; // request sent; input waits until the response is complete
const C_CONNECTING = 3; // allowed request waits for the upstream connection
const C_TUNNEL = 4; // after 101: raw bytes
const C_CLOSING = 5; // answered, ended; draining input until the client closes or linger ends
const C_CLOSED = 6;

// Upstream-side phase.
const U_NONE = 0;
const U_IDLE = 1;
const U_CONNECTING = 2;
const U_HEAD = 3; // reading a response head
const U_BODY = 4; // relaying a response body
const U_TUNNEL = 5;

// What the one deadline is for.
const D_NONE = 0;
const D_IDLE = 1;
const D_HEAD = 2;
const D_CONNECT = 3;
const D_LINGER = 4;
const D_STREAM = 5; // an exchange in flight: no byte for streamIdleTimeoutMs (see #activeAt)

// Why the client socket is paused (bits).
const P_UPSTREAM_FULL = 1;
const P_CONNECTING = 2;
const P_BACKLOG = 4;

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);

function noop(): void {}

export class HttpProxyConnection implements Expiring {
  deadline = 0;
  readonly #client: net.Socket;
  readonly #ctx: HttpProxyContext;
  readonly #limits: Readonly<HttpProxyLimits>;
  #upstream: net.Socket | null = null;
  #c = C_HEAD;
  #u = U_NONE;
  #deadlineKind = D_NONE;
  #pause = 0;
  #upstreamPaused = false;
  #clientFull = false;
  #clientEnded = false;
  /** coarseNow() when bytes last moved on either socket: D_STREAM re-arms from it. */
  #activeAt = 0;

  // Unconsumed client bytes are #buf[#off, #end). #buf is a socket chunk, or #acc when bytes spanned reads.
  #buf: Buffer = EMPTY;
  #off = 0;
  #end = 0;
  #scan = 0;
  #acc: Buffer | null = null;
  // Upstream bytes of a response head that spans reads.
  #ubuf: Buffer = EMPTY;
  #uoff = 0;
  #uend = 0;
  #uscan = 0;
  #uacc: Buffer | null = null;

  readonly #head = newRequestHead();
  readonly #norm: NormalisedTarget = { target: '', authority: undefined, changed: false };
  readonly #reqBody = new BodyFraming();
  readonly #resBody = new BodyFraming();
  readonly #res = newResponseHead();

  // The exchange in flight.
  #method = '';
  #url = '';
  #host: string | undefined = undefined;
  #minor = 1;
  #by: unknown = undefined;
  #reqEvented = false;
  #resStarted = false;
  #isHead = false;
  #upgrade = false;
  #closeAfter = false;
  /** performance.now() when the request head went upstream (for latencyNs). */
  #sentAt = 0;
  #pendingHead: Buffer | null = null;

  constructor(client: net.Socket, ctx: HttpProxyContext) {
    this.#client = client;
    this.#ctx = ctx;
    this.#limits = ctx.limits === undefined ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, ...ctx.limits };
    // We answer after the client half-closes (a request followed by FIN), so keep our side open.
    client.allowHalfOpen = true;
    client.setNoDelay(true);
    client.on('data', this.#onClientData);
    client.on('end', this.#onClientEnd);
    client.on('close', this.#onClientClose);
    client.on('drain', this.#onClientDrain);
    client.on('error', noop);
    watch(this);
    this.#setDeadline(D_IDLE, this.#limits.idleTimeoutMs);
    if (client.destroyed) this.#onClientClose();
  }

  // ── deadlines ────────────────────────────────────────────────────────────

  #setDeadline(kind: number, ms: number): void {
    this.#deadlineKind = kind;
    this.deadline = performance.now() + ms;
  }

  #clearDeadline(): void {
    this.#deadlineKind = D_NONE;
    this.deadline = 0;
  }

  onDeadline(): void {
    const kind = this.#deadlineKind;
    this.#deadlineKind = D_NONE;
    try {
      if (kind === D_IDLE) this.#closeGracefully();
      else if (kind === D_HEAD) this.#fail(new HttpProxyError('head-timeout', 'head-timeout'));
      else if (kind === D_CONNECT) this.#fail(new HttpProxyError('upstream-failed', 'connect-timeout'));
      else if (kind === D_LINGER) this.#destroy();
      else if (kind === D_STREAM) this.#streamDeadline();
    } catch {
      this.#destroy();
    }
  }

  /** An exchange is under way: from now on, going quiet for streamIdleTimeoutMs ends it. */
  #armStream(): void {
    this.#activeAt = coarseNow();
    this.#setDeadline(D_STREAM, this.#limits.streamIdleTimeoutMs);
  }

  #streamDeadline(): void {
    const until = this.#activeAt + this.#limits.streamIdleTimeoutMs;
    if (until > performance.now()) {
      // Bytes moved since the deadline was set: wait out the rest from the last of them.
      this.#deadlineKind = D_STREAM;
      this.deadline = until;
      return;
    }
    // #fail resets both sides instead once a response has started (relay, tunnel, unread answers).
    if (this.#c === C_BODY) this.#fail(new HttpProxyError('body-timeout', 'body-idle'));
    else this.#fail(new HttpProxyError('upstream-timeout', 'response-idle'));
  }

  // ── client input ─────────────────────────────────────────────────────────

  #onClientData = (chunk: Buffer): void => {
    this.#activeAt = coarseNow();
    try {
      const c = this.#c;
      if (c === C_TUNNEL) {
        this.#writeUpstream(chunk);
        return;
      }
      if (c >= C_CLOSING) return; // lingering: drop
      this.#append(chunk);
      this.#drive();
    } catch (e) {
      this.#onError(e);
    }
  };

  /** Adds a chunk to the unconsumed input; copies only when earlier bytes are still waiting. */
  #append(chunk: Buffer): void {
    if (this.#off === this.#end) {
      this.#buf = chunk;
      this.#off = 0;
      this.#end = chunk.length;
      this.#scan = 0;
      return;
    }
    const have = this.#end - this.#off;
    let acc = this.#acc;
    if (this.#buf !== acc || acc === null || acc.length - this.#end < chunk.length) {
      const need = have + chunk.length;
      if (acc === null || acc.length < need) {
        const next = Buffer.allocUnsafe(Math.max(need, 2 * (acc?.length ?? 0), 16 * 1024));
        this.#buf.copy(next, 0, this.#off, this.#end);
        acc = next;
        this.#acc = next;
      } else {
        this.#buf.copy(acc, 0, this.#off, this.#end); // may overlap when #buf is #acc: copy is memmove
      }
      this.#scan = Math.max(0, this.#scan - this.#off);
      this.#buf = acc;
      this.#off = 0;
      this.#end = have;
    }
    chunk.copy(acc, this.#end);
    this.#end += chunk.length;
  }

  /**
   * Bytes to hand to a socket: the socket chunk itself when it is all of them (the common
   * case, no new Buffer object), a view of it otherwise. Bytes of our own #acc are copied
   * (the buffer is reused).
   */
  #view(buf: Buffer, a: number, b: number): Buffer {
    if (buf === this.#acc || buf === this.#uacc) return Buffer.from(buf.subarray(a, b));
    return a === 0 && b === buf.length ? buf : buf.subarray(a, b);
  }

  /** Consumes client input as far as the current phase allows. */
  #drive(): void {
    for (;;) {
      const c = this.#c;
      if (c === C_HEAD) {
        if (this.#clientFull) break;
        if (!this.#readHead()) break;
      } else if (c === C_BODY) {
        if (this.#off === this.#end) {
          if (this.#clientEnded) {
            this.#destroy(); // the client ended inside a body
            return;
          }
          break;
        }
        this.#forwardBody();
      } else {
        break;
      }
    }
    // Bound what waits in the input buffer: past a head's worth, stop reading.
    const backlog = this.#end - this.#off;
    if (backlog > this.#limits.maxHeadBytes) {
      if ((this.#pause & P_BACKLOG) === 0) this.#pauseClient(P_BACKLOG);
    } else if ((this.#pause & P_BACKLOG) !== 0) {
      this.#resumeClient(P_BACKLOG);
    }
  }

  #pauseClient(bit: number): void {
    if (this.#pause === 0) this.#client.pause();
    this.#pause |= bit;
  }

  #resumeClient(bit: number): void {
    if ((this.#pause & bit) === 0) return;
    this.#pause &= ~bit;
    if (this.#pause === 0 && this.#c < C_CLOSED) this.#client.resume();
  }

  #startExchange(): void {
    this.#method = '';
    this.#url = '';
    this.#host = undefined;
    this.#minor = 1;
    this.#by = undefined;
    this.#reqEvented = false;
    this.#resStarted = false;
    this.#head.method = '';
  }

  // Phase 1: read head. Returns true when a request was handled and input may be consumed further.
  #readHead(): boolean {
    const buf = this.#buf;
    const end = this.#end;
    let off = this.#off;
    // RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line SHOULD
    // ignore at least one empty line (CRLF) received prior to the request-line."
    while (end - off >= 2 && buf[off] === CR && buf[off + 1] === LF) off += 2;
    this.#off = off;
    if (off === end) {
      if (this.#clientEnded) this.#closeGracefully();
      else if (this.#deadlineKind !== D_IDLE) this.#setDeadline(D_IDLE, this.#limits.idleTimeoutMs);
      return false;
    }
    // A head already under way holds the D_HEAD deadline. A new one gets it only if it does
    // not complete in this read (the common whole-head-in-one-read case reads no clock).
    const started = this.#deadlineKind === D_HEAD;
    if (!started) this.#startExchange();
    const from = this.#scan > off + 3 ? this.#scan - 3 : off;
    const e = headEnd(buf, from, end);
    if (e < 0) {
      if (!started) this.#setDeadline(D_HEAD, this.#limits.headTimeoutMs);
      // Incomplete. Strict line endings: a bare LF is an error now, not after the timeout.
      for (let i = indexOfByte(buf, LF, from, end); i >= 0; i = indexOfByte(buf, LF, i + 1, end)) {
        if (i === off || buf[i - 1] !== CR) throw malformed('bare-lf');
      }
      if (end - off > this.#limits.maxHeadBytes) throw new HttpProxyError('head-too-large', 'head-too-large');
      this.#scan = end;
      if (this.#clientEnded) this.#closeGracefully();
      return false;
    }
    if (e - off > this.#limits.maxHeadBytes) throw new HttpProxyError('head-too-large', 'head-too-large');
    // Phase 2: parse & validate.
    parseRequestHead(buf, off, e, this.#head, this.#limits.maxHeaders);
    this.#off = e;
    this.#scan = e;
    // From here until the next head, the exchange's deadline (also while the client does not read our answer).
    this.#armStream();
    return this.#onRequest(buf, off, e);
  }

  #onRequest(buf: Buffer, hs: number, he: number): boolean {
    const h = this.#head;
    this.#minor = h.minor;
    this.#method = h.method;
    this.#url = h.target;
    // Phase 3: normalise — policy and upstream both get this target.
    const norm = this.#norm;
    normaliseTarget(h.target, h.method, norm);
    let addHost: string | undefined;
    const authority = norm.authority;
    if (authority !== undefined) {
      // RFC 9112 §3.2.2: the target's authority is the Host; one that disagrees with a Host field is 400 here.
      if (h.host === undefined) addHost = authority;
      else if (h.host.toLowerCase() !== authority.toLowerCase()) throw malformed('authority-host-mismatch');
    }
    // Host handed to policy: the :authority as sent (Envoy's), port kept when present.
    const host = authority ?? h.host;
    this.#host = host;
    this.#url = eventUrl(host, norm.target);
    // Phase 4: authorise.
    let decision: HttpProxyDecision;
    try {
      decision = this.#ctx.decide({ method: h.method, path: norm.target, host, headers: h.headers });
    } catch {
      throw new HttpProxyError('policy-unavailable', 'decide-threw');
    }
    this.#by = decision.by;
    if (decision.allowed !== true) {
      this.#emitRequest('DROPPED', 'denied');
      return this.#deny();
    }
    this.#emitRequest('FORWARDED', undefined);
    // Phase 5: forward — the head as received when nothing changed, rebuilt otherwise.
    const headBytes =
      norm.changed || h.drop.length > 0 || addHost !== undefined ? this.#rebuildHead(buf, he, norm.target, addHost) : this.#view(buf, hs, he);
    this.#isHead = h.method.length === 4 && h.method === 'HEAD';
    this.#upgrade = h.connUpgrade && h.upgrade !== undefined;
    this.#closeAfter = h.minor === 0 || h.connClose;
    this.#reqBody.reset(h.chunked ? BODY_CHUNKED : h.contentLength > 0 ? BODY_LENGTH : BODY_NONE, h.contentLength, 'malformed');
    if (this.#upstream === null) {
      this.#pendingHead = headBytes;
      this.#connect();
      return false;
    }
    this.#c = this.#reqBody.done ? C_WAIT : C_BODY;
    this.#sendHead(headBytes);
    return true;
  }

  #rebuildHead(buf: Buffer, he: number, target: string, addHost: string | undefined): Buffer {
    const h = this.#head;
    const line = `${h.method} ${target} HTTP/1.${h.minor}\r\n${addHost === undefined ? '' : `host: ${addHost}\r\n`}`;
    let size = line.length + (he - h.fieldsStart);
    const drop = h.drop;
    for (let k = 0; k < drop.length; k += 2) size -= (drop[k + 1] as number) - (drop[k] as number);
    const out = Buffer.allocUnsafe(size);
    let p = out.write(line, 0, 'latin1');
    let from = h.fieldsStart;
    for (let k = 0; k < drop.length; k += 2) {
      p += buf.copy(out, p, from, drop[k] as number);
      from = drop[k + 1] as number;
    }
    buf.copy(out, p, from, he);
    return out;
  }

  /**
   * The denied answer. The connection stays open only when no body is still to
   * come: a body that arrived whole with the head is skipped, anything else
   * (Content-Length not all here, chunked not finished, Expect: 100-continue
   * with a body) gets `connection: close` and the connection ends (Envoy's
   * behaviour) — waiting to discard it is a descriptor held for the client.
   */
  #deny(): boolean {
    const h = this.#head;
    const mode = h.chunked ? BODY_CHUNKED : h.contentLength > 0 ? BODY_LENGTH : BODY_NONE;
    this.#resStarted = true;
    this.#emitResponse(403, 'DROPPED', 'denied', undefined, undefined);
    let keep = h.minor === 1 && !h.connClose && !this.#clientEnded;
    if (keep && mode !== BODY_NONE) {
      const body = this.#reqBody;
      body.reset(mode, h.contentLength, 'malformed');
      let stop = this.#off;
      try {
        stop = body.consume(this.#buf, this.#off, this.#end);
      } catch {
        body.done = false; // broken framing in a denied body: it is answered 403 all the same, then closed
      }
      if (body.done) this.#off = stop;
      else keep = false;
    }
    if (!keep) {
      this.#client.write(DENIED_CLOSE);
      this.#closeGracefully();
      return false;
    }
    this.#writeClient(DENIED_KEEP_ALIVE);
    return true;
  }

  // Phase 6: stream body.
  #forwardBody(): void {
    const start = this.#off;
    const stop = this.#reqBody.consume(this.#buf, start, this.#end);
    this.#off = stop;
    if (stop > start) this.#writeUpstream(this.#view(this.#buf, start, stop));
    if (this.#reqBody.done) this.#c = C_WAIT;
  }

  // ── upstream ─────────────────────────────────────────────────────────────

  #connect(): void {
    this.#c = C_CONNECTING;
    this.#u = U_CONNECTING;
    this.#pauseClient(P_CONNECTING);
    this.#setDeadline(D_CONNECT, this.#limits.connectTimeoutMs);
    let p: Promise<net.Socket>;
    try {
      p = this.#ctx.connectUpstream();
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(this.#onConnected, this.#onConnectFailed);
  }

  #onConnected = (sock: net.Socket): void => {
    if (this.#c >= C_CLOSING || this.#u !== U_CONNECTING) {
      sock.destroy();
      return;
    }
    try {
      this.#armStream();
      this.#upstream = sock;
      sock.allowHalfOpen = true;
      sock.setNoDelay(true);
      sock.on('error', noop);
      sock.on('data', this.#onUpstreamData);
      sock.on('end', this.#onUpstreamEnd);
      sock.on('close', this.#onUpstreamClose);
      sock.on('drain', this.#onUpstreamDrain);
      const head = this.#pendingHead as Buffer;
      this.#pendingHead = null;
      this.#c = this.#reqBody.done ? C_WAIT : C_BODY;
      this.#sendHead(head);
      this.#resumeClient(P_CONNECTING);
      this.#drive();
    } catch (e) {
      this.#onError(e);
    }
  };

  #onConnectFailed = (): void => {
    if (this.#c >= C_CLOSING) return;
    this.#u = U_NONE;
    this.#fail(new HttpProxyError('upstream-failed', 'upstream-connect'));
  };

  #sendHead(head: Buffer): void {
    this.#u = U_HEAD;
    this.#uoff = this.#uend = this.#uscan = 0;
    this.#ubuf = EMPTY;
    if (this.#ctx.onEvent !== undefined) this.#sentAt = performance.now();
    this.#writeUpstream(head);
  }

  #writeUpstream(b: Buffer): void {
    const up = this.#upstream;
    if (up === null) return;
    if (!up.write(b)) this.#pauseClient(P_UPSTREAM_FULL);
  }

  #onUpstreamDrain = (): void => {
    this.#activeAt = coarseNow();
    this.#resumeClient(P_UPSTREAM_FULL);
  };

  #onUpstreamData = (chunk: Buffer): void => {
    this.#activeAt = coarseNow();
    try {
      const u = this.#u;
      if (u === U_BODY) this.#relayBody(chunk, 0, chunk.length);
      else if (u === U_TUNNEL) this.#writeClient(chunk);
      else if (u === U_HEAD) this.#readResponse(chunk);
      else this.#dropUpstream(); // bytes nobody asked for
    } catch (e) {
      this.#onError(e);
    }
  };

  #uappend(chunk: Buffer): void {
    if (this.#uoff === this.#uend) {
      this.#ubuf = chunk;
      this.#uoff = 0;
      this.#uend = chunk.length;
      this.#uscan = 0;
      return;
    }
    const have = this.#uend - this.#uoff;
    const need = have + chunk.length;
    let acc = this.#uacc;
    if (acc === null || acc.length < need) acc = Buffer.allocUnsafe(Math.max(need, 2 * (acc?.length ?? 0), 16 * 1024));
    this.#ubuf.copy(acc, 0, this.#uoff, this.#uend);
    chunk.copy(acc, have);
    this.#uscan = Math.max(0, this.#uscan - this.#uoff);
    this.#uacc = acc;
    this.#ubuf = acc;
    this.#uoff = 0;
    this.#uend = need;
  }

  // Phase 7: read response head (1xx relayed and skipped), then relay.
  #readResponse(chunk: Buffer): void {
    this.#uappend(chunk);
    for (;;) {
      const buf = this.#ubuf;
      const off = this.#uoff;
      const end = this.#uend;
      if (off === end) return;
      const from = this.#uscan > off + 3 ? this.#uscan - 3 : off;
      const e = headEnd(buf, from, end);
      if (e < 0) {
        if (end - off > this.#limits.maxHeadBytes) throw new HttpProxyError('upstream-failed', 'response-head-too-large');
        this.#uscan = end;
        return;
      }
      const res = this.#res;
      parseResponseHead(buf, off, e, res, this.#isHead, false);
      this.#uoff = e;
      this.#uscan = e;
      if (res.status < 200) {
        if (res.status === 101) {
          if (!this.#upgrade) throw new HttpProxyError('upstream-failed', 'unexpected-101');
          this.#resStarted = true;
          this.#emitResponse(101, 'FORWARDED', undefined, this.#latency(), res.headers);
          this.#writeClient(this.#view(buf, off, end));
          this.#uoff = this.#uend = 0;
          this.#ubuf = EMPTY;
          this.#startTunnel();
          return;
        }
        // RFC 9110 §15.2: a proxy forwards 1xx, but "A server MUST NOT send a 1xx response to an HTTP/1.0 client."
        if (this.#minor === 1) this.#writeClient(this.#view(buf, off, e));
        continue;
      }
      this.#resStarted = true;
      this.#emitResponse(res.status, 'FORWARDED', undefined, this.#latency(), res.headers);
      this.#resBody.reset(res.bodyMode, res.contentLength, 'upstream-failed');
      this.#u = U_BODY;
      // Head and whatever body came with it in one write.
      const stop = this.#resBody.consume(buf, e, end);
      this.#writeClient(this.#view(buf, off, stop));
      this.#uoff = this.#uend = 0;
      this.#ubuf = EMPTY;
      if (this.#resBody.done) this.#onResponseDone(stop < end);
      return;
    }
  }

  #relayBody(buf: Buffer, start: number, end: number): void {
    const stop = this.#resBody.consume(buf, start, end);
    if (stop > start) this.#writeClient(stop === buf.length && start === 0 ? buf : buf.subarray(start, stop));
    if (this.#resBody.done) this.#onResponseDone(stop < end);
  }

  #latency(): bigint | undefined {
    // One BigInt per response rather than three (two hrtime.bigint() and their difference).
    return this.#ctx.onEvent === undefined ? undefined : BigInt(Math.round((performance.now() - this.#sentAt) * 1e6));
  }

  /** Phase 9: the response is complete — next request, or close. */
  #onResponseDone(extraBytes: boolean): void {
    this.#u = this.#upstream === null ? U_NONE : U_IDLE;
    const upstreamKeeps = responseKeepsAlive(this.#res);
    if (!upstreamKeeps || extraBytes) this.#dropUpstream();
    // The client read Connection: close (or a body framed by close) in the head we relayed.
    if (!upstreamKeeps || this.#closeAfter || this.#c !== C_WAIT) {
      // (C_BODY here: the upstream answered before the request body ended; the connection cannot be reused.)
      this.#closeGracefully();
      return;
    }
    this.#c = C_HEAD;
    this.#drive();
  }

  #startTunnel(): void {
    this.#u = U_TUNNEL;
    this.#c = C_TUNNEL;
    this.#armStream();
    // Bytes the client sent after the upgrade request belong to the new protocol.
    if (this.#off < this.#end) this.#writeUpstream(this.#view(this.#buf, this.#off, this.#end));
    this.#buf = EMPTY;
    this.#off = this.#end = 0;
    this.#resumeClient(P_BACKLOG);
    if (this.#clientEnded) this.#upstream?.end();
  }

  #onUpstreamEnd = (): void => {
    try {
      if (this.#u === U_TUNNEL) {
        this.#client.end();
        return;
      }
      this.#upstreamGone(false);
    } catch (e) {
      this.#onError(e);
    }
  };

  #onUpstreamClose = (hadError: boolean): void => {
    try {
      if (this.#u === U_TUNNEL) {
        if (hadError) this.#destroy();
        else this.#client.end();
        return;
      }
      this.#upstreamGone(hadError);
    } catch (e) {
      this.#onError(e);
    }
  };

  #upstreamGone(error: boolean): void {
    const u = this.#u;
    this.#dropUpstream();
    if (u === U_HEAD) {
      this.#fail(new HttpProxyError('upstream-failed', error ? 'upstream-reset' : 'upstream-closed'));
    } else if (u === U_BODY) {
      if (!error && this.#resBody.finishAtClose()) this.#onResponseDone(false);
      else this.#destroy(); // reset or truncated mid-response: both sides closed
    }
  }

  /** Forgets the upstream socket (listeners off, destroyed); the next allowed request reconnects. */
  #dropUpstream(): void {
    const up = this.#upstream;
    this.#u = U_NONE;
    if (up === null) return;
    this.#upstream = null;
    up.removeListener('data', this.#onUpstreamData);
    up.removeListener('end', this.#onUpstreamEnd);
    up.removeListener('close', this.#onUpstreamClose);
    up.removeListener('drain', this.#onUpstreamDrain);
    up.destroy();
    this.#upstreamPaused = false;
    this.#resumeClient(P_UPSTREAM_FULL);
  }

  // ── client output ────────────────────────────────────────────────────────

  #writeClient(b: Buffer): void {
    if (this.#client.write(b)) return;
    this.#clientFull = true;
    const up = this.#upstream;
    if (up !== null && !this.#upstreamPaused) {
      this.#upstreamPaused = true;
      up.pause();
    }
  }

  #onClientDrain = (): void => {
    this.#activeAt = coarseNow();
    try {
      this.#clientFull = false;
      if (this.#upstreamPaused) {
        this.#upstreamPaused = false;
        this.#upstream?.resume();
      }
      if (this.#c === C_HEAD && this.#off < this.#end) this.#drive();
    } catch (e) {
      this.#onError(e);
    }
  };

  #onClientEnd = (): void => {
    try {
      this.#clientEnded = true;
      const c = this.#c;
      if (c === C_TUNNEL) this.#upstream?.end();
      else if (c === C_HEAD || c === C_BODY) this.#drive();
      // C_WAIT / C_CONNECTING: answer the request in flight, then close (checked when back in C_HEAD).
    } catch (e) {
      this.#onError(e);
    }
  };

  #onClientClose = (): void => {
    this.#c = C_CLOSED;
    this.#clearDeadline();
    unwatch(this);
    const up = this.#upstream;
    if (up !== null) {
      this.#upstream = null;
      up.destroy();
    }
    this.#buf = EMPTY;
    this.#acc = null;
    this.#ubuf = EMPTY;
    this.#uacc = null;
  };

  // ── endings ──────────────────────────────────────────────────────────────

  #onError(e: unknown): void {
    if (e instanceof HttpProxyError) {
      this.#fail(e);
      return;
    }
    // A bug, not the peer's fault; never let it escape into the event loop.
    this.#destroy();
  }

  /** Answers `err` if no response has started for this request, then closes; otherwise resets both sides. */
  #fail(err: HttpProxyError): void {
    if (this.#c >= C_CLOSING) return;
    if (this.#resStarted) {
      this.#destroy();
      return;
    }
    if (this.#method === '' && this.#head.method !== '') {
      this.#method = this.#head.method;
      this.#url = this.#head.target;
      this.#minor = this.#head.minor;
    }
    if (!this.#reqEvented && this.#method !== '') this.#emitRequest(err.kind === 'upstream-failed' ? 'FORWARDED' : 'ERROR', err.reason);
    this.#resStarted = true;
    this.#emitResponse(err.status, err.verdict, err.reason, undefined, undefined);
    this.#client.write(ERROR_KINDS[err.kind].response);
    this.#closeGracefully();
  }

  /** We are done with this client: end our side, drop the upstream, drain input for lingerMs. */
  #closeGracefully(): void {
    if (this.#c >= C_CLOSING) return;
    this.#c = C_CLOSING;
    this.#dropUpstream();
    this.#buf = EMPTY;
    this.#off = this.#end = 0;
    this.#acc = null;
    this.#client.end();
    this.#setDeadline(D_LINGER, this.#limits.lingerMs);
    if (this.#pause !== 0) {
      this.#pause = 0;
      this.#client.resume();
    }
  }

  #destroy(): void {
    this.#client.destroy();
    this.#onClientClose();
  }

  // ── events ───────────────────────────────────────────────────────────────

  #emitRequest(verdict: HttpVerdict, reason: string | undefined): void {
    this.#reqEvented = true;
    const on = this.#ctx.onEvent;
    if (on === undefined) return;
    const e: HttpProxyEvent = { kind: 'request', method: this.#method, url: this.#url, protocol: this.#minor === 0 ? 'HTTP/1.0' : 'HTTP/1.1', verdict };
    if (this.#host !== undefined) e.host = this.#host;
    if (reason !== undefined) e.reason = reason;
    if (this.#by !== undefined) e.by = this.#by;
    if (this.#head.method !== '') e.headers = headerList(this.#head.headers);
    try {
      on(e);
    } catch {
      // onEvent must not throw; a faulty listener does not break the connection.
    }
  }

  #emitResponse(code: number, verdict: HttpVerdict, reason: string | undefined, latencyNs: bigint | undefined, headers: [string, string][] | undefined): void {
    const on = this.#ctx.onEvent;
    if (on === undefined) return;
    const e: HttpProxyEvent = { kind: 'response', method: this.#method, url: this.#url, protocol: this.#minor === 0 ? 'HTTP/1.0' : 'HTTP/1.1', code, verdict };
    if (this.#host !== undefined) e.host = this.#host;
    if (latencyNs !== undefined) e.latencyNs = latencyNs;
    if (reason !== undefined) e.reason = reason;
    if (headers !== undefined) e.headers = headers;
    if (this.#by !== undefined) e.by = this.#by;
    try {
      on(e);
    } catch {
      // as above
    }
  }
}
