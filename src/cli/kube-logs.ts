/**
 * `palisade logs -n NS POD [-c CONTAINER] [-f] [--tail N]`: a lab container's
 * output is a file the lab writes (containerLogPath: /run/palisade/<lab>/pods/<ns>_<pod>/<container>.log),
 * so this prints that file, or its last N lines, and with -f keeps printing
 * what is appended until Ctrl-C. A truncated file (the container restarted)
 * is read again from its start.
 *
 * The pod is looked up in the API first: it says which containers exist, and
 * gives "no such pod" a clear answer before "no such file".
 */
import { open, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { containerLogPath } from '../lab/index.ts';
import { addConnectionOptions, connectKube, describeApiError, isNotFound, type ConnectionOptions } from './kube-client.ts';
import type { KubeIo } from './kube-io.ts';
import { POD } from './kube-kinds.ts';
import { CliError } from './style.ts';

const FOLLOW_POLL_MS = 200;
const CHUNK = 64 * 1024;

interface LogsOptions extends ConnectionOptions {
  namespace?: string;
  container?: string;
  follow?: boolean;
  tail?: string;
}

/** The byte offset where the last `lines` lines of the first `size` bytes begin (a trailing newline ends a line, it does not start one). */
async function tailOffset(path: string, size: number, lines: number): Promise<number> {
  if (lines <= 0) return size;
  const file = await open(path, 'r');
  try {
    let end = size;
    let newlines = 0;
    const buf = Buffer.alloc(CHUNK);
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const { bytesRead } = await file.read(buf, 0, end - start, start);
      for (let i = bytesRead - 1; i >= 0; i--) {
        if (buf[i] !== 0x0a || start + i === size - 1) continue;
        if (++newlines === lines) return start + i + 1;
      }
      end = start;
    }
    return 0;
  } finally {
    await file.close();
  }
}

async function copyRange(path: string, from: number, to: number, write: (text: string) => void): Promise<void> {
  if (to <= from) return;
  const file = await open(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(CHUNK, to - from));
    for (let pos = from; pos < to;) {
      const { bytesRead } = await file.read(buf, 0, Math.min(buf.length, to - pos), pos);
      if (bytesRead === 0) break;
      write(buf.subarray(0, bytesRead).toString('utf8'));
      pos += bytesRead;
    }
  } finally {
    await file.close();
  }
}

export interface StreamLogOptions {
  /** Print only the last N lines (all when undefined). */
  tail?: number;
  /** Keep printing appended output until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
  pollMs?: number;
}

/** Prints a log file (or its tail) through `write`; with follow, polls for growth until aborted. */
export async function streamLog(path: string, opts: StreamLogOptions, write: (text: string) => void): Promise<void> {
  let size = (await stat(path)).size;
  const start = opts.tail === undefined ? 0 : await tailOffset(path, size, opts.tail);
  await copyRange(path, start, size, write);
  if (opts.follow !== true) return;
  const signal = opts.signal ?? new AbortController().signal;
  while (!signal.aborted) {
    await sleep(opts.pollMs ?? FOLLOW_POLL_MS, signal);
    if (signal.aborted) return;
    let now: number;
    try {
      now = (await stat(path)).size;
    } catch {
      continue; // the file is being replaced: look again next time
    }
    if (now < size) size = 0; // truncated: the container started over
    await copyRange(path, size, now, write);
    size = now;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

export function registerLogs(program: Command, io: KubeIo): void {
  const cmd = program
    .command('logs')
    .description("Print a lab pod's container output (-f to follow)")
    .argument('<pod>', 'the pod')
    .option('-n, --namespace <ns>', 'the pod\'s namespace (default: the kubeconfig context\'s, "default" in a lab)')
    .option('-c, --container <name>', 'the container (default: the first one of the pod)')
    .option('-f, --follow', 'keep printing new output until Ctrl-C')
    .option('--tail <lines>', 'print only the last N lines');
  addConnectionOptions(cmd)
    .addHelpText('after', `
The lab writes each container's output to
  /run/palisade/<lab>/pods/<namespace>_<pod>/<container>.log

Examples:
  palisade logs deathstar -n star-wars
  palisade logs deathstar -n star-wars -c deathstar --tail 20 -f`)
    .action(async (pod: string, opts: LogsOptions) => {
      let tail: number | undefined;
      if (opts.tail !== undefined) {
        tail = Number(opts.tail);
        if (!Number.isInteger(tail) || tail < -1) throw new CliError(`--tail must be a whole number of lines (got ${JSON.stringify(opts.tail)})`, 2);
        if (tail === -1) tail = undefined; // kubectl's "-1: all lines"
      }
      const client = connectKube(opts);
      const namespace = opts.namespace ?? client.defaultNamespace;
      let live;
      try {
        live = await client.read(POD, pod, namespace);
      } catch (e) {
        if (e instanceof CliError) throw e;
        if (isNotFound(e)) throw new CliError(`pod ${JSON.stringify(pod)} not found in namespace ${JSON.stringify(namespace)}`, 1);
        throw new CliError(`pod ${namespace}/${pod}: ${describeApiError(e)}`, 1);
      }
      const spec = (live.spec ?? {}) as { containers?: { name?: string }[] };
      const containers = (spec.containers ?? []).map((c) => c.name ?? '').filter((n) => n !== '');
      const container = opts.container ?? containers[0];
      if (container === undefined) throw new CliError(`pod ${namespace}/${pod} has no containers`, 1);
      if (!containers.includes(container)) {
        throw new CliError(`pod ${namespace}/${pod} has no container ${JSON.stringify(container)}; its containers: ${containers.join(', ')}`, 1);
      }
      const path = containerLogPath(client.lab, namespace, pod, container);
      try {
        await stat(path);
      } catch {
        throw new CliError(`no output of container ${container} of pod ${namespace}/${pod} yet (${path} does not exist): is the lab '${client.lab}' up and the pod started?`, 1);
      }
      const stop = new AbortController();
      const onInt = (): void => stop.abort();
      process.once('SIGINT', onInt);
      try {
        await streamLog(path, { tail, follow: opts.follow === true, signal: stop.signal }, io.out);
      } finally {
        process.off('SIGINT', onInt);
      }
    });
}
