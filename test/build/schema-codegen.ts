/**
 * Ajv standalone code for every JSON Schema cairn validates against at start (issue 17): the inventory and
 * vars-file schemas, the playbook, play, task-list, meta and defaults schemas, each task keyword's, every
 * module's arguments and every bundled role's schema.json. Compiling them took seconds of a short command's
 * CPU on every run; this compiles them once, when cairn is built, into runner/core/util/schema-validators.
 * generated.ts. The schemas in the source stay the one truth: each generated validator is named by the hash of
 * its schema's JSON (util/schema.ts `schemaKey`), so a schema that changed is simply not found and is compiled
 * at run time as before, and test/unit/schema-validators.test.ts fails until the file is regenerated
 * (`npm run build` does it).
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import standaloneModule from 'ajv/dist/standalone/index.js';
import '../../runner/core/modules/all.js';
import { getModule, moduleNames } from '../../runner/core/modules/index.js';
import { inventorySchema, varsFileSchema } from '../../runner/core/inventory/schema.js';
import {
  defaultsSchema,
  metaSchema,
  playbookSchema,
  playSchema,
  taskKeywordSchemas,
  taskListSchema,
} from '../../runner/core/playbook/schema.js';
import { AJV_OPTIONS, schemaKey } from '../../runner/core/util/schema.js';

export const GENERATED_PATH = 'runner/core/util/schema-validators.generated.ts';

/** Every schema to precompile, bundled roles' included (`repoRoot`: where roles/ is). */
export function sourceSchemas(repoRoot: string): object[] {
  const schemas: object[] = [
    inventorySchema,
    varsFileSchema,
    playbookSchema,
    playSchema,
    taskListSchema,
    metaSchema,
    defaultsSchema,
    ...Object.values(taskKeywordSchemas),
  ];
  for (const name of moduleNames().sort()) schemas.push(getModule(name)!.argsSchema);
  const rolesDir = join(repoRoot, 'roles');
  for (const role of readdirSync(rolesDir).sort()) {
    const path = join(rolesDir, role, 'schema.json');
    if (existsSync(path)) schemas.push(JSON.parse(readFileSync(path, 'utf8')) as object);
  }
  return schemas;
}

/** The generated module's text for these schemas. */
export function generateValidators(schemas: readonly object[]): string {
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true, esm: true } });
  const exports: Record<string, string> = {};
  for (const schema of schemas) {
    const key = schemaKey(schema);
    if (exports[`v${key}`]) continue;
    ajv.addSchema(schema, key);
    exports[`v${key}`] = key;
  }
  // Ajv's ESM output still calls require() for its runtime helpers (ucs2length, equal...).
  const code = standaloneModule.default(ajv, exports).replace(/^"use strict";/, '');
  return [
    '// Generated from the source schemas by test/build/gen-schemas.ts (`npm run build`): do not edit.',
    '// test/unit/schema-validators.test.ts fails when it is stale.',
    '// @ts-nocheck',
    '/* eslint-disable */',
    "import { createRequire } from 'node:module';",
    'const require = createRequire(import.meta.url);',
    code,
    '',
  ].join('\n');
}
