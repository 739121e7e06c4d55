/**
 * The transparent HTTP/1.x proxy that enforces `toPorts[].rules.http`.
 *
 *   pod ──TCP──► datapath (TPROXY for (endpoint, port) pairs with rules.http)
 *                   │ accepted net.Socket; localAddress:localPort = the original destination
 *                   ▼
 *   handleConnection(client, ctx) ── per request, in named phases (connection.ts):
 *
 *     1 read head ─► 2 parse & validate ─► 3 normalise ─► 4 authorise ─► 5 forward ─► 6 stream body
 *       head-parser.ts   head-parser.ts      normalise.ts    ctx.decide()   lazy upstream   body.ts
 *       (408, 431)       (400, 505)          (400)           (403 / 503)    (502)           (400)
 *                                                                               │
 *     9 next request ◄─ 8 relay (body.ts, verbatim; 101 → raw splice) ◄─ 7 read response head (response.ts; 502)
 *
 *     every failure is one HttpProxyError (errors.ts) whose kind fixes the status and the flow verdict;
 *     every request yields a `request` and a `response` HttpProxyEvent (events.ts) for flows and metrics.
 *
 * What upstream receives is exactly what policy decided on: the normalised
 * target (normalise.ts states every rule), the header lines as received,
 * bodies framed exactly as parsed. A denied request's bytes never reach the
 * upstream; the upstream connection is opened on the first allowed request.
 *
 * Hostile clients: every phase of a connection has a deadline (connection.ts
 * lists them), a denied request whose body is still to come closes the
 * connection after its 403, and an optional ConnectionAdmission (proxy/admission)
 * caps connections per source address and in all, so one pod cannot take the
 * descriptors of the process the proxy runs in.
 *
 * Caveats: HTTP/1.x only (h2c upgrades are stripped, the prior-knowledge HTTP/2
 * preface is a 505); requests on a connection are handled one at a time (pipelined
 * requests wait in the input buffer; responses stay in order); no response
 * timeout but an idle one (long polls are legitimate; 5 min of silence is not)
 * and no body-rate timeout; HTTP/1.0 connections close after each response.
 *
 * Example context (what the agent builds per accepted socket):
 *
 *   handleConnection(sock, {
 *     client: { ip: '10.0.1.7', port: 40512 }, original: { ip: '10.0.2.9', port: 8080 },
 *     decide: (req) => { const v = snapshot.verdict({ …, http: req }); return { allowed: v.allowed, by: v.allowedBy }; },
 *     connectUpstream: () => transparentConnect({ from: client, to: original }),
 *     onEvent: (e) => flows.add(l7Flow(e)),
 *   });
 */
import type * as net from 'node:net';
import { HttpProxyConnection, type HttpProxyContext } from './connection.ts';
import type { ConnectionAdmission } from '../admission/index.ts';

export { ACCESS_DENIED_BODY } from './errors.ts';
export type { HttpProxyEvent } from './events.ts';
export type { HttpProxyContext } from './connection.ts';
export { ConnectionAdmission, DEFAULT_ADMISSION } from '../admission/index.ts';

/**
 * Takes over an accepted client socket; never throws (a broken socket is destroyed).
 * With `admission`, a connection over its limits is reset at once, and an admitted one
 * gives its slot back when it closes.
 */
export function handleConnection(client: net.Socket, ctx: HttpProxyContext, admission?: ConnectionAdmission): void {
  if (admission !== undefined) {
    const source = ctx.client.ip;
    if (!admission.admit(source)) {
      client.resetAndDestroy();
      return;
    }
    client.once('close', () => admission.release(source));
  }
  try {
    new HttpProxyConnection(client, ctx);
  } catch {
    client.destroy();
  }
}
