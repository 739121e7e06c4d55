/**
 * The process that keeps one lab node's agent and node proxy running
 * (started by `lab up` and `lab restart-agent`, ended by `lab down`):
 *
 *   node supervisor-main.ts --lab LAB --node NODE --run-dir /run/palisade/LAB/
 *
 * It loads only what it needs: it starts once per node and must cost little.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { Supervisor } from './supervisor.ts';
import { NODE_PROCESSES, nodePidPath, nodeProcessCommand, restartsPath, type NodeProcess } from './node-processes.ts';
import { logsDir } from './paths.ts';

function option(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) {
    process.stderr.write(`supervisor: ${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const lab = option('--lab');
const node = option('--node');

/** Written whole or not at all: readers never see half a file. */
function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

function supervise(p: NodeProcess): Supervisor {
  return new Supervisor({
    spawnChild() {
      const log = openSync(`${logsDir(lab)}/${p}-${node}.log`, 'a');
      const [cmd, argv] = nodeProcessCommand(lab, node, p);
      // Its own process group, as lab down expects of everything in a node's namespace.
      const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', log, log] });
      closeSync(log);
      return child;
    },
    onStart: (pid) => writeAtomic(nodePidPath(lab, node, p), `${pid}\n`),
    onRecord: (r) => {
      writeAtomic(restartsPath(lab, node, p), JSON.stringify(r));
      const exit = r.lastExit;
      process.stdout.write(
        `${new Date().toISOString()} ${p} exited (${exit?.signal ?? `code ${exit?.code}`}, ran ${exit?.ranMs} ms); restart ${r.restarts}${r.backoffUntil ? ` at ${r.backoffUntil} (backoff)` : ' now'}\n`,
      );
    },
  });
}

const children = NODE_PROCESSES.map((p) => [p, supervise(p)] as const);
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    void Promise.all(children.map(([, s]) => s.stop())).then(() => process.exit(0));
  });
}
for (const [p, s] of children) {
  writeAtomic(restartsPath(lab, node, p), JSON.stringify(s.record));
  s.start();
}
