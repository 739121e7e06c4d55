/**
 * Test fixtures shared by the *.test.ts files: a real server on port 0 in a
 * temp dir, a minimal JSON HTTP client, and a watch reader that yields
 * events one by one. Not part of the public surface.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/apiserver/index.ts';

export interface TestServer {
  server: ApiServer;
  dir: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>;
  close(): Promise<void>;
}

export interface Reply {
  status: number;
  headers: Headers;
  // Tests read arbitrary fields of server answers.
  body: any;
}

export async function request(base: string, method: string, path: string, body?: unknown,
  headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { accept: 'application/json', ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON: keep the text */ }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Starts a server (temp dir available as `dir`); `close` stops it and removes the dir. */
export async function startTestServer(opts: ApiServerOptions = {}, dir?: string): Promise<TestServer> {
  const ownDir = dir ?? await mkdtemp(join(tmpdir(), 'palisade-apiserver-'));
  const server = await startApiServer({ port: 0, ...opts });
  return {
    server,
    dir: ownDir,
    call: (method, path, body, headers) => request(server.url, method, path, body, headers),
    async close() {
      await server.close();
      if (!dir) await rm(ownDir, { recursive: true, force: true });
    },
  };
}

export interface WatchEventJson { type: string; object: any }

/** A watch connection read line by line. */
export class WatchReader {
  readonly #controller = new AbortController();
  readonly #queue: WatchEventJson[] = [];
  #waiter: (() => void) | undefined;
  #ended = false;
  status = 0;

  static async open(url: string): Promise<WatchReader> {
    const w = new WatchReader();
    const res = await fetch(url, { signal: w.#controller.signal, headers: { accept: 'application/json' } });
    w.status = res.status;
    void w.#pump(res);
    return w;
  }

  async #pump(res: Response): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim() !== '') this.#queue.push(JSON.parse(line) as WatchEventJson);
        }
        this.#wake();
      }
    } catch { /* aborted */ }
    this.#ended = true;
    this.#wake();
  }

  #wake(): void { const w = this.#waiter; this.#waiter = undefined; w?.(); }

  get ended(): boolean { return this.#ended && this.#queue.length === 0; }

  /** The next event; rejects after `timeoutMs`, resolves undefined when the stream ended. */
  async next(timeoutMs = 3000): Promise<WatchEventJson | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      if (this.#ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a watch event');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => { clearTimeout(t); resolve(); };
      });
    }
    return this.#queue.shift();
  }

  /** Next event that is not a BOOKMARK. */
  async nextChange(timeoutMs = 3000): Promise<WatchEventJson | undefined> {
    for (;;) {
      const ev = await this.next(timeoutMs);
      if (ev === undefined || ev.type !== 'BOOKMARK') return ev;
    }
  }

  close(): void { this.#controller.abort(); }
}

export function pod(name: string, labels: Record<string, string> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, labels },
    spec: { containers: [{ name: 'c', image: 'busybox' }] },
    ...extra,
  };
}

/** Polls `cond` until true (for effects of asynchronous clients such as informers). */
export async function eventually(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
