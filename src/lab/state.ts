/** Reading and writing lab.json, the record `lab up` leaves for every other command. */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { labStatePath, type LabState } from './paths.ts';

export async function readLabState(lab: string): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(labStatePath(lab), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export async function writeLabState(s: LabState): Promise<void> {
  const tmp = `${labStatePath(s.name)}.tmp`;
  await writeFile(tmp, JSON.stringify(s, null, 2));
  await rename(tmp, labStatePath(s.name));
}
