/** Waiting in tests: poll a condition, fail with what was awaited. No other imports: unit tests use it too. */

/** Polls `check` every `everyMs` until it holds or `ms` passed; returns the time it took, or throws naming `what`. */
export async function within(ms: number, what: string, check: () => Promise<boolean> | boolean, everyMs = 50): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
