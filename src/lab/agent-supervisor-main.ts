/**
 * The process that keeps one lab node's agent running (started by `lab up`
 * and `lab restart-agent`, ended by `lab down`):
 *
 *   node agent-supervisor-main.ts --lab LAB --node NODE --run-dir /run/palisade/LAB/
 *
 * It loads only what it needs: it starts once per node and must cost little.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { AgentSupervisor } from './agent-supervisor.ts';
import { agentPidPath, agentRestartsPath, agentStartCommand } from './agent-process.ts';
import { logsDir } from './paths.ts';

function option(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) {
    process.stderr.write(`agent supervisor: ${name} is required\n`);
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

const supervisor = new AgentSupervisor({
  spawnAgent() {
    const log = openSync(`${logsDir(lab)}/agent-${node}.log`, 'a');
    const [cmd, argv] = agentStartCommand(lab, node);
    // Its own process group, as lab down expects of everything in a node's namespace.
    const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    return child;
  },
  onStart: (pid) => writeAtomic(agentPidPath(lab, node), `${pid}\n`),
  onRecord: (r) => {
    writeAtomic(agentRestartsPath(lab, node), JSON.stringify(r));
    const exit = r.lastExit;
    process.stdout.write(`${new Date().toISOString()} agent exited (${exit?.signal ?? `code ${exit?.code}`}, ran ${exit?.ranMs} ms); restart ${r.restarts}${r.backoffUntil ? ` at ${r.backoffUntil} (backoff)` : ' now'}\n`);
  },
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    void supervisor.stop().then(() => process.exit(0));
  });
}
writeAtomic(agentRestartsPath(lab, node), JSON.stringify(supervisor.record));
supervisor.start();
