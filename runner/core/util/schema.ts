/**
 * JSON Schema validation (ajv) with errors that name the file, line and column of the offending node
 * and say in words what was expected.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { CairnError } from './errors.js';
import { closestNames, levenshtein } from './suggest.js';
import { errorAt, type LoadedYaml, type YamlPath } from './yaml-source.js';
import * as generated from './schema-validators.generated.js';

// verbose: errors carry parentSchema, so an unknown key can be answered with the keys that are allowed.
export const AJV_OPTIONS = { allErrors: true, strict: false, allowUnionTypes: true, verbose: true } as const;

let runtimeAjv: Ajv | undefined;
/**
 * The ajv instance for schemas not compiled at build time (a site's own role schema): made, and ajv's compiler
 * loaded, on first use. cairn's own schemas run as build-time code that needs only ajv's small runtime, so a
 * play no longer loads the compiler (63 files; in the bundle ~40 ms of a one-task play's start, issue 17).
 * A synchronous require (ajv is CommonJS) keeps compileSchema synchronous; the bundle leaves it to node,
 * which finds ajv in the package's node_modules.
 */
export function ajv(): Ajv {
  runtimeAjv ??= new (createRequire(import.meta.url)('ajv') as typeof import('ajv')).Ajv(AJV_OPTIONS);
  return runtimeAjv;
}

/**
 * Validators compiled when cairn was built (Ajv standalone code, test/build/gen-schemas.ts), by schemaKey.
 * Compiling cairn's own schemas at every start cost seconds of CPU (issue 17).
 */
const precompiled = generated as unknown as Record<string, ValidateFunction | undefined>;

/** The name of a schema's build-time validator: a hash of its JSON, so an edited schema never finds a stale one. */
export function schemaKey(schema: object): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 24);
}

/** The build-time validator of this schema, if it was compiled when cairn was built. */
export function precompiledValidator(schema: object): ValidateFunction | undefined {
  return precompiled[`v${schemaKey(schema)}`];
}

const compiled = new WeakMap<object, ValidateFunction>();

export function compileSchema(schema: object): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = precompiledValidator(schema) ?? ajv().compile(schema);
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

/** A value in words for "got ..." in messages; `nothingWord` names null (YAML's empty value). */
export function describeValue(value: unknown, nothingWord = 'null'): string {
  if (value === null || value === undefined) return value === null ? nothingWord : 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return `${typeof value} ${String(value)}`;
}

/** The value at a YAML path in a parsed document, or undefined. */
export function valueAt(root: unknown, path: YamlPath): unknown {
  let cur: unknown = root;
  for (const step of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[step];
  }
  return cur;
}

function nameOf(path: YamlPath, what: string): string {
  const lastName = [...path].reverse().findIndex((p) => typeof p === 'string');
  // A path of list positions only ([0] of a playbook) is an entry of the whole document.
  if (lastName < 0) return path.length ? `entry ${Number(path[path.length - 1]) + 1}` : what;
  const name = `"${String(path[path.length - 1 - lastName])}"`;
  // [.., "tasks", 0] is the first entry of "tasks", not "tasks" itself.
  const index = path[path.length - 1];
  return lastName === 1 && typeof index === 'number' ? `entry ${index + 1} of ${name}` : name;
}

type SchemaWords = {
  description?: unknown;
  type?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: unknown[];
  oneOf?: unknown[];
  items?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
};

const PLURAL: Record<string, string> = {
  string: 'strings',
  integer: 'whole numbers',
  number: 'numbers',
  boolean: 'true/false values',
  object: 'mappings',
  array: 'lists',
  null: 'empty values',
};

/** "a, b or c". */
function alternatives(words: string[]): string {
  const unique = [...new Set(words.filter(Boolean))];
  return unique.length <= 1
    ? (unique[0] ?? 'something else')
    : `${unique.slice(0, -1).join(', ')} or ${unique[unique.length - 1]!}`;
}

function range(schema: SchemaWords, noun: string): string {
  if (schema.minimum !== undefined && schema.maximum !== undefined)
    return `${noun} from ${schema.minimum} to ${schema.maximum}`;
  if (schema.minimum !== undefined) return `${noun} ≥ ${schema.minimum}`;
  if (schema.maximum !== undefined) return `${noun} ≤ ${schema.maximum}`;
  return noun;
}

function describeType(type: string, schema: SchemaWords): string {
  switch (type) {
    case 'integer':
      return range(schema, 'a whole number');
    case 'number':
      return range(schema, 'a number');
    case 'string':
      return schema.pattern
        ? `a string matching ${schema.pattern}`
        : schema.minLength
          ? 'a non-empty string'
          : 'a string';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping';
    case 'null':
      return 'empty';
    case 'array': {
      const items = schema.items as SchemaWords | undefined;
      const itemTypes =
        items === undefined
          ? []
          : Array.isArray(items.type)
            ? (items.type as string[])
            : typeof items.type === 'string'
              ? [items.type]
              : [];
      return itemTypes.length && !items?.anyOf
        ? `a list of ${itemTypes.map((t) => PLURAL[t] ?? t).join(' or ')}`
        : 'a list';
    }
    default:
      return type;
  }
}

/** A schema in words ("a whole number ≥ 1, a string matching ^\\d+%?$ or a list"), for "must be ..." messages. */
export function describeSchema(schema: unknown): string {
  if (schema === null || typeof schema !== 'object') return 'anything';
  const s = schema as SchemaWords;
  if (typeof s.description === 'string') return s.description;
  const union = s.anyOf ?? s.oneOf;
  if (Array.isArray(union)) return alternatives(union.map(describeSchema));
  if (Array.isArray(s.enum)) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if (s.const !== undefined) return JSON.stringify(s.const);
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : [];
  return types.length ? alternatives(types.map((t) => describeType(t, s))) : 'anything';
}

/** The closest of the near names only ("taks" -> "tasks" and "tags", not also "vars"). */
function nearest(name: string, candidates: string[]): string[] {
  const near = closestNames(name, candidates);
  if (!near.length) return near;
  const best = levenshtein(name.toLowerCase(), near[0]!.toLowerCase());
  return near.filter((n) => levenshtein(name.toLowerCase(), n.toLowerCase()) === best);
}

/** Pick the most useful of ajv's errors (the deepest, preferring unknown keys and types over anyOf noise). */
function pickError(errors: ErrorObject[]): ErrorObject {
  const score = (e: ErrorObject) =>
    e.instancePath.split('/').length * 10 +
    (e.keyword === 'additionalProperties' ? 5 : 0) +
    (e.keyword === 'anyOf' || e.keyword === 'oneOf' ? -5 : 0);
  return [...errors].sort((a, b) => score(b) - score(a))[0]!;
}

/**
 * When the picked error is one branch of an anyOf ("must be an integer" out of integer-or-string-or-list),
 * the whole union says better what was expected, unless the value has the type of a structural branch
 * (a mapping with an unknown key in it): then that branch's own error is the useful one.
 */
function unionAround(errors: ErrorObject[], picked: ErrorObject): ErrorObject | undefined {
  const union = errors.find(
    (e) =>
      (e.keyword === 'anyOf' || e.keyword === 'oneOf') &&
      e.instancePath === picked.instancePath &&
      picked.schemaPath.startsWith(`${e.schemaPath}/`),
  );
  if (!union || !Array.isArray(union.schema)) return undefined;
  const branches = union.schema as SchemaWords[];
  const structuralMatch = branches.some((branch, i) => {
    const types = Array.isArray(branch.type)
      ? (branch.type as string[])
      : typeof branch.type === 'string'
        ? [branch.type]
        : [];
    const typeFailed = errors.some(
      (e) => e.instancePath === union.instancePath && e.schemaPath === `${union.schemaPath}/${i}/type`,
    );
    return !typeFailed && (types.includes('object') || types.includes('array'));
  });
  return structuralMatch ? undefined : union;
}

/** What a failed validation says: where (a YAML path) and in words. */
export interface DescribedError {
  path: YamlPath;
  message: string;
  which: 'key' | 'value';
}

/** Turns a validation's errors into the one to report; a caller with better words for its schema passes its own. */
export type DescribeErrors = (errors: ErrorObject[], root: unknown, what: string, prefix: YamlPath) => DescribedError;

/** The most relevant of a validation's errors, described (see describeAjvError). */
export function describeAjvErrors(
  errors: ErrorObject[],
  root: unknown,
  what: string,
  prefix: YamlPath = [],
): { path: YamlPath; message: string; which: 'key' | 'value' } {
  const picked = pickError(errors);
  const union = unionAround(errors, picked);
  if (union) {
    const path = [...prefix, ...instancePathToYamlPath(union.instancePath)];
    const actual = valueAt(root, instancePathToYamlPath(union.instancePath));
    return {
      path,
      which: 'value',
      message: `${nameOf(path, what)} must be ${describeSchema(union.schema === undefined ? undefined : { anyOf: union.schema })}, got ${describeValue(actual)}`,
    };
  }
  return describeAjvError(picked, root, what, prefix);
}

export function describeAjvError(
  err: ErrorObject,
  root: unknown,
  what: string,
  prefix: YamlPath = [],
): { path: YamlPath; message: string; which: 'key' | 'value' } {
  const path = [...prefix, ...instancePathToYamlPath(err.instancePath)];
  const actual = valueAt(root, instancePathToYamlPath(err.instancePath));
  const subject = nameOf(path, what);
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String((err.params as { additionalProperty: string }).additionalProperty);
      const parentSchema = err.parentSchema as { properties?: Record<string, unknown> } | undefined;
      const allowed = parentSchema?.properties ? Object.keys(parentSchema.properties) : [];
      const near = nearest(key, allowed);
      const didYouMean = near.length ? `did you mean ${near.map((n) => `"${n}"`).join(' or ')}? ` : '';
      const hint = allowed.length ? ` (${didYouMean}expected one of: ${allowed.join(', ')})` : '';
      const container = path.some((p) => typeof p === 'string') ? subject : what;
      return { path: [...path, key], which: 'key', message: `unknown key "${key}" in ${container}${hint}` };
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
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues
        .map((v) => JSON.stringify(v))
        .join(', ');
      return { path, which: 'value', message: `${subject} must be one of ${allowed}, got ${describeValue(actual)}` };
    }
    case 'minLength':
      return {
        path,
        which: 'value',
        message:
          (err.params as { limit: number }).limit === 1
            ? `${subject} must not be empty`
            : `${subject} must be at least ${(err.params as { limit: number }).limit} characters long, got ${describeValue(actual)}`,
      };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'minItems':
    case 'maxItems':
      return {
        path,
        which: 'value',
        message: `${subject} ${err.message ?? 'is out of range'}, got ${describeValue(actual)}`,
      };
    case 'pattern':
      return {
        path,
        which: 'value',
        message: `${subject} must match ${(err.params as { pattern: string }).pattern}, got ${describeValue(actual)}`,
      };
    default:
      return {
        path,
        which: 'value',
        message: `${subject} ${err.message ?? 'is invalid'}${actual !== undefined ? `, got ${describeValue(actual)}` : ''}`,
      };
  }
}

function article(type: string): string {
  if (type === 'array') return 'a list';
  if (type === 'object') return 'a mapping';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/**
 * Validate `value` (which sits at `prefix` inside `loaded`) against `schema` with the one ajv instance above;
 * throw one clear error at file:line:col for the most relevant failure, in the words of `describe`.
 */
export function validateAt(
  loaded: LoadedYaml,
  schema: object,
  what: string,
  value: unknown = loaded.value,
  prefix: YamlPath = [],
  describe: DescribeErrors = describeAjvErrors,
): void {
  const validate = compileSchema(schema);
  if (validate(value)) return;
  const { path, message, which } = describe(validate.errors ?? [], value, what, prefix);
  // "playbook: playbook must be a list" says the subject twice.
  throw errorAt(loaded, path, message.startsWith(`${what} `) ? message : `${what}: ${message}`, which) as CairnError;
}
