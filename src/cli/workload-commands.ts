/** `palisade workload …`: small servers lab pods run as their container command. */
import type { Command } from 'commander';
import { startHttpEcho, startTcpEcho, startUdpEcho } from '../workload/index.ts';
import { CliError } from './style.ts';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CliError(`--port: ${JSON.stringify(v)} is not a port (1–65535)`);
  return n;
}

export function registerWorkloadCommands(program: Command): void {
  const w = program.command('workload').description('Servers for lab pods: http-echo, tcp-echo, udp-echo');
  const kinds: [string, string, (p: number) => Promise<unknown>][] = [
    ['http-echo', 'Answer every HTTP request with JSON: method, path, headers, client address, pod name', startHttpEcho],
    ['tcp-echo', 'Echo every byte back on every TCP connection', startTcpEcho],
    ['udp-echo', 'Send every UDP datagram back to its sender', startUdpEcho],
  ];
  for (const [name, description, start] of kinds) {
    w.command(name)
      .description(description)
      .requiredOption('--port <n>', 'port to listen on (all addresses)')
      .action(async (o: { port: string }) => {
        const p = port(o.port);
        await start(p);
        console.log(`${name} listening on port ${p}`);
        await new Promise(() => {});
      });
  }
}
