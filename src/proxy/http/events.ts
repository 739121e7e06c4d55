/**
 * L7 events: what the proxy tells its caller about each request, shaped so
 * the caller can fill a Hubble flow's `l7` (`type` REQUEST|RESPONSE,
 * `latency_ns`, `http{code,method,url,protocol,headers}`) and the
 * `hubble_http_requests_total{method,protocol,status}` metric without
 * re-parsing anything.
 *
 * Every request that got as far as a parsed request line yields exactly one
 * `request` event and one `response` event:
 *
 *   request   FORWARDED (policy allowed it) | DROPPED (policy denied) | ERROR (rejected before policy: malformed…)
 *   response  FORWARDED (the upstream's answer: code, latencyNs = request head sent → response head read)
 *             DROPPED   (the proxy's 403)
 *             ERROR     (the proxy's 4xx/5xx: code and reason; also 502 for upstream failures)
 *
 * A head that never became a request line (garbage, timeout on an empty
 * connection) yields a single `response` ERROR event with method '' and url ''.
 * `url` is `http://<host><path>` like Cilium's access log, or the path alone
 * when there is no Host (HTTP/1.0).
 */

export type HttpVerdict = 'FORWARDED' | 'DROPPED' | 'ERROR';
export type HttpProtocol = 'HTTP/1.0' | 'HTTP/1.1';

export interface HttpProxyEvent {
  kind: 'request' | 'response';
  method: string;
  url: string;
  protocol: HttpProtocol;
  host?: string;
  /** Status the client got (response events). */
  code?: number;
  /** Request head written upstream → response head parsed (forwarded responses). */
  latencyNs?: bigint;
  verdict: HttpVerdict;
  /** Why an ERROR/DROPPED happened (`denied`, `obs-fold`, `upstream-connect`, …). */
  reason?: string;
  /** Request headers (request events only; names lower-case, repeats joined with ","). Response
   *  headers are not collected: making their strings would cost every response on the hot path. */
  headers?: [string, string][];
  /** What ctx.decide() returned as `by` (the rules that allowed or denied). */
  by?: unknown;
}

export function eventUrl(host: string | undefined, path: string): string {
  return host === undefined || host === '' ? path : `http://${host}${path}`;
}

export function headerList(headers: Readonly<Record<string, string>>): [string, string][] {
  const out: [string, string][] = [];
  for (const name in headers) out.push([name, headers[name] as string]);
  return out;
}
