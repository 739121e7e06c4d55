/**
 * Durable state: the whole store as one JSON file, replaced atomically.
 *
 *   commit ─► markDirty() ─► (group commit) ─► write tmp, fsync ─► rename ─► fsync dir
 *   request handler ─► await durable() ─► response
 *
 * Why a whole snapshot and not an append log: a lab store holds hundreds to a
 * few thousand small objects, so a snapshot is a few hundred KB written in
 * milliseconds; it is trivially consistent (one rename swaps the old state
 * for the new, a crash leaves one or the other), needs no compaction and no
 * replay code. Writes are coalesced: at most one write is in flight, and every
 * change committed while it runs is carried by the next one, so a burst of N
 * changes costs two writes, not N.
 *
 * Durability contract: a write request is answered only after a snapshot
 * containing its change is on disk (fsync'd). Watch events, however, go out
 * at commit, before the write: after a crash a watcher may have seen a change
 * that is not on disk. The lab accepts that; kube-apiserver does not have
 * this gap because etcd commits first.
 */

import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import type { KubeObject, StoreSnapshot } from './store.ts';

const FORMAT = 'palisade-apiserver/v1';

interface FileShape { format: string; resourceVersion: number; objects: Record<string, KubeObject[]> }

/** Reads the snapshot file; undefined when it does not exist. A corrupt file is an error, never silently dropped. */
export async function loadSnapshot(file: string): Promise<StoreSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<FileShape>;
  if (parsed.format !== FORMAT || typeof parsed.resourceVersion !== 'number' || typeof parsed.objects !== 'object') {
    throw new Error(`${file}: not a ${FORMAT} snapshot`);
  }
  return { resourceVersion: parsed.resourceVersion, objects: parsed.objects ?? {} };
}

export class SnapshotWriter {
  readonly #file: string;
  readonly #snapshot: () => StoreSnapshot;
  /** Bumped on every change; #writtenSeq is the seq the last finished write covers. */
  #changeSeq = 0;
  #writtenSeq = 0;
  #inFlight: Promise<void> | undefined;
  #scheduled = false;

  constructor(file: string, snapshot: () => StoreSnapshot) {
    this.#file = file;
    this.#snapshot = snapshot;
  }

  /** Called by the store after every commit (synchronously, cheap). */
  markDirty(): void {
    this.#changeSeq++;
    // Changes nobody awaits (e.g. the initial namespaces) still reach disk.
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.durable().catch(() => { /* surfaced to the next awaiting request */ });
      });
    }
  }

  /** Resolves once every change made before the call is on disk. */
  async durable(): Promise<void> {
    const target = this.#changeSeq;
    while (this.#writtenSeq < target) {
      if (this.#inFlight) {
        await this.#inFlight.catch(() => undefined);
        continue;
      }
      this.#inFlight = this.#write();
      try {
        await this.#inFlight;
      } finally {
        this.#inFlight = undefined;
      }
    }
  }

  async #write(): Promise<void> {
    // The snapshot is taken synchronously here, so it covers every change up to `seq`.
    const seq = this.#changeSeq;
    const snap = this.#snapshot();
    const body: FileShape = { format: FORMAT, resourceVersion: snap.resourceVersion, objects: snap.objects };
    const tmp = join(dirname(this.#file), `.${basename(this.#file)}.${process.pid}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(body));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.#file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    // fsync the directory so the rename itself survives a power loss.
    const dir = await open(dirname(this.#file), 'r');
    try { await dir.sync(); } catch { /* some filesystems refuse fsync on directories */ } finally { await dir.close(); }
    this.#writtenSeq = seq;
  }
}
