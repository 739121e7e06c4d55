/**
 * Shapes shared by the DNS proxy, its sockets and its consumers.
 *
 * A query event, then its response event, as the agent turns them into
 * Hubble L7 DNS flows (`l7.dns.{query,ips,ttl,rcode,qtypes}`):
 *
 *   { type: 'query', protocol: 'udp', pod: {ip:'10.0.1.5',port:40123}, server: {ip:'10.96.0.10',port:53},
 *     id: 4660, query: 'api.github.com.', qtypes: ['A'], verdict: 'FORWARDED' }
 *   { type: 'response', …same…, rcode: 0, ips: ['140.82.121.6'], ttl: 60, verdict: 'FORWARDED', latencyNs: 812000 }
 *
 * A denied query gives one event: type 'query', verdict 'DROPPED', rcode 5,
 * reason 'policy-denied' (the pod got REFUSED; nothing was forwarded).
 */
export interface UdpEndpoint {
  ip: string;
  port: number;
}

export interface DnsDatagram {
  /** Owned by the receiver (a copy of the kernel's bytes). */
  payload: Buffer;
  /** The pod. */
  src: UdpEndpoint;
  /** Where the pod sent it: the real DNS server (TPROXY keeps it). */
  origDst: UdpEndpoint;
}

/** Where handleUdp sends its answer: TransparentUdp.reply, or a fake in tests. */
export interface DnsReplySink {
  reply(d: DnsDatagram, payload: Buffer): void;
}

export type DnsVerdict = 'FORWARDED' | 'DROPPED';

export type DnsEventReason =
  | 'policy-denied'
  | 'upstream-timeout'
  | 'upstream-error'
  | 'upstream-malformed'
  | 'answer-too-large'
  /** The server's ingress policy does not admit the pod, in whose name the query would leave: SERVFAIL, not sent. */
  | 'server-denied';

export interface DnsEvent {
  type: 'query' | 'response';
  protocol: 'udp' | 'tcp';
  pod: UdpEndpoint;
  server: UdpEndpoint;
  id: number;
  /** Lower-case, fully qualified. */
  query: string;
  qtypes: readonly string[];
  verdict: DnsVerdict;
  /** On responses, and on denied queries (5). */
  rcode?: number;
  ips?: readonly string[];
  ttl?: number;
  /** Query received → response sent, for responses. */
  latencyNs?: number;
  reason?: DnsEventReason;
}

/** Options for a socket the upstream queries go out on. */
export interface UpstreamSocketOptions {
  /**
   * Send from this address (a pod's), port chosen by the kernel: a
   * transparent socket (IP_TRANSPARENT). An opener that cannot must throw,
   * never fall back to the node's address.
   */
  source?: string;
  /** The socket's one server (connect()): only its datagrams are read. */
  peer?: UdpEndpoint;
  /** SO_MARK, for a steering rule to recognise (and skip) the proxy's own queries. */
  mark?: number;
  recvBufferBytes?: number;
  sendBufferBytes?: number;
  /** A datagram sent with `token` was refused by the kernel (errno). */
  onSendError?(token: number, errno: number): void;
}

/** A UDP socket (0.0.0.0:0, or `source`:0 when asked); `send` may queue until the current callback returns. */
export interface UpstreamSocket {
  readonly port: number;
  send(ip: string, port: number, payload: Uint8Array, token?: number): void;
  unref(): void;
  close(): void;
}

/**
 * Opens an upstream socket. The agent passes the datapath's batched libc
 * socket (recvmmsg/sendmmsg, src/datapath openUdp); the default is Node's dgram.
 */
export type OpenUpstreamSocket = (onDatagram: (payload: Buffer, from: UdpEndpoint) => void, opts: UpstreamSocketOptions) => UpstreamSocket;
