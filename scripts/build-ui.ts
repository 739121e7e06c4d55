/**
 * Builds the web UI's page into dist/ui: type-checks ui/ (tsc -p ui, DOM lib),
 * bundles ui/src/main.ts with esbuild into app.js (minified, with a source map)
 * and writes index.html with app.css and app.js inlined (one request for the
 * page: on a busy server each request waits its turn, and the first render waited
 * on three); app.js and app.css are written too, for the source map and for
 * reading. Nothing is fetched at run time: the page has no dependency outside
 * this checkout. Run by scripts/setup.sh.
 *
 *   node scripts/build-ui.ts          exits non-zero, naming what failed
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const uiDir = join(root, 'ui');
const outDir = join(root, 'dist', 'ui');

function fail(what: string, detail: string): never {
  process.stderr.write(`build-ui: ${what}\n${detail.trim()}\n`);
  process.exit(1);
}

// Type errors fail the build: esbuild only strips types, it never checks them.
try {
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', uiDir], { cwd: root, stdio: 'pipe' });
} catch (err) {
  const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
  fail('type errors in ui/ (tsc -p ui)', `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}` || e.message);
}

// Built beside dist/ui and swapped in whole: a running `palisade ui` never serves half a build.
const stage = `${outDir}.build-${process.pid}`;
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
try {
  await build({
    entryPoints: [join(uiDir, 'src', 'main.ts')],
    outfile: join(stage, 'app.js'),
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    logLevel: 'silent',
  });
} catch (err) {
  const e = err as { errors?: { text: string; location?: { file: string; line: number } | null }[]; message: string };
  const lines = e.errors?.map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`).join('\n');
  rmSync(stage, { recursive: true, force: true });
  fail('esbuild could not bundle ui/src/main.ts', lines ?? e.message);
}
copyFileSync(join(uiDir, 'app.css'), join(stage, 'app.css'));
{
  const css = readFileSync(join(stage, 'app.css'), 'utf8');
  const js = readFileSync(join(stage, 'app.js'), 'utf8');
  const linkCss = '<link rel="stylesheet" href="app.css">';
  const scriptJs = '<script type="module" src="app.js"></script>';
  const html = readFileSync(join(uiDir, 'index.html'), 'utf8');
  const problem = !html.includes(linkCss) ? `ui/index.html has no ${linkCss}`
    : !html.includes(scriptJs) ? `ui/index.html has no ${scriptJs}`
    : /<\/(script|style)/i.test(js + css) ? 'app.js or app.css contains a closing </script> or </style> tag, so it cannot be inlined' : '';
  if (problem !== '') {
    rmSync(stage, { recursive: true, force: true });
    fail('cannot inline the page', problem);
  }
  // Functions as replacements: `$` in the code must not be read as a pattern.
  writeFileSync(join(stage, 'index.html'), html.replace(linkCss, () => `<style>\n${css}</style>`).replace(scriptJs, () => `<script type="module">\n${js}</script>`));
}
const old = `${outDir}.old-${process.pid}`;
try {
  renameSync(outDir, old);
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
renameSync(stage, outDir);
rmSync(old, { recursive: true, force: true });

for (const file of ['index.html', 'app.css', 'app.js', 'app.js.map']) {
  const size = statSync(join(outDir, file)).size;
  process.stdout.write(`${relative(root, join(outDir, file)).padEnd(24)} ${(size / 1024).toFixed(1).padStart(7)} KiB\n`);
}
