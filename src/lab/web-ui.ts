/**
 * The web UI as a lab process: `palisade ui --lab <lab>` on a free loopback
 * port, which tells lab up its address through a url file. The lab works
 * without it: if it dies later, `lab status` says so.
 */
import { readFile, rm } from 'node:fs/promises';
import { LabError } from './errors.ts';
import { uiUrlFile, type LabService } from './paths.ts';
import { startLabProcessReady } from './processes.ts';

/** Starts the UI (its charts on `prometheus` when given) and resolves once it has written its url file. */
export async function startLabUi(lab: string, prometheus: string | undefined, timeoutMs = 30_000): Promise<LabService> {
  const urlFile = uiUrlFile(lab);
  await rm(urlFile, { force: true });
  const r = await startLabProcessReady(
    { lab, name: 'ui', args: ['ui', '--lab', lab, '--listen', '127.0.0.1:0', '--url-file', urlFile, ...(prometheus ? ['--prometheus', prometheus] : [])] },
    () => readUrl(urlFile),
    timeoutMs,
  );
  if (r.ready) return { url: r.value, pid: r.pid };
  throw new LabError(
    `the web UI (palisade ui --lab ${lab}) ${r.exited ? 'exited' : `did not write ${urlFile} within ${timeoutMs / 1000} s`}; ` +
      `${r.log ? `the end of its log ${r.logFile}:\n${r.log}` : `its log ${r.logFile} is empty`}\n(lab up --no-ui brings the lab up without it)`,
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
