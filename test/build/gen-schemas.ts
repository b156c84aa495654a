/**
 * `node dist/test/build/gen-schemas.js`: rewrite runner/core/util/schema-validators.generated.ts from the source
 * schemas (test/build/schema-codegen.ts) when it differs, then rebuild so dist has it. Run by `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli.js';
import { GENERATED_PATH, generateValidators, sourceSchemas } from './schema-codegen.js';

const path = join(repoRoot, GENERATED_PATH);
const text = generateValidators(sourceSchemas(repoRoot));
let current = '';
try {
  current = readFileSync(path, 'utf8');
} catch {
  // Not generated yet.
}
if (current === text) {
  process.stdout.write(`${GENERATED_PATH} is up to date\n`);
} else {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
  process.stdout.write(`${GENERATED_PATH} regenerated; rebuilding\n`);
  const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repoRoot, stdio: 'inherit' });
  process.exit(tsc.status ?? 1);
}
