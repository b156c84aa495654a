#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm install` through the prepare script, or `npm run build`):
// dist/runner/cli.js is tsc's output, dist/bundle/cli.js the same code bundled by esbuild (test/build/bundle.ts),
// which starts faster (fewer files to resolve and compile; docs/performance.md). The bundle runs only when it
// is at least as new as tsc's output: tsc rewrites every file it emits, so a `tsc -p tsconfig.json` after the
// last bundle (a developer's rebuild) makes the bundle stale and the tsc output runs instead. An installed
// package has both with the same time (npm pack fixes every file's), and runs the bundle.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const compiled = join(here, '..', 'dist', 'runner', 'cli.js');
const bundled = join(here, '..', 'dist', 'bundle', 'cli.js');

/** Modification time in ms, or undefined when the file is missing. */
function mtime(path) {
  return statSync(path, { throwIfNoEntry: false })?.mtimeMs;
}

const compiledAt = mtime(compiled);
const bundledAt = mtime(bundled);
if (compiledAt === undefined && bundledAt === undefined) {
  process.stderr.write('cairn is not built yet: run `npm install` (or `npm run build`) in the repository first.\n');
  process.exit(5);
}
await import(bundledAt !== undefined && (compiledAt === undefined || bundledAt >= compiledAt) ? bundled : compiled);
