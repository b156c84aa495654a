/**
 * JSON Schema validation (ajv) with errors that name the file, line and column of the offending node
 * and say in words what was expected.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { CairnError } from './errors.js';
import { errorAt, type LoadedYaml, type YamlPath } from './yaml-source.js';

// verbose: errors carry parentSchema, so an unknown key can be answered with the keys that are allowed.
export const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true, verbose: true });

const compiled = new WeakMap<object, ValidateFunction>();

export function compileSchema(schema: object): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

/** The instance path of an ajv error as a YAML path ("/0/roles/1" -> [0, "roles", 1]). */
export function instancePathToYamlPath(instancePath: string): Array<string | number> {
  if (!instancePath) return [];
  return instancePath
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((seg) => (/^\d+$/.test(seg) ? Number(seg) : seg));
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return `${typeof value} ${String(value)}`;
}

function valueAt(root: unknown, path: YamlPath): unknown {
  let cur: unknown = root;
  for (const step of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[step];
  }
  return cur;
}

function nameOf(path: YamlPath, what: string): string {
  const last = [...path].reverse().find((p) => typeof p === 'string');
  return last !== undefined ? `"${String(last)}"` : what;
}

/** Pick the most useful of ajv's errors (the deepest, preferring unknown keys and types over anyOf noise). */
function pickError(errors: ErrorObject[]): ErrorObject {
  const score = (e: ErrorObject) =>
    e.instancePath.split('/').length * 10 + (e.keyword === 'additionalProperties' ? 5 : 0) + (e.keyword === 'anyOf' || e.keyword === 'oneOf' ? -5 : 0);
  return [...errors].sort((a, b) => score(b) - score(a))[0]!;
}

export function describeAjvError(err: ErrorObject, root: unknown, what: string, prefix: YamlPath = []): { path: YamlPath; message: string; which: 'key' | 'value' } {
  const path = [...prefix, ...instancePathToYamlPath(err.instancePath)];
  const actual = valueAt(root, instancePathToYamlPath(err.instancePath));
  const subject = nameOf(path, what);
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String((err.params as { additionalProperty: string }).additionalProperty);
      const parentSchema = err.parentSchema as { properties?: Record<string, unknown> } | undefined;
      const allowed = parentSchema?.properties ? Object.keys(parentSchema.properties) : [];
      const hint = allowed.length ? ` (expected one of: ${allowed.join(', ')})` : '';
      return { path: [...path, key], which: 'key', message: `unknown key "${key}" in ${subject === what ? what : subject}${hint}` };
    }
    case 'required': {
      const key = String((err.params as { missingProperty: string }).missingProperty);
      return { path, which: 'value', message: `${subject} is missing the required key "${key}"` };
    }
    case 'type': {
      const expected = String((err.params as { type: string | string[] }).type).replace(/,/g, ' or ');
      return { path, which: 'value', message: `${subject} must be ${article(expected)}, got ${describeValue(actual)}` };
    }
    case 'enum': {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ');
      return { path, which: 'value', message: `${subject} must be one of ${allowed}, got ${describeValue(actual)}` };
    }
    case 'pattern':
      return { path, which: 'value', message: `${subject} must match ${(err.params as { pattern: string }).pattern}, got ${describeValue(actual)}` };
    default:
      return { path, which: 'value', message: `${subject} ${err.message ?? 'is invalid'}${actual !== undefined ? `, got ${describeValue(actual)}` : ''}` };
  }
}

function article(type: string): string {
  if (type === 'array') return 'a list';
  if (type === 'object') return 'a mapping';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/**
 * Validate `value` (which sits at `prefix` inside `loaded`) against `schema`; throw one clear error for the
 * most relevant failure.
 */
export function validateAt(loaded: LoadedYaml, schema: object, what: string, value: unknown = loaded.value, prefix: YamlPath = []): void {
  const validate = compileSchema(schema);
  if (validate(value)) return;
  const err = pickError(validate.errors ?? []);
  const { path, message, which } = describeAjvError(err, value, what, prefix);
  throw errorAt(loaded, path, `${what}: ${message}`, which) as CairnError;
}
