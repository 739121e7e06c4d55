/**
 * Builds bpf/palisade.bpf.c into build/bpf/palisade.bpf.o when a source is
 * newer than the object (or the object is missing).
 *
 *   node src/datapath/ebpf/build.ts [--force]
 *
 * Needs clang (any with `-target bpf`; 14 here) and the libbpf headers
 * (Debian: clang llvm libbpf-dev linux-libc-dev; bpftool is handy to inspect).
 * CO-RE is not used: the programs touch only the UAPI `__sk_buff`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { arch } from 'node:os';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const BPF_SOURCE_DIR = `${PROJECT_ROOT}bpf`;
export const BPF_OBJECT = `${PROJECT_ROOT}build/bpf/palisade.bpf.o`;

const MULTIARCH: Record<string, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
const TARGET_ARCH: Record<string, string> = { x64: 'x86', arm64: 'arm64' };

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** Whether the object is missing or older than any file under bpf/. */
export function bpfObjectStale(object = BPF_OBJECT): boolean {
  const built = mtime(object);
  if (built < 0) return true;
  return readdirSync(BPF_SOURCE_DIR)
    .filter((f) => f.endsWith('.c') || f.endsWith('.h'))
    .some((f) => mtime(`${BPF_SOURCE_DIR}/${f}`) > built);
}

/** Compiles when stale (or forced); returns the object's path. Throws with clang's output on failure. */
export function buildBpfObject(opts: { force?: boolean; object?: string } = {}): string {
  const object = opts.object ?? BPF_OBJECT;
  if (!opts.force && !bpfObjectStale(object)) return object;
  mkdirSync(object.slice(0, object.lastIndexOf('/')), { recursive: true });
  const multiarch = MULTIARCH[arch()];
  const args = [
    '-O2',
    '-g',
    '-Wall',
    '-Werror',
    '-target',
    'bpf',
    `-D__TARGET_ARCH_${TARGET_ARCH[arch()] ?? 'x86'}`,
    ...(multiarch ? [`-I/usr/include/${multiarch}`] : []),
    `-I${BPF_SOURCE_DIR}`,
    '-c',
    `${BPF_SOURCE_DIR}/palisade.bpf.c`,
    '-o',
    object,
  ];
  const r = spawnSync(process.env['CLANG'] ?? 'clang', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`clang: ${r.error.message} (install clang, llvm and libbpf-dev)`);
  if (r.status !== 0) throw new Error(`clang ${args.join(' ')}\n${r.stderr}`);
  return object;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const stale = bpfObjectStale();
  const out = buildBpfObject({ force: process.argv.includes('--force') });
  console.log(stale || process.argv.includes('--force') ? `built ${out}` : `${out} is up to date`);
}
