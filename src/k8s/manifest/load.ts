/**
 * Paths → manifest files. A path is a file, a directory (its *.yaml, *.yml and
 * *.json files, sorted by name, not recursive — as `kubectl apply -f dir`), or
 * '-' for standard input. A path that cannot be read becomes a fault of that
 * path (doc 0), so one run reports every problem instead of stopping at the first.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Fault } from './fault.ts';
import { parseManifestRefs, parseManifestText, type ManifestFile, type ManifestRefFile } from './parse.ts';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
export const STDIN_SOURCE = '<stdin>';

export interface LoadOptions {
  /** What '-' reads; process.stdin by default. */
  stdin?: AsyncIterable<Uint8Array | string>;
}

async function readAll(stream: AsyncIterable<Uint8Array | string>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

async function manifestFilesIn(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => MANIFEST_EXTENSIONS.has(extname(n).toLowerCase())).sort();
  const files: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if ((await stat(path)).isFile()) files.push(path);
  }
  return files;
}

/** A manifest source: its text, or why it could not be read. */
type Source = { source: string; text: string } | { source: string; error: string };

async function readFileSource(path: string): Promise<Source> {
  try {
    return { source: path, text: await readFile(path, 'utf8') };
  } catch (e) {
    return { source: path, error: `cannot read the file: ${(e as Error).message}` };
  }
}

async function readSources(paths: string[], options: LoadOptions): Promise<Source[]> {
  const sources: Source[] = [];
  for (const path of paths) {
    if (path === '-') {
      sources.push({ source: STDIN_SOURCE, text: await readAll(options.stdin ?? process.stdin) });
      continue;
    }
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(path)).isDirectory();
    } catch (e) {
      sources.push({ source: path, error: `cannot read: ${(e as Error).message}` });
      continue;
    }
    if (!isDirectory) {
      sources.push(await readFileSource(path));
      continue;
    }
    let inDir: string[];
    try {
      inDir = await manifestFilesIn(path);
    } catch (e) {
      sources.push({ source: path, error: `cannot read the directory: ${(e as Error).message}` });
      continue;
    }
    if (inDir.length === 0) sources.push({ source: path, error: 'the directory holds no .yaml, .yml or .json files' });
    for (const file of inDir) sources.push(await readFileSource(file));
  }
  return sources;
}

/** A path that cannot be read is a fault of that path (doc 0). */
function fileFault(source: string, message: string): Fault[] {
  return [{ source, doc: 0, path: '', message }];
}

export async function loadManifests(paths: string[], options: LoadOptions = {}): Promise<ManifestFile[]> {
  return (await readSources(paths, options)).map((s) =>
    'text' in s ? parseManifestText(s.text, s.source) : { source: s.source, entries: [], faults: fileFault(s.source, s.error) });
}

/** The objects the manifests name (for delete -f): parseManifestRefs of each source. */
export async function loadManifestRefs(paths: string[], options: LoadOptions = {}): Promise<ManifestRefFile[]> {
  return (await readSources(paths, options)).map((s) =>
    'text' in s ? parseManifestRefs(s.text, s.source) : { source: s.source, refs: [], faults: fileFault(s.source, s.error) });
}
