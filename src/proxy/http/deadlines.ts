/**
 * One coarse timer for every connection's deadline (undici's approach):
 * no setTimeout per socket or per request. A connection sets `deadline`
 * (performance.now() milliseconds, 0 = none) as it changes phase; one
 * unref'd interval, running only while connections are watched, calls
 * `onDeadline()` on those past it. Resolution is TICK_MS.
 *
 * Idle deadlines (no byte for N ms) are not pushed back on every chunk: a
 * connection stamps `coarseNow()` — a field store, no clock read — when bytes
 * move, and its onDeadline re-arms from that stamp if it is recent enough.
 *
 * onDeadline must not re-enter watch()/unwatch() for another connection;
 * it may unwatch itself (iteration over a Set tolerates deletion).
 */
export const TICK_MS = 50;

export interface Expiring {
  /** performance.now() ms after which onDeadline runs; 0 = none. */
  deadline: number;
  onDeadline(): void;
}

const watched = new Set<Expiring>();
let interval: NodeJS.Timeout | undefined;
/** performance.now() as of the last tick (or watch()), at most TICK_MS old while anything is watched. */
let clock = 0;

function tick(): void {
  const now = performance.now();
  clock = now;
  for (const c of watched) {
    if (c.deadline !== 0 && c.deadline <= now) {
      c.deadline = 0;
      c.onDeadline();
    }
  }
}

/** The coarse clock: good to TICK_MS for anything watched, for stamping activity. */
export function coarseNow(): number {
  return clock;
}

export function watch(c: Expiring): void {
  watched.add(c);
  if (interval === undefined) {
    clock = performance.now();
    interval = setInterval(tick, TICK_MS);
    interval.unref();
  }
}

export function unwatch(c: Expiring): void {
  watched.delete(c);
  if (watched.size === 0 && interval !== undefined) {
    clearInterval(interval);
    interval = undefined;
  }
}
