/** Flow rows as table markup, with Hubble UI's columns; the Drops, DNS and HTTP views show a subset. */
import type { FlowRow } from '../../src/ui/api.ts';
import { clock, esc } from './dom.ts';

type Column = { title: string; cell: (f: FlowRow) => string };

function endpointName(e: FlowRow['source']): string {
  if (e.pod) return `${e.namespace ? `${e.namespace}/` : ''}${e.pod}`;
  return e.workload;
}

const verdictCell = (f: FlowRow): string => {
  const cls = f.verdict === 'FORWARDED' ? 'fwd' : f.verdict === 'DROPPED' ? 'drop' : 'other';
  const tip = [f.dropReason, ...f.policies.map((p) => `policy ${p}`)].filter(Boolean).join('\n');
  const why = f.dropReason ? ` <span class="why">${esc(f.dropReason)}</span>` : '';
  return `<span class="verdict verdict-${cls}"${tip ? ` title="${esc(tip)}"` : ''}>${esc(f.verdict.toLowerCase())}</span>${why}`;
};

export const COLUMNS: Record<string, Column> = {
  auth: { title: 'Authentication', cell: (f) => (f.authenticated ? '<span class="auth yes" title="mutual TLS">mTLS</span>' : '<span class="auth">–</span>') },
  srcPod: { title: 'Source Pod', cell: (f) => `<span class="ep" title="${esc(f.source.workload)}">${esc(endpointName(f.source))}</span>` },
  srcIp: { title: 'Source IP', cell: (f) => `<span class="mono">${esc(f.source.ip)}</span>` },
  srcId: { title: 'Source Identity', cell: (f) => `<span class="mono">${f.source.identity}</span>` },
  dstPod: { title: 'Destination Pod', cell: (f) => `<span class="ep" title="${esc(f.destination.workload)}">${esc(endpointName(f.destination))}</span>` },
  dstIp: { title: 'Destination IP', cell: (f) => `<span class="mono">${esc(f.destination.ip)}</span>` },
  dstId: { title: 'Destination Identity', cell: (f) => `<span class="mono">${f.destination.identity}</span>` },
  port: { title: 'Destination Port', cell: (f) => (f.port !== undefined ? `<span class="mono">${f.port}/${esc(f.protocol)}</span>` : esc(f.protocol)) },
  l7: { title: 'L7 info', cell: (f) => (f.l7 ? `<span class="l7">${esc(f.l7)}</span>` : '') },
  dir: { title: 'Traffic Direction', cell: (f) => esc(f.direction) },
  verdict: { title: 'Verdict', cell: verdictCell },
  flags: { title: 'TCP Flags', cell: (f) => `<span class="mono">${esc(f.tcpFlags ?? '')}</span>` },
  time: { title: 'Timestamp', cell: (f) => `<span class="mono" title="${esc(new Date(f.time).toISOString())}">${esc(clock(f.time))}</span>` },
  node: { title: 'Node', cell: (f) => esc(f.node) },
  policy: { title: 'Policy', cell: (f) => `<span class="small">${esc(f.policies.join(', ') || '–')}</span>` },
  reason: { title: 'Reason', cell: (f) => `<span class="small">${esc(f.dropReason ?? '')}</span>` },
};

export const HUBBLE_COLUMNS = ['auth', 'srcPod', 'srcIp', 'srcId', 'dstPod', 'dstIp', 'dstId', 'port', 'l7', 'dir', 'verdict', 'flags', 'time'];

export function headMarkup(cols: string[]): string {
  return `<tr>${cols.map((c) => `<th class="c-${c}">${esc(COLUMNS[c]?.title ?? c)}</th>`).join('')}</tr>`;
}

export function rowMarkup(f: FlowRow, cols: string[], testId: string): string {
  const v = f.verdict === 'FORWARDED' ? 'fwd' : f.verdict === 'DROPPED' ? 'drop' : 'other';
  return `<tr data-testid="${esc(testId)}" data-flow-id="${esc(f.id)}" data-verdict="${esc(f.verdict)}" class="row-${v}">`
    + cols.map((c) => `<td class="c-${c}">${COLUMNS[c]?.cell(f) ?? ''}</td>`).join('') + '</tr>';
}

/** A whole table (head and rows) for a view's "recent" list. */
export function tableMarkup(rows: FlowRow[], cols: string[], testId: string, empty: string): string {
  if (rows.length === 0) return `<div class="empty">${esc(empty)}</div>`;
  return `<table class="flows compact"><thead>${headMarkup(cols)}</thead><tbody>${rows.map((r) => rowMarkup(r, cols, testId)).join('')}</tbody></table>`;
}
