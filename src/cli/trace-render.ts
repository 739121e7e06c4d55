/** Renders a policy verdict for a person: what was asked, each direction, the rules behind it. */
import type { DirectionVerdict, RuleOrigin, Verdict } from '../policy/index.ts';
import { bold, dim, green, red, yellow } from './style.ts';

export function originText(o: RuleOrigin): string {
  const where = o.namespace !== undefined ? `${o.namespace}/${o.name}` : o.name;
  const desc = o.description ? dim(` — ${o.description}`) : '';
  return `${o.kind} ${bold(where)} ${dim('at')} ${o.path}${desc}`;
}

function reasonText(d: DirectionVerdict): string {
  const dir = d.direction;
  switch (d.reason) {
    case 'no-policy':
      return `no policy selects ${d.endpoint} for ${dir}`;
    case 'not-enforced':
      return `no rule matches, and the policies selecting ${d.endpoint} leave ${dir} open (enableDefaultDeny: false)`;
    case 'allowed':
      return `allowed (${d.match})`;
    case 'denied-by-rule':
      return `denied by a deny rule (deny overrides every allow)`;
    case 'default-deny':
      return `no rule allows it; ${dir} of ${d.endpoint} is default-deny`;
    case 'l7-redirect':
      return `the port is handled by the ${d.l7?.protocol.toUpperCase()} proxy; add ${d.l7?.protocol === 'dns' ? '--dns-name' : '--http-method/--http-path'} to check a request`;
    case 'l7-allowed':
      return `allowed at L7 (${d.match}) by ${d.l7?.matched.map((m) => JSON.stringify(m)).join(', ')}`;
    case 'l7-denied':
      return `no ${d.l7?.protocol.toUpperCase()} rule of this port matches (${d.match})`;
  }
}

function directionLines(d: DirectionVerdict): string[] {
  const mark = d.allowed ? green('✓ allowed') : red('✗ denied ');
  const lines = [`  ${d.direction.padEnd(7)} ${dim('of')} ${d.endpoint.padEnd(24)} ${mark}  ${reasonText(d)}`];
  const list = (title: string, origins: readonly RuleOrigin[]): void => {
    if (origins.length === 0) return;
    lines.push(`            ${dim(title)}`);
    for (const o of origins) lines.push(`              ${originText(o)}`);
  };
  if (d.reason === 'denied-by-rule') list('denied by', d.deniedBy);
  else if (d.reason === 'default-deny') list('default-deny because these rules select it', d.enforcedBy);
  else list('allowed by', d.allowedBy);
  if (d.l7 && d.reason !== 'l7-allowed') {
    if (d.reason === 'l7-denied') list('L7 rules from', d.l7.from);
    lines.push(`            ${dim(`${d.l7.protocol.toUpperCase()} rules on this port (any one must match)`)}`);
    for (const r of d.l7.rules) lines.push(`              ${d.l7.matched.includes(r) ? green('✓') : red('✗')} ${r}`);
  }
  return lines;
}

export interface TraceHeader {
  request?: string;
  service?: string;
}

export function renderVerdict(v: Verdict, header: TraceHeader = {}): string {
  const peer = (p: Verdict['src']): string =>
    `${bold(p.name)}${p.ip && p.ip !== p.name ? ` ${p.ip}` : ''} ${dim(`identity ${p.identity}`)}`;
  const what = `${v.protocol}/${v.port}${header.request ? ` ${header.request}` : ''}`;
  const lines = [`${peer(v.src)} → ${peer(v.dst)}  ${what}${header.service ? dim(`  (backend of service ${header.service})`) : ''}`];
  if (v.egress) lines.push(...directionLines(v.egress));
  else lines.push(`  egress  ${dim(`not checked: ${v.src.name} is not a pod of this cluster`)}`);
  if (v.ingress) lines.push(...directionLines(v.ingress));
  else lines.push(`  ingress ${dim(`not checked: ${v.dst.name} is not a pod of this cluster`)}`);
  let verdict: string;
  if (v.allowed) verdict = green(bold('ALLOWED'));
  else if (v.dropReason) verdict = `${red(bold('DENIED'))} — dropped, ${v.dropReason}`;
  else verdict = `${red(bold('DENIED'))} — ${v.l7Answer === 'DNS REFUSED' ? 'the DNS proxy answers REFUSED' : 'the HTTP proxy answers 403 Access denied'}`;
  const l7Pending = [v.egress, v.ingress].some((d) => d?.reason === 'l7-redirect');
  lines.push(`  ${bold('verdict')} ${verdict}${v.allowed && l7Pending ? yellow(' (at L4; each request is checked by the proxy)') : ''}`);
  return lines.join('\n');
}
