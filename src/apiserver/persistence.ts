/**
 * Durable state: a snapshot of the whole store plus an append-only log of the
 * changes made since it, both fsync'd before a write is answered.
 *
 *   commit ─► record(change) ─► pending lines ─┐
 *   request handler ─► await durable() ────────┴─► (group commit) append lines, fdatasync ─► answer
 *                                                   log larger than the snapshot? ─► compact:
 *                                                   write tmp, fsync, rename, fsync dir; empty the log
 *
 * Why a log: rewriting the whole store for every write made each one cost as
 * much as the store is large — 10,000 policies applied one by one wrote
 * 10,000 ever-growing snapshots. Appending makes a write cost its own size;
 * compacting only once the log outgrows the snapshot keeps the total work
 * linear and the files bounded. At most one disk operation is in flight, and
 * every change committed meanwhile goes out with the next one, so N
 * concurrent writes share one fsync.
 *
 * Crash safety: the snapshot is replaced atomically (rename), and the log's
 * lines carry their resourceVersion: on load, lines at or below the
 * snapshot's counter (left over when a crash came between a compaction's
 * rename and its emptying of the log) are skipped. A last line cut short by a
 * crash was never acknowledged and is dropped; damage anywhere else is an error.
 *
 * Durability contract: a write request is answered only after the change is
 * on disk (fsync'd). Watch events, however, go out at commit, before the
 * write: after a crash a watcher may have seen a change that is not on disk.
 * The lab accepts that; kube-apiserver does not have this gap because etcd
 * commits first.
 */

import { open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import type { EventType } from './watch-history.ts';
import type { KubeObject, StoreSnapshot } from './store.ts';
import { jsonOf } from './watch.ts';

const FORMAT = 'palisade-apiserver/v1';
/** The log is compacted into the snapshot once it is larger than this and than the last snapshot. */
const MIN_COMPACT_BYTES = 1024 * 1024;

interface FileShape { format: string; resourceVersion: number; objects: Record<string, KubeObject[]> }

/** One committed change, as the store reports it. */
export interface StoreChange {
  rv: number;
  /** ResourceInfo.key of the object's resource. */
  resource: string;
  type: EventType;
  /** The object as stored (for DELETED: as it was deleted). */
  object: KubeObject;
}

/** One line of the log: the object for ADDED and MODIFIED, only its name for DELETED. */
interface LogLine { rv: number; resource: string; type: EventType; object?: KubeObject; namespace?: string; name?: string }

/** The log that goes with snapshot `file`. */
export const logPath = (file: string): string => `${file}.log`;

const objectKey = (namespace: string | undefined, name: string): string => (namespace ? `${namespace}/${name}` : name);

/**
 * Reads the snapshot and replays the log over it; undefined when neither
 * exists. A corrupt file is an error, never silently dropped.
 */
export async function loadState(file: string): Promise<StoreSnapshot | undefined> {
  const snapshotText = await readIfExists(file);
  const logText = await readIfExists(logPath(file));
  if (snapshotText === undefined && logText === undefined) return undefined;
  let resourceVersion = 0;
  const objects = new Map<string, Map<string, KubeObject>>();
  if (snapshotText !== undefined) {
    const parsed = JSON.parse(snapshotText) as Partial<FileShape>;
    if (parsed.format !== FORMAT || typeof parsed.resourceVersion !== 'number' || typeof parsed.objects !== 'object') {
      throw new Error(`${file}: not a ${FORMAT} snapshot`);
    }
    resourceVersion = parsed.resourceVersion;
    for (const [resource, list] of Object.entries(parsed.objects ?? {})) {
      objects.set(resource, new Map(list.map((o) => [objectKey(o.metadata.namespace, o.metadata.name), o])));
    }
  }
  const lines = (logText ?? '').split('\n');
  // Everything before the last '\n' was written whole; what follows it is a write the crash cut short.
  lines.pop();
  lines.forEach((text, i) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      throw new Error(`${logPath(file)}: line ${i + 1} is not JSON`);
    }
    if (typeof line.rv !== 'number' || typeof line.resource !== 'string') throw new Error(`${logPath(file)}: line ${i + 1} is not a change`);
    if (line.rv <= resourceVersion) return;
    resourceVersion = line.rv;
    let bucket = objects.get(line.resource);
    if (!bucket) objects.set(line.resource, (bucket = new Map()));
    if (line.type === 'DELETED') bucket.delete(objectKey(line.namespace, line.name ?? ''));
    else if (line.object) bucket.set(objectKey(line.object.metadata.namespace, line.object.metadata.name), line.object);
  });
  return { resourceVersion, objects: Object.fromEntries([...objects].map(([k, m]) => [k, [...m.values()]])) };
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export class StateJournal {
  readonly #file: string;
  readonly #snapshot: () => StoreSnapshot;
  /** Bumped on every change; #writtenSeq is the seq the last finished write covers. */
  #changeSeq = 0;
  #writtenSeq = 0;
  /** Log lines of changes not yet written, in commit order. */
  #pending: string[] = [];
  #log: FileHandle | undefined;
  #logBytes = 0;
  #snapshotBytes = 0;
  #inFlight: Promise<void> | undefined;
  #scheduled = false;

  constructor(file: string, snapshot: () => StoreSnapshot) {
    this.#file = file;
    this.#snapshot = snapshot;
  }

  /** Called by the store after every commit (synchronously, cheap). */
  record(change: StoreChange): void {
    const { rv, resource, type, object } = change;
    this.#pending.push(type === 'DELETED'
      ? `${JSON.stringify({ rv, resource, type, namespace: object.metadata.namespace, name: object.metadata.name })}\n`
      : `{"rv":${rv},"resource":${JSON.stringify(resource)},"type":"${type}","object":${jsonOf(object)}}\n`);
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
    while (this.#writtenSeq < target) await this.#exclusive(() => this.#flush());
  }

  /** Writes the whole store as the snapshot and empties the log (at start and at close: the next start reads one file). */
  compact(): Promise<void> {
    return this.#exclusive(() => this.#compact());
  }

  /** Waits until the file handle is closed; the writer can still be used (it reopens the log). */
  async close(): Promise<void> {
    await this.#exclusive(async () => {
      await this.#log?.close();
      this.#log = undefined;
    });
  }

  /** Runs `op` when no other disk operation is in flight: one at a time, in turn. */
  async #exclusive(op: () => Promise<void>): Promise<void> {
    while (this.#inFlight) await this.#inFlight.catch(() => undefined);
    this.#inFlight = op();
    try {
      await this.#inFlight;
    } finally {
      this.#inFlight = undefined;
    }
  }

  async #flush(): Promise<void> {
    if (this.#logBytes > Math.max(MIN_COMPACT_BYTES, this.#snapshotBytes)) return this.#compact();
    const seq = this.#changeSeq;
    const text = this.#pending.join('');
    this.#pending = [];
    this.#log ??= await open(logPath(this.#file), 'a', 0o600);
    await this.#log.write(text);
    await this.#log.datasync();
    this.#logBytes += Buffer.byteLength(text);
    this.#writtenSeq = seq;
  }

  async #compact(): Promise<void> {
    // The snapshot is taken synchronously here, so it covers every change recorded so far: the pending lines too.
    const seq = this.#changeSeq;
    this.#pending = [];
    const snap = this.#snapshot();
    const text = snapshotJson(snap);
    const tmp = join(dirname(this.#file), `.${basename(this.#file)}.${process.pid}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
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
    // Only now may the log go: until the rename is durable, the old snapshot and this log are the state.
    this.#log ??= await open(logPath(this.#file), 'a', 0o600);
    await this.#log.truncate(0);
    await this.#log.sync();
    this.#logBytes = 0;
    this.#snapshotBytes = Buffer.byteLength(text);
    this.#writtenSeq = seq;
  }
}

/** The snapshot file's text, spliced from each object's cached JSON instead of serialising the store again. */
function snapshotJson(snap: StoreSnapshot): string {
  const parts: string[] = [];
  for (const [resource, list] of Object.entries(snap.objects)) {
    parts.push(`${JSON.stringify(resource)}:[${list.map((o) => jsonOf(o)).join(',')}]`);
  }
  return `{"format":"${FORMAT}","resourceVersion":${snap.resourceVersion},"objects":{${parts.join(',')}}}`;
}
