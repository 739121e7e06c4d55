/**
 * A real browser for tests and benches: Debian's Chromium driven by
 * playwright-core, headless, with a fresh profile under the caller's own
 * temp dir, so no state leaks between runs and nothing is fetched.
 *
 *   const b = await launchBrowser(dir);   // dir: the test's temp dir
 *   try { const page = await b.newPage(); … } finally { await b.close(); }
 *
 * (a node:test suite closes it in `after`, which runs when a case failed too).
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * No GPU, sandbox, QUIC or background traffic (update checks, sync, field
 * trials): the machine may be offline and is shared; --no-sandbox because
 * tests run as root, where Chromium's sandbox refuses to start.
 */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface TestBrowser {
  context: BrowserContext;
  /** The profile directory (--user-data-dir), inside the caller's dir. */
  profile: string;
  newPage(): Promise<Page>;
  /** Closes every page and the browser process; safe to call twice. */
  close(): Promise<void>;
}

/** Launches Chromium with a new profile in `dir`; throws naming the Debian package when it is missing. */
export async function launchBrowser(dir: string, viewport = { width: 1400, height: 900 }): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (scripts/setup.sh installs it)`);
  mkdirSync(dir, { recursive: true });
  const profile = mkdtempSync(`${dir}/chromium-profile-`);
  // A persistent context is how playwright takes a --user-data-dir of ours (launch() refuses the flag).
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport });
  let closed = false;
  return {
    context,
    profile,
    newPage: () => context.newPage(),
    async close() {
      if (closed) return;
      closed = true;
      await context.close();
    },
  };
}
