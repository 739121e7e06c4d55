/**
 * The proxy alone in its own process, for memory tests: forked with the
 * upstream port as argv[2], it sends {port} once listening and answers a
 * 'report' message with {base, peak} RSS (bytes, sampled every 20 ms).
 *
 * Each sample first runs a full GC (the child is forked with --expose-gc):
 * otherwise the socket read buffers already let go of pile up until V8's
 * external-memory trigger (~64 MiB) and the peak says nothing about what the
 * proxy holds.
 */
import { startProxy } from './http-servers.ts';

const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => {});

const px = await startProxy(Number(process.argv[2]), { onEvent: undefined });
gc();
const base = process.memoryUsage().rss;
let peak = base;
const sampler = setInterval(() => {
  gc();
  peak = Math.max(peak, process.memoryUsage().rss);
}, 20);
process.send?.({ port: px.port });
process.on('message', async (m) => {
  if (m !== 'report') return;
  clearInterval(sampler);
  process.send?.({ base, peak });
  await px.close();
  process.disconnect();
});
