#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm install` through the prepare script, or `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, '..', 'dist', 'runner', 'cli.js');
if (!existsSync(entry)) {
  process.stderr.write('cairn is not built yet: run `npm install` (or `npm run build`) in the repository first.\n');
  process.exit(5);
}
await import(entry);
