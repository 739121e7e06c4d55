/**
 * `palisade observe`: flows of every node, like `hubble observe` against Relay.
 *
 *   flags ─► filtersFromFlags (observe-filters.ts) ─► query string
 *         ─► each FlowSource.fetch ─► relayFlows (time-merged / interleaved)
 *         ─► printer (compact | table | dict | json) ─► stdout
 *
 * Filter flags are recorded in command-line order (commander's `option:<name>`
 * events), because `--not` applies to the flag after it.
 */
import type { Command } from 'commander';
import { FlowFilterError, makePrinter, OUTPUT_FORMATS, type OutputFormat, flowsQueryString, parseTimeArg, relayFlows, type FlowSource } from '../flows/index.ts';
import { filtersFromFlags, FILTER_FLAGS, type FilterFlag } from './observe-filters.ts';
import { CliError } from './style.ts';

export type { FlowSource } from '../flows/index.ts';

export interface ObserveOptions {
  /** The lab whose agents to read (its sources are resolved by the caller). */
  lab?: string;
  follow?: boolean;
  last?: string;
  first?: string;
  since?: string;
  until?: string;
  output: string;
  printNodeName?: boolean;
}

export interface ObserveRun {
  flags: readonly FilterFlag[];
  options: ObserveOptions;
  sources: readonly FlowSource[];
  write: (text: string) => Promise<void> | void;
  warn: (text: string) => void;
  signal: AbortSignal;
}

/** Filter flags with their help, in the order --help lists them. `<v>` flags take a value. */
const FLAG_HELP: [flags: string, help: string][] = [
  ['--not', 'negate the next filter flag (Hubble: it goes to the blacklist)'],
  ['--pod <ns/pod>', 'flows from or to this pod (a name prefix; ns/ for a whole namespace)'],
  ['--from-pod <ns/pod>', 'flows from this pod'],
  ['--to-pod <ns/pod>', 'flows to this pod'],
  ['-n, --namespace <ns>', 'flows from or to pods of this namespace (with --pod: the pods\' namespace)'],
  ['--from-namespace <ns>', 'flows from pods of this namespace'],
  ['--to-namespace <ns>', 'flows to pods of this namespace'],
  ['--ip <ip|cidr>', 'flows from or to this address or CIDR'],
  ['--from-ip <ip|cidr>', 'flows from this address or CIDR'],
  ['--to-ip <ip|cidr>', 'flows to this address or CIDR'],
  ['--label <selector>', "flows from or to endpoints with these labels ('k8s:app=x,env in (a,b)')"],
  ['--from-label <selector>', 'flows from endpoints with these labels'],
  ['--to-label <selector>', 'flows to endpoints with these labels'],
  ['--fqdn <name>', 'flows from or to this DNS name (wildcards: *.example.com)'],
  ['--from-fqdn <name>', 'flows from this DNS name'],
  ['--to-fqdn <name>', 'flows to this DNS name'],
  ['--port <port>', 'flows from or to this port'],
  ['--from-port <port>', 'flows from this port'],
  ['--to-port <port>', 'flows to this port'],
  ['--identity <id>', 'flows from or to this security identity'],
  ['--from-identity <id>', 'flows from this security identity'],
  ['--to-identity <id>', 'flows to this security identity'],
  ['--verdict <verdict>', 'FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED'],
  ['--drop-reason <reason>', 'a drop reason code: POLICY_DENIED, POLICY_DENY, …'],
  ['-t, --type <type>', 'event type: trace, drop, l7, policy-verdict, capture, trace:to-endpoint, …'],
  ['--protocol <proto>', 'tcp, udp, sctp, icmp, icmpv4, icmpv6, http, dns'],
  ['--tcp-flags <flags>', 'flows with all these TCP flags, e.g. SYN or SYN,ACK'],
  ['--http-method <method>', 'HTTP requests with this method'],
  ['--http-path <regex>', 'HTTP requests whose path matches (unanchored regular expression)'],
  ['--http-url <regex>', 'HTTP requests whose URL matches'],
  ['--http-status <code>', 'HTTP responses with this status: 200, or a prefix like 4+ or 50+'],
  ['--dns-query <regex>', 'DNS requests and answers whose query matches'],
  ['--node <name>', 'flows seen on this node (wildcards: node*)'],
  ['--traffic-direction <dir>', 'ingress or egress'],
  ['--ip-version <v>', '4 or 6'],
  ['--uuid <uuid>', 'the flow with this UUID'],
];

/** `--from-pod <ns/pod>` → `from-pod`. */
const flagName = (spec: string): string => /--([a-z0-9-]+)/.exec(spec)?.[1] ?? spec;

export function registerObserve(program: Command, opts: { sources: (lab: string | undefined) => Promise<FlowSource[]> }): void {
  const flags: FilterFlag[] = [];
  const cmd = program
    .command('observe')
    .description('Observe flows of every node: Hubble-compatible filters and output')
    .option('-f, --follow', 'keep streaming new flows until interrupted')
    .option('--last <n>', 'the last N flows of each node, merged (default 20 unless following)')
    .option('--first <n>', 'the first N flows still in each node\'s buffer')
    .option('--since <time>', 'flows since an RFC 3339 time or a duration ago (5m, 1h30m)')
    .option('--until <time>', 'flows until an RFC 3339 time or a duration ago')
    .option('-o, --output <format>', `output: ${OUTPUT_FORMATS.join(', ')}`, 'compact')
    .option('--print-node-name', 'prefix each flow with the node that saw it')
    .option('--lab <name>', 'the lab to observe (default: $PALISADE_LAB, else "default")');
  for (const [spec, help] of FLAG_HELP) {
    cmd.option(spec, help);
    const name = flagName(spec);
    if (name !== 'not' && FILTER_FLAGS[name] === undefined) throw new Error(`observe: ${name} has no filter rule`);
    // Repeatable, and recorded in order: --not negates the flag after it.
    cmd.on(`option:${name}`, (value: string | undefined) => { flags.push([name, value ?? '']); });
  }
  cmd.addHelpText(
    'after',
    `
Filters of one kind are alternatives (--pod a --pod b: either); different
kinds must all hold (--pod a --verdict DROPPED: a's drops). --pod, --ip,
--label, --fqdn and --port match either side; --from-* and --to-* one side.
--not negates only the flag right after it.

Examples:
  palisade observe                                      the last 20 flows of the cluster
  palisade observe -f --verdict DROPPED                 drops as they happen
  palisade observe --pod default/frontend --protocol http --http-status 5+
  palisade observe --to-pod prod/backend --to-port 80 --type policy-verdict
  palisade observe --from-label k8s:app=web --not --to-ip 10.96.0.0/12
  palisade observe --type l7 --dns-query 'github\\.com' --since 10m -o json
  palisade observe --namespace kube-system --not --verdict FORWARDED -o table`,
  );
  cmd.action(async (options: ObserveOptions) => {
    const stop = new AbortController();
    const onSigint = (): void => stop.abort();
    process.once('SIGINT', onSigint);
    process.stdout.once('error', onSigint); // EPIPE: the reader (| head) went away
    try {
      await runObserve({
        flags: flags.splice(0),
        options,
        sources: await opts.sources(options.lab),
        write: (text) => writeStdout(text),
        warn: (text) => process.stderr.write(`warning: ${text}\n`),
        signal: stop.signal,
      });
    } finally {
      process.off('SIGINT', onSigint);
      process.stdout.off('error', onSigint);
    }
  });
}

function writeStdout(text: string): Promise<void> | void {
  if (process.stdout.write(text)) return;
  return new Promise((resolve) => {
    process.stdout.once('drain', resolve);
    process.stdout.once('close', resolve);
  });
}

function count(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new CliError(`--${flag}: ${JSON.stringify(v)} is not a number`);
  return Number(v);
}

/** The command without commander and process: testable with fake sources. */
export async function runObserve(run: ObserveRun): Promise<void> {
  const o = run.options;
  if (!OUTPUT_FORMATS.includes(o.output as OutputFormat)) throw new CliError(`--output: ${JSON.stringify(o.output)} is not one of ${OUTPUT_FORMATS.join(', ')}`);
  if (run.sources.length === 0) throw new CliError('no nodes to observe (is the lab up?)');
  let query: string;
  let last: number | undefined;
  try {
    const filters = filtersFromFlags(run.flags);
    const first = count('first', o.first);
    last = count('last', o.last) ?? (o.follow || first !== undefined || o.since !== undefined ? undefined : 20);
    query = flowsQueryString({
      ...filters,
      last,
      first,
      follow: o.follow === true,
      since: o.since !== undefined ? parseTimeArg('--since', o.since) : undefined,
      until: o.until !== undefined ? parseTimeArg('--until', o.until) : undefined,
    });
  } catch (err) {
    if (err instanceof FlowFilterError) throw new CliError(err.message);
    throw err;
  }

  let failed = 0;
  const flows = relayFlows(run.sources, query, {
    follow: o.follow === true,
    last,
    signal: run.signal,
    onError: (node, err) => {
      failed++;
      run.warn(`node ${node}: ${err instanceof Error ? err.message : String(err)}`);
    },
  });
  let pending = '';
  const printer = makePrinter(o.output as OutputFormat, (t) => { pending += t; }, { follow: o.follow, nodeName: o.printNodeName });
  for await (const e of flows) {
    printer.write(e);
    // Following: each flow goes out at once. History: in 64 KiB chunks.
    if (o.follow || pending.length >= 65536) {
      const text = pending;
      pending = '';
      await run.write(text);
    }
  }
  printer.end();
  if (pending !== '') await run.write(pending);
  if (failed === run.sources.length) throw new CliError('no node answered', 1);
}
