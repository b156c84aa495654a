#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm install` through the prepare script, or `npm run build`):
// dist/runner/cli.js is tsc's output; dist/bundle/ the same code bundled by esbuild (test/build/bundle.ts),
// which starts faster (fewer files to resolve and compile; docs/performance.md). The bundle step stamps
// dist/runner/cli.js with its entry (`// cairn-bundle: ../bundle/cli-HASH.js`); tsc rewrites the file without
// it, so after a bare `tsc -p tsconfig.json` (a developer's rebuild) tsc's fresh output runs, never a stale
// bundle. The stamp is content, so it survives npm pack and install.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const compiled = join(here, '..', 'dist', 'runner', 'cli.js');
let source;
try {
  source = readFileSync(compiled, 'utf8');
} catch {
  process.stderr.write('cairn is not built yet: run `npm install` (or `npm run build`) in the repository first.\n');
  process.exit(5);
}
const stamp = /^\/\/ cairn-bundle: (\S+)$/m.exec(source);
const bundled = stamp ? join(dirname(compiled), stamp[1]) : undefined;
await import(bundled !== undefined && existsSync(bundled) ? bundled : compiled);
