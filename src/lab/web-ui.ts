/**
 * The web UI as a lab process: `palisade ui --lab <lab>` on a free loopback
 * port, which tells lab up its address through a url file. The lab works
 * without it: if it dies later, `lab status` says so.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { LabError } from './errors.ts';
import { logsDir, uiUrlFile, type LabService } from './paths.ts';
import { isAlive, startLabProcess, stopPid } from './processes.ts';

/** Starts the UI (its charts on `prometheus` when given) and resolves once it has written its url file. */
export async function startLabUi(lab: string, prometheus: string | undefined, timeoutMs = 30_000): Promise<LabService> {
  const urlFile = uiUrlFile(lab);
  await rm(urlFile, { force: true });
  const logFile = `${logsDir(lab)}/ui.log`;
  const logStart = (await stat(logFile).catch(() => undefined))?.size ?? 0;
  const pid = await startLabProcess({
    lab,
    name: 'ui',
    args: ['ui', '--lab', lab, '--listen', '127.0.0.1:0', '--url-file', urlFile, ...(prometheus ? ['--prometheus', prometheus] : [])],
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && isAlive(pid)) {
    const url = await readUrl(urlFile);
    if (url) return { url, pid };
    await new Promise((r) => setTimeout(r, 50));
  }
  const exited = !isAlive(pid);
  if (!exited) await stopPid(pid);
  const log = (await readFile(logFile).catch(() => Buffer.alloc(0))).subarray(logStart).toString('utf8').slice(-2000);
  throw new LabError(
    `the web UI (palisade ui --lab ${lab}) ${exited ? 'exited' : `did not write ${urlFile} within ${timeoutMs / 1000} s`}; ` +
      `${log ? `the end of its log ${logFile}:\n${log}` : `its log ${logFile} is empty`}\n(lab up --no-ui brings the lab up without it)`,
  );
}

/** The url file's URL, once it is there and whole. */
async function readUrl(file: string): Promise<string | undefined> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as { url?: unknown };
    return typeof v.url === 'string' ? v.url : undefined;
  } catch {
    return undefined;
  }
}
