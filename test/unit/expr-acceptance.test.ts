/**
 * Acceptance table (issue 14): expressions taken from real public playbooks (kubespray, geerlingguy's
 * ansible-for-devops and roles; each row cites repo@commit:path), with the value Debian's ansible-core 2.14
 * gave for them (native types), computed once by test/fixtures/expressions/generate.py and committed.
 * cairn's evaluator must give the same value, or fail where Ansible failed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../runner/core/template/index.js';
import { UndefinedVariableError } from '../../runner/core/template/helpers.js';

interface Row {
  expr: string;
  source: string;
  value?: unknown;
  error?: string;
}

const dir = fileURLToPath(new URL('../fixtures/expressions/', import.meta.url));
const table = JSON.parse(readFileSync(`${dir}table.json`, 'utf8')) as Row[];
const vars = JSON.parse(readFileSync(`${dir}vars.json`, 'utf8')) as Record<string, unknown>;

/** Python's `1.0` and JavaScript's `1` are the same number once through JSON; compare as JSON data. */
function normalise(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

describe('expressions from real playbooks give what ansible-core gives', () => {
  const withValue = table.filter((row) => 'value' in row);
  it('the table holds at least 300 expressions with a value', () => {
    expect(withValue.length).toBeGreaterThanOrEqual(300);
  });

  it.each(withValue.map((row) => [row.expr, row] as const))('%s', (_expr, row) => {
    let got: unknown;
    try {
      got = evaluate(row.expr, vars);
    } catch (err) {
      throw new Error(`${row.source}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    expect(normalise(got), row.source).toEqual(row.value);
  });

  const withError = table.filter((row) => row.error !== undefined);
  it.each(withError.map((row) => [row.expr, row] as const))('%s fails as in Ansible', (_expr, row) => {
    let failure: unknown;
    try {
      evaluate(row.expr, vars);
    } catch (err) {
      failure = err;
    }
    expect(failure, `${row.source}: Ansible failed with ${row.error}`).toBeDefined();
    if (row.error === 'undefined') expect(failure, row.source).toBeInstanceOf(UndefinedVariableError);
  });
});
