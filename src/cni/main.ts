/**
 * palisade-cni entry point (bin/palisade-cni): environment + stdin in, one
 * JSON document out on stdout, exit 0 or 1. Logs go to stderr only: stdout
 * belongs to the runtime.
 *
 * Command modules are imported on demand so VERSION (probed often) loads
 * nothing of the datapath.
 */
import { parseCommand, parseEnv, parseNetConf } from './config.ts';
import { errorBody } from './errors.ts';
import { CURRENT_VERSION } from './types.ts';
import { versionResult } from './version.ts';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk as string;
  return text;
}

function print(doc: unknown): void {
  // stdout to a pipe is synchronous on Linux: the document is out before exit.
  process.stdout.write(JSON.stringify(doc) + '\n');
}

async function main(): Promise<number> {
  let cniVersion: string = CURRENT_VERSION;
  let what = 'palisade-cni';
  try {
    const command = parseCommand(process.env);
    what = `palisade-cni ${command}`;
    const stdin = await readStdin();
    if (command === 'VERSION') {
      print(versionResult());
      return 0;
    }
    const conf = parseNetConf(stdin);
    cniVersion = conf.cniVersion; // errors from here on speak the config's version
    const env = parseEnv(process.env);
    what = `palisade-cni ${command} ${env.containerId}`;
    switch (command) {
      case 'ADD': {
        const [{ cmdAdd }, { resultForVersion }] = await Promise.all([import('./add.ts'), import('./types.ts')]);
        print(resultForVersion(await cmdAdd(conf, env), conf.cniVersion));
        return 0;
      }
      case 'DEL': {
        const { cmdDel } = await import('./del.ts');
        await cmdDel(conf, env);
        return 0;
      }
      case 'CHECK': {
        const { cmdCheck } = await import('./check.ts');
        await cmdCheck(conf, env);
        return 0;
      }
    }
  } catch (err) {
    const body = errorBody(err, cniVersion);
    process.stderr.write(`${what}: ${body.msg}${body.details ? ` (${body.details})` : ''}\n`);
    print(body);
    return 1;
  }
}

process.exitCode = await main();
