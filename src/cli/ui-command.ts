/**
 * `palisade ui`: the web UI for a lab's agents or a Hubble Relay.
 *
 *   flags ─► checks (listen address, Prometheus URL, dist/ui built, source reachable)
 *         ─► startUiServer (src/ui, imported only here so other commands do not load it)
 *         ─► "Palisade UI: http://…/" (+ --url-file {url, pid}) ─► runs until SIGTERM/SIGINT
 */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { observerFlowSource } from '../flows/index.ts';
import { agentSocketPath, labFromEnv, publishedPath, readLabState } from '../lab/index.ts';
import { filtersFromFlags } from './observe-filters.ts';
import { bold, CliError, dim } from './style.ts';

export interface UiOptions {
  lab?: string;
  relay?: string;
  listen: string;
  prometheus?: string;
  urlFile?: string;
  output: string;
}

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));
export const UI_DIST = `${CHECKOUT}dist/ui`;

/** `127.0.0.1:12000`, `[::1]:0`, `localhost:8080` → host and port. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) {
    throw new CliError(`--listen: ${JSON.stringify(text)} is not ADDRESS:PORT (e.g. 127.0.0.1:12000, [::1]:12000; port 0 picks a free one)`);
  }
  return { host: (m[1] ?? m[2]) as string, port };
}

function parsePrometheus(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new CliError(`--prometheus: ${JSON.stringify(text)} is not a URL (e.g. http://127.0.0.1:9090)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError(`--prometheus: ${JSON.stringify(text)} must be an http:// or https:// URL`);
  return text.replace(/\/+$/, '');
}

/** The lab's Prometheus, when `lab up --prometheus` published one. */
function publishedPrometheus(lab: string): string | undefined {
  try {
    const p = JSON.parse(readFileSync(publishedPath(lab), 'utf8')) as { prometheus?: unknown };
    return typeof p.prometheus === 'string' ? p.prometheus : undefined;
  } catch {
    return undefined;
  }
}

const stamp = (line: string): string => `${new Date().toISOString()} ${line}\n`;

export function registerUi(program: Command): void {
  program
    .command('ui')
    .description('Serve the web UI: service map, flows, drops, DNS, HTTP, heat maps and node health')
    .option('--lab <name>', 'read the flows of this lab\'s agents (default: $PALISADE_LAB, else "default")')
    .option('--relay <host:port>', 'read flows from a Hubble Relay\'s gRPC Observer API instead (e.g. the lab\'s: lab status shows it)')
    .option('--listen <address:port>', 'where to serve the UI (port 0 picks a free one)', '127.0.0.1:12000')
    .option('--prometheus <url>', 'Prometheus for the charts (a lab: the one lab up --prometheus started, when there is one)')
    .option('--url-file <file>', 'once listening, write {"url": …, "pid": …} to this file (removed again on exit)')
    .option('-o, --output <format>', 'text or json (the "listening" line)', 'text')
    .addHelpText(
      'after',
      `
The page comes from dist/ui in the checkout (node scripts/build-ui.ts builds it;
scripts/setup.sh runs that). Nothing is fetched from the network: it works offline.
Flows stream from each agent (or the relay) from the last 10 minutes on; the
page gets at most 4 updates a second whatever the flow rate. The UI listens on
loopback by default: it has no authentication, so think twice before --listen 0.0.0.0:….

Examples:
  palisade ui                                        the default lab, on http://127.0.0.1:12000/
  palisade ui --lab test --listen 127.0.0.1:0        any free port; the line printed says which
  palisade ui --relay 127.0.0.1:4245                 a Hubble Relay (Palisade's or Cilium's)
  palisade ui --prometheus http://127.0.0.1:9090     charts from Prometheus too
  palisade ui -o json --url-file /tmp/ui.json        for scripts: {"url": "http://127.0.0.1:12000/"}
  curl -s http://127.0.0.1:12000/api/snapshot        what the page draws, as JSON (src/ui/api.ts)
  curl -s 'http://127.0.0.1:12000/api/flows?verdict=DROPPED&namespace=demo&limit=20'`,
    )
    .action(async (o: UiOptions) => runUi(o));
}

/** The command without commander (its checks are tested in-process). */
export async function runUi(o: UiOptions): Promise<void> {
  if (o.output !== 'text' && o.output !== 'json') throw new CliError(`--output: ${JSON.stringify(o.output)} is not text or json`);
  if (o.lab !== undefined && o.relay !== undefined) throw new CliError('give --lab or --relay, not both');
  const listen = parseListen(o.listen);
  let prometheus = o.prometheus !== undefined ? parsePrometheus(o.prometheus) : undefined;
  if (!existsSync(`${UI_DIST}/index.html`)) {
    throw new CliError(`the UI's page is not built: ${UI_DIST}/index.html is missing. Build it with: node scripts/build-ui.ts (scripts/setup.sh runs it)`, 1);
  }
  const progress = (line: string): void => { process.stderr.write(stamp(line)); };
  const ui = await import('../ui/index.ts');

  let source;
  if (o.relay !== undefined) {
    if (!/^[^\s/]+:\d{1,5}$/.test(o.relay)) throw new CliError(`--relay: ${JSON.stringify(o.relay)} is not HOST:PORT (e.g. 127.0.0.1:4245)`);
    const client = observerFlowSource(o.relay, 'relay');
    try {
      const nodes = await client.nodes(5000);
      progress(`Hubble Relay ${o.relay}: ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${nodes.map((n) => `${n.name} ${n.state === 'NODE_CONNECTED' ? 'connected' : n.state}`).join(', ') || 'none yet'})`);
    } catch (err) {
      client.close();
      throw new CliError(`cannot reach the Hubble Relay at ${o.relay}: ${err instanceof Error ? err.message : String(err)}`, 1);
    }
    source = ui.relaySource(o.relay, client);
  } else {
    const lab = labFromEnv(o.lab);
    const s = await readLabState(lab);
    if (!s) throw new CliError(`no lab ${lab} on this machine (palisade lab list); choose one with --lab, or a relay with --relay`, 1);
    prometheus ??= publishedPrometheus(lab);
    const version = (JSON.parse(readFileSync(`${CHECKOUT}package.json`, 'utf8')) as { version: string }).version;
    source = ui.agentsSource(lab, s.nodes.map((n) => ({ name: n.name, socket: agentSocketPath(lab, n.name) })), `palisade ${version}`);
    progress(`lab ${lab}: following the flows of ${s.nodes.map((n) => n.name).join(', ')}`);
  }

  let server;
  try {
    server = await ui.startUiServer({
      ...listen,
      staticDir: UI_DIST,
      source,
      filtersFromFlags,
      ...(prometheus !== undefined ? { prometheus } : {}),
      log: progress,
    });
  } catch (err) {
    source.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new CliError(`--listen ${o.listen}: the address is in use (another palisade ui?); choose another port, or port 0 for any free one`, 1);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new CliError(`--listen ${o.listen}: no such local address`, 1);
    if (code === 'EACCES') throw new CliError(`--listen ${o.listen}: not allowed to listen there (ports below 1024 need privileges)`, 1);
    throw err;
  }
  if (prometheus !== undefined) progress(`charts from Prometheus ${prometheus}`);

  if (o.urlFile !== undefined) {
    // Written whole (rename), so a reader polling for it never sees half a file.
    const tmp = `${o.urlFile}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ url: server.url, pid: process.pid }) + '\n');
    await rename(tmp, o.urlFile);
  }
  if (o.output === 'json') console.log(JSON.stringify({ url: server.url }));
  else console.log(`Palisade UI: ${bold(server.url)}  ${dim('(Ctrl-C to stop)')}`);

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  progress('stopping');
  await server.close();
  if (o.urlFile !== undefined) await rm(o.urlFile, { force: true });
}
