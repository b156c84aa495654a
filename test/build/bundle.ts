/**
 * `node dist/test/build/bundle.js`: bundle the compiled CLI (dist/runner/cli.js, tsc's output) into
 * dist/bundle/ with esbuild, which bin/cairn.js runs when it is at least as new as dist/runner/cli.js. Run by
 * `npm run build`, prepare, prepack and npm test after tsc.
 *
 * Why: a one-task play loaded ~430 files (our ~130 modules, yaml's 72, ajv's 63, handlebars' 33...), and
 * resolving, reading and compiling them one by one was most of its start-up CPU (issue 17 item 2; figures in
 * docs/performance.md). esbuild is a well-kept bundler with no runtime dependency of its own for us; its ESM
 * output with code splitting keeps every `await import()` of runner/cli.ts (one per command) and of the lazy
 * modules a separate chunk, so `cairn inventory --list` still loads no engine, ssh2 or Handlebars
 * (test/integration/cli-lazy-load.test.ts reads dist/bundle/meta.json to see which modules a chunk holds).
 *
 * Kept outside the bundle: ssh2 (it loads its native crypto binding and cpu-features by path at run time),
 * and whatever the code loads with its own createRequire (the build-time schema validators' ajv runtime).
 * Code that finds files relative to itself (packageRoot(): roles/, templates/, package.json) climbs from the
 * chunk's own URL, dist/bundle/, to the package root as it does from dist/runner/.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { packageRoot } from '../../runner/core/util/paths.js';

const root = packageRoot();
const outdir = join(root, 'dist', 'bundle');
// Chunk names carry a content hash: last build's chunks would stay beside this one's.
rmSync(outdir, { recursive: true, force: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: [join(root, 'dist', 'runner', 'cli.js')],
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
const chunks = Object.keys(result.metafile.outputs).length;
console.log(`dist/bundle: ${chunks} files from ${Object.keys(result.metafile.inputs).length} modules`);
