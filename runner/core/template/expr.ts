/**
 * The safe expression evaluator behind `when`, `changed_when`, `failed_when`, `until` and `assert: that`.
 *
 * Users write Jinja-style conditions (`x is defined and x | int > 3`, `'web' in group_names`,
 * `result is failed`). Nothing is ever run through eval/new Function: a small tokenizer here checks the
 * Jinja syntax (so errors name the column and what was expected) and emits a jexl expression in which every
 * literal is a placeholder, every word operator is one cairn registered, and every attribute or index
 * access is a cairn transform. After jexl parses that, its tree is rewritten so each variable read goes
 * through `lookupKey` (own data only: `constructor`, `__proto__` and friends are simply undefined). The
 * evaluator can therefore call nothing but cairn's own operators, filters and tests.
 *
 * Undefined variables behave as in Ansible: `x is defined` is false, `x | default(3)` is 3, and any other
 * use of an undefined value is an error naming the variable and what its level held.
 */
import jexl from 'jexl';
import { CairnError, caretSnippet, formatLocation, inputError, type SourceLocation } from '../util/errors.js';
import type { Vars } from '../util/vars.js';
import {
  UndefinedVariableError,
  ValueTypeError,
  compareValues,
  containsValue,
  deepEqual,
  describeAvailable,
  describeValue,
  isTruthy,
  lengthOf,
  lookupKey,
  prefixed,
  type Lookup,
  pythonRegex,
  regexReplace,
  scalarText,
  typeName,
} from './helpers.js';

// ---------------------------------------------------------------------------------------------------------
// Undefined values and runtime faults
// ---------------------------------------------------------------------------------------------------------

/** What a missing variable evaluates to (as Jinja's Undefined): testable, defaultable, otherwise an error. */
class UndefinedValue {
  constructor(
    /** The path as written up to here: `x.y.z`. */
    readonly path: string,
    /** The first part of the path that was missing: `x.y`. */
    readonly missing: string,
    /** What that level held: "available at this level: a, b", `"x" is null`. */
    readonly explanation: string,
  ) {}

  extend(path: string): UndefinedValue {
    return new UndefinedValue(path, this.missing, this.explanation);
  }

  describe(): string {
    return this.missing === this.path ? `undefined variable "${this.path}"` : `undefined variable "${this.path}": "${this.missing}" is not defined`;
  }
}

/** A failure while evaluating: the message, and a parenthesised hint shown after the expression. */
class ExpressionFault extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'ExpressionFault';
  }
}

/** Records here are keyed by user text: `in` or a bare index would find Object.prototype's members. */
function hasOwn(record: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(record, key);
}

function defined<T>(value: T | UndefinedValue): T {
  if (value instanceof UndefinedValue) throw new ExpressionFault(value.describe(), value.explanation);
  return value;
}

/** Run an operation, turning a wrong-shaped value into a fault that names the operation. */
function guarded<T>(what: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof ValueTypeError) throw new ExpressionFault(prefixed(what, err.message));
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------------------

function asArithmetic(value: unknown, op: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  const hint = typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? ' (convert the text with | int)' : '';
  throw new ExpressionFault(`"${op}" needs numbers, got ${describeValue(value)}${hint}`);
}

function add(a: unknown, b: unknown): unknown {
  if (typeof a === 'string' && typeof b === 'string') return a + b;
  if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  if ((typeof a === 'number' || typeof a === 'boolean') && (typeof b === 'number' || typeof b === 'boolean')) return asArithmetic(a, '+') + asArithmetic(b, '+');
  throw new ExpressionFault(`cannot add ${describeValue(a)} and ${describeValue(b)} (use ~ to join as text)`);
}

function divide(a: unknown, b: unknown, op: string): number {
  const divisor = asArithmetic(b, op);
  if (divisor === 0) throw new ExpressionFault('division by zero');
  const dividend = asArithmetic(a, op);
  if (op === '/') return dividend / divisor;
  if (op === '//') return Math.floor(dividend / divisor);
  return ((dividend % divisor) + divisor) % divisor; // Python's %: the sign of the divisor
}

/** Python's str() for `~` and `| string`. */
function pythonString(value: unknown): string {
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return JSON.stringify(value);
}

type BinaryOperator = (left: unknown, right: unknown) => unknown;

/** Operators with their precedence (higher binds tighter), Python's order: or < and < comparisons < ~ < + < * < ** < is. */
const BINARY_OPERATORS: Record<string, { precedence: number; run: BinaryOperator }> = {
  '==': { precedence: 20, run: (a, b) => deepEqual(a, b) },
  '!=': { precedence: 20, run: (a, b) => !deepEqual(a, b) },
  '<': { precedence: 20, run: (a, b) => guarded('<', () => compareValues(a, b) < 0) },
  '<=': { precedence: 20, run: (a, b) => guarded('<=', () => compareValues(a, b) <= 0) },
  '>': { precedence: 20, run: (a, b) => guarded('>', () => compareValues(a, b) > 0) },
  '>=': { precedence: 20, run: (a, b) => guarded('>=', () => compareValues(a, b) >= 0) },
  in: { precedence: 20, run: (a, b) => guarded('in', () => containsValue(b, a)) },
  '!in': { precedence: 20, run: (a, b) => guarded('not in', () => !containsValue(b, a)) },
  '~': { precedence: 25, run: (a, b) => pythonString(a) + pythonString(b) },
  '+': { precedence: 30, run: add },
  '-': { precedence: 30, run: (a, b) => asArithmetic(a, '-') - asArithmetic(b, '-') },
  '*': { precedence: 40, run: (a, b) => asArithmetic(a, '*') * asArithmetic(b, '*') },
  '/': { precedence: 40, run: (a, b) => divide(a, b, '/') },
  '//': { precedence: 40, run: (a, b) => divide(a, b, '//') },
  '%': { precedence: 40, run: (a, b) => divide(a, b, '%') },
  '**': { precedence: 50, run: (a, b) => asArithmetic(a, '**') ** asArithmetic(b, '**') },
};

// ---------------------------------------------------------------------------------------------------------
// Tests (`x is defined`, `result is failed`, `v is version('12', '>=')`)
// ---------------------------------------------------------------------------------------------------------

interface TestSpec {
  /** Only `defined`/`undefined` look at an undefined value; every other test fails on one. */
  acceptsUndefined?: boolean;
  run(value: unknown, args: unknown[]): boolean;
}

function registeredResult(value: unknown, test: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ExpressionFault(`the "${test}" test needs a registered task result (a mapping), got ${describeValue(value)}`);
  }
  return value as Record<string, unknown>;
}

function resultFlag(value: unknown, test: string, flag: 'failed' | 'changed' | 'skipped'): boolean {
  const found = lookupKey(registeredResult(value, test), flag);
  return found.found && isTruthy(found.value);
}

function regexTest(kind: 'match' | 'search'): TestSpec {
  return {
    run: (value, [pattern, ignorecase, multiline]) => {
      const text = guarded(kind, () => scalarText(value, `the "${kind}" test`));
      const flags = `${isTruthy(ignorecase) ? 'i' : ''}${isTruthy(multiline) ? 'm' : ''}`;
      const regex = guarded(kind, () => pythonRegex(scalarText(pattern, `the "${kind}" pattern`), flags));
      const found = regex.exec(text);
      return found !== null && (kind === 'search' || found.index === 0);
    },
  };
}

/** Loose version order as Ansible's default `version` test: numbers compare as numbers, words as text. */
function compareVersions(a: string, b: string): number {
  const partsA = a.match(/[0-9]+|[A-Za-z]+/g) ?? [];
  const partsB = b.match(/[0-9]+|[A-Za-z]+/g) ?? [];
  for (let i = 0; i < Math.max(partsA.length, partsB.length); i++) {
    const x = partsA[i];
    const y = partsB[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const numeric = /^[0-9]+$/.test(x) && /^[0-9]+$/.test(y);
    const order = numeric ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
    if (order !== 0) return Math.sign(order);
  }
  return 0;
}

const VERSION_OPERATORS: Record<string, (order: number) => boolean> = {
  '<': (o) => o < 0, lt: (o) => o < 0, '<=': (o) => o <= 0, le: (o) => o <= 0,
  '>': (o) => o > 0, gt: (o) => o > 0, '>=': (o) => o >= 0, ge: (o) => o >= 0,
  '==': (o) => o === 0, '=': (o) => o === 0, eq: (o) => o === 0,
  '!=': (o) => o !== 0, '<>': (o) => o !== 0, ne: (o) => o !== 0,
};

const versionTest: TestSpec = {
  run: (value, [other, operator]) => {
    const op = operator === undefined ? 'eq' : String(operator);
    const check = hasOwn(VERSION_OPERATORS, op) ? VERSION_OPERATORS[op] : undefined;
    if (!check) throw new ExpressionFault(`the "version" test: unknown operator "${op}" (use one of ${Object.keys(VERSION_OPERATORS).join(' ')})`);
    return check(compareVersions(pythonString(value), pythonString(other)));
  },
};

const isNumber = (value: unknown): value is number => typeof value === 'number';
const comparisonTest = (check: (order: number) => boolean): TestSpec => ({ run: (value, [other]) => guarded('test', () => check(compareValues(value, other))) });

const TESTS: Record<string, TestSpec> = {
  defined: { acceptsUndefined: true, run: (value) => !(value instanceof UndefinedValue) },
  undefined: { acceptsUndefined: true, run: (value) => value instanceof UndefinedValue },
  none: { run: (value) => value === null },
  failed: { run: (value) => resultFlag(value, 'failed', 'failed') },
  failure: { run: (value) => resultFlag(value, 'failure', 'failed') },
  succeeded: { run: (value) => !resultFlag(value, 'succeeded', 'failed') },
  success: { run: (value) => !resultFlag(value, 'success', 'failed') },
  successful: { run: (value) => !resultFlag(value, 'successful', 'failed') },
  changed: { run: (value) => resultFlag(value, 'changed', 'changed') },
  change: { run: (value) => resultFlag(value, 'change', 'changed') },
  skipped: { run: (value) => resultFlag(value, 'skipped', 'skipped') },
  skip: { run: (value) => resultFlag(value, 'skip', 'skipped') },
  number: { run: (value) => isNumber(value) },
  integer: { run: (value) => isNumber(value) && Number.isInteger(value) },
  float: { run: (value) => isNumber(value) && !Number.isInteger(value) },
  string: { run: (value) => typeof value === 'string' },
  boolean: { run: (value) => typeof value === 'boolean' },
  mapping: { run: (value) => typeName(value) === 'mapping' },
  sequence: { run: (value) => typeof value === 'string' || Array.isArray(value) },
  iterable: { run: (value) => typeof value === 'string' || Array.isArray(value) || typeName(value) === 'mapping' },
  true: { run: (value) => value === true },
  false: { run: (value) => value === false },
  truthy: { run: (value) => isTruthy(value) },
  falsy: { run: (value) => !isTruthy(value) },
  even: { run: (value) => asArithmetic(value, 'even') % 2 === 0 },
  odd: { run: (value) => Math.abs(asArithmetic(value, 'odd') % 2) === 1 },
  divisibleby: { run: (value, [divisor]) => divide(value, divisor, '%') === 0 },
  match: regexTest('match'),
  search: regexTest('search'),
  regex: regexTest('search'),
  version: versionTest,
  version_compare: versionTest,
  in: { run: (value, [container]) => guarded('in', () => containsValue(container, value)) },
  eq: { run: (value, [other]) => deepEqual(value, other) },
  equalto: { run: (value, [other]) => deepEqual(value, other) },
  ne: { run: (value, [other]) => !deepEqual(value, other) },
  lt: comparisonTest((o) => o < 0),
  le: comparisonTest((o) => o <= 0),
  gt: comparisonTest((o) => o > 0),
  ge: comparisonTest((o) => o >= 0),
};

function runTest(value: unknown, spec: unknown, negate: boolean): boolean {
  const [name, ...args] = spec as [string, ...unknown[]];
  const test = TESTS[name]!;
  if (!test.acceptsUndefined) defined(value);
  args.forEach(defined);
  return test.run(value, args) !== negate;
}

// ---------------------------------------------------------------------------------------------------------
// Filters (`x | default(3)`, `| int`, `| bool`, `| length`, `| lower`, `| upper`, `| trim`, `| string`)
// ---------------------------------------------------------------------------------------------------------

interface FilterSpec {
  acceptsUndefined?: boolean;
  run(value: unknown, args: unknown[]): unknown;
}

/** Jinja's int: numbers truncate, numeric text parses, anything else is the fallback (0 by default). */
function jinjaInt(value: unknown, fallback: unknown = 0): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : fallback;
  if (typeof value === 'string') {
    const text = value.trim().replace(/_/g, '');
    if (/^[+-]?[0-9]+$/.test(text)) return Number(text);
    if (text !== '' && !Number.isNaN(Number(text)) && Number.isFinite(Number(text))) return Math.trunc(Number(text));
  }
  return fallback;
}

function jinjaFloat(value: unknown, fallback: unknown = 0): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value.trim()))) return Number(value.trim());
  return fallback;
}

/** Ansible's bool: yes/on/1/true/y/t (any case) and 1 are true; everything else is false. */
function ansibleBool(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value === 1;
  if (typeof value === 'string') return ['yes', 'on', '1', 'true', 'y', 't'].includes(value.trim().toLowerCase());
  return false;
}

function textOf(value: unknown, filter: string): string {
  return guarded(filter, () => scalarText(value, filter));
}

function edge(value: unknown, filter: string, index: 0 | -1): unknown {
  if (typeof value !== 'string' && !Array.isArray(value)) throw new ExpressionFault(`${filter}: needs a list or text, got ${describeValue(value)}`);
  if (value.length === 0) throw new ExpressionFault(`${filter}: the ${typeName(value)} is empty`);
  return index === 0 ? value[0] : value[value.length - 1];
}

const FILTERS: Record<string, FilterSpec> = {
  default: { acceptsUndefined: true, run: (value, [fallback = '', falsy]) => (value instanceof UndefinedValue || (isTruthy(falsy) && !isTruthy(value)) ? fallback : value) },
  d: { acceptsUndefined: true, run: (value, [fallback = '', falsy]) => (value instanceof UndefinedValue || (isTruthy(falsy) && !isTruthy(value)) ? fallback : value) },
  int: { run: (value, [fallback]) => jinjaInt(value, fallback) },
  float: { run: (value, [fallback]) => jinjaFloat(value, fallback) },
  bool: { run: (value) => ansibleBool(value) },
  length: { run: (value) => guarded('length', () => lengthOf(value)) },
  count: { run: (value) => guarded('count', () => lengthOf(value)) },
  lower: { run: (value) => textOf(value, 'lower').toLowerCase() },
  upper: { run: (value) => textOf(value, 'upper').toUpperCase() },
  trim: { run: (value) => textOf(value, 'trim').trim() },
  string: { run: (value) => pythonString(value) },
  first: { run: (value) => edge(value, 'first', 0) },
  last: { run: (value) => edge(value, 'last', -1) },
  join: {
    run: (value, [separator = '']) => {
      if (!Array.isArray(value)) throw new ExpressionFault(`join: needs a list, got ${describeValue(value)}`);
      return value.map(pythonString).join(pythonString(separator));
    },
  },
  abs: { run: (value) => Math.abs(asArithmetic(value, 'abs')) },
  replace: { run: (value, [from, to]) => textOf(value, 'replace').split(textOf(from, 'replace')).join(textOf(to, 'replace')) },
  regex_replace: { run: (value, [pattern, replacement = '']) => guarded('regex_replace', () => regexReplace(scalarText(value, 'regex_replace'), scalarText(pattern, 'regex_replace'), scalarText(replacement, 'regex_replace'))) },
};

/** Names of the filters and tests expressions accept. */
export const EXPRESSION_FILTERS: readonly string[] = Object.keys(FILTERS);
export const EXPRESSION_TESTS: readonly string[] = Object.keys(TESTS);

// ---------------------------------------------------------------------------------------------------------
// Attribute and index access
// ---------------------------------------------------------------------------------------------------------

/** `container.key` / `container[key]`, through `lookupKey`; a miss is an UndefinedValue naming the path. */
function access(container: unknown, key: unknown, base: string, bracket: boolean): unknown {
  const keyValue = defined(key);
  if (typeof keyValue !== 'string' && typeof keyValue !== 'number') {
    throw new ExpressionFault(`${base || 'a value'}[…]: a key must be text or a number, got ${describeValue(keyValue)}`);
  }
  const path = bracket ? `${base}[${JSON.stringify(keyValue)}]` : base ? `${base}.${keyValue}` : String(keyValue);
  if (container instanceof UndefinedValue) return container.extend(path);

  let keyText = String(keyValue);
  if (typeof keyValue === 'number' && Number.isInteger(keyValue) && keyValue < 0 && (Array.isArray(container) || typeof container === 'string')) {
    keyText = String(container.length + keyValue); // Python's negative index
  }
  if (typeof container === 'string' && /^(0|[1-9][0-9]*)$/.test(keyText)) {
    const index = Number(keyText);
    if (index < container.length) return container[index];
  }
  let found: Lookup;
  try {
    found = lookupKey(container, keyText);
  } catch (err) {
    // The engine renders variables that hold templates when they are read; one whose template meets an
    // undefined variable is itself undefined, as in Ansible.
    if (!(err instanceof UndefinedVariableError)) throw err;
    return new UndefinedValue(path, path, `its template failed: ${err.location ? `${formatLocation(err.location)}: ` : ''}${err.message}`);
  }
  if (found.found) return found.value;
  if (container === null || typeof container !== 'object') {
    return new UndefinedValue(path, path, `"${base}" is ${describeValue(container)}`);
  }
  return new UndefinedValue(path, path, describeAvailable(container, keyText));
}

// ---------------------------------------------------------------------------------------------------------
// The jexl engine
// ---------------------------------------------------------------------------------------------------------

interface LazyOperand {
  eval(): PromiseLike<unknown>;
}

/** jexl's addBinaryOp takes a 4th `manualEval` flag (jexl 2.3, documented) that @types/jexl omits. */
interface ManualBinaryOps {
  addBinaryOp(operator: string, precedence: number, fn: (left: LazyOperand, right: LazyOperand) => PromiseLike<unknown>, manualEval: true): void;
}

/**
 * jexl's synchronous Promise.all re-creates an error thrown inside an operand as `Error(String(error))`,
 * losing its class and shape. Every way into cairn code from jexl goes through `capture`, which keeps the
 * first error thrown; `evaluate` reports that one.
 */
let firstFailure: { error: unknown } | undefined;

function capture<A extends unknown[], R>(run: (...args: A) => R): (...args: A) => R {
  return (...args: A): R => {
    try {
      return run(...args);
    } catch (error) {
      firstFailure ??= { error };
      throw error;
    }
  };
}

/** Read through a function: the compiler cannot see that evaluation assigns `firstFailure`. */
function recordedFailure(): { error: unknown } | undefined {
  return firstFailure;
}

const engine = new jexl.Jexl();
/** jexl's syntax tree (the type @types/jexl declares for `Expression._getAst`). */
type Ast = ReturnType<ReturnType<typeof engine.compile>['_getAst']>;
for (const unused of ['&&', '||', '!', '^']) engine.removeOp(unused);
for (const [operator, { precedence, run }] of Object.entries(BINARY_OPERATORS)) {
  engine.addBinaryOp(operator, precedence, capture((left: unknown, right: unknown) => run(defined(left), defined(right))));
}
// `and`/`or` evaluate the right side only when needed, so `x is defined and x > 1` never touches an undefined x.
const truthyOperand = capture((value: unknown) => isTruthy(defined(value)));
(engine as unknown as ManualBinaryOps).addBinaryOp('or', 10, (left, right) => left.eval().then((value) => (truthyOperand(value) ? value : right.eval())), true);
(engine as unknown as ManualBinaryOps).addBinaryOp('and', 11, (left, right) => left.eval().then((value) => (truthyOperand(value) ? right.eval() : value)), true);
engine.addBinaryOp('is', 60, capture((value: unknown, spec: unknown) => runTest(value, spec, false)));
engine.addBinaryOp('!is', 60, capture((value: unknown, spec: unknown) => runTest(value, spec, true)));
engine.addUnaryOp('not', capture((value: unknown) => !isTruthy(defined(value))));
engine.addTransform('$attr', capture((container: unknown, key: unknown, base: unknown) => access(container, key, String(base), false)));
engine.addTransform('$idx', capture((container: unknown, key: unknown, base: unknown) => access(container, key, String(base), true)));
for (const [name, spec] of Object.entries(FILTERS)) {
  engine.addTransform(
    name,
    capture((value: unknown, ...args: unknown[]) => {
      if (!spec.acceptsUndefined) defined(value);
      args.forEach(defined);
      return spec.run(value, args);
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Tokenizer and translation to jexl
// ---------------------------------------------------------------------------------------------------------

interface Token {
  kind: 'name' | 'string' | 'number' | 'op' | 'end';
  text: string;
  value?: unknown;
  /** Offset in the expression. */
  pos: number;
}

/** A syntax error at an offset of the expression. */
class SyntaxFault extends Error {
  constructor(message: string, readonly pos: number) {
    super(message);
    this.name = 'SyntaxFault';
  }
}

const OPERATOR_TOKENS = ['==', '!=', '<=', '>=', '//', '**', '<', '>', '+', '-', '*', '/', '%', '~', '|', '.', ',', '(', ')', '[', ']', '{', '}', ':'];
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is', 'if', 'else', 'True', 'False', 'None', 'true', 'false', 'none', 'null']);
const LITERAL_WORDS = new Map<string, unknown>([['True', true], ['true', true], ['False', false], ['false', false], ['None', null], ['none', null], ['null', null]]);
const STRING_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', '\\': '\\', "'": "'", '"': '"' };

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (/\s/.test(ch)) {
      i += 1;
      continue;
    }
    const raw = (ch === 'r' || ch === 'R') && (src[i + 1] === "'" || src[i + 1] === '"');
    if (ch === "'" || ch === '"' || raw) {
      const start = i;
      const quoteChar = raw ? src[i + 1]! : ch;
      i += raw ? 2 : 1;
      let value = '';
      for (;;) {
        if (i >= src.length) throw new SyntaxFault('unterminated string (no closing quote)', start);
        const c = src[i]!;
        if (c === quoteChar) break;
        if (c === '\\' && i + 1 < src.length) {
          const next = src[i + 1]!;
          value += raw ? `\\${next}` : hasOwn(STRING_ESCAPES, next) ? STRING_ESCAPES[next] : `\\${next}`;
          i += 2;
          continue;
        }
        value += c;
        i += 1;
      }
      i += 1;
      tokens.push({ kind: 'string', text: src.slice(start, i), value, pos: start });
      continue;
    }
    if (/[0-9]/.test(ch)) {
      // After a dot only an integer index (`x.0.1` is two indexes), elsewhere a Python number.
      const afterDot = tokens[tokens.length - 1]?.text === '.';
      const match = (afterDot ? /^[0-9]+/ : /^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/).exec(src.slice(i))!;
      if (/^[A-Za-z_]/.test(src.slice(i + match[0].length))) throw new SyntaxFault(`invalid number "${src.slice(i).match(/^[0-9A-Za-z_.]+/)![0]}"`, i);
      tokens.push({ kind: 'number', text: match[0], value: Number(match[0]), pos: i });
      i += match[0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(ch)) {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      if (src[i + match[0].length] === '$') throw new SyntaxFault('"$" cannot appear in a name', i + match[0].length);
      tokens.push({ kind: 'name', text: match[0], pos: i });
      i += match[0].length;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '&&') throw new SyntaxFault('use "and" instead of "&&"', i);
    if (two === '||') throw new SyntaxFault('use "or" instead of "||"', i);
    const op = OPERATOR_TOKENS.find((candidate) => src.startsWith(candidate, i));
    if (op) {
      tokens.push({ kind: 'op', text: op, pos: i });
      i += op.length;
      continue;
    }
    const hints: Record<string, string> = {
      '!': 'use "not" instead of "!"',
      '=': 'use "==" to compare ("=" assigns nothing here)',
      '&': 'use "and" instead of "&"',
      '?': 'the "?:" operator does not exist here; use "and"/"or"',
      $: '"$" cannot appear in an expression',
    };
    throw new SyntaxFault(hasOwn(hints, ch) ? hints[ch]! : `unexpected character "${ch}"`, i);
  }
  tokens.push({ kind: 'end', text: '', pos: src.length });
  return tokens;
}

interface Frame {
  kind: 'group' | 'tuple' | 'list' | 'index' | 'args';
  /** Index in the output of the opening piece (a group becomes a list when a comma shows it is a tuple). */
  openIndex: number;
  /** What closes it in the user's text, and what cairn emits for that. */
  closer: ')' | ']';
  emit: string;
  pos: number;
}

interface Translation {
  text: string;
  /** Values of the `$lN` placeholders. */
  literals: unknown[];
  /** Variable names of the `$nN` placeholders. */
  names: string[];
}

function show(token: Token): string {
  return token.kind === 'end' ? 'the end' : `"${token.text}"`;
}

/**
 * Check the Jinja syntax and write the jexl equivalent. `not` is parenthesised up to the next `and`/`or`
 * at its level (Python's `not a == b` is `not (a == b)`; jexl's unary operators would bind tighter), as
 * `( not ( … ) )`.
 */
function translate(src: string): Translation {
  const tokens = tokenize(src);
  const out: string[] = [];
  const literals: unknown[] = [];
  const names: string[] = [];
  const frames: Frame[] = [];
  /** The frame depth of each open `not (`. */
  const nots: number[] = [];
  let expectOperand = true;

  const literal = (value: unknown) => {
    literals.push(value);
    out.push(`$l${literals.length - 1}`);
  };
  const closeNots = () => {
    while (nots.length > 0 && nots[nots.length - 1] === frames.length) {
      nots.pop();
      out.push(')', ')');
    }
  };
  const open = (kind: Frame['kind'], opener: string, closer: ')' | ']', emit: string, pos: number) => {
    frames.push({ kind, openIndex: out.length, closer, emit, pos });
    out.push(opener);
  };
  const close = (token: Token) => {
    const frame = frames[frames.length - 1];
    if (!frame || frame.closer !== token.text) {
      throw new SyntaxFault(frame ? `expected "${frame.closer}" to close the "${frame.closer === ')' ? '(' : '['}" at col ${frame.pos + 1}, found ${show(token)}` : `unexpected ${show(token)} (nothing to close)`, token.pos);
    }
    closeNots();
    frames.pop();
    if (out[out.length - 1] === ',') out.pop(); // a trailing comma, as Python allows
    out.push(frame.emit);
  };

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const next = tokens[i + 1];

    if (expectOperand) {
      if (token.kind === 'string' || token.kind === 'number') {
        literal(token.value);
        expectOperand = false;
      } else if (token.kind === 'name' && LITERAL_WORDS.has(token.text)) {
        literal(LITERAL_WORDS.get(token.text));
        expectOperand = false;
      } else if (token.kind === 'name' && token.text === 'not') {
        // The outer group matters: jexl would otherwise take a following `or` into not's operand.
        out.push('(', 'not', '(');
        nots.push(frames.length);
      } else if (token.kind === 'name' && KEYWORDS.has(token.text)) {
        throw new SyntaxFault(`expected a value, found "${token.text}"`, token.pos);
      } else if (token.kind === 'name') {
        if (next?.text === '(') throw new SyntaxFault(functionCallHint(token.text), token.pos);
        // Names reach jexl as placeholders too: its lexer looks tokens up in a plain object, so a bare
        // `constructor` or `__proto__` would be taken for one of its operators.
        names.push(token.text);
        out.push(`$n${names.length - 1}`);
        expectOperand = false;
      } else if (token.text === '(' || token.text === '[') {
        if (next?.text === (token.text === '(' ? ')' : ']')) {
          out.push('[', ']'); // () is an empty tuple, [] an empty list: both lists here
          i += 1;
          expectOperand = false;
        } else if (token.text === '(') {
          open('group', '(', ')', ')', token.pos);
        } else {
          open('list', '[', ']', ']', token.pos);
        }
      } else if ((token.text === '-' || token.text === '+') && next?.kind === 'number') {
        literal(token.text === '-' ? -(next.value as number) : (next.value as number));
        i += 1;
        expectOperand = false;
      } else if (token.text === '-' || token.text === '+') {
        throw new SyntaxFault(`a sign ("${token.text}") can only stand before a number here; write 0 - x`, token.pos);
      } else if (token.text === '{') {
        throw new SyntaxFault('mappings ({...}) are not supported in expressions', token.pos);
      } else if ((token.text === ')' || token.text === ']') && out[out.length - 1] === ',') {
        close(token);
        expectOperand = false;
      } else {
        const after = out.length > 0 ? `after "${lastWritten(tokens, i)}"` : 'at the start';
        throw new SyntaxFault(token.kind === 'end' ? (out.length === 0 ? 'the expression is empty' : `expected a value ${after}, found the end`) : `expected a value ${after}, found ${show(token)}`, token.pos);
      }
      continue;
    }

    // An operand has been read: an operator, a postfix (. [ |), a closer, a comma or the end may follow.
    if (token.kind === 'op' && hasOwn(BINARY_OPERATORS, token.text)) {
      out.push(token.text);
      expectOperand = true;
    } else if (token.kind === 'name' && (token.text === 'and' || token.text === 'or')) {
      closeNots();
      out.push(token.text);
      expectOperand = true;
    } else if (token.kind === 'name' && token.text === 'in') {
      out.push('in');
      expectOperand = true;
    } else if (token.kind === 'name' && token.text === 'not') {
      if (next?.text !== 'in') throw new SyntaxFault(`expected "in" after "not" here, found ${next ? show(next) : 'the end'}`, token.pos);
      out.push('!in');
      i += 1;
      expectOperand = true;
    } else if (token.kind === 'name' && token.text === 'is') {
      i = translateTest(tokens, i, out, literal, open);
      expectOperand = out[out.length - 1] === ',';
    } else if (token.text === '.') {
      if (next?.kind === 'name') {
        if (tokens[i + 2]?.text === '(') throw new SyntaxFault(`method calls (.${next.text}(...)) are not supported; use a filter or a test instead`, next.pos);
      } else if (next?.kind !== 'number') {
        throw new SyntaxFault(`expected a name after ".", found ${next ? show(next) : 'the end'}`, next?.pos ?? token.pos);
      }
      out.push(next.kind === 'name' ? '|$attr(' : '|$idx(');
      literal(next.kind === 'name' ? next.text : next.value);
      out.push(')');
      i += 1;
    } else if (token.text === '[') {
      if (next?.text === ']' || next?.text === ':') throw new SyntaxFault(next.text === ':' ? 'slices ([a:b]) are not supported' : 'expected an index inside "[]"', next.pos);
      open('index', '|$idx(', ']', ')', token.pos);
      expectOperand = true;
    } else if (token.text === '|') {
      if (next?.kind !== 'name') throw new SyntaxFault(`expected a filter name after "|", found ${next ? show(next) : 'the end'}`, next?.pos ?? token.pos);
      if (!hasOwn(FILTERS, next.text)) {
        throw new SyntaxFault(`unknown filter "${next.text}" (filters: ${EXPRESSION_FILTERS.join(', ')})`, next.pos);
      }
      out.push('|', next.text);
      i += 1;
      if (tokens[i + 1]?.text === '(') {
        i += 1;
        if (tokens[i + 1]?.text === ')') {
          i += 1;
        } else {
          open('args', '(', ')', ')', tokens[i]!.pos);
          expectOperand = true;
        }
      }
    } else if (token.text === ',') {
      const frame = frames[frames.length - 1];
      if (!frame || frame.kind === 'index') throw new SyntaxFault('unexpected ","', token.pos);
      closeNots();
      if (frame.kind === 'group') {
        // `('a', 'b')` is a tuple: a list here, so `x in ('a', 'b')` works.
        frame.kind = 'tuple';
        frame.emit = ']';
        out[frame.openIndex] = '[';
      }
      out.push(',');
      expectOperand = true;
    } else if (token.text === ')' || token.text === ']') {
      close(token);
    } else if (token.kind === 'end') {
      const frame = frames[frames.length - 1];
      if (frame) throw new SyntaxFault(`"${frame.closer === ')' ? '(' : '['}" at col ${frame.pos + 1} is never closed`, token.pos);
      closeNots();
    } else if (token.text === ':') {
      throw new SyntaxFault('unexpected ":" (slices and mappings are not supported)', token.pos);
    } else if (token.kind === 'name' && (token.text === 'if' || token.text === 'else')) {
      throw new SyntaxFault('inline if (a if c else b) is not supported; use "c and a or b"', token.pos);
    } else if (token.text === '(') {
      throw new SyntaxFault('only filters take arguments; calling a value is not supported', token.pos);
    } else {
      throw new SyntaxFault(`expected an operator or the end after "${lastWritten(tokens, i)}", found ${show(token)}`, token.pos);
    }
  }
  return { text: out.join(' '), literals, names };
}

/** `is [not] NAME [(args)]`: emits `is [ "NAME", args... ]`; returns the index of the last token used. */
function translateTest(
  tokens: Token[],
  at: number,
  out: string[],
  literal: (value: unknown) => void,
  open: (kind: Frame['kind'], opener: string, closer: ')' | ']', emit: string, pos: number) => void,
): number {
  let i = at + 1;
  const negate = tokens[i]?.kind === 'name' && tokens[i]!.text === 'not';
  if (negate) i += 1;
  const nameToken = tokens[i]!;
  if (nameToken.kind !== 'name') throw new SyntaxFault(`expected a test name after "is${negate ? ' not' : ''}", found ${show(nameToken)}`, nameToken.pos);
  const name = LITERAL_WORDS.has(nameToken.text) ? String(LITERAL_WORDS.get(nameToken.text)).replace('null', 'none') : nameToken.text;
  if (!hasOwn(TESTS, name)) {
    throw new SyntaxFault(`unknown test "${nameToken.text}" (tests: ${EXPRESSION_TESTS.join(', ')})`, nameToken.pos);
  }
  out.push(negate ? '!is' : 'is', '[');
  literal(name);
  if (tokens[i + 1]?.text === '(') {
    if (tokens[i + 2]?.text === ')') {
      out.push(']');
      return i + 2;
    }
    open('args', ',', ')', ']', tokens[i + 1]!.pos);
    return i + 1;
  }
  out.push(']');
  return i;
}

function lastWritten(tokens: Token[], index: number): string {
  return tokens[index - 1]?.text ?? '';
}

function functionCallHint(name: string): string {
  if (hasOwn(FILTERS, name)) return `"${name}" is a filter: write value | ${name}(...)`;
  if (hasOwn(TESTS, name)) return `"${name}" is a test: write value is ${name}(...)`;
  if (name === 'lookup' || name === 'query' || name === 'q') return `lookups ("${name}(...)") are not supported in expressions`;
  return `"${name}(...)": expressions have no function calls; use filters (value | filter) and tests (value is test)`;
}

// ---------------------------------------------------------------------------------------------------------
// Compiling: jexl's tree rewritten so every lookup is cairn's
// ---------------------------------------------------------------------------------------------------------

interface CompiledExpression {
  /** The jexl expression whose tree has been rewritten; evaluated with `{ $root: vars }`. */
  evaluate(vars: Vars): unknown;
}

const ROOT = '$root';
const CACHE_LIMIT = 5000;
const compiledCache = new Map<string, CompiledExpression>();

type Placeholders = Pick<Translation, 'literals' | 'names'>;

/** Text of an access path for messages (`x.y[0]`), from jexl's tree before the rewrite. */
function pathText(node: Ast, placeholders: Placeholders): string {
  if (node.type === 'Identifier') {
    const name = /^\$n([0-9]+)$/.exec(node.value);
    if (name) return placeholders.names[Number(name[1])]!;
    return JSON.stringify(literalOf(node, placeholders));
  }
  if (node.type === 'FunctionCall' && node.pool === 'transforms' && node.args.length >= 1) {
    const base = pathText(node.args[0]!, placeholders);
    if (node.name === '$attr') return `${base}.${String(literalOf(node.args[1]!, placeholders))}`;
    if (node.name === '$idx') return `${base}[${pathText(node.args[1]!, placeholders)}]`;
    return `(${base} | ${node.name})`;
  }
  return '(…)';
}

function literalOf(node: Ast, placeholders: Placeholders): unknown {
  const placeholder = node.type === 'Identifier' ? /^\$l([0-9]+)$/.exec(node.value) : null;
  return placeholder ? placeholders.literals[Number(placeholder[1])] : undefined;
}

/** The rewritten tree: `$lN` become literals, `$nN` become `$root | $attr(name)`; nothing else is a name. */
function rewrite(node: Ast, placeholders: Placeholders): Ast {
  switch (node.type) {
    case 'Identifier': {
      if (node.from || node.relative) throw new Error(`internal: unexpected jexl traversal of "${node.value}"`);
      const literal = /^\$l([0-9]+)$/.exec(node.value);
      if (literal) return { type: 'Literal', value: placeholders.literals[Number(literal[1])] as string };
      const name = /^\$n([0-9]+)$/.exec(node.value);
      if (!name) throw new Error(`internal: unexpected jexl identifier "${node.value}"`);
      return {
        type: 'FunctionCall',
        pool: 'transforms',
        name: '$attr',
        args: [{ type: 'Identifier', value: ROOT }, { type: 'Literal', value: placeholders.names[Number(name[1])]! }, { type: 'Literal', value: '' }],
      };
    }
    case 'FunctionCall': {
      if (node.pool !== 'transforms') throw new Error(`internal: unexpected jexl function call "${node.name}"`);
      const args = node.args.map((arg) => rewrite(arg, placeholders));
      if (node.name === '$attr' || node.name === '$idx') args.push({ type: 'Literal', value: pathText(node.args[0]!, placeholders) });
      return { type: 'FunctionCall', pool: 'transforms', name: node.name, args };
    }
    case 'BinaryExpression':
      return { type: 'BinaryExpression', operator: node.operator, left: rewrite(node.left, placeholders), right: rewrite(node.right, placeholders) };
    case 'UnaryExpression':
      return { type: 'UnaryExpression', operator: node.operator, right: rewrite(node.right, placeholders) };
    case 'ArrayLiteral':
      return { type: 'ArrayLiteral', value: node.value.map((item) => rewrite(item, placeholders)) };
    case 'Literal':
      return node;
    default:
      throw new Error(`internal: unexpected jexl node ${node.type}`);
  }
}

function compile(source: string): CompiledExpression {
  const cached = compiledCache.get(source);
  if (cached) return cached;
  const translation = translate(source);
  let expression: ReturnType<typeof engine.createExpression>;
  try {
    expression = engine.compile(translation.text);
  } catch (err) {
    // The translation is checked token by token, so jexl refusing it is a construct cairn let through.
    throw new SyntaxFault(`cannot parse (${err instanceof Error ? err.message.replace(/ in expression: .*$/s, '').replace(/\$l[0-9]+/g, 'a literal') : String(err)})`, 0);
  }
  const tree = expression._getAst();
  const rewritten = rewrite(tree, translation);
  // jexl keeps the tree it evaluates on the Expression; replace its contents in place.
  for (const key of Object.keys(tree)) delete (tree as unknown as Record<string, unknown>)[key];
  Object.assign(tree, rewritten);
  const compiled: CompiledExpression = {
    evaluate(vars) {
      const context = Object.create(null) as Record<string, unknown>;
      context[ROOT] = vars;
      return expression.evalSync(context);
    },
  };
  if (compiledCache.size >= CACHE_LIMIT) compiledCache.clear();
  compiledCache.set(source, compiled);
  return compiled;
}

// ---------------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------------

/** The expression without a `{{ }}` wrapper (people write `when: "{{ x }}"`), and where it starts. */
function unwrap(expression: string): { body: string; offset: number } {
  const wrapped = /^(\s*\{\{)([\s\S]*?)\}\}\s*$/.exec(expression);
  if (wrapped && !wrapped[2]!.includes('{{') && !wrapped[2]!.includes('}}')) return { body: wrapped[2]!, offset: wrapped[1]!.length };
  const inner = expression.indexOf('{{');
  if (inner !== -1) throw new SyntaxFault('"{{ }}" cannot appear inside an expression: conditions are expressions already, write the variable bare', inner);
  return { body: expression, offset: 0 };
}

function shorten(text: string): string {
  const oneLine = text.trim().replace(/\s*\n\s*/g, ' ');
  return oneLine.length > 160 ? `${oneLine.slice(0, 159)}…` : oneLine;
}

function syntaxError(expression: string, fault: SyntaxFault, origin: SourceLocation | undefined): CairnError {
  const before = expression.slice(0, fault.pos);
  const line = before.split('\n').length;
  const col = fault.pos - (before.lastIndexOf('\n') + 1) + 1;
  const where = expression.includes('\n') ? `line ${line}, col ${col}` : `col ${col}`;
  return inputError(`invalid expression "${shorten(expression)}": ${fault.message} (at ${where})`, origin, caretSnippet(expression, line, col) || undefined);
}

function compileOrThrow(expression: string, origin: SourceLocation | undefined): CompiledExpression {
  try {
    const { body, offset } = unwrap(expression);
    try {
      return compile(body);
    } catch (err) {
      if (err instanceof SyntaxFault) throw new SyntaxFault(err.message, err.pos + offset);
      throw err;
    }
  } catch (err) {
    if (err instanceof SyntaxFault) throw syntaxError(expression, err, origin);
    throw err;
  }
}

/** Fail on an undefined value left in the result (also inside a list literal). */
function settle(value: unknown): unknown {
  if (value instanceof UndefinedValue) defined(value);
  if (Array.isArray(value)) value.forEach(settle);
  return value;
}

/**
 * Evaluate an expression against the variables. A syntax error, an undefined variable used anywhere but
 * under `default`/`is defined`, or a type mismatch is a CairnError at `origin` quoting the expression.
 */
export function evaluate(expression: string, vars: Vars, origin?: SourceLocation): unknown {
  if (typeof expression !== 'string') throw inputError(`expected an expression (text), got ${describeValue(expression)}`, origin);
  const compiled = compileOrThrow(expression, origin);
  const outer = firstFailure;
  firstFailure = undefined;
  try {
    return settle(compiled.evaluate(vars));
  } catch (thrown) {
    const err = recordedFailure()?.error ?? thrown;
    // A variable whose own template failed while being read (the engine renders them lazily) already
    // names its own place.
    if (err instanceof CairnError) throw err;
    if (err instanceof ExpressionFault) {
      return failWith(`${err.message} in expression "${shorten(expression)}"${err.hint ? ` (${err.hint})` : ''}`, origin);
    }
    const message = err instanceof Error ? err.message : String(err);
    return failWith(`cannot evaluate expression "${shorten(expression)}": ${message}`, origin);
  } finally {
    firstFailure = outer;
  }
}

function failWith(message: string, origin: SourceLocation | undefined): never {
  throw inputError(message, origin);
}

/** Evaluate a condition; the result's truthiness is Python's (empty list/string, 0 and null are false). */
export function evaluateCondition(expression: string | boolean, vars: Vars, origin?: SourceLocation): boolean {
  if (typeof expression !== 'string') return isTruthy(expression);
  return isTruthy(evaluate(expression, vars, origin));
}

/** A `when:` list: every condition must hold; evaluation stops at the first false one, as Ansible's. */
export function evaluateAll(conditions: ReadonlyArray<string | boolean>, vars: Vars, origin?: SourceLocation): boolean {
  for (const condition of conditions) {
    if (!evaluateCondition(condition, vars, origin)) return false;
  }
  return true;
}
