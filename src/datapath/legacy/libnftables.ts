/**
 * nftables transactions in-process, through libnftables (the library `nft`
 * itself is built on), instead of spawning `nft -f -` for each one.
 *
 * Why: a spawn costs several milliseconds, and the DNS proxy holds each
 * answer until its new addresses are in the kernel (at most 100 ms), so
 * toFQDNs set updates sit on a pod's DNS latency. The call runs on a libuv
 * worker thread (koffi's async calls): big transactions never stall the
 * agent's event loop. Calls are serialised on one context, which is not
 * thread-safe. The worker thread is in the agent's network namespace like
 * every thread of the process (the agent is started inside it).
 *
 * When the library cannot be loaded, callers fall back to `nft -f -`.
 */
import koffi from 'koffi';
import { CommandError } from '../../kernel/index.ts';

type Fn = ReturnType<ReturnType<typeof koffi.load>['func']>;

interface Lib {
  ctx: unknown;
  run: Fn;
  errors: Fn;
}

let lib: Lib | null | undefined;

function load(): Lib | null {
  if (lib !== undefined) return lib;
  try {
    const l = koffi.load('libnftables.so.1');
    const ctxNew = l.func('void *nft_ctx_new(uint32_t flags)');
    const bufferOutput = l.func('int nft_ctx_buffer_output(void *ctx)');
    const bufferError = l.func('int nft_ctx_buffer_error(void *ctx)');
    const ctx = ctxNew(0);
    if (!ctx) throw new Error('nft_ctx_new failed');
    bufferOutput(ctx);
    bufferError(ctx);
    lib = {
      ctx,
      run: l.func('int nft_run_cmd_from_buffer(void *ctx, const char *buf)'),
      errors: l.func('const char *nft_ctx_get_error_buffer(void *ctx)'),
    };
  } catch {
    lib = null;
  }
  return lib;
}

export function libnftablesAvailable(): boolean {
  return load() !== null;
}

let queue: Promise<unknown> = Promise.resolve();

/** Runs one nft script as one transaction; rejects with nft's own error text. */
export function nftInProcess(script: string): Promise<void> {
  const l = load();
  if (!l) return Promise.reject(new Error('libnftables.so.1 is not available'));
  const next = queue.then(
    () =>
      new Promise<void>((resolve, reject) => {
        l.run.async(l.ctx, script, (err: unknown, rc: number) => {
          if (err) return reject(err instanceof Error ? err : new Error(String(err)));
          // Read (and so clear) the error buffer after every call, so one failure's text never leaks into the next.
          const text = String(l.errors(l.ctx) ?? '');
          if (rc !== 0) reject(new CommandError('nft -f - (libnftables)', rc, text));
          else resolve();
        });
      }),
  );
  queue = next.catch(() => undefined);
  return next;
}
