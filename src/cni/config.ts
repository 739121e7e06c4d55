/**
 * What the runtime hands the plugin: environment variables and the network
 * configuration on stdin (CNI spec, "Section 2: Execution Protocol"), parsed
 * once and checked with errors that name the offending variable or field.
 */
import { CniCode, CniError } from './errors.ts';
import { isSupportedVersion, SUPPORTED_VERSIONS, type CniVersion } from './types.ts';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';
const COMMANDS: readonly string[] = ['ADD', 'DEL', 'CHECK', 'VERSION'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** CNI_NETNS as given (a path); may be absent on DEL. */
  netnsPath: string | undefined;
  /** The namespace's name under /run/netns, which `ip -n` needs. */
  netnsName: string | undefined;
  ifname: string;
  /** CNI_ARGS, e.g. K8S_POD_NAMESPACE / K8S_POD_NAME. */
  args: ReadonlyMap<string, string>;
  /** CNI_PATH split into directories. */
  path: readonly string[];
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** The node agent's unix socket; absent: no endpoint registration (tests, bare use). */
  agentSocket: string | undefined;
  ipam: { type: string } & Record<string, unknown>;
  dns: Record<string, unknown> | undefined;
  prevResult: unknown;
  /** The config exactly as received: delegated plugins get the same bytes. */
  raw: string;
}

/** "Must start with an alphanumeric character, optionally followed by any combination of one or more alphanumeric characters, underscore (_), dot (.) or hyphen (-)." */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Interface names: "Must be no longer than 15 characters", non-empty, not '.'/'..', no '/', ':' or whitespace. */
const IFNAME_RE = /^(?!\.\.?$)[^/:\s]{1,15}$/;
/** Named namespaces live here (`ip netns add`); `ip -n` can only reach those. */
const NETNS_DIRS = ['/run/netns/', '/var/run/netns/'];

function envError(variable: string, problem: string): CniError {
  return new CniError(CniCode.invalidEnv, `${variable} ${problem}`);
}

/** Only CNI_COMMAND, so a bad command is reported before anything else is checked. */
export function parseCommand(env: NodeJS.ProcessEnv): CniCommand {
  const command = env['CNI_COMMAND'];
  if (!command) throw envError('CNI_COMMAND', 'is not set');
  if (!COMMANDS.includes(command)) throw envError('CNI_COMMAND', `${JSON.stringify(command)} is not one of ${COMMANDS.join(', ')}`);
  return command as CniCommand;
}

/** "FOO=BAR;ABC=123" → map. */
export function parseCniArgs(text: string | undefined): Map<string, string> {
  const args = new Map<string, string>();
  for (const pair of (text ?? '').split(';')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw envError('CNI_ARGS', `has ${JSON.stringify(pair)}, expected KEY=VALUE pairs separated by ';'`);
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return args;
}

export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = parseCommand(env);
  const containerId = env['CNI_CONTAINERID'] ?? '';
  if (!containerId) throw envError('CNI_CONTAINERID', 'is not set');
  if (!NAME_RE.test(containerId)) throw envError('CNI_CONTAINERID', `${JSON.stringify(containerId)} must be alphanumeric, '_', '.' or '-', starting alphanumeric`);

  const ifname = env['CNI_IFNAME'] ?? '';
  if (!ifname) throw envError('CNI_IFNAME', 'is not set');
  if (!IFNAME_RE.test(ifname)) throw envError('CNI_IFNAME', `${JSON.stringify(ifname)} is not a valid interface name (1–15 characters, no '/', ':' or spaces)`);

  // The spec lets the runtime leave CNI_NETNS out of DEL when the sandbox is gone.
  const netnsPath = env['CNI_NETNS'] || undefined;
  if (!netnsPath && command !== 'DEL') throw envError('CNI_NETNS', 'is not set');
  let netnsName: string | undefined;
  if (netnsPath) {
    const dir = NETNS_DIRS.find((d) => netnsPath.startsWith(d));
    const name = dir ? netnsPath.slice(dir.length) : '';
    if (!name || name.includes('/')) throw envError('CNI_NETNS', `${JSON.stringify(netnsPath)} must be a named namespace, /run/netns/<name>`);
    netnsName = name;
  }

  const path = (env['CNI_PATH'] ?? '').split(':').filter(Boolean);
  if (path.length === 0) throw envError('CNI_PATH', 'is not set (the IPAM plugin is looked up there)');

  return { command, containerId, netnsPath, netnsName, ifname, args: parseCniArgs(env['CNI_ARGS']), path };
}

function configError(field: string, problem: string): CniError {
  return new CniError(CniCode.invalidConfig, `network config: ${field} ${problem}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decodes stdin: not JSON is code 6; JSON that is not a usable config is 7; an unknown version is 1. */
export function parseNetConf(raw: string): NetConf {
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch (err) {
    throw new CniError(CniCode.decodingFailure, 'network config on stdin is not JSON', (err as Error).message);
  }
  if (!isObject(doc)) throw new CniError(CniCode.decodingFailure, 'network config on stdin must be a JSON object');

  const version = doc['cniVersion'];
  if (typeof version !== 'string' || !version) throw configError('"cniVersion"', 'is required (a string such as "1.0.0")');
  if (!isSupportedVersion(version)) {
    throw new CniError(CniCode.incompatibleVersion, `network config: cniVersion ${JSON.stringify(version)} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }

  const name = doc['name'];
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw configError('"name"', `must be a string of alphanumerics, '_', '.' or '-', starting alphanumeric (got ${JSON.stringify(name)})`);
  }
  const type = doc['type'];
  if (typeof type !== 'string' || !type) throw configError('"type"', 'is required (the plugin name, "palisade-cni")');

  const ipam = doc['ipam'];
  if (ipam === undefined) throw configError('"ipam"', 'is required: an object naming the IPAM plugin, e.g. {"type":"host-local", …}');
  if (!isObject(ipam)) throw configError('"ipam"', 'must be an object');
  const ipamType = ipam['type'];
  if (typeof ipamType !== 'string' || !ipamType) throw configError('"ipam.type"', 'is required (the IPAM plugin executable, e.g. "host-local")');
  // It names a file in CNI_PATH; a path would escape those directories.
  if (ipamType.includes('/') || ipamType === '.' || ipamType === '..') throw configError('"ipam.type"', `${JSON.stringify(ipamType)} must be a plugin name, not a path`);

  const agentSocket = doc['agentSocket'];
  if (agentSocket !== undefined && (typeof agentSocket !== 'string' || !agentSocket.startsWith('/'))) {
    throw configError('"agentSocket"', `must be an absolute path to the agent's unix socket (got ${JSON.stringify(agentSocket)})`);
  }
  const dns = doc['dns'];
  if (dns !== undefined && !isObject(dns)) throw configError('"dns"', 'must be an object');

  return {
    cniVersion: version,
    name,
    type,
    agentSocket,
    ipam: { ...ipam, type: ipamType },
    dns,
    prevResult: doc['prevResult'],
    raw,
  };
}
