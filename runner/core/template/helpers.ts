/**
 * Value semantics shared by the two template languages (Handlebars files and `when:`-style expressions),
 * and the helpers registered into cairn's Handlebars environment.
 *
 * The semantics follow Python/Jinja where Ansible users would expect them: truthiness (an empty list or
 * mapping is false), equality (deep, no string/number coercion) and ordering (only like with like).
 */
import { isIP } from 'node:net';
import { stringify as yamlStringify } from 'yaml';
import { CairnError } from '../util/errors.js';

// ---------------------------------------------------------------------------------------------------------
// Value semantics
// ---------------------------------------------------------------------------------------------------------

/** A value of the wrong shape for an operation ("cannot compare a string with a number"). */
export class ValueTypeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValueTypeError';
  }
}

/**
 * An undefined variable met while rendering. The expression evaluator treats a variable whose own template
 * fails this way as undefined (`x is defined` is false, `x | default(…)` applies), as Ansible does.
 */
export class UndefinedVariableError extends CairnError {}

export type Lookup = { found: true; value: unknown } | { found: false };

/** Prototypes whose members are never variables: `{{ constructor }}` or `x.__proto__` must not reach them. */
const BUILTIN_PROTOTYPES: ReadonlySet<unknown> = new Set<unknown>([
  Object.prototype,
  Array.prototype,
  Function.prototype,
  String.prototype,
  Number.prototype,
  Boolean.prototype,
]);

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Look `key` up in a mapping or list the way a template variable is looked up: own data only (a scope
 * built with a prototype chain of plain objects is walked, the built-in prototypes never are), list
 * indexes as decimal strings, and a function or an `undefined` value counts as missing (vars are data).
 */
export function lookupKey(container: unknown, key: string): Lookup {
  if (Array.isArray(container)) {
    if (!/^(0|[1-9][0-9]*)$/.test(key)) return { found: false };
    const index = Number(key);
    if (index >= container.length) return { found: false };
    return found(container[index]);
  }
  if (!isMapping(container)) return { found: false };
  let level: object | null = container;
  while (level !== null && !BUILTIN_PROTOTYPES.has(level)) {
    if (Object.prototype.hasOwnProperty.call(level, key)) return found((level as Record<string, unknown>)[key]);
    level = Object.getPrototypeOf(level) as object | null;
  }
  return { found: false };
}

function found(value: unknown): Lookup {
  if (value === undefined || typeof value === 'function') return { found: false };
  return { found: true, value };
}

/**
 * Every name `lookupKey` would find in a mapping, own keys first, then those of its plain-object scopes.
 * Values are judged by their property descriptors, never read: the engine's variables render lazily on
 * read, and listing names for an error message must not render (or fail on) every variable of a level.
 */
export function availableKeys(container: unknown): string[] {
  if (Array.isArray(container)) return container.map((_, i) => String(i));
  if (!isMapping(container)) return [];
  const names = new Set<string>();
  let level: object | null = container;
  while (level !== null && !BUILTIN_PROTOTYPES.has(level)) {
    for (const key of Object.keys(level)) {
      const descriptor = Object.getOwnPropertyDescriptor(level, key);
      if (
        descriptor &&
        !('value' in descriptor && (descriptor.value === undefined || typeof descriptor.value === 'function'))
      )
        names.add(key);
    }
    level = Object.getPrototypeOf(level) as object | null;
  }
  return [...names];
}

/** The kind of a value in the words an error message uses. */
export function typeName(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'mapping';
  return typeof value;
}

/** A short description of a value for error messages: `a string ("abc")`, `a list of 3 items`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return `a string (${JSON.stringify(shown)})`;
  }
  if (typeof value === 'number') return `a number (${value})`;
  if (typeof value === 'boolean') return `a boolean (${value})`;
  if (Array.isArray(value)) return value.length === 1 ? 'a list of 1 item' : `a list of ${value.length} items`;
  if (isMapping(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0) return 'an empty mapping';
    const shown = keys.slice(0, 5).join(', ');
    return `a mapping (keys: ${shown}${keys.length > 5 ? ', …' : ''})`;
  }
  return typeof value;
}

/** Truthiness as Python's: null, false, 0, "", [] and {} are false. */
export function isTruthy(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  if (typeof value === 'string') return value.length > 0;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

/** Python's bool is a number too: `true == 1` holds, as it does in Jinja. */
function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return undefined;
}

/** Deep equality as Python's `==`: no coercion between strings and numbers, lists and mappings by content. */
export function deepEqual(a: unknown, b: unknown): boolean {
  const na = asNumber(a);
  const nb = asNumber(b);
  if (na !== undefined || nb !== undefined) return na !== undefined && nb !== undefined && na === nb;
  if (a === null || b === null || a === undefined || b === undefined) return a === b;
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isMapping(a) && isMapping(b)) {
    const keysA = Object.keys(a);
    if (keysA.length !== Object.keys(b).length) return false;
    return keysA.every((key) => Object.prototype.hasOwnProperty.call(b, key) && deepEqual(a[key], b[key]));
  }
  return a === b;
}

/**
 * Ordering as Python's: numbers with numbers, strings with strings, lists element by element; anything
 * else is a ValueTypeError (Ansible fails on `'10' < 9` too), with a hint when a number sits in a string.
 */
export function compareValues(a: unknown, b: unknown): number {
  const na = asNumber(a);
  const nb = asNumber(b);
  if (na !== undefined && nb !== undefined) return na < nb ? -1 : na > nb ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const order = compareValues(a[i], b[i]);
      if (order !== 0) return order;
    }
    return a.length - b.length;
  }
  const numericString = (v: unknown) => typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v));
  const hint =
    (na !== undefined && numericString(b)) || (nb !== undefined && numericString(a))
      ? ' (convert the text to a number first)'
      : '';
  throw new ValueTypeError(`cannot compare ${describeValue(a)} with ${describeValue(b)}${hint}`);
}

/** Python's `in`: list membership, substring, or mapping key. */
export function containsValue(container: unknown, item: unknown): boolean {
  if (Array.isArray(container)) return container.some((element) => deepEqual(element, item));
  if (typeof container === 'string') {
    if (typeof item !== 'string')
      throw new ValueTypeError(`"in <string>" needs a string on the left, got ${describeValue(item)}`);
    return container.includes(item);
  }
  if (isMapping(container)) return typeof item === 'string' && lookupKey(container, item).found;
  throw new ValueTypeError(`"in" needs a list, string or mapping on the right, got ${describeValue(container)}`);
}

/** The length of a list, string or mapping. */
export function lengthOf(value: unknown): number {
  if (typeof value === 'string' || Array.isArray(value)) return value.length;
  if (isMapping(value)) return Object.keys(value).length;
  throw new ValueTypeError(`length needs a list, string or mapping, got ${describeValue(value)}`);
}

/** Text for a scalar (string, number, boolean); lists, mappings and null are refused as not text. */
export function scalarText(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new ValueTypeError(`${what} needs text, got ${describeValue(value)}`);
}

/** Edit distance, for "did you mean" suggestions; small inputs only. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

const LIST_ALL_UP_TO = 15;

/**
 * What a failed lookup could have found, for the error message: every name when there are few, otherwise
 * the names close to the missing one (the root of a play's variables holds hundreds of facts).
 */
export function describeAvailable(container: unknown, missing: string): string {
  if (container === null || container === undefined) return `the value there is ${typeName(container)}`;
  if (Array.isArray(container)) return `it is a list of ${container.length} items; index it with a number`;
  if (!isMapping(container)) return `the value there is ${describeValue(container)}, not a mapping`;
  const names = availableKeys(container);
  if (names.length === 0) return 'nothing is defined at this level';
  if (names.length <= LIST_ALL_UP_TO) return `available at this level: ${names.join(', ')}`;
  const lower = missing.toLowerCase();
  const close = names
    .map((name) => ({ name, distance: editDistance(lower, name.toLowerCase()) }))
    .filter(
      ({ name, distance }) =>
        distance <= Math.max(2, Math.floor(missing.length / 4)) ||
        name.toLowerCase().includes(lower) ||
        (lower.length > 3 && lower.includes(name.toLowerCase())),
    )
    .sort((x, y) => x.distance - y.distance)
    .slice(0, 5)
    .map(({ name }) => name);
  if (close.length === 0) return `${names.length} names at this level, none like "${missing}"`;
  return `available at this level, among ${names.length}: ${close.join(', ')}, …`;
}

/** A whole number from a number or a decimal string; anything else is a ValueTypeError. */
export function strictInt(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string' && /^\s*[+-]?[0-9]+(\.[0-9]*)?\s*$/.test(value)) return Math.trunc(Number(value));
  throw new ValueTypeError(`expected a whole number, got ${describeValue(value)}`);
}

/** The address of "10.0.0.5/24" (IPv4 or IPv6, prefix optional); anything else is a ValueTypeError. */
export function cidrAddress(value: unknown): string {
  const text = scalarText(value, 'cidr_address').trim();
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const prefix = slash === -1 ? undefined : text.slice(slash + 1);
  const family = isIP(address);
  const maxPrefix = family === 4 ? 32 : 128;
  if (family === 0 || (prefix !== undefined && (!/^[0-9]{1,3}$/.test(prefix) || Number(prefix) > maxPrefix))) {
    throw new ValueTypeError(`expected an IP address with an optional /prefix, got ${describeValue(value)}`);
  }
  return address;
}

/** Python's `range`: [start, stop) by step; the length is capped so a typo cannot exhaust memory. */
export function numberRange(first: unknown, second?: unknown, third?: unknown): number[] {
  const start = second === undefined ? 0 : strictInt(first);
  const stop = second === undefined ? strictInt(first) : strictInt(second);
  const step = third === undefined ? 1 : strictInt(third);
  if (step === 0) throw new ValueTypeError('range step must not be zero');
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (count > 100_000) throw new ValueTypeError(`range of ${count} numbers is too long (at most 100000)`);
  return Array.from({ length: count }, (_, i) => start + i * step);
}

// ---------------------------------------------------------------------------------------------------------
// Handlebars helpers
// ---------------------------------------------------------------------------------------------------------

export interface TemplatePosition {
  /** 1-based. */
  line: number;
  /** 0-based, as Handlebars reports it. */
  column: number;
}

/**
 * A failure raised while rendering, before it knows which file it is in: an undefined variable (with the
 * path as written, and what was available when the helper knew it) or a helper refusing its arguments.
 * handlebars.ts adds the file and turns it into a CairnError.
 */
export class TemplateFault extends Error {
  constructor(
    message: string,
    readonly kind: 'undefined' | 'helper',
    readonly position: TemplatePosition | undefined,
    readonly variable?: string,
    readonly available?: string,
  ) {
    super(message);
    this.name = 'TemplateFault';
  }
}

/** What Handlebars passes a helper as its last argument (with `trackIds`, the parameter paths too). */
export interface HelperCallOptions {
  name?: string;
  hash?: Record<string, unknown>;
  ids?: Array<string | boolean | undefined>;
  hashIds?: Record<string, string | boolean | undefined>;
  loc?: { start: TemplatePosition; end: TemplatePosition };
  fn?: (context: unknown, options?: unknown) => string;
  inverse?: (context: unknown, options?: unknown) => string;
  data?: unknown;
}

type HelperFunction = (this: unknown, ...args: unknown[]) => unknown;

/** The part of a Handlebars environment the helpers need. */
export interface HelperEnvironment {
  helpers: Record<string, unknown>;
  registerHelper(name: string, fn: HelperFunction): void;
}

interface HelperSpec {
  /** Arguments may be undefined (missing variables): only `default` and `defined`. */
  acceptsUndefined?: boolean;
  /** Positional arguments required (default 1): `{{length}}` alone is a mistake, not "length of nothing". */
  minArgs?: number;
  run(args: unknown[], hash: Record<string, unknown>): unknown;
}

function text(value: unknown, what: string): string {
  return scalarText(value, what);
}

function mapping(value: unknown, what: string): Record<string, unknown> {
  if (!isMapping(value)) throw new ValueTypeError(`${what} needs a mapping, got ${describeValue(value)}`);
  return value;
}

/** Name -> helper. Each line says what the helper does; all refuse an undefined argument except two. */
const HELPERS: Record<string, HelperSpec> = {
  // add A B: A + B as numbers (converted Jinja templates use it for loop.index).
  add: { minArgs: 2, run: ([a, b]) => Number(a) + Number(b) },
  // defined VALUE: true when VALUE is defined (null counts as defined, as in Jinja).
  defined: { acceptsUndefined: true, run: ([value]) => value !== undefined },
  // json VALUE [INDENT]: VALUE as JSON, pretty-printed when INDENT is given.
  json: { run: ([value, indent]) => JSON.stringify(value, null, indent === undefined ? undefined : strictInt(indent)) },
  // yaml VALUE: VALUE as a YAML document, without the final newline.
  yaml: { run: ([value]) => yamlStringify(value).replace(/\n$/, '') },
  // eq A B: A equals B (deep, no string/number coercion).
  eq: { minArgs: 2, run: ([a, b]) => deepEqual(a, b) },
  // ne A B: A differs from B.
  ne: { minArgs: 2, run: ([a, b]) => !deepEqual(a, b) },
  // lt A B: A < B (numbers with numbers, strings with strings).
  lt: { minArgs: 2, run: ([a, b]) => compareValues(a, b) < 0 },
  // le A B: A <= B.
  le: { minArgs: 2, run: ([a, b]) => compareValues(a, b) <= 0 },
  // gt A B: A > B.
  gt: { minArgs: 2, run: ([a, b]) => compareValues(a, b) > 0 },
  // ge A B: A >= B.
  ge: { minArgs: 2, run: ([a, b]) => compareValues(a, b) >= 0 },
  // and A B...: the first false argument, or the last (Python's `and`).
  and: { run: (args) => firstOr(args, (arg) => !isTruthy(arg)) },
  // or A B...: the first true argument, or the last (Python's `or`; `{{or port 8080}}`).
  or: { run: (args) => firstOr(args, isTruthy) },
  // not A: true when A is false, null, 0, "" or empty.
  not: { run: ([value]) => !isTruthy(value) },
  // keys MAPPING: its keys, in order.
  keys: { run: ([value]) => Object.keys(mapping(value, 'keys')) },
  // range [START] STOP [STEP]: the numbers START..STOP-1, as Python's range.
  range: { run: ([a, b, c]) => numberRange(a, b, c) },
  // contains HAYSTACK NEEDLE: NEEDLE is an item of the list, a substring of the text, or a key of the mapping.
  contains: { minArgs: 2, run: ([haystack, needle]) => containsValue(haystack, needle) },
  // to_int VALUE: VALUE as a whole number ("8080" -> 8080); anything not numeric is an error.
  to_int: { run: ([value]) => strictInt(value) },
  // cidr_address CIDR: the address of "10.0.0.5/24" -> "10.0.0.5" (IPv4 or IPv6).
  cidr_address: { run: ([value]) => cidrAddress(value) },
};

/** The first argument matching, else the last one: how Python's `and`/`or` pick their result. */
function firstOr(args: unknown[], pick: (arg: unknown) => boolean): unknown {
  const index = args.findIndex(pick);
  return index === -1 ? args[args.length - 1] : args[index];
}

/** "join: …" unless the message already starts with the helper's name. */
export function prefixed(name: string, message: string): string {
  return message.startsWith(`${name} `) || message.startsWith(`${name}:`) ? message : `${name}: ${message}`;
}

/**
 * Helpers only templates have (comparisons and logic are operators in expressions); every other helper is
 * a filter of the one table (filters.ts), registered by handlebars.ts with the filter's meaning.
 */
export const TEMPLATE_ONLY_HELPERS: readonly string[] = Object.keys(HELPERS);

export type { HelperSpec };

function positionOf(options: HelperCallOptions): TemplatePosition | undefined {
  return options.loc?.start;
}

function parameterName(options: HelperCallOptions, index: number, helper: string): string {
  const id = options.ids?.[index];
  return typeof id === 'string' ? id : `argument ${index + 1} of ${helper}`;
}

/** An undefined positional or hash argument is an undefined variable, named as written in the template. */
function refuseUndefined(helper: string, args: unknown[], options: HelperCallOptions): void {
  args.forEach((arg, index) => {
    if (arg === undefined)
      throw new TemplateFault(
        'undefined variable',
        'undefined',
        positionOf(options),
        parameterName(options, index, helper),
      );
  });
  for (const [key, value] of Object.entries(options.hash ?? {})) {
    if (value !== undefined) continue;
    const id = options.hashIds?.[key];
    throw new TemplateFault(
      'undefined variable',
      'undefined',
      positionOf(options),
      typeof id === 'string' ? id : `${key}= of ${helper}`,
    );
  }
}

function splitOptions(argsAndOptions: unknown[]): { args: unknown[]; options: HelperCallOptions } {
  const options = (argsAndOptions[argsAndOptions.length - 1] ?? {}) as HelperCallOptions;
  return { args: argsAndOptions.slice(0, -1), options };
}

/** Called with each block's new context as an error leaves it, so messages can say what that level held. */
export type ScopeObserver = (error: unknown, context: unknown) => void;

/**
 * Register cairn's helpers into an isolated environment, and wrap Handlebars' own `if`, `unless`, `each`,
 * `with` and `lookup` so a missing variable is an error there too (test optional values with
 * `{{#if (defined x)}}`). `log` is refused: cairn's output goes through its own events, not the console.
 */
export function registerHelpers(
  env: HelperEnvironment,
  observeScope: ScopeObserver,
  filters: Record<string, HelperSpec> = {},
): void {
  for (const [name, spec] of Object.entries({ ...filters, ...HELPERS })) {
    env.registerHelper(name, function (...argsAndOptions: unknown[]) {
      const { args, options } = splitOptions(argsAndOptions);
      const minArgs = spec.minArgs ?? 1;
      if (args.length < minArgs) {
        throw new TemplateFault(
          `${name} takes ${minArgs === 1 ? 'an argument' : `${minArgs} arguments`}, got ${args.length === 0 ? 'none' : args.length}`,
          'helper',
          positionOf(options),
        );
      }
      if (!spec.acceptsUndefined) refuseUndefined(name, args, options);
      try {
        return spec.run(args, options.hash ?? {});
      } catch (err) {
        if (err instanceof ValueTypeError)
          throw new TemplateFault(prefixed(name, err.message), 'helper', positionOf(options));
        throw err;
      }
    });
  }

  for (const name of ['if', 'unless', 'each', 'with']) {
    const original = env.helpers[name] as HelperFunction;
    const changesScope = name === 'each' || name === 'with';
    env.registerHelper(name, function (this: unknown, ...argsAndOptions: unknown[]) {
      const { args, options } = splitOptions(argsAndOptions);
      refuseUndefined(name, args, options);
      if (changesScope && options.fn) {
        const body = options.fn;
        options.fn = function (this: unknown, context: unknown, blockOptions?: unknown) {
          try {
            return body.call(this, context, blockOptions);
          } catch (err) {
            observeScope(err, context);
            throw err;
          }
        };
      }
      return original.apply(this, [...args, options]);
    });
  }

  // lookup OBJECT KEY [FALLBACK]: OBJECT[KEY]; a missing key is an undefined variable naming both, or FALLBACK
  // when one is given. Handlebars evaluates a subexpression before the helper around it, so
  // `default (lookup h "k") x` can never reach `default` for a missing key: the fallback must be lookup's own
  // (a backend without `service_address` falls back to its `ansible_host`). The key is looked up through the
  // prototype chain, as the variable layers are stacked, so a value from any layer counts as present.
  env.registerHelper('lookup', function (...argsAndOptions: unknown[]) {
    const { args, options } = splitOptions(argsAndOptions);
    refuseUndefined('lookup', args, options);
    if (args.length < 2 || args.length > 3) {
      throw new TemplateFault(
        `lookup takes an object, a key and an optional fallback, got ${args.length} argument(s)`,
        'helper',
        positionOf(options),
      );
    }
    const [container, key] = args;
    const keyText = typeof key === 'number' ? String(key) : text(key, 'lookup key');
    const result = lookupKey(container, keyText);
    if (result.found) return result.value;
    if (args.length === 3) return args[2];
    throw new TemplateFault(
      'undefined variable',
      'undefined',
      positionOf(options),
      `${parameterName(options, 0, 'lookup')}.${keyText}`,
      describeAvailable(container, keyText),
    );
  });

  // ensure_newlines N: the block's output ending with at least N newlines (converted Jinja templates:
  // Ansible's preserve_trailing_newlines).
  env.registerHelper('ensure_newlines', function (this: unknown, ...argsAndOptions: unknown[]) {
    const { args, options } = splitOptions(argsAndOptions);
    const out = options.fn ? options.fn(this) : '';
    let have = 0;
    for (let i = out.length - 1; i >= 0 && out[i] === '\n'; i--) have += 1;
    const want = Number(args[0] ?? 0);
    return have < want ? out + '\n'.repeat(want - have) : out;
  });

  // log: refused with a reason (it is a known helper to the compiler, so it cannot simply be removed).
  env.registerHelper('log', function (...argsAndOptions: unknown[]) {
    const { options } = splitOptions(argsAndOptions);
    throw new TemplateFault(
      'the log helper is not available: templates render files, they do not write to the console',
      'helper',
      positionOf(options),
    );
  });
}
