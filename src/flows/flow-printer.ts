/**
 * Flows for people, in `hubble observe`'s output formats (hubble/pkg/printer):
 *
 *   compact  Nov 26 06:41:02.123: default/frontend:43210 (ID:1234) -> default/backend:80 (ID:5678) policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN)
 *            Nov 26 06:41:02.124: default/frontend:43210 (ID:1234) -> default/backend:80 (ID:5678) Policy denied DROPPED (TCP Flags: SYN) POLICY_DENIED
 *            … http-request FORWARDED (HTTP/1.1 GET http://backend/)
 *   table    TIMESTAMP  SOURCE  DESTINATION  TYPE  VERDICT  SUMMARY (columns aligned)
 *   dict     one `KEY: value` block per flow, separated by dashes
 *   json     Hubble JSON, one object per line (jsonpb is the same)
 *
 * Compact adds, after Hubble's fields, the drop reason code of a drop and the
 * policy that denied it, because that is what a person looks for next.
 */
import {
  DROP_REASONS,
  EVENT_TYPE,
  TRACE_POINTS,
  flowPorts,
  flowToJson,
  isFlowEnvelope,
  policyMatchTypeName,
  type Endpoint,
  type Flow,
  type GetFlowsResponse,
  type Policy,
  type TCPFlags,
} from './flow.ts';

export type OutputFormat = 'compact' | 'table' | 'dict' | 'json' | 'jsonpb';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['compact', 'table', 'dict', 'json', 'jsonpb'];

export interface PrintOptions {
  /** Print times in UTC rather than local time (tests, logs shipped across zones). */
  utc?: boolean;
  /** Prefix each flow with its node, as `hubble observe --print-node-name`. */
  nodeName?: boolean;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** Go's time.StampMilli, `Jan _2 15:04:05.000`, as Hubble prints flow times. */
export function stampMilli(rfc3339: string, utc = false): string {
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339;
  const [mo, day, h, m, s, ms] = utc
    ? [d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  return `${MONTHS[mo]} ${String(day).padStart(2, ' ')} ${pad2(h)}:${pad2(m)}:${pad2(s)}.${String(ms).padStart(3, '0')}`;
}

const RESERVED_IDENTITIES: Record<number, string> = {
  1: 'host', 2: 'world', 3: 'unmanaged', 4: 'health', 5: 'init', 6: 'remote-node', 7: 'kube-apiserver', 8: 'ingress',
};

function ports(f: Flow): [number | undefined, number | undefined] {
  const p = flowPorts(f);
  return [p?.source_port, p?.destination_port];
}

/** `ns/pod:port (ID:n)`, or `ip:port (world)`; a DNS name when the FQDN cache knows one. */
function endpointText(ep: Endpoint | undefined, ip: string | undefined, names: string[] | undefined, port: number | undefined): string {
  let host = ep?.pod_name ? `${ep.namespace ?? ''}/${ep.pod_name}` : (names?.[0] ?? ip ?? '');
  if (host === '') host = 'unknown';
  const withPort = port ? (host.includes(':') && !ep?.pod_name ? `[${host}]:${port}` : `${host}:${port}`) : host;
  const id = ep?.identity ?? 0;
  const idText = RESERVED_IDENTITIES[id] ?? `ID:${id}`;
  return `${withPort} (${idText})`;
}

const TCP_FLAG_ORDER: (keyof TCPFlags)[] = ['SYN', 'ACK', 'FIN', 'RST', 'PSH', 'URG', 'ECE', 'CWR', 'NS'];
const ICMP4_TYPES: Record<number, string> = { 0: 'EchoReply', 3: 'DestinationUnreachable', 5: 'Redirect', 8: 'EchoRequest', 11: 'TimeExceeded' };
const ICMP6_TYPES: Record<number, string> = { 1: 'DestinationUnreachable', 3: 'TimeExceeded', 128: 'EchoRequest', 129: 'EchoReply', 135: 'NeighborSolicitation', 136: 'NeighborAdvertisement' };
const RCODE_NAMES: Record<number, string> = { 1: 'Format Error', 2: 'Server Failure', 3: 'Non-Existent Domain', 4: 'Not Implemented', 5: 'Refused' };

/** Hubble's summary: what the packet or request was. */
export function flowSummary(f: Flow): string {
  const l7 = f.l7;
  if (l7?.http !== undefined) {
    const h = l7.http;
    const proto = h.protocol ?? 'HTTP/1.1';
    if (l7.type === 'RESPONSE') {
      const ms = Math.round(Number(l7.latency_ns ?? 0) / 1e6);
      return `${proto} ${h.code ?? 0} ${ms}ms (${h.method ?? ''} ${h.url ?? ''})`;
    }
    return `${proto} ${h.method ?? ''} ${h.url ?? ''}`;
  }
  if (l7?.dns !== undefined) {
    const d = l7.dns;
    const qtypes = (d.qtypes ?? []).join(',');
    if (l7.type === 'RESPONSE') {
      if ((d.rcode ?? 0) !== 0) return `DNS Answer RCode: ${RCODE_NAMES[d.rcode ?? 0] ?? d.rcode} TTL: ${d.ttl ?? 0} (Proxy ${d.query ?? ''} ${qtypes})`;
      return `DNS Answer "${(d.ips ?? []).join(',')}" TTL: ${d.ttl ?? 0} (Proxy ${d.query ?? ''} ${qtypes})`;
    }
    return `DNS Query ${d.query ?? ''} ${qtypes}`;
  }
  const l4 = f.l4;
  if (l4 === undefined) return f.Summary ?? '';
  if ('TCP' in l4) {
    const fl = l4.TCP.flags ?? {};
    const on = TCP_FLAG_ORDER.filter((k) => fl[k] === true);
    return on.length > 0 ? `TCP Flags: ${on.join(', ')}` : 'TCP';
  }
  if ('UDP' in l4) return 'UDP';
  if ('SCTP' in l4) return 'SCTP';
  if ('ICMPv4' in l4) return `ICMPv4 ${ICMP4_TYPES[l4.ICMPv4.type ?? 0] ?? `Type ${l4.ICMPv4.type ?? 0}`}`;
  if ('ICMPv6' in l4) return `ICMPv6 ${ICMP6_TYPES[l4.ICMPv6.type ?? 0] ?? `Type ${l4.ICMPv6.type ?? 0}`}`;
  return f.Summary ?? '';
}

function dropReasonText(f: Flow): string {
  const code = f.drop_reason_desc;
  if (code !== undefined) return DROP_REASONS[code]?.[1] ?? code;
  const byNumber = Object.values(DROP_REASONS).find(([n]) => n === (f.event_type?.sub_type ?? f.drop_reason));
  return byNumber?.[1] ?? 'Unknown drop reason';
}

/** Hubble's GetFlowType: `http-request`, `to-endpoint`, `Policy denied`, `policy-verdict:L3-L4 INGRESS ALLOWED`. */
export function flowTypeText(f: Flow): string {
  if (f.l7 !== undefined) {
    const proto = f.l7.http !== undefined ? 'http' : f.l7.dns !== undefined ? 'dns' : 'l7';
    return `${proto}-${(f.l7.type ?? 'UNKNOWN_L7_TYPE').toLowerCase()}`;
  }
  switch (f.event_type?.type) {
    case EVENT_TYPE.TRACE: return TRACE_POINTS[f.event_type.sub_type ?? 0] ?? 'trace';
    case EVENT_TYPE.DROP: return dropReasonText(f);
    case EVENT_TYPE.POLICY_VERDICT: {
      const action = f.verdict === 'DROPPED' ? 'DENIED' : f.verdict === 'AUDIT' ? 'AUDITED' : 'ALLOWED';
      return `policy-verdict:${policyMatchTypeName(f.policy_match_type)} ${f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN'} ${action}`;
    }
    case EVENT_TYPE.CAPTURE: return 'capture';
    default: return f.verdict === 'DROPPED' ? dropReasonText(f) : 'UNKNOWN';
  }
}

function deniedBy(f: Flow): Policy | undefined {
  return f.ingress_denied_by?.[0] ?? f.egress_denied_by?.[0];
}

/** One compact line (no newline). */
export function formatCompact(e: GetFlowsResponse, opts: PrintOptions = {}): string {
  if (!isFlowEnvelope(e)) {
    return `EVENTS LOST: ${e.lost_events.source} CPU(${e.lost_events.cpu ?? 0}) ${e.lost_events.num_events_lost}`;
  }
  const f = e.flow;
  const [sport, dport] = ports(f);
  let src = endpointText(f.source, f.IP?.source, f.source_names, sport);
  let dst = endpointText(f.destination, f.IP?.destination, f.destination_names, dport);
  // Hubble prints replies from the initiator's point of view: `client <- server`.
  let arrow = '->';
  if (f.is_reply === true) {
    [src, dst] = [dst, src];
    arrow = '<-';
  } else if (f.is_reply === undefined) arrow = '<>';
  const isPolicyVerdict = f.event_type?.type === EVENT_TYPE.POLICY_VERDICT && f.l7 === undefined;
  let line = `${stampMilli(f.time, opts.utc)}: ${src} ${arrow} ${dst} ${flowTypeText(f)}`;
  if (!isPolicyVerdict) line += ` ${f.verdict}`;
  const summary = flowSummary(f);
  if (summary !== '') line += ` (${summary})`;
  if (f.verdict === 'DROPPED' && f.drop_reason_desc !== undefined) line += ` ${f.drop_reason_desc}`;
  const by = deniedBy(f);
  if (by !== undefined) line += ` by ${by.kind ?? 'policy'} ${by.namespace ? `${by.namespace}/` : ''}${by.name}`;
  return opts.nodeName ? `${e.node_name}: ${line}` : line;
}

function dictBlock(e: GetFlowsResponse, opts: PrintOptions): string {
  if (!isFlowEnvelope(e)) return `  EVENTS LOST: ${e.lost_events.num_events_lost} (${e.lost_events.source})`;
  const f = e.flow;
  const [sport, dport] = ports(f);
  const rows: [string, string][] = [
    ['TIMESTAMP', stampMilli(f.time, opts.utc)],
    ['SOURCE', endpointText(f.source, f.IP?.source, f.source_names, sport)],
    ['DESTINATION', endpointText(f.destination, f.IP?.destination, f.destination_names, dport)],
    ['TYPE', flowTypeText(f)],
    ['VERDICT', f.verdict],
    ['SUMMARY', flowSummary(f)],
  ];
  if (opts.nodeName) rows.unshift(['NODE', e.node_name]);
  if (f.drop_reason_desc !== undefined) rows.push(['DROP REASON', f.drop_reason_desc]);
  const by = deniedBy(f);
  if (by !== undefined) rows.push(['DENIED BY', `${by.kind ?? 'policy'} ${by.namespace ? `${by.namespace}/` : ''}${by.name}`]);
  return rows.map(([k, v]) => `${k.padStart(11)}: ${v}`).join('\n');
}

function tableRow(e: GetFlowsResponse, opts: PrintOptions): string[] {
  if (!isFlowEnvelope(e)) return ['', '', '', 'EVENTS LOST', '', `${e.lost_events.num_events_lost} (${e.lost_events.source})`];
  const f = e.flow;
  const [sport, dport] = ports(f);
  const row = [
    stampMilli(f.time, opts.utc),
    endpointText(f.source, f.IP?.source, f.source_names, sport),
    endpointText(f.destination, f.IP?.destination, f.destination_names, dport),
    flowTypeText(f),
    f.verdict,
    flowSummary(f),
  ];
  return opts.nodeName ? [e.node_name, ...row] : row;
}

/** Writes envelopes in one format; `end()` emits what a format holds back (the aligned table). */
export interface FlowPrinter {
  write(e: GetFlowsResponse): void;
  end(): void;
}

/**
 * `follow` matters to the table only: a followed table cannot be aligned
 * after the fact, so its columns get fixed widths; otherwise rows are held
 * and aligned at the end, as Go's tabwriter does for Hubble.
 */
export function makePrinter(format: OutputFormat, out: (text: string) => void, opts: PrintOptions & { follow?: boolean } = {}): FlowPrinter {
  switch (format) {
    case 'json':
    case 'jsonpb':
      return { write: (e) => out(flowToJson(e) + '\n'), end: () => {} };
    case 'compact':
      return { write: (e) => out(formatCompact(e, opts) + '\n'), end: () => {} };
    case 'dict': {
      let first = true;
      return {
        write: (e) => { out(`${first ? '' : '------------\n'}${dictBlock(e, opts)}\n`); first = false; },
        end: () => {},
      };
    }
    case 'table': {
      const header = opts.nodeName ? ['NODE', 'TIMESTAMP', 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'] : ['TIMESTAMP', 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'];
      if (opts.follow) {
        const widths = opts.nodeName ? [12, 19, 40, 40, 16, 10, 0] : [19, 40, 40, 16, 10, 0];
        const fmt = (cells: string[]): string => cells.map((c, i) => ((widths[i] ?? 0) > 0 ? c.padEnd(widths[i] ?? 0) : c)).join('   ').trimEnd();
        let headerDone = false;
        return {
          write: (e) => {
            if (!headerDone) { out(fmt(header) + '\n'); headerDone = true; }
            out(fmt(tableRow(e, opts)) + '\n');
          },
          end: () => {},
        };
      }
      const rows: string[][] = [header];
      return {
        write: (e) => { rows.push(tableRow(e, opts)); },
        end: () => {
          if (rows.length === 1) return;
          const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
          out(rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd()).join('\n') + '\n');
        },
      };
    }
  }
}
