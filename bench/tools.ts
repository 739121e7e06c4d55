/**
 * The programs the benches drive beyond what scripts/setup.sh installs
 * (wrk, nginx, dnsperf, valgrind come from Debian on demand): found on PATH,
 * or an error that names the package to install.
 */
import { spawnSync } from 'node:child_process';

/** The path of `bin` (or `fallback` when it exists there, e.g. /usr/sbin off a user's PATH); throws naming Debian package `pkg`. */
export function needProgram(bin: string, pkg = bin, fallback?: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  const path = r.stdout.trim() || (fallback && spawnSync('test', ['-x', fallback]).status === 0 ? fallback : '');
  if (!path) throw new Error(`${bin} not found: apt-get install ${pkg}`);
  return path;
}
