/**
 * Paths → manifest files. A path is a file, a directory (its *.yaml, *.yml and
 * *.json files, sorted by name, not recursive — as `kubectl apply -f dir`), or
 * '-' for standard input. A path that cannot be read becomes a fault of that
 * path (doc 0), so one run reports every problem instead of stopping at the first.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseManifestText, type ManifestFile } from './parse.ts';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
export const STDIN_SOURCE = '<stdin>';

export interface LoadOptions {
  /** What '-' reads; process.stdin by default. */
  stdin?: AsyncIterable<Uint8Array | string>;
}

function fileFault(source: string, message: string): ManifestFile {
  return { source, entries: [], faults: [{ source, doc: 0, path: '', message }] };
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

async function loadFile(path: string): Promise<ManifestFile> {
  try {
    return parseManifestText(await readFile(path, 'utf8'), path);
  } catch (e) {
    return fileFault(path, `cannot read the file: ${(e as Error).message}`);
  }
}

export async function loadManifests(paths: string[], options: LoadOptions = {}): Promise<ManifestFile[]> {
  const files: ManifestFile[] = [];
  for (const path of paths) {
    if (path === '-') {
      files.push(parseManifestText(await readAll(options.stdin ?? process.stdin), STDIN_SOURCE));
      continue;
    }
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(path)).isDirectory();
    } catch (e) {
      files.push(fileFault(path, `cannot read: ${(e as Error).message}`));
      continue;
    }
    if (!isDirectory) {
      files.push(await loadFile(path));
      continue;
    }
    let inDir: string[];
    try {
      inDir = await manifestFilesIn(path);
    } catch (e) {
      files.push(fileFault(path, `cannot read the directory: ${(e as Error).message}`));
      continue;
    }
    if (inDir.length === 0) files.push(fileFault(path, 'the directory holds no .yaml, .yml or .json files'));
    for (const file of inDir) files.push(await loadFile(file));
  }
  return files;
}
