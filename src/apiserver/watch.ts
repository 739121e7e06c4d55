/**
 * Watch streams: the HTTP side of `?watch=1`.
 *
 *   store commit ──deliver(ev)──► WatchStream ──filter/translate──► one JSON line ──► socket
 *   WatchRegistry's one ticker ──► BOOKMARKs and timeoutSeconds for every stream
 *
 * The wire format is kube-apiserver's for JSON: a chunked 200 response whose
 * body is one metav1.WatchEvent per line, `{"type":"ADDED","object":{...}}`.
 *
 * Selector translation (as the watch cache does it, storage/cacher): a MODIFIED
 * that moves an object into the selection is sent as ADDED, out of it as DELETED
 * (carrying the new object), and a change entirely outside it is not sent.
 *
 * BOOKMARK (only with allowWatchBookmarks=true): an object of the watched kind
 * with nothing but metadata.resourceVersion, the current global rv. That rv is
 * safe to resume from because the store delivers every change synchronously
 * while committing it: by the time the ticker runs, the stream has all
 * changes up to the counter.
 *
 * Slow consumers: a stream whose socket buffer exceeds SLOW_CONSUMER_BYTES is
 * closed (kube-apiserver also drops watchers that fall behind); the client
 * re-watches from its last rv or relists on 410.
 */

import type { ServerResponse } from 'node:http';
import type { KubeObject, WatchEvent, WatchSink } from './store.ts';
import type { ResourceInfo } from './resources.ts';
import type { ObjectPredicate } from './selectors.ts';
import type { Status } from './status-errors.ts';

const SLOW_CONSUMER_BYTES = 16 * 1024 * 1024;

/** JSON of each stored object, computed once however many watchers send it. */
const objectJson = new WeakMap<object, string>();

export function jsonOf(obj: object): string {
  let s = objectJson.get(obj);
  if (s === undefined) { s = JSON.stringify(obj); objectJson.set(obj, s); }
  return s;
}

type EventEncoder = (type: string, obj: KubeObject) => string;

export interface WatchStreamOptions {
  resource: ResourceInfo;
  /** Only objects of this namespace (undefined: all). */
  namespace: string | undefined;
  predicate: ObjectPredicate;
  bookmarks: boolean;
  /** Absolute time (ms) the stream ends at, from timeoutSeconds; undefined: never. */
  deadline: number | undefined;
  /** Encodes an event's object; the default is the object's own JSON (Table watches pass their own). */
  encodeObject?: ((obj: KubeObject) => string) | undefined;
}

export class WatchStream implements WatchSink {
  readonly #res: ServerResponse;
  readonly #opts: WatchStreamOptions;
  #closed = false;
  #unregister: (() => void) | undefined;
  lastBookmark = Date.now();

  constructor(res: ServerResponse, opts: WatchStreamOptions) {
    this.#res = res;
    this.#opts = opts;
    res.writeHead(200, {
      'content-type': 'application/json',
      'cache-control': 'no-cache, private',
      'transfer-encoding': 'chunked',
    });
    // A write racing a client disconnect must end this stream, never crash the server.
    res.on('error', () => this.close());
    // Headers go out now, so the client knows the watch is established even if
    // nothing changes for a while.
    res.flushHeaders();
  }

  get deadline(): number | undefined { return this.#opts.deadline; }
  get wantsBookmarks(): boolean { return this.#opts.bookmarks; }
  get closed(): boolean { return this.#closed; }

  attach(unregister: () => void): void {
    if (this.#closed) unregister(); else this.#unregister = unregister;
  }

  /** Called by the store inside a commit: must not re-enter the store. */
  deliver(ev: WatchEvent): void {
    if (this.#closed) return;
    const { namespace, predicate } = this.#opts;
    if (namespace !== undefined && ev.object.metadata.namespace !== namespace) return;
    let type: string = ev.type;
    if (ev.type === 'MODIFIED') {
      const now = predicate(ev.object);
      const before = ev.previous !== undefined && predicate(ev.previous);
      if (!now && !before) return;
      if (now && !before) type = 'ADDED';
      else if (!now && before) type = 'DELETED';
    } else if (!predicate(ev.object)) {
      return;
    }
    this.#writeLine(type, this.#opts.encodeObject ? this.#opts.encodeObject(ev.object) : jsonOf(ev.object));
  }

  /** `initialEventsEnd`: the bookmark that closes the initial state of a sendInitialEvents watch. */
  bookmark(rv: number, initialEventsEnd = false): void {
    const r = this.#opts.resource;
    this.lastBookmark = Date.now();
    const annotations = initialEventsEnd ? ',"annotations":{"k8s.io/initial-events-end":"true"}' : '';
    this.#writeLine('BOOKMARK', `{"kind":${JSON.stringify(r.kind)},"apiVersion":${JSON.stringify(r.apiVersion)},"metadata":{"resourceVersion":"${rv}"${annotations}}}`);
  }

  /** An ERROR event ends the stream, as kube-apiserver does (the client then relists on 410). */
  error(status: Status): void {
    this.#writeLine('ERROR', JSON.stringify(status));
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unregister?.();
    this.#unregister = undefined;
    this.#res.end();
  }

  #writeLine(type: string, objectJsonText: string): void {
    if (this.#closed) return;
    this.#res.write(`{"type":"${type}","object":${objectJsonText}}\n`);
    if (this.#res.writableLength > SLOW_CONSUMER_BYTES) this.close();
  }
}

/**
 * All open watch streams and the one coarse ticker that serves them, instead
 * of a timer per stream.
 */
export class WatchRegistry {
  readonly #streams = new Set<WatchStream>();
  readonly #bookmarkIntervalMs: number;
  readonly #currentRV: () => number;
  #ticker: NodeJS.Timeout | undefined;

  constructor(bookmarkIntervalMs: number, currentRV: () => number) {
    this.#bookmarkIntervalMs = bookmarkIntervalMs;
    this.#currentRV = currentRV;
  }

  add(stream: WatchStream): void {
    this.#streams.add(stream);
    if (!this.#ticker) {
      // Granularity: fine enough for the bookmark interval and timeoutSeconds, coarse enough to cost nothing.
      const tick = Math.max(10, Math.min(this.#bookmarkIntervalMs, 250));
      this.#ticker = setInterval(() => this.#tick(), tick);
      this.#ticker.unref();
    }
  }

  remove(stream: WatchStream): void {
    this.#streams.delete(stream);
    if (this.#streams.size === 0 && this.#ticker) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }

  closeAll(): void {
    for (const s of this.#streams) s.close();
    this.#streams.clear();
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = undefined;
  }

  get size(): number { return this.#streams.size; }

  #tick(): void {
    const now = Date.now();
    const rv = this.#currentRV();
    for (const s of this.#streams) {
      if (s.closed) { this.remove(s); continue; }
      if (s.deadline !== undefined && now >= s.deadline) { s.close(); this.remove(s); continue; }
      if (s.wantsBookmarks && now - s.lastBookmark >= this.#bookmarkIntervalMs) s.bookmark(rv);
    }
  }
}
