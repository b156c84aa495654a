/**
 * The validators compiled at build time (runner/core/util/schema-validators.generated.ts, Ajv standalone code)
 * are exactly what the source schemas give today: the file is regenerated here in memory and compared, so a
 * schema edited without `npm run build` fails this test. And a precompiled validator answers as the runtime
 * compiler does (same verdict, same errors, with parentSchema for the "allowed keys" messages).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inventorySchema } from '../../runner/core/inventory/schema.js';
import { playSchema } from '../../runner/core/playbook/schema.js';
import { ajv, compileSchema, precompiledValidator } from '../../runner/core/util/schema.js';
import { GENERATED_PATH, generateValidators, sourceSchemas } from '../build/schema-codegen.js';
import { repoRoot } from '../helpers/cli.js';

describe('build-time schema validators', () => {
  it('the generated file is what the source schemas give (regenerate with `npm run build`)', () => {
    const committed = readFileSync(join(repoRoot, GENERATED_PATH), 'utf8');
    const fresh = generateValidators(sourceSchemas(repoRoot));
    // Not toEqual on 900 KB: a mismatch says what to do instead of printing both.
    expect(committed === fresh, `${GENERATED_PATH} is stale: run npm run build and commit it`).toBe(true);
  });

  it('every source schema has a precompiled validator, and compileSchema uses it', () => {
    const missing = sourceSchemas(repoRoot).filter((s) => precompiledValidator(s) === undefined);
    expect(missing).toEqual([]);
    expect(compileSchema(inventorySchema)).toBe(precompiledValidator(inventorySchema));
    // An edited schema (here: one more word) has another key: it is compiled at run time, never given a stale one.
    expect(precompiledValidator({ ...playSchema, description: 'edited' })).toBeUndefined();
  });

  it('a precompiled validator gives the verdict and errors of the runtime compiler', () => {
    const runtime = ajv().compile(structuredClone(playSchema));
    const built = precompiledValidator(playSchema)!;
    const inputs: unknown[] = [
      { hosts: 'all', tasks: [] },
      { hosts: 3, tasks: 'x', unknown_key: 1 },
      { hosts: 'all', serial: [1, '50%'], become: 'yes' },
      [],
    ];
    for (const input of inputs) {
      expect(built(input)).toBe(runtime(input));
      expect(built.errors ?? null).toEqual(runtime.errors ?? null);
    }
  });
});
