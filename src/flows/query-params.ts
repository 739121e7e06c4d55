/**
 * GET /v1/flows query parameters ⇄ FlowQuery. Two spellings, both repeatable:
 *
 *   flat      ?verdict=DROPPED&destination_pod=default/&destination_port=80
 *             every flat field builds ONE whitelist filter (fields AND, repeated values OR);
 *             `blacklist.<field>=…` builds one blacklist filter the same way.
 *   JSON      ?whitelist={"source_pod":["default/a"]}&whitelist={"destination_pod":["default/a"]}
 *             one FlowFilter per parameter, for ORs of filters (what `observe --pod` sends).
 *
 *   plus      last=N  first=N  follow=1  since=<RFC 3339 | 5m>  until=<…>
 *
 * Example: curl --unix-socket agent.sock 'http://agent/v1/flows?follow=1&verdict=DROPPED'
 */
import { FlowFilterError, parseEventType, type FlowFilter } from './filter.ts';
import { formatFlowTime, nowMs, type TCPFlags } from './flow.ts';
import type { FlowQuery } from './store.ts';

const STRING_FIELDS = [
  'uuid', 'source_ip', 'destination_ip', 'source_pod', 'destination_pod', 'source_label', 'destination_label',
  'source_fqdn', 'destination_fqdn', 'verdict', 'drop_reason_desc', 'http_status_code', 'protocol',
  'source_port', 'destination_port', 'dns_query', 'http_method', 'http_path', 'http_url', 'node_name',
  'ip_version', 'traffic_direction',
] as const;
const NUMBER_FIELDS = ['source_identity', 'destination_identity'] as const;
const OTHER_FIELDS = ['event_type', 'reply', 'tcp_flags', 'source_workload', 'destination_workload'] as const;
const ALL_FIELDS = new Set<string>([...STRING_FIELDS, ...NUMBER_FIELDS, ...OTHER_FIELDS]);

export type QueryWithoutSignal = Omit<FlowQuery, 'signal'>;

export function parseFlowsQuery(params: URLSearchParams, now = nowMs()): QueryWithoutSignal {
  const q: QueryWithoutSignal = {};
  const flatWhite: FlowFilter = {};
  const flatBlack: FlowFilter = {};
  const whitelist: FlowFilter[] = [];
  const blacklist: FlowFilter[] = [];
  for (const [name, value] of params) {
    switch (name) {
      case 'last': q.last = count(name, value); continue;
      case 'first': q.first = count(name, value); continue;
      case 'follow': q.follow = value === '' || value === '1' || value === 'true'; continue;
      case 'since': q.since = parseTimeArg(name, value, now); continue;
      case 'until': q.until = parseTimeArg(name, value, now); continue;
      case 'whitelist': whitelist.push(parseFilterJson(name, value)); continue;
      case 'blacklist': blacklist.push(parseFilterJson(name, value)); continue;
    }
    if (name.startsWith('blacklist.')) addFlat(flatBlack, name.slice(10), value);
    else addFlat(flatWhite, name, value);
  }
  if (Object.keys(flatWhite).length > 0) whitelist.unshift(flatWhite);
  if (Object.keys(flatBlack).length > 0) blacklist.unshift(flatBlack);
  if (whitelist.length > 0) q.whitelist = whitelist;
  if (blacklist.length > 0) q.blacklist = blacklist;
  return q;
}

/** The query string that parseFlowsQuery reads back as the same query (filters as JSON). */
export function flowsQueryString(q: QueryWithoutSignal): string {
  const p = new URLSearchParams();
  if (q.last !== undefined) p.set('last', String(q.last));
  if (q.first !== undefined) p.set('first', String(q.first));
  if (q.follow) p.set('follow', '1');
  if (q.since !== undefined) p.set('since', q.since);
  if (q.until !== undefined) p.set('until', q.until);
  for (const f of q.whitelist ?? []) p.append('whitelist', JSON.stringify(f));
  for (const f of q.blacklist ?? []) p.append('blacklist', JSON.stringify(f));
  return p.toString();
}

function addFlat(f: FlowFilter, field: string, value: string): void {
  const rec = f as Record<string, unknown[]>;
  const push = (v: unknown): void => { (rec[field] ??= []).push(v); };
  if ((STRING_FIELDS as readonly string[]).includes(field)) {
    push(field === 'verdict' || field === 'traffic_direction' || field === 'drop_reason_desc' ? value.toUpperCase() : value);
  } else if ((NUMBER_FIELDS as readonly string[]).includes(field)) push(count(field, value));
  else if (field === 'event_type') push(parseEventType(value));
  else if (field === 'reply') push(value === 'true' || value === '1');
  else if (field === 'tcp_flags') push(parseTcpFlags(value));
  else throw new FlowFilterError(`unknown query parameter ${JSON.stringify(field)}`);
}

/** `SYN,ACK` → {SYN: true, ACK: true}. */
export function parseTcpFlags(text: string): TCPFlags {
  const known = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];
  const flags: Record<string, boolean> = {};
  for (const raw of text.split(',')) {
    const f = raw.trim().toUpperCase();
    if (!known.includes(f)) throw new FlowFilterError(`tcp_flags: unknown flag ${JSON.stringify(raw)} (${known.join(', ')})`);
    flags[f] = true;
  }
  return flags;
}

function parseFilterJson(name: string, text: string): FlowFilter {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new FlowFilterError(`${name}: not JSON: ${text.slice(0, 80)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FlowFilterError(`${name}: a FlowFilter must be a JSON object`);
  for (const [k, val] of Object.entries(v)) {
    if (!ALL_FIELDS.has(k)) throw new FlowFilterError(`${name}: unknown FlowFilter field ${JSON.stringify(k)}`);
    if (!Array.isArray(val)) throw new FlowFilterError(`${name}.${k}: must be an array`);
  }
  return v as FlowFilter;
}

function count(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new FlowFilterError(`${name}: ${JSON.stringify(value)} is not a non-negative integer`);
  return Number(value);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A time as `hubble observe --since/--until` takes it: RFC 3339 (or anything
 * with a date Date.parse reads), or a duration before now — Go syntax, `5m`,
 * `1h30m`, `90s`, `500ms`, plus `d` for days.
 */
export function parseTimeArg(name: string, text: string, now = nowMs()): string {
  if (/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(text)) {
    let ms = 0;
    for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 0);
    return formatFlowTime(now - ms);
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) {
      // Keep the caller's fractional digits when they gave RFC 3339 in UTC.
      return /Z$/.test(text) && text.length > 19 ? text : formatFlowTime(t);
    }
  }
  throw new FlowFilterError(`${name}: ${JSON.stringify(text)} is neither an RFC 3339 time nor a duration like 5m or 1h30m`);
}
