/**
 * Flow logs on disk, as Hubble's exporter and ACNS container network logs
 * write them: one GetFlowsResponse JSON object per line, only the flows the
 * include filters let through (minus the excluded ones), size-rotated:
 *
 *   flows.log  (current)  ─► flows.log.1 ─► flows.log.2 … flows.log.<maxFiles-1> ─► deleted
 *
 * write() is synchronous and cheap (it appends to an in-memory batch); the
 * batch goes to disk on the next turn of the event loop in one write, so the
 * ingest path never waits for the disk. A batch that would push the file past
 * maxSizeBytes rotates first.
 */
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { compileFilters, type FlowFilter, type FlowPredicate } from './filter.ts';
import { flowToJson, isFlowEnvelope, type GetFlowsResponse } from './flow.ts';

export interface FlowLogOptions {
  path: string;
  /** Default 10 MiB. */
  maxSizeBytes?: number;
  /** Files kept including the current one. Default 5. */
  maxFiles?: number;
  include?: readonly FlowFilter[];
  exclude?: readonly FlowFilter[];
}

export class FlowLog {
  readonly path: string;
  readonly #maxSize: number;
  readonly #maxFiles: number;
  readonly #matches: FlowPredicate;
  #batch: string[] = [];
  #file: FileHandle | null = null;
  #size = 0;
  #flushing: Promise<void> | null = null;
  #closed = false;
  /** Lines written to disk and lines dropped by the filters, for status pages. */
  written = 0;
  filtered = 0;

  constructor(opts: FlowLogOptions) {
    this.path = opts.path;
    this.#maxSize = opts.maxSizeBytes ?? 10 * 1024 * 1024;
    this.#maxFiles = Math.max(1, opts.maxFiles ?? 5);
    this.#matches = compileFilters(opts.include, opts.exclude);
  }

  write(e: GetFlowsResponse): void {
    if (this.#closed) return;
    if (isFlowEnvelope(e) && !this.#matches(e.flow)) {
      this.filtered++;
      return;
    }
    this.#batch.push(flowToJson(e) + '\n');
    this.#flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#drain());
  }

  /** Resolves once everything written so far is on disk. */
  async flush(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    await this.#file?.close();
    this.#file = null;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#batch.length > 0) {
        const text = this.#batch.join('');
        const lines = this.#batch.length;
        this.#batch = [];
        const bytes = Buffer.byteLength(text);
        if (this.#file === null) await this.#open();
        if (this.#size > 0 && this.#size + bytes > this.#maxSize) await this.#rotate();
        await (this.#file as FileHandle).write(text);
        this.#size += bytes;
        this.written += lines;
      }
    } finally {
      this.#flushing = null;
    }
  }

  async #open(): Promise<void> {
    this.#file = await open(this.path, 'a');
    this.#size = (await stat(this.path)).size;
  }

  async #rotate(): Promise<void> {
    await this.#file?.close();
    this.#file = null;
    // Oldest first, so each rename lands on a free name.
    await rm(`${this.path}.${this.#maxFiles - 1}`, { force: true });
    for (let i = this.#maxFiles - 2; i >= 1; i--) await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(ignoreMissing);
    if (this.#maxFiles > 1) await rename(this.path, `${this.path}.1`);
    else await rm(this.path, { force: true });
    await this.#open();
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
