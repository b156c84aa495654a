/**
 * `node dist/test/build/bundle.js`: bundle the compiled CLI (dist/runner/cli.js, tsc's output) into
 * dist/bundle/ with esbuild, then stamp dist/runner/cli.js with the bundle's entry (a last line
 * `// cairn-bundle: ../bundle/cli-HASH.js`), which bin/cairn.js runs. tsc rewrites every file it emits, so a
 * `tsc -p tsconfig.json` after this drops the stamp and bin/cairn.js runs tsc's fresh output, never a stale
 * bundle; the stamp travels in the npm tarball with the file (modification times do not: npm's install
 * writes each file at its own time). Run by `npm run build`, prepare, prepack and npm test after tsc.
 *
 * Why: a one-task play loaded ~430 files (our ~130 modules, yaml's 72, ajv's 63, handlebars' 33...), and
 * resolving, reading and compiling them one by one was the largest part of its start-up CPU (issue 17 item 2;
 * figures in docs/performance.md). esbuild is a well-kept bundler with no runtime dependency of its own for us; its ESM
 * output with code splitting keeps every `await import()` of runner/cli.ts (one per command) and of the lazy
 * modules a separate chunk, so `cairn inventory --list` still loads no engine, ssh2 or Handlebars
 * (test/integration/cli-lazy-load.test.ts reads dist/bundle/meta.json to see which modules a chunk holds).
 *
 * Kept outside the bundle: ssh2 (it loads its native crypto binding and cpu-features by path at run time),
 * and whatever the code loads with its own createRequire, on demand, from node_modules (the build-time schema
 * validators' ajv runtime, ajv's compiler for a site's own schema, re2js at the first regex).
 * Code that finds files relative to itself (packageRoot(): roles/, templates/, package.json) climbs from the
 * chunk's own URL, dist/bundle/, to the package root as it does from dist/runner/.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';
import { packageRoot } from '../../runner/core/util/paths.js';

const root = packageRoot();
const outdir = join(root, 'dist', 'bundle');
// Chunk names carry a content hash: last build's chunks would stay beside this one's.
rmSync(outdir, { recursive: true, force: true });

const compiledCli = join(root, 'dist', 'runner', 'cli.js');
/** The stamp line, as bin/cairn.js reads it: `// cairn-bundle: PATH` (PATH relative to dist/runner/). */
const STAMP = /^\/\/ cairn-bundle: .*\n?/gm;
// A stamp left by the last bundle goes first: until this build is done, bin/cairn.js runs tsc's output.
writeFileSync(compiledCli, readFileSync(compiledCli, 'utf8').replace(STAMP, ''));

const result = await build({
  absWorkingDir: root,
  entryPoints: [compiledCli],
  // The entry's name carries its content hash, so the stamp names exactly this build's entry.
  entryNames: '[name]-[hash]',
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['ssh2'],
  // The CommonJS packages bundled here (yaml, ajv, handlebars, commander...) call require() for node's own
  // modules; in ESM output esbuild routes those calls to a `require` in scope, which ESM has not.
  banner: {
    js: "import { createRequire as __cairnCreateRequire } from 'node:module'; const require = __cairnCreateRequire(import.meta.url);",
  },
  // Readable stack traces (-vvv, CAIRN_DEBUG=1) matter more than the few milliseconds minifying saves.
  minify: false,
  metafile: true,
  logLevel: 'warning',
});
writeFileSync(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
const entryPoint = relative(root, compiledCli);
const entry = Object.entries(result.metafile.outputs).find(([, out]) => out.entryPoint === entryPoint)?.[0];
if (entry === undefined) throw new Error('esbuild wrote no entry chunk');
const fromCompiled = relative(dirname(compiledCli), join(root, entry));
const source = readFileSync(compiledCli, 'utf8');
writeFileSync(compiledCli, `${source}${source.endsWith('\n') ? '' : '\n'}// cairn-bundle: ${fromCompiled}\n`);
const chunks = Object.keys(result.metafile.outputs).length;
console.log(`${entry}: ${chunks} files from ${Object.keys(result.metafile.inputs).length} modules`);
