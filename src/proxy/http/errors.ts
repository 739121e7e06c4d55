/**
 * The one error type of the HTTP proxy. Every way a request can fail is a
 * variant (`kind`) that carries the status the client gets and the flow
 * verdict Hubble records for it — the table below is the whole mapping:
 *
 *   kind                 status  verdict   raised when
 *   malformed            400     ERROR     head or chunked framing breaks RFC 9112 (reason says which rule)
 *   denied               403     DROPPED   ctx.decide() said no ("Access denied\r\n")
 *   head-timeout         408     ERROR     a request head did not complete within limits.headTimeoutMs
 *   body-timeout         408     ERROR     an allowed request's body stalled: no byte for limits.streamIdleTimeoutMs
 *   body-too-large       413     ERROR     Content-Length or a chunk size past Number.MAX_SAFE_INTEGER
 *   head-too-large       431     ERROR     request head past limits.maxHeadBytes or limits.maxHeaders
 *   upstream-failed      502     ERROR     connect failed/timed out, reset or closed before a whole response, malformed response
 *   upstream-timeout     504     ERROR     the request went upstream and no response byte came for limits.streamIdleTimeoutMs
 *   policy-unavailable   503     ERROR     ctx.decide() threw: fail closed
 *   version-unsupported  505     ERROR     HTTP/x.y other than 1.0 and 1.1
 *
 * Errors are thrown only on the failure path (never for control flow in the
 * per-request hot path).
 */
import type { HttpVerdict } from './events.ts';

export type HttpProxyErrorKind =
  | 'malformed'
  | 'denied'
  | 'head-timeout'
  | 'body-timeout'
  | 'body-too-large'
  | 'head-too-large'
  | 'upstream-failed'
  | 'upstream-timeout'
  | 'policy-unavailable'
  | 'version-unsupported';

interface KindInfo {
  readonly status: number;
  readonly verdict: HttpVerdict;
  /** The whole response the proxy sends for this kind, prebuilt once. */
  readonly response: Buffer;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/** Body of every policy denial (DESIGN.md "L7 HTTP": status 403, text/plain, `Access denied\r\n`). */
export const ACCESS_DENIED_BODY = 'Access denied\r\n';

function response(status: number, body: string, close: boolean): Buffer {
  return Buffer.from(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      (close ? 'connection: close\r\n' : '') +
      `\r\n${body}`,
    'latin1',
  );
}

function info(status: number, verdict: HttpVerdict): KindInfo {
  return { status, verdict, response: response(status, `${STATUS_TEXT[status]}\r\n`, true) };
}

export const ERROR_KINDS: Readonly<Record<HttpProxyErrorKind, KindInfo>> = {
  malformed: info(400, 'ERROR'),
  denied: { status: 403, verdict: 'DROPPED', response: response(403, ACCESS_DENIED_BODY, true) },
  'head-timeout': info(408, 'ERROR'),
  'body-timeout': info(408, 'ERROR'),
  'body-too-large': info(413, 'ERROR'),
  'head-too-large': info(431, 'ERROR'),
  'upstream-failed': info(502, 'ERROR'),
  'upstream-timeout': info(504, 'ERROR'),
  'policy-unavailable': info(503, 'ERROR'),
  'version-unsupported': info(505, 'ERROR'),
};

/** The 403 for a connection that stays open (no body, or all of it already read). */
export const DENIED_KEEP_ALIVE: Buffer = response(403, ACCESS_DENIED_BODY, false);
/** The 403 followed by a close (a body still to come, HTTP/1.0, Connection: close). */
export const DENIED_CLOSE: Buffer = ERROR_KINDS.denied.response;

export class HttpProxyError extends Error {
  readonly kind: HttpProxyErrorKind;
  /** Short machine-readable cause, e.g. `cl-and-te`, `obs-fold`, `encoded-slash`. */
  readonly reason: string;

  /** `detail` (the offending byte, the value) goes into the message only; `reason` stays a short token. */
  constructor(kind: HttpProxyErrorKind, reason: string, detail?: string) {
    super(detail === undefined ? `${kind}: ${reason}` : `${kind}: ${reason} (${detail})`);
    this.name = 'HttpProxyError';
    this.kind = kind;
    this.reason = reason;
  }

  get status(): number {
    return ERROR_KINDS[this.kind].status;
  }

  get verdict(): HttpVerdict {
    return ERROR_KINDS[this.kind].verdict;
  }
}

export function malformed(reason: string, detail?: string): HttpProxyError {
  return new HttpProxyError('malformed', reason, detail);
}
