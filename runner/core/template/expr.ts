/**
 * cairn's one expression evaluator: Ansible's `{{ }}` language (Jinja2 expressions plus `{% if/for/set %}`)
 * for YAML values (task arguments, variables, inventories, -e) and for `when`, `changed_when`,
 * `failed_when`, `until` and `assert: that`. Public API (see docs in runner/template/README.md):
 *
 *   parseExpression(text, origin?)        -> syntax tree, or a CairnError at origin naming the column
 *   evaluate(text, vars, origin?)         -> the value of one expression
 *   evaluateCondition / evaluateAll       -> Ansible truthiness (one rule: [] and {} are false)
 *   renderValue(value, vars, origin)      -> strings/lists/mappings with `{{ }}` rendered; a whole-string
 *                                            `{{ x }}` keeps its native type
 *   renderTemplateString(text, vars, origin) -> text
 *   checkSyntax(value, origin)            -> parses every template in a value without evaluating it
 *
 * The tree (jinja-syntax.ts) holds literals, names and operators only; evaluation reads variables through
 * `lookupKey` (own data only: `constructor`, `__proto__` are simply undefined) and calls nothing but the
 * filter and test table (filters.ts), the method table below and the lookups below. No eval, no Function.
 * Undefined variables behave as Ansible's: `x is defined` is false, `x | default(3)` is 3, any other use is
 * an error naming the variable and what its level held.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError, caretSnippet, formatLocation, inputError, type SourceLocation } from '../util/errors.js';
import { searchCandidates, type SearchPath } from '../util/search-path.js';
import { isPlainObject, type Vars } from '../util/vars.js';
import {
  UndefinedVariableError,
  ValueTypeError,
  compareValues,
  containsValue,
  deepEqual,
  describeAvailable,
  describeValue,
  editDistance,
  isTruthy,
  lookupKey,
  numberRange,
} from './helpers.js';
import {
  ExpressionFault,
  FILTERS,
  TESTS,
  UndefinedValue,
  defined,
  pythonString,
  type FilterEnvironment,
} from './filters.js';
import { RegexError } from './regex.js';
import {
  hasTemplateMarkup,
  padNewlines,
  trailingNewlines,
  parseExpressionAt,
  parseTemplate,
  SyntaxFault,
  type Expr,
  type TemplateNode,
} from './jinja-syntax.js';

export { MAX_NESTING } from './jinja-syntax.js';
export type { Expr, TemplateNode } from './jinja-syntax.js';

/** Most text one template may produce; past it rendering stops with an error (a runaway loop). */
export const MAX_OUTPUT_CHARS = 16 * 1024 * 1024;
/** Most loop iterations one render may run (1e8 iterations would hold the controller for minutes). */
export const MAX_LOOP_ITERATIONS = 1_000_000;

// ---------------------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------------------

/** A fault with the offset of the part of the expression that failed. */
class PlacedFault extends Error {
  constructor(
    readonly fault: ExpressionFault,
    readonly pos: number,
  ) {
    super(fault.message);
  }
}

interface RenderBudget {
  output: number;
  iterations: number;
}

/** Names visible while evaluating: `{% set %}`/loop locals over the variables. */
class Scope {
  private readonly frames: Array<Map<string, unknown>> = [new Map()];

  constructor(
    readonly vars: Vars,
    readonly budget: RenderBudget = { output: 0, iterations: 0 },
  ) {}

  push(): void {
    this.frames.push(new Map());
  }

  pop(): void {
    this.frames.pop();
  }

  set(name: string, value: unknown): void {
    this.frames[this.frames.length - 1]!.set(name, value);
  }

  resolve(name: string): unknown {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const frame = this.frames[i]!;
      if (frame.has(name)) return frame.get(name);
    }
    return readKey(this.vars, name, name, '');
  }
}

/** `container[key]` through lookupKey; a miss is an UndefinedValue naming the path. */
function readKey(container: unknown, key: string, path: string, base: string): unknown {
  if (container instanceof UndefinedValue) return container.extend(path);
  let found;
  try {
    found = lookupKey(container, key);
  } catch (err) {
    // Variables holding templates render when read; one whose template meets an undefined variable is
    // itself undefined, as in Ansible.
    if (!(err instanceof UndefinedVariableError)) throw err;
    return new UndefinedValue(
      path,
      path,
      `its template failed: ${err.location ? `${formatLocation(err.location)}: ` : ''}${err.message}`,
    );
  }
  if (found.found) return found.value;
  if (container === null || typeof container !== 'object')
    return new UndefinedValue(path, path, `"${base}" is ${describeValue(container)}`);
  return new UndefinedValue(path, path, describeAvailable(container, key));
}

function pathOf(node: Expr): string {
  switch (node.kind) {
    case 'name':
      return node.name;
    case 'attr':
      return `${pathOf(node.object)}.${node.name}`;
    case 'index':
      return `${pathOf(node.object)}[${node.key.kind === 'literal' ? JSON.stringify(node.key.value) : pathOf(node.key)}]`;
    case 'literal':
      return JSON.stringify(node.value);
    default:
      return '(…)';
  }
}

/** Where an expression starts in the source (the leftmost token), for "the failing part". */
function startOf(node: Expr): number {
  switch (node.kind) {
    case 'attr':
    case 'index':
    case 'slice':
      return Math.min(node.pos, startOf(node.object));
    case 'filter':
    case 'test':
      return startOf(node.operand);
    case 'and':
    case 'or':
    case 'binary':
      return startOf(node.left);
    case 'compare':
      return startOf(node.first);
    case 'cond':
      return startOf(node.then);
    case 'call':
      return startOf(node.callee);
    default:
      return node.pos;
  }
}

/** "; did you mean ..." for a mistyped name, else where the list of names is documented. */
function suggest(name: string, known: string[]): string {
  const close = known
    .filter((candidate) => editDistance(name, candidate) <= Math.max(1, Math.floor(name.length / 4)))
    .slice(0, 3);
  if (close.length) return `; did you mean ${close.map((c) => `"${c}"`).join(' or ')}?`;
  return ` (cairn knows ${known.length}; see runner/core/template/README.md)`;
}

/** Every filter, test and function named in a tree exists: unknown ones fail at parse (--syntax-check). */
function validate(node: Expr, depth = 0): void {
  const fail = (message: string, pos: number) => {
    throw new SyntaxFault(message, pos);
  };
  const children: Expr[] = [];
  switch (node.kind) {
    case 'filter':
      if (!Object.prototype.hasOwnProperty.call(FILTERS, node.name)) {
        fail(`unknown filter "${node.name}"${suggest(node.name, Object.keys(FILTERS))}`, node.pos);
      }
      children.push(node.operand, ...node.args, ...node.kwargs.map(([, v]) => v));
      break;
    case 'test':
      if (!Object.prototype.hasOwnProperty.call(TESTS, node.name))
        fail(
          `unknown test "${node.name}"${suggest(
            node.name,
            Object.keys(TESTS).filter((t) => /^[a-z]/.test(t)),
          )}`,
          node.pos,
        );
      children.push(node.operand, ...node.args, ...node.kwargs.map(([, v]) => v));
      break;
    case 'call':
      if (node.callee.kind === 'name' && !Object.prototype.hasOwnProperty.call(GLOBALS, node.callee.name)) {
        const name = node.callee.name;
        const hint = Object.prototype.hasOwnProperty.call(FILTERS, name)
          ? ` ("${name}" is a filter: write value | ${name}(...))`
          : Object.prototype.hasOwnProperty.call(TESTS, name)
            ? ` ("${name}" is a test: write value is ${name}(...))`
            : '';
        fail(
          `"${name}(...)": unknown function${hint} (functions: ${Object.keys(GLOBALS).join(', ')})`,
          node.callee.pos,
        );
      }
      if (node.callee.kind === 'attr') {
        const known = [STRING_METHODS, LIST_METHODS, MAPPING_METHODS].some((table) =>
          Object.prototype.hasOwnProperty.call(table, (node.callee as { name: string }).name),
        );
        if (!known) fail(`unknown method ".${node.callee.name}()"`, node.callee.pos);
        children.push(node.callee.object);
      } else if (node.callee.kind !== 'name') {
        fail('calling a value is not supported: only functions, methods, filters and tests take arguments', node.pos);
      }
      children.push(...node.args, ...node.kwargs.map(([, v]) => v));
      break;
    case 'attr':
      children.push(node.object);
      break;
    case 'index':
      children.push(node.object, node.key);
      break;
    case 'slice':
      children.push(node.object, ...[node.start, node.stop, node.step].filter((p): p is Expr => p !== undefined));
      break;
    case 'list':
    case 'tuple':
      children.push(...node.items);
      break;
    case 'dict':
      for (const [k, v] of node.entries) children.push(k, v);
      break;
    case 'not':
    case 'neg':
      children.push(node.operand);
      break;
    case 'and':
    case 'or':
    case 'binary':
      children.push(node.left, node.right);
      break;
    case 'compare':
      children.push(node.first, ...node.rest.map((r) => r.operand));
      break;
    case 'cond':
      children.push(node.test, node.then, ...(node.otherwise ? [node.otherwise] : []));
      break;
    default:
      break;
  }
  for (const child of children) validate(child, depth + 1);
}

function validateTemplate(nodes: TemplateNode[]): void {
  for (const node of nodes) {
    if (node.kind === 'output') validate(node.expr);
    else if (node.kind === 'set') validate(node.value);
    else if (node.kind === 'if') {
      for (const branch of node.branches) {
        validate(branch.test);
        validateTemplate(branch.body);
      }
      if (node.otherwise) validateTemplate(node.otherwise);
    } else if (node.kind === 'for') {
      validate(node.iterable);
      if (node.filter) validate(node.filter);
      validateTemplate(node.body);
      if (node.otherwise) validateTemplate(node.otherwise);
    }
  }
}

function asNumber(value: unknown, op: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  const hint =
    typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))
      ? ' (convert the text with | int)'
      : '';
  throw new ExpressionFault(`"${op}" needs numbers, got ${describeValue(value)}${hint}`);
}

function binary(op: string, a: unknown, b: unknown): unknown {
  switch (op) {
    case '+':
      if (typeof a === 'string' && typeof b === 'string') return a + b;
      if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
      if ((typeof a === 'number' || typeof a === 'boolean') && (typeof b === 'number' || typeof b === 'boolean'))
        return asNumber(a, '+') + asNumber(b, '+');
      throw new ExpressionFault(`cannot add ${describeValue(a)} and ${describeValue(b)} (use ~ to join as text)`);
    case '-':
      return asNumber(a, '-') - asNumber(b, '-');
    case '*':
      if (typeof a === 'string' && typeof b === 'number')
        return a.repeat(Math.max(0, Math.min(b, MAX_OUTPUT_CHARS / Math.max(1, a.length))));
      if (Array.isArray(a) && typeof b === 'number')
        return Array.from({ length: Math.max(0, Math.min(b, 100_000)) }, () => a).flat();
      return asNumber(a, '*') * asNumber(b, '*');
    case '/':
    case '//':
    case '%': {
      if (op === '%' && typeof a === 'string')
        return FILTERS['format']!.run(a, Array.isArray(b) ? b : [b], {}, filterEnvironment);
      const divisor = asNumber(b, op);
      if (divisor === 0) throw new ExpressionFault('division by zero');
      const dividend = asNumber(a, op);
      if (op === '/') return dividend / divisor;
      if (op === '//') return Math.floor(dividend / divisor);
      return ((dividend % divisor) + divisor) % divisor; // Python's %: the sign of the divisor
    }
    case '**':
      return asNumber(a, '**') ** asNumber(b, '**');
    case '~':
      return pythonString(a) + pythonString(b);
    default:
      throw new ExpressionFault(`unknown operator "${op}"`);
  }
}

function compare(op: string, a: unknown, b: unknown): boolean {
  switch (op) {
    case '==':
      return deepEqual(a, b);
    case '!=':
      return !deepEqual(a, b);
    case 'in':
      return containsValue(b, a);
    case 'not in':
      return !containsValue(b, a);
    default: {
      const order = compareValues(a, b);
      return op === '<' ? order < 0 : op === '<=' ? order <= 0 : op === '>' ? order > 0 : order >= 0;
    }
  }
}

/** Python's index/slice rules on lists and text. */
function sliceOf(value: unknown, start: unknown, stop: unknown, step: unknown): unknown {
  if (typeof value !== 'string' && !Array.isArray(value))
    throw new ExpressionFault(`cannot slice ${describeValue(value)}`);
  const items = typeof value === 'string' ? [...value] : value;
  const n = items.length;
  const by = step === undefined || step === null ? 1 : asNumber(step, 'slice');
  if (by === 0) throw new ExpressionFault('slice step cannot be zero');
  const clamp = (v: unknown, fallback: number): number => {
    if (v === undefined || v === null) return fallback;
    let i = Math.trunc(asNumber(v, 'slice'));
    if (i < 0) i += n;
    return by > 0 ? Math.min(Math.max(i, 0), n) : Math.min(Math.max(i, -1), n - 1);
  };
  const from = clamp(start, by > 0 ? 0 : n - 1);
  const to = clamp(stop, by > 0 ? n : -1);
  const out: unknown[] = [];
  for (let i = from; by > 0 ? i < to : i > to; i += by) out.push(items[i]);
  return typeof value === 'string' ? out.join('') : out;
}

function textArg(value: unknown, what: string): string {
  const v = defined(value);
  if (typeof v !== 'string') throw new ExpressionFault(`${what} needs text, got ${describeValue(v)}`);
  return v;
}

type Method = (self: never, args: unknown[], kwargs: Record<string, unknown>) => unknown;

function filterCall(name: string, self: unknown, args: unknown[], kwargs: Record<string, unknown> = {}): unknown {
  return FILTERS[name]!.run(self, args, kwargs, filterEnvironment);
}

/** The string, list and mapping methods Ansible's playbooks call (`x.split('.')`, `d.get('k', 1)`). */
const STRING_METHODS: Record<string, Method> = {
  split: (s: string, [sep, max]) => filterCall('split', s, [sep ?? null, max]),
  rsplit: (s: string, [sep, max]) => {
    if (max === undefined || max === null || sep === undefined || sep === null)
      return filterCall('split', s, [sep ?? null]);
    const parts = s.split(String(sep));
    const keep = Math.max(0, parts.length - Number(max) - 1);
    return parts.length <= Number(max) + 1
      ? parts
      : [parts.slice(0, keep + 1).join(String(sep)), ...parts.slice(keep + 1)];
  },
  splitlines: (s: string) => s.split(/\r\n|\r|\n/).filter((line, i, all) => !(i === all.length - 1 && line === '')),
  startswith: (s: string, [prefix]) =>
    Array.isArray(prefix) ? prefix.some((p) => s.startsWith(String(p))) : s.startsWith(textArg(prefix, 'startswith')),
  endswith: (s: string, [suffix]) =>
    Array.isArray(suffix) ? suffix.some((p) => s.endsWith(String(p))) : s.endsWith(textArg(suffix, 'endswith')),
  find: (s: string, [sub]) => s.indexOf(textArg(sub, 'find')),
  rfind: (s: string, [sub]) => s.lastIndexOf(textArg(sub, 'rfind')),
  index: (s: string, [sub]) => {
    const at = s.indexOf(textArg(sub, 'index'));
    if (at === -1) throw new ExpressionFault(`index: substring ${JSON.stringify(sub)} not found`);
    return at;
  },
  count: (s: string, [sub]) => (textArg(sub, 'count') === '' ? s.length + 1 : s.split(String(sub)).length - 1),
  strip: (s: string, [chars]) => filterCall('trim', s, [chars]),
  lstrip: (s: string, [chars]) =>
    chars === undefined || chars === null
      ? s.trimStart()
      : s.replace(new RegExp(`^[${String(chars).replace(/[\]\\^-]/g, '\\$&')}]+`), ''),
  rstrip: (s: string, [chars]) =>
    chars === undefined || chars === null
      ? s.trimEnd()
      : s.replace(new RegExp(`[${String(chars).replace(/[\]\\^-]/g, '\\$&')}]+$`), ''),
  replace: (s: string, [from, to, max]) => filterCall('replace', s, [from, to, max]),
  lower: (s: string) => s.toLowerCase(),
  upper: (s: string) => s.toUpperCase(),
  capitalize: (s: string) => filterCall('capitalize', s, []),
  title: (s: string) => filterCall('title', s, []),
  join: (s: string, [items]) =>
    Array.isArray(items)
      ? items.map((item) => textArg(item, 'join')).join(s)
      : textArg(items, 'join').split('').join(s),
  format: (s: string, args, kwargs) => braceFormat(s, args, kwargs),
  isdigit: (s: string) => /^[0-9]+$/.test(s),
  isalpha: (s: string) => /^[A-Za-z]+$/.test(s),
  isalnum: (s: string) => /^[A-Za-z0-9]+$/.test(s),
  isspace: (s: string) => /^\s+$/.test(s),
  islower: (s: string) => /[a-z]/.test(s) && s === s.toLowerCase(),
  isupper: (s: string) => /[A-Z]/.test(s) && s === s.toUpperCase(),
  zfill: (s: string, [width]) =>
    s.startsWith('-') ? `-${s.slice(1).padStart(Number(width) - 1, '0')}` : s.padStart(Number(width), '0'),
  ljust: (s: string, [width, fill]) => s.padEnd(Number(width), fill === undefined ? ' ' : String(fill)),
  rjust: (s: string, [width, fill]) => s.padStart(Number(width), fill === undefined ? ' ' : String(fill)),
  center: (s: string, [width]) => filterCall('center', s, [width]),
};

const LIST_METHODS: Record<string, Method> = {
  index: (l: unknown[], [item]) => {
    const at = l.findIndex((x) => deepEqual(x, item));
    if (at === -1) throw new ExpressionFault(`index: ${pythonString(item)} is not in the list`);
    return at;
  },
  count: (l: unknown[], [item]) => l.filter((x) => deepEqual(x, item)).length,
};

const MAPPING_METHODS: Record<string, Method> = {
  keys: (d: Record<string, unknown>) => Object.keys(d),
  values: (d: Record<string, unknown>) =>
    Object.keys(d).map((key) => (lookupKey(d, key).found ? (d as Record<string, unknown>)[key] : null)),
  items: (d: Record<string, unknown>) => Object.keys(d).map((key) => [key, d[key]]),
  get: (d: Record<string, unknown>, [key, fallback]) => {
    const found = lookupKey(d, pythonString(key));
    return found.found ? found.value : fallback === undefined ? null : fallback;
  },
  copy: (d: Record<string, unknown>) => ({ ...d }),
};

/** Python's str.format for `{}`, `{0}`, `{name}` fields. */
function braceFormat(format: string, args: unknown[], kwargs: Record<string, unknown>): string {
  let auto = 0;
  return format.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (all, field: string | undefined) => {
    if (all === '{{') return '{';
    if (all === '}}') return '}';
    const name = (field ?? '').split(/[:!]/)[0]!;
    if (name === '') return pythonString(args[auto++]);
    if (/^[0-9]+$/.test(name)) return pythonString(args[Number(name)]);
    if (!Object.prototype.hasOwnProperty.call(kwargs, name))
      throw new ExpressionFault(`format: no value for "{${name}}"`);
    return pythonString(kwargs[name]);
  });
}

function methodsFor(value: unknown): Record<string, Method> | undefined {
  if (typeof value === 'string') return STRING_METHODS;
  if (Array.isArray(value)) return LIST_METHODS;
  if (isPlainObject(value) && !(value instanceof UndefinedValue)) return MAPPING_METHODS;
  return undefined;
}

/** What a filter running `map`/`select` calls back into. */
const filterEnvironment: FilterEnvironment = {
  filter: (name, value, args, kwargs) => applyFilter(name, value, args, kwargs),
  test: (name, value, args, kwargs) => applyTest(name, value, args, kwargs, false),
};

function applyFilter(name: string, value: unknown, args: unknown[], kwargs: Record<string, unknown>): unknown {
  const spec = Object.prototype.hasOwnProperty.call(FILTERS, name) ? FILTERS[name] : undefined;
  if (!spec) throw new ExpressionFault(`unknown filter "${name}"`);
  if (!spec.acceptsUndefined) defined(value);
  args.forEach(defined);
  try {
    return spec.run(value, args, kwargs, filterEnvironment);
  } catch (err) {
    if (err instanceof ValueTypeError || err instanceof RegexError)
      throw new ExpressionFault(prefixed(name, err.message));
    throw err;
  }
}

/**
 * Call one filter of the table from outside an expression (the Handlebars helpers): type errors become
 * ValueTypeErrors, an undefined input an ExpressionFault, as inside expressions.
 */
export function callFilter(name: string, value: unknown, args: unknown[], kwargs: Record<string, unknown>): unknown {
  try {
    return applyFilter(name, value, args, kwargs);
  } catch (err) {
    if (err instanceof ExpressionFault) throw new ValueTypeError(err.message.replace(new RegExp(`^${name}: `), ''));
    throw err;
  }
}

/** Run one test of the table from outside an expression (the Handlebars `is` helper). */
export function callTest(name: string, value: unknown, args: unknown[], kwargs: Record<string, unknown>): boolean {
  try {
    return applyTest(name, value, args, kwargs, false);
  } catch (err) {
    if (err instanceof ExpressionFault) throw new ValueTypeError(err.message);
    throw err;
  }
}

function applyTest(
  name: string,
  value: unknown,
  args: unknown[],
  kwargs: Record<string, unknown>,
  negate: boolean,
): boolean {
  const spec = Object.prototype.hasOwnProperty.call(TESTS, name) ? TESTS[name] : undefined;
  if (!spec) throw new ExpressionFault(`unknown test "${name}"`);
  if (!spec.acceptsUndefined) defined(value);
  args.forEach(defined);
  try {
    return spec.run(value, args, kwargs) !== negate;
  } catch (err) {
    if (err instanceof ValueTypeError || err instanceof RegexError)
      throw new ExpressionFault(prefixed(name, err.message));
    throw err;
  }
}

function prefixed(name: string, message: string): string {
  return message.startsWith(`${name} `) || message.startsWith(`${name}:`) || message.startsWith(`the "${name}"`)
    ? message
    : `${name}: ${message}`;
}

// ---------------------------------------------------------------------------------------------------------
// Lookups: env, file, template, first_found (never pipe: nothing runs on the controller from a playbook)
// ---------------------------------------------------------------------------------------------------------

/**
 * Where a lookup looks for a relative file (util/search-path.ts): the task's `ansible_search_path` when the
 * engine gave one, else the role's folder or the playbook's (Ansible's LookupBase.find_file_in_search_path and
 * get_basedir), this process's folder when neither is known.
 */
function lookupSearchPath(vars: Vars): SearchPath {
  const text = (key: string): string | undefined => {
    const found = lookupKey(vars, key);
    return found.found && typeof found.value === 'string' ? found.value : undefined;
  };
  const stack = lookupKey(vars, 'ansible_search_path');
  const rolePath = text('role_path');
  const basedir = text('playbook_dir') ?? process.cwd();
  const paths =
    stack.found && Array.isArray(stack.value) && stack.value.every((p) => typeof p === 'string')
      ? (stack.value as string[])
      : [rolePath ?? basedir];
  return { stack: paths, basedir, inRole: rolePath !== undefined };
}

function lookupCandidates(vars: Vars, kind: 'files' | 'templates', path: string): string[] {
  return searchCandidates(lookupSearchPath(vars), kind, path);
}

function findLookupFile(vars: Vars, kind: 'files' | 'templates', path: string): string | undefined {
  return lookupCandidates(vars, kind, path).find((candidate) => existsSync(candidate));
}

function readLookupFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ExpressionFault(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

const LOOKUPS: Record<string, (terms: unknown[], kwargs: Record<string, unknown>, scope: Scope) => unknown[]> = {
  env: (terms, kwargs) =>
    terms.map(
      (term) => process.env[textArg(term, 'lookup env')] ?? (kwargs['default'] === undefined ? '' : kwargs['default']),
    ),
  file: (terms, kwargs, scope) =>
    terms.map((term) => {
      const path = textArg(term, 'lookup file');
      const file = findLookupFile(scope.vars, 'files', path);
      if (!file)
        throw new ExpressionFault(
          `lookup file: "${path}" not found (looked in ${lookupCandidates(scope.vars, 'files', path).join(', ')})`,
        );
      const content = readLookupFile(file);
      return kwargs['rstrip'] === false ? content : content.replace(/\s+$/, '');
    }),
  template: (terms, _kwargs, scope) =>
    terms.map((term) => {
      const path = textArg(term, 'lookup template');
      const file = findLookupFile(scope.vars, 'templates', path);
      if (!file)
        throw new ExpressionFault(
          `lookup template: "${path}" not found (looked in ${lookupCandidates(scope.vars, 'templates', path).join(', ')})`,
        );
      const source = readLookupFile(file);
      return padNewlines(renderNodes(parseOrFault(source), new Scope(scope.vars, scope.budget), source), source);
    }),
  first_found: (terms, kwargs, scope) => {
    const candidates: string[] = [];
    const paths: string[] = [];
    const add = (term: unknown) => {
      if (Array.isArray(term)) term.forEach(add);
      else if (isPlainObject(term)) {
        const files = (term as Record<string, unknown>)['files'];
        const dirs = (term as Record<string, unknown>)['paths'];
        for (const f of Array.isArray(files) ? files : files === undefined ? [] : [files])
          candidates.push(textArg(f, 'first_found files'));
        for (const p of Array.isArray(dirs) ? dirs : dirs === undefined ? [] : [dirs])
          paths.push(textArg(p, 'first_found paths'));
      } else candidates.push(textArg(term, 'first_found'));
    };
    terms.forEach(add);
    // Each file in each path, paths outermost (Ansible's _process_terms); a lookup has no task action to
    // choose its subfolder from, so it searches files/ (first_found.py: `getattr(self, '_subdir', 'files')`).
    const wanted = paths.length ? paths.flatMap((p) => candidates.map((name) => join(p, name))) : candidates;
    for (const option of wanted) {
      const file = findLookupFile(scope.vars, 'files', option);
      if (file) return [file];
    }
    if (isTruthy(kwargs['skip']) || isTruthy(kwargs['errors'] === 'ignore')) return [];
    throw new ExpressionFault(
      `lookup first_found: none of ${candidates.map((c) => JSON.stringify(c)).join(', ')} was found`,
    );
  },
};

function callLookup(kind: 'lookup' | 'query', args: unknown[], kwargs: Record<string, unknown>, scope: Scope): unknown {
  const [nameArg, ...terms] = args;
  const name = textArg(nameArg, kind);
  const plugin = name.replace(/^ansible\.builtin\./, '');
  if (plugin === 'pipe')
    throw new ExpressionFault(
      `lookup "pipe" is not supported: nothing runs on the controller from a playbook (use a task on the host)`,
    );
  if (!Object.prototype.hasOwnProperty.call(LOOKUPS, plugin))
    throw new ExpressionFault(`unknown lookup "${name}" (lookups: ${Object.keys(LOOKUPS).join(', ')})`);
  const results = LOOKUPS[plugin]!(terms.map(defined), kwargs, scope);
  if (kind === 'query' || isTruthy(kwargs['wantlist'])) return results;
  return plugin === 'first_found' ? (results[0] ?? '') : results.map((r) => pythonString(r)).join(',');
}

/** Functions callable by name in expressions. */
const GLOBALS: Record<string, (args: unknown[], kwargs: Record<string, unknown>, scope: Scope) => unknown> = {
  range: (args) => numberRange(args[0], args[1], args[2]),
  lookup: (args, kwargs, scope) => callLookup('lookup', args, kwargs, scope),
  query: (args, kwargs, scope) => callLookup('query', args, kwargs, scope),
  q: (args, kwargs, scope) => callLookup('query', args, kwargs, scope),
  undef: (args) =>
    new UndefinedValue(
      'undef()',
      'undef()',
      args[0] === undefined ? 'undef() is never defined' : pythonString(args[0]),
    ),
  dict: (args, kwargs) => ({
    ...(args[0] === undefined ? {} : (filterCall('dict', defined(args[0]), []) as Record<string, unknown>)),
    ...kwargs,
  }),
};

function evalArgs(
  nodes: Expr[],
  kwargs: Array<[string, Expr]>,
  scope: Scope,
): { args: unknown[]; kwargs: Record<string, unknown> } {
  const named: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [name, node] of kwargs) named[name] = defined(evalNode(node, scope));
  return { args: nodes.map((node) => evalNode(node, scope)), kwargs: named };
}

/** Run `body`, placing a fault raised directly by this node at its position. */
function placed<T>(pos: number, body: () => T): T {
  try {
    return body();
  } catch (err) {
    if (err instanceof ExpressionFault) throw new PlacedFault(err, pos);
    if (err instanceof ValueTypeError || err instanceof RegexError)
      throw new PlacedFault(new ExpressionFault(err.message), pos);
    throw err;
  }
}

function evalNode(node: Expr, scope: Scope): unknown {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'name':
      return scope.resolve(node.name);
    case 'attr': {
      const object = evalNode(node.object, scope);
      const path = pathOf(node);
      if (object instanceof UndefinedValue) return object.extend(path);
      return readKey(object, node.name, path, pathOf(node.object));
    }
    case 'index': {
      const object = evalNode(node.object, scope);
      const key = placed(startOf(node.key), () => defined(evalNode(node.key, scope)));
      const path = `${pathOf(node.object)}[${JSON.stringify(key)}]`;
      if (object instanceof UndefinedValue) return object.extend(path);
      if (typeof key !== 'string' && typeof key !== 'number') {
        // Jinja's getitem fails on a list or mapping key, and the result is undefined.
        return new UndefinedValue(path, path, `a key must be text or a number, got ${describeValue(key)}`);
      }
      if (typeof key === 'number' && (Array.isArray(object) || typeof object === 'string')) {
        const index = key < 0 ? object.length + key : key;
        if (Number.isInteger(index) && index >= 0 && index < object.length) return object[index];
        return new UndefinedValue(
          path,
          path,
          `the ${Array.isArray(object) ? 'list' : 'string'} has ${object.length} items`,
        );
      }
      return readKey(object, String(key), path, pathOf(node.object));
    }
    case 'slice': {
      const object = placed(node.pos, () => defined(evalNode(node.object, scope)));
      const part = (p?: Expr) => (p === undefined ? undefined : defined(evalNode(p, scope)));
      return placed(node.pos, () => sliceOf(object, part(node.start), part(node.stop), part(node.step)));
    }
    case 'list':
    case 'tuple':
      return node.items.map((item) => evalNode(item, scope));
    case 'dict': {
      const out: Record<string, unknown> = {};
      for (const [keyNode, valueNode] of node.entries) {
        const key = placed(keyNode.pos, () => defined(evalNode(keyNode, scope)));
        out[typeof key === 'string' ? key : pythonString(key)] = evalNode(valueNode, scope);
      }
      return out;
    }
    case 'not':
      return !isTruthy(placed(startOf(node.operand), () => defined(evalNode(node.operand, scope))));
    case 'neg': {
      const value = placed(startOf(node.operand), () => defined(evalNode(node.operand, scope)));
      return placed(node.pos, () => (node.sign === '-' ? -asNumber(value, '-') : asNumber(value, '+')));
    }
    case 'and':
    case 'or': {
      const left = placed(startOf(node.left), () => defined(evalNode(node.left, scope)));
      if (isTruthy(left) === (node.kind === 'or')) return left;
      return evalNode(node.right, scope);
    }
    case 'binary': {
      const left = placed(startOf(node.left), () => defined(evalNode(node.left, scope)));
      const right = placed(startOf(node.right), () => defined(evalNode(node.right, scope)));
      return placed(node.pos, () => binary(node.op, left, right));
    }
    case 'compare': {
      let left = placed(startOf(node.first), () => defined(evalNode(node.first, scope)));
      for (const { op, operand } of node.rest) {
        const right = placed(startOf(operand), () => defined(evalNode(operand, scope)));
        if (!placed(startOf(operand), () => compare(op, left, right))) return false;
        left = right;
      }
      return true;
    }
    case 'filter': {
      const value = evalNode(node.operand, scope);
      const { args, kwargs } = evalArgs(node.args, node.kwargs, scope);
      return placed(node.pos, () => applyFilter(node.name, value, args, kwargs));
    }
    case 'test': {
      const value = evalNode(node.operand, scope);
      const { args, kwargs } = evalArgs(node.args, node.kwargs, scope);
      return placed(node.pos, () => applyTest(node.name, value, args, kwargs, node.negate));
    }
    case 'cond': {
      const test = placed(startOf(node.test), () => defined(evalNode(node.test, scope)));
      if (isTruthy(test)) return evalNode(node.then, scope);
      return node.otherwise === undefined
        ? new UndefinedValue(
            'the else branch of an inline if',
            'the else branch of an inline if',
            'the inline if has no else',
          )
        : evalNode(node.otherwise, scope);
    }
    case 'call':
      return evalCall(node as Expr & { kind: 'call' }, scope);
  }
}

function evalCall(node: Expr & { kind: 'call' }, scope: Scope): unknown {
  const { callee } = node;
  if (callee.kind === 'name' && Object.prototype.hasOwnProperty.call(GLOBALS, callee.name)) {
    const { args, kwargs } = evalArgs(node.args, node.kwargs, scope);
    return placed(callee.pos, () =>
      GLOBALS[callee.name]!(callee.name === 'undef' ? args : args.map(defined), kwargs, scope),
    );
  }
  if (callee.kind === 'attr') {
    const self = placed(startOf(callee.object), () => defined(evalNode(callee.object, scope)));
    const methods = methodsFor(self);
    if (methods && Object.prototype.hasOwnProperty.call(methods, callee.name)) {
      const { args, kwargs } = evalArgs(node.args, node.kwargs, scope);
      return placed(callee.pos, () => methods[callee.name]!(self as never, args.map(defined), kwargs));
    }
    // Jinja reads the attribute (undefined) and calling it is an undefined-variable error, as here.
    throw new PlacedFault(
      new ExpressionFault(`${describeValue(self)} has no method "${callee.name}()"`, undefined, true),
      callee.pos,
    );
  }
  const name = callee.kind === 'name' ? callee.name : pathOf(callee);
  const hint = Object.prototype.hasOwnProperty.call(FILTERS, name)
    ? ` ("${name}" is a filter: write value | ${name}(...))`
    : Object.prototype.hasOwnProperty.call(TESTS, name)
      ? ` ("${name}" is a test: write value is ${name}(...))`
      : '';
  throw new PlacedFault(
    new ExpressionFault(`"${name}" cannot be called${hint} (functions: ${Object.keys(GLOBALS).join(', ')})`),
    callee.pos,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------------------

function countIteration(scope: Scope, pos: number): void {
  scope.budget.iterations += 1;
  if (scope.budget.iterations > MAX_LOOP_ITERATIONS) {
    throw new PlacedFault(new ExpressionFault(`more than ${MAX_LOOP_ITERATIONS} loop iterations in one template`), pos);
  }
}

function renderNodes(nodes: TemplateNode[], scope: Scope, source: string): string {
  let out = '';
  const emit = (piece: string, pos: number) => {
    scope.budget.output += piece.length;
    if (scope.budget.output > MAX_OUTPUT_CHARS) {
      throw new PlacedFault(
        new ExpressionFault(`the template's output passed ${MAX_OUTPUT_CHARS / 1024 / 1024} MiB`),
        pos,
      );
    }
    out += piece;
  };
  for (const node of nodes) {
    switch (node.kind) {
      case 'text':
        emit(node.text, node.pos);
        break;
      case 'output': {
        const value = placed(startOf(node.expr), () => defined(evalNode(node.expr, scope)));
        // Ansible's finalize (template/__init__.py _ansible_finalize): a None output prints as nothing.
        emit(value === null || value === undefined ? '' : pythonString(value), node.pos);
        break;
      }
      case 'set': {
        const value = evalNode(node.value, scope);
        if (node.targets.length === 1) scope.set(node.targets[0]!, value);
        else unpack(node.targets, value, node.pos).forEach((v, i) => scope.set(node.targets[i]!, v));
        break;
      }
      case 'if': {
        let done = false;
        for (const branch of node.branches) {
          if (isTruthy(placed(startOf(branch.test), () => defined(evalNode(branch.test, scope))))) {
            emit(renderNodes(branch.body, scope, source), node.pos);
            done = true;
            break;
          }
        }
        if (!done && node.otherwise) emit(renderNodes(node.otherwise, scope, source), node.pos);
        break;
      }
      case 'for': {
        const collection = placed(startOf(node.iterable), () => defined(evalNode(node.iterable, scope)));
        let items: unknown[];
        if (Array.isArray(collection)) items = collection;
        else if (isPlainObject(collection)) items = Object.keys(collection);
        else if (typeof collection === 'string') items = [...collection];
        else
          throw new PlacedFault(
            new ExpressionFault(`cannot loop over ${describeValue(collection)}`),
            node.iterable.pos,
          );
        if (node.filter) {
          const test = node.filter;
          items = items.filter((item) => {
            scope.push();
            try {
              bindTargets(scope, node.targets, item, node.pos);
              return isTruthy(defined(evalNode(test, scope)));
            } finally {
              scope.pop();
            }
          });
        }
        if (items.length === 0 && node.otherwise) {
          emit(renderNodes(node.otherwise, scope, source), node.pos);
          break;
        }
        items.forEach((item, index) => {
          countIteration(scope, node.pos);
          scope.push();
          try {
            bindTargets(scope, node.targets, item, node.pos);
            scope.set('loop', {
              index: index + 1,
              index0: index,
              revindex: items.length - index,
              revindex0: items.length - index - 1,
              first: index === 0,
              last: index === items.length - 1,
              length: items.length,
              previtem:
                index > 0
                  ? items[index - 1]
                  : new UndefinedValue('loop.previtem', 'loop.previtem', 'the first item has none'),
              nextitem:
                index < items.length - 1
                  ? items[index + 1]
                  : new UndefinedValue('loop.nextitem', 'loop.nextitem', 'the last item has none'),
              depth: 1,
              depth0: 0,
            });
            emit(renderNodes(node.body, scope, source), node.pos);
          } finally {
            scope.pop();
          }
        });
        break;
      }
    }
  }
  return out;
}

function unpack(targets: string[], value: unknown, pos: number): unknown[] {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? [...value] : undefined;
  if (!items || items.length !== targets.length) {
    throw new PlacedFault(
      new ExpressionFault(`cannot unpack ${describeValue(value)} into ${targets.length} names (${targets.join(', ')})`),
      pos,
    );
  }
  return items;
}

function bindTargets(scope: Scope, targets: string[], item: unknown, pos: number): void {
  if (targets.length === 1) scope.set(targets[0]!, item);
  else unpack(targets, item, pos).forEach((v, i) => scope.set(targets[i]!, v));
}

// ---------------------------------------------------------------------------------------------------------
// Parsing with caches, and the errors users see
// ---------------------------------------------------------------------------------------------------------

const CACHE_LIMIT = 5000;
const expressionCache = new Map<string, Expr>();
const templateCache = new Map<string, TemplateNode[]>();

function remember<T>(cache: Map<string, T>, key: string, value: T): T {
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
  return value;
}

function parseOrFault(source: string): TemplateNode[] {
  const cached = templateCache.get(source);
  if (cached) return cached;
  try {
    const nodes = parseTemplate(source);
    validateTemplate(nodes);
    return remember(templateCache, source, nodes);
  } catch (err) {
    if (err instanceof SyntaxFault) throw new ExpressionFault(`template syntax error: ${err.message}`);
    throw err;
  }
}

function shorten(text: string): string {
  const oneLine = text.trim().replace(/\s*\n\s*/g, ' ');
  return oneLine.length > 160 ? `${oneLine.slice(0, 159)}…` : oneLine;
}

function lineCol(source: string, pos: number): { line: number; col: number } {
  const before = source.slice(0, pos);
  return { line: before.split('\n').length, col: pos - (before.lastIndexOf('\n') + 1) + 1 };
}

function where(source: string, pos: number): string {
  const { line, col } = lineCol(source, pos);
  return source.includes('\n') ? `line ${line}, col ${col}` : `col ${col}`;
}

function snippet(source: string, pos: number): string | undefined {
  const { line, col } = lineCol(source, pos);
  return caretSnippet(source, line, col) || undefined;
}

/** The part of the source a fault points at: the token there, for "the failing part". */
function partAt(source: string, pos: number): string {
  const match = /^[A-Za-z_][\w.]*|^\S{1,20}/.exec(source.slice(pos));
  return match ? match[0] : '';
}

function syntaxError(
  kind: 'expression' | 'template',
  source: string,
  fault: SyntaxFault,
  origin: SourceLocation | undefined,
): CairnError {
  return inputError(
    `invalid ${kind} "${shorten(source)}": ${fault.message} (at ${where(source, fault.pos)})`,
    origin,
    snippet(source, fault.pos),
  );
}

function evaluationError(
  kind: 'expression' | 'template',
  source: string,
  err: unknown,
  origin: SourceLocation | undefined,
): CairnError {
  if (err instanceof CairnError) return err;
  let fault: ExpressionFault;
  let pos: number | undefined;
  if (err instanceof PlacedFault) {
    fault = err.fault;
    pos = err.pos;
  } else if (err instanceof ExpressionFault) {
    fault = err;
  } else if (err instanceof ValueTypeError || err instanceof RegexError) {
    fault = new ExpressionFault(err.message);
  } else if (err instanceof RangeError) {
    fault = new ExpressionFault(`cannot evaluate: ${err.message}`);
  } else {
    throw err;
  }
  const at = pos === undefined ? '' : ` (at ${where(source, pos)}: "${partAt(source, pos)}")`;
  const message = `${fault.message} in ${kind} "${shorten(source)}"${at}${fault.hint ? ` (${fault.hint})` : ''}`;
  const detail = pos === undefined ? undefined : snippet(source, pos);
  if (fault.undefinedVariable) return new UndefinedVariableError(message, { kind: 'input', location: origin, detail });
  return inputError(message, origin, detail);
}

/** A condition may be written wrapped (`when: "{{ x }}"`): the expression inside, and where it starts. */
function unwrap(expression: string): { body: string; offset: number } {
  const wrapped = /^(\s*\{\{)([\s\S]*?)\}\}\s*$/.exec(expression);
  if (wrapped && !wrapped[2]!.includes('{{') && !wrapped[2]!.includes('}}'))
    return { body: wrapped[2]!, offset: wrapped[1]!.length };
  return { body: expression, offset: 0 };
}

/** Parse an expression (a `when:` condition, or the inside of `{{ }}`); a syntax error is a CairnError. */
export function parseExpression(expression: string, origin?: SourceLocation): Expr {
  const cached = expressionCache.get(expression);
  if (cached) return cached;
  const { offset } = unwrap(expression);
  try {
    const source = offset === 0 ? expression : expression.slice(0, expression.lastIndexOf('}}'));
    const inner = source.indexOf('{{', offset);
    if (inner !== -1)
      throw new SyntaxFault(
        '"{{ }}" cannot appear inside an expression: conditions are expressions already, write the variable bare',
        inner,
      );
    const tree = parseExpressionAt(source, offset).expr;
    validate(tree);
    return remember(expressionCache, expression, tree);
  } catch (err) {
    if (err instanceof SyntaxFault) throw syntaxError('expression', expression, err, origin);
    throw err;
  }
}

/** Parse a template (text with `{{ }}`, `{% %}`, `{# #}`); a syntax error is a CairnError. */
export function parseTemplateText(text: string, origin?: SourceLocation): TemplateNode[] {
  const cached = templateCache.get(text);
  if (cached) return cached;
  try {
    const nodes = parseTemplate(text);
    validateTemplate(nodes);
    return remember(templateCache, text, nodes);
  } catch (err) {
    if (err instanceof SyntaxFault) throw syntaxError('template', text, err, origin);
    throw err;
  }
}

/** Settle a result: an undefined value left in it (also inside a list or mapping) is an error. */
function settle(value: unknown, depth = 0): unknown {
  if (value instanceof UndefinedValue) defined(value);
  if (depth > 100) return value;
  if (Array.isArray(value)) value.forEach((item) => settle(item, depth + 1));
  else if (isPlainObject(value)) Object.values(value).forEach((item) => settle(item, depth + 1));
  return value;
}

/**
 * Evaluate an expression against the variables. A syntax error, an undefined variable used anywhere but
 * under `default`/`is defined`, or a type mismatch is a CairnError at `origin` quoting the expression and
 * the failing part.
 */
export function evaluate(expression: string, vars: Vars, origin?: SourceLocation): unknown {
  if (typeof expression !== 'string')
    throw inputError(`expected an expression (text), got ${describeValue(expression)}`, origin);
  const tree = parseExpression(expression, origin);
  try {
    const value = evalNode(tree, new Scope(vars));
    return placed(startOf(tree), () => settle(value));
  } catch (err) {
    throw evaluationError('expression', expression, err, origin);
  }
}

/** Evaluate a condition; the result's truthiness is Python's (empty list/mapping/string, 0 and None are false). */
export function evaluateCondition(expression: string | boolean, vars: Vars, origin?: SourceLocation): boolean {
  if (typeof expression !== 'string') return isTruthy(expression);
  return isTruthy(evaluate(expression, vars, origin));
}

/** Ansible's truthiness, the one rule for `when`, `assert`, `failed_when`...: exported for modules. */
export { isTruthy };

/** A `when:` list: every condition must hold; evaluation stops at the first false one, as Ansible's. */
export function evaluateAll(conditions: ReadonlyArray<string | boolean>, vars: Vars, origin?: SourceLocation): boolean {
  for (const condition of conditions) {
    if (!evaluateCondition(condition, vars, origin)) return false;
  }
  return true;
}

/** Render a template string to text (Python's str() of each `{{ }}`). */
export function renderTemplateString(text: string, vars: Vars, origin?: SourceLocation): string {
  if (!hasTemplateMarkup(text)) return text;
  const nodes = parseTemplateText(text, origin);
  try {
    return padNewlines(renderNodes(nodes, new Scope(vars), text), text);
  } catch (err) {
    throw evaluationError('template', text, err, origin);
  }
}

/** Where the value at a path below a rendered value is written (a task's arguments know each one's line). */
export type ValueOrigin = SourceLocation | ((path: ReadonlyArray<string | number>) => SourceLocation);

/**
 * Render a YAML value: strings are templates, lists and mappings are walked. A string that is exactly one
 * `{{ expr }}` yields the expression's value itself, so lists, numbers and booleans keep their type. An error
 * names `origin`, or, when `origin` locates each value, the file:line:col of the string that failed.
 */
export function renderValue(value: unknown, vars: Vars, origin?: ValueOrigin): unknown {
  return renderAt(value, vars, origin, []);
}

function renderAt(value: unknown, vars: Vars, at: ValueOrigin | undefined, path: Array<string | number>): unknown {
  const depth = path.length;
  if (typeof value === 'string') {
    if (!hasTemplateMarkup(value)) return value;
    const origin = typeof at === 'function' ? at(path) : at;
    const nodes = parseTemplateText(value, origin);
    // Only a value that is exactly one `{{ expr }}` keeps its type: "{{ x }}\n" is text (the parser dropped
    // its last newline, which padNewlines puts back below, as Ansible does).
    if (nodes.length === 1 && nodes[0]!.kind === 'output' && trailingNewlines(value) === 0) {
      const only = nodes[0];
      try {
        return settle(placed(startOf(only.expr), () => defined(evalNode(only.expr, new Scope(vars)))));
      } catch (err) {
        throw evaluationError('template', value, err, origin);
      }
    }
    try {
      return padNewlines(renderNodes(nodes, new Scope(vars), value), value);
    } catch (err) {
      throw evaluationError('template', value, err, origin);
    }
  }
  if (depth > 100) throw inputError('value nested more than 100 levels deep', typeof at === 'function' ? at([]) : at);
  if (Array.isArray(value)) return value.map((item, i) => renderAt(item, vars, at, [...path, i]));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = renderAt(item, vars, at, [...path, key]);
    return out;
  }
  return value;
}

/** Parse every template in a value (strings, lists, mappings) without evaluating: for --syntax-check. */
export function checkSyntax(value: unknown, origin?: SourceLocation, depth = 0): void {
  if (typeof value === 'string') {
    if (hasTemplateMarkup(value)) parseTemplateText(value, origin);
    return;
  }
  if (depth > 100) return;
  if (Array.isArray(value)) value.forEach((item) => checkSyntax(item, origin, depth + 1));
  else if (isPlainObject(value)) Object.values(value).forEach((item) => checkSyntax(item, origin, depth + 1));
}

/** Names of the filters and tests expressions accept (the one table, filters.ts). */
export const EXPRESSION_FILTERS: readonly string[] = Object.keys(FILTERS);
export const EXPRESSION_TESTS: readonly string[] = Object.keys(TESTS);
export { hasTemplateMarkup };

// ---------------------------------------------------------------------------------------------------------
// Jinja template files (the template module's `.j2` sources)
// ---------------------------------------------------------------------------------------------------------

/** The first line of a template may set these environment options, as Ansible's `#jinja2:` header does. */
const JINJA_HEADER = '#jinja2:';
const HEADER_OPTIONS = {
  trim_blocks: 'trimBlocks',
  lstrip_blocks: 'lstripBlocks',
  keep_trailing_newline: 'keepTrailingNewline',
} as const;

interface JinjaFileSource {
  body: string;
  /** Lines before `body` (1 when a `#jinja2:` header was removed). */
  lineOffset: number;
  options: { trimBlocks: boolean; lstripBlocks: boolean; keepTrailingNewline: boolean };
}

/**
 * Ansible's template defaults (plugins/action/template.py: trim_blocks=True, lstrip_blocks=False; Jinja's
 * keep_trailing_newline=False) and the `#jinja2: key: value, ...` header (template/__init__.py do_template:
 * the first line is removed and each pair set on the environment). Only the three boolean switches are
 * supported; other keys (delimiters, newline_sequence) are refused by name.
 */
function readJinjaHeader(source: string, file: string): JinjaFileSource {
  const normalized = source.replace(/\r\n?/g, '\n');
  const options = { trimBlocks: true, lstripBlocks: false, keepTrailingNewline: false };
  if (!normalized.startsWith(JINJA_HEADER)) return { body: normalized, lineOffset: 0, options };
  const eol = normalized.indexOf('\n');
  const line = eol === -1 ? normalized : normalized.slice(0, eol);
  let col = JINJA_HEADER.length + 1;
  for (const pair of line.slice(JINJA_HEADER.length).split(',')) {
    const colon = pair.indexOf(':');
    const at = { file, line: 1, col: col + (pair.length - pair.trimStart().length) };
    if (colon === -1)
      throw inputError(
        `expected "key: value" in the #jinja2: header, found "${pair.trim()}"`,
        at,
        caretSnippet(line, 1, at.col),
      );
    const key = pair.slice(0, colon).trim();
    const raw = pair.slice(colon + 1).trim();
    const option = (HEADER_OPTIONS as Record<string, keyof typeof options | undefined>)[key];
    if (!option)
      throw inputError(
        `the #jinja2: header option "${key}" is not supported (supported: ${Object.keys(HEADER_OPTIONS).join(', ')})`,
        at,
        caretSnippet(line, 1, at.col),
      );
    if (raw !== 'True' && raw !== 'False')
      throw inputError(`expected True or False for "${key}" in the #jinja2: header, found "${raw}"`, at);
    options[option] = raw === 'True';
    col += pair.length + 1;
  }
  return { body: eol === -1 ? '' : normalized.slice(eol + 1), lineOffset: 1, options };
}

const fileTemplateCache = new Map<string, TemplateNode[]>();

/**
 * Render a Jinja template file as Ansible's template module does, with this module's evaluator and filter
 * table. `source` is the file's text, `file` its path for errors: a syntax error, an unsupported statement
 * (macro, include, ...) or a failing expression is a CairnError at file:line:col with the line quoted.
 */
export function renderJinjaFile(source: string, vars: Vars, file: string): string {
  const { body, lineOffset, options } = readJinjaHeader(source, file);
  const at = (pos: number): { location: SourceLocation; detail?: string } => {
    const { line, col } = lineCol(body, pos);
    return { location: { file, line: line + lineOffset, col }, detail: caretSnippet(body, line, col) || undefined };
  };
  const key = `${options.trimBlocks ? 1 : 0}${options.lstripBlocks ? 1 : 0}${options.keepTrailingNewline ? 1 : 0}${body}`;
  let nodes = fileTemplateCache.get(key);
  if (!nodes) {
    try {
      nodes = parseTemplate(body, options);
      validateTemplate(nodes);
    } catch (err) {
      if (!(err instanceof SyntaxFault)) throw err;
      const { location, detail } = at(err.pos);
      throw inputError(`template syntax error: ${err.message}`, location, detail);
    }
    nodes = remember(fileTemplateCache, key, nodes);
  }
  try {
    // Ansible's preserve_trailing_newlines counts the newlines of the data before the header is removed.
    return padNewlines(renderNodes(nodes, new Scope(vars), body), source.replace(/\r\n?/g, '\n'));
  } catch (err) {
    if (err instanceof CairnError) throw err;
    let fault: ExpressionFault;
    let pos: number | undefined;
    if (err instanceof PlacedFault) [fault, pos] = [err.fault, err.pos];
    else if (err instanceof ExpressionFault) fault = err;
    else if (err instanceof ValueTypeError || err instanceof RegexError) fault = new ExpressionFault(err.message);
    else if (err instanceof RangeError) fault = new ExpressionFault(`cannot evaluate: ${err.message}`);
    else throw err;
    const placedAt = pos === undefined ? { location: { file } } : at(pos);
    const message = `${fault.message}${fault.hint ? ` (${fault.hint})` : ''}`;
    const details = { kind: 'input' as const, location: placedAt.location, detail: placedAt.detail };
    if (fault.undefinedVariable) throw new UndefinedVariableError(message, details);
    throw new CairnError(message, details);
  }
}
