/**
 * THE filter and test table of cairn: one meaning per name, used by expressions (`x | join(',')`, `x is
 * match('a')`) and by the Handlebars helpers of template files (`{{join xs ","}}`). Each entry follows
 * Ansible's (or Jinja's) documented behaviour: Jinja's builtin filters
 * (https://jinja.palletsprojects.com/en/3.1.x/templates/#builtin-filters) and Ansible's
 * (https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_filters.html, source read in
 * lib/ansible/plugins/filter/core.py). Values are JSON-like data; Python's semantics are kept where users
 * see them (truthiness, str() of lists and mappings, `int('3.5')`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { posix } from 'node:path';
import { parse as yamlParse, stringify as yamlStringify } from 'yaml';
import { regexAll, regexEscape, regexMatch, regexSearch, regexSub, RegexError, type RegexFlags } from './regex.js';
import {
  ValueTypeError,
  compareValues,
  containsValue,
  deepEqual,
  describeAvailable,
  describeValue,
  isTruthy,
  lengthOf,
  lookupKey,
  typeName,
} from './helpers.js';

// ---------------------------------------------------------------------------------------------------------
// Undefined values
// ---------------------------------------------------------------------------------------------------------

/** What a missing variable evaluates to (Jinja's StrictUndefined): testable, defaultable, else an error. */
export class UndefinedValue {
  constructor(
    /** The path as written up to here: `x.y.z`. */
    readonly path: string,
    /** The first part of the path that was missing: `x.y`. */
    readonly missing: string,
    /** What that level held: "available at this level: a, b". */
    readonly explanation: string,
  ) {}

  extend(path: string): UndefinedValue {
    return new UndefinedValue(path, this.missing, this.explanation);
  }

  describe(): string {
    return this.missing === this.path
      ? `undefined variable "${this.path}"`
      : `undefined variable "${this.path}": "${this.missing}" is not defined`;
  }
}

/** A failure while evaluating: the message, and a hint shown after the expression. */
export class ExpressionFault extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    /** The value was undefined (a variable whose own template meets this is itself undefined). */
    readonly undefinedVariable = false,
  ) {
    super(message);
    this.name = 'ExpressionFault';
  }
}

export function defined<T>(value: T | UndefinedValue): T {
  if (value instanceof UndefinedValue) throw new ExpressionFault(value.describe(), value.explanation, true);
  return value;
}

function hasOwn(record: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(record, key);
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof UndefinedValue);
}

// ---------------------------------------------------------------------------------------------------------
// Python's text forms
// ---------------------------------------------------------------------------------------------------------

function pythonFloatText(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  return String(value);
}

function pythonStringRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch < ' ' || ch === '\x7f') out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** Python's repr(): how a value looks inside a list or mapping rendered as text. */
export function pythonRepr(value: unknown): string {
  if (typeof value === 'string') return pythonStringRepr(value);
  if (Array.isArray(value)) return `[${value.map(pythonRepr).join(', ')}]`;
  if (isMapping(value))
    return `{${Object.keys(value)
      .map((key) => `${pythonStringRepr(key)}: ${pythonRepr(value[key])}`)
      .join(', ')}}`;
  return pythonString(value);
}

/** Python's str(): `~`, `| string`, and text around `{{ }}` in a template. */
export function pythonString(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return pythonFloatText(value);
  if (value instanceof UndefinedValue) return defined(value) as never;
  return pythonRepr(value);
}

interface JsonOptions {
  indent?: number;
  sortKeys?: boolean;
  itemSeparator?: string;
  keySeparator?: string;
  ensureAscii?: boolean;
}

function jsonString(text: string, ensureAscii: boolean): string {
  const encoded = JSON.stringify(text);
  return ensureAscii
    ? encoded.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : encoded;
}

/** Python's json.dumps with its default separators (", " and ": "), as Ansible's to_json/to_nice_json. */
export function pythonJson(value: unknown, options: JsonOptions = {}, level = 0): string {
  const { indent, sortKeys = false, ensureAscii = true } = options;
  const itemSeparator = options.itemSeparator ?? (indent === undefined ? ', ' : ',');
  const keySeparator = options.keySeparator ?? ': ';
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number')
    return Number.isFinite(value) ? String(value) : Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  if (typeof value === 'string') return jsonString(value, ensureAscii);
  if (value instanceof UndefinedValue) return defined(value) as never;
  const pad = indent === undefined ? '' : `\n${' '.repeat(indent * (level + 1))}`;
  const end = indent === undefined ? '' : `\n${' '.repeat(indent * level)}`;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[${pad}${value.map((item) => pythonJson(item, options, level + 1)).join(itemSeparator + pad)}${end}]`;
  }
  if (isMapping(value)) {
    const keys = Object.keys(value);
    if (sortKeys) keys.sort();
    if (keys.length === 0) return '{}';
    const entries = keys.map(
      (key) => `${jsonString(key, ensureAscii)}${keySeparator}${pythonJson(value[key], options, level + 1)}`,
    );
    return `{${pad}${entries.join(itemSeparator + pad)}${end}}`;
  }
  return jsonString(String(value), ensureAscii);
}

// ---------------------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------------------

/** Jinja's int: numbers truncate, numeric text parses (base 10, or `base=`), anything else is the default. */
export function jinjaInt(value: unknown, fallback: unknown = 0, base: unknown = 10): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : fallback;
  if (typeof value === 'string') {
    const text = value.trim().replace(/_/g, '');
    const radix = Number(base);
    if (radix !== 10) {
      const body = text.replace(/^0[xob]/i, '');
      const parsed = parseInt(body, radix);
      return Number.isNaN(parsed) || !new RegExp(`^[+-]?[0-9a-z]+$`, 'i').test(body) ? fallback : parsed;
    }
    if (/^[+-]?[0-9]+$/.test(text)) return Number(text);
    // Jinja falls back to float(value) and truncates: int('3.7') is 3.
    if (/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(text)) return Math.trunc(Number(text));
  }
  return fallback;
}

export function jinjaFloat(value: unknown, fallback: unknown = 0): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$/.test(value))
    return Number(value.trim());
  return fallback;
}

/** Ansible's bool: yes/on/1/true/y/t (any case) and 1 are true; everything else is false. */
export function ansibleBool(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value === 1;
  if (typeof value === 'string')
    return ['yes', 'on', '1', 'true', 'y', 't', '1.0'].includes(value.trim().toLowerCase());
  return false;
}

function text(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return pythonString(value);
  throw new ValueTypeError(`${what} needs text, got ${describeValue(value)}`);
}

/** A list from a list, a mapping (its keys, as Python iterates one) or text (its characters). */
function iterable(value: unknown, what: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') return [...value];
  if (isMapping(value)) return Object.keys(value);
  throw new ValueTypeError(`${what} needs a list, got ${describeValue(value)}`);
}

function mapping(value: unknown, what: string): Record<string, unknown> {
  if (!isMapping(value)) throw new ValueTypeError(`${what} needs a mapping, got ${describeValue(value)}`);
  return value;
}

function count(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  const parsed = jinjaInt(value, undefined);
  if (typeof parsed !== 'number')
    throw new ValueTypeError(`${what} must be a whole number, got ${describeValue(value)}`);
  return parsed;
}

/** `a.b.0` attribute paths as Jinja's `attribute=` arguments take them. */
function attributeOf(item: unknown, path: string): unknown {
  let value = item;
  for (const part of path.split('.')) {
    const found = lookupKey(value, part);
    if (!found.found) return new UndefinedValue(path, path, describeAvailable(value, part));
    value = found.value;
  }
  return value;
}

function sortKey(value: unknown, caseSensitive: boolean): unknown {
  return typeof value === 'string' && !caseSensitive ? value.toLowerCase() : value;
}

function sorted(items: unknown[], reverse: boolean, caseSensitive: boolean, attribute?: string): unknown[] {
  const keyed = items.map((item) => ({
    item,
    key: sortKey(attribute === undefined ? item : defined(attributeOf(item, attribute)), caseSensitive),
  }));
  keyed.sort((a, b) => compareValues(a.key, b.key) * (reverse ? -1 : 1));
  return keyed.map(({ item }) => item);
}

function unique(items: unknown[], caseSensitive = true, attribute?: string): unknown[] {
  const out: unknown[] = [];
  const seen: unknown[] = [];
  for (const item of items) {
    const key = sortKey(attribute === undefined ? item : attributeOf(item, attribute), caseSensitive);
    if (!seen.some((s) => deepEqual(s, key))) {
      seen.push(key);
      out.push(item);
    }
  }
  return out;
}

function flatten(items: unknown[], levels: number | undefined, skipNulls: boolean): unknown[] {
  const out: unknown[] = [];
  for (const item of items) {
    if (Array.isArray(item) && (levels === undefined || levels > 0))
      out.push(...flatten(item, levels === undefined ? undefined : levels - 1, skipNulls));
    else if (!(skipNulls && item === null)) out.push(item);
  }
  return out;
}

/** Ansible's combine: later mappings win; `recursive=True` merges nested mappings, `list_merge` lists. */
function combine(dicts: unknown[], recursive: boolean, listMerge: string): Record<string, unknown> {
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...a };
    for (const [key, value] of Object.entries(b)) {
      const old = out[key];
      if (recursive && isMapping(old) && isMapping(value)) out[key] = merge(old, value);
      else if (Array.isArray(old) && Array.isArray(value) && listMerge !== 'replace') {
        if (listMerge === 'keep') out[key] = old;
        else if (listMerge === 'append') out[key] = [...old, ...value];
        else if (listMerge === 'prepend') out[key] = [...value, ...old];
        else if (listMerge === 'append_rp')
          out[key] = [...old.filter((x) => !value.some((y) => deepEqual(x, y))), ...value];
        else if (listMerge === 'prepend_rp')
          out[key] = [...value, ...old.filter((x) => !value.some((y) => deepEqual(x, y)))];
        else throw new ValueTypeError(`combine: unknown list_merge "${listMerge}"`);
      } else out[key] = value;
    }
    return out;
  };
  let result: Record<string, unknown> = {};
  for (const dict of flatten(dicts, undefined, false)) result = merge(result, mapping(dict, 'combine'));
  return result;
}

function pythonSplit(value: string, sep?: unknown, maxsplit?: unknown): string[] {
  const limit = maxsplit === undefined || maxsplit === null ? -1 : count(maxsplit, 'split maxsplit');
  if (sep === undefined || sep === null) {
    const parts: string[] = [];
    let rest = value.replace(/^\s+/, '');
    while (rest !== '') {
      if (limit >= 0 && parts.length === limit) {
        parts.push(rest);
        return parts;
      }
      const match = /\s+/.exec(rest);
      if (!match) {
        parts.push(rest);
        break;
      }
      parts.push(rest.slice(0, match.index));
      rest = rest.slice(match.index + match[0].length);
    }
    return parts;
  }
  const separator = text(sep, 'split separator');
  if (separator === '') throw new ValueTypeError('split: empty separator');
  const parts = value.split(separator);
  if (limit < 0 || parts.length <= limit + 1) return parts;
  return [...parts.slice(0, limit), parts.slice(limit).join(separator)];
}

function pythonStrip(value: string, chars: unknown, side: 'both' | 'left' | 'right'): string {
  if (chars === undefined || chars === null)
    return side === 'both' ? value.trim() : side === 'left' ? value.trimStart() : value.trimEnd();
  const set = text(chars, 'strip');
  let start = 0;
  let end = value.length;
  if (side !== 'right') while (start < end && set.includes(value[start]!)) start += 1;
  if (side !== 'left') while (end > start && set.includes(value[end - 1]!)) end -= 1;
  return value.slice(start, end);
}

/** Python's str.replace(old, new[, count]). */
function pythonReplace(value: string, from: string, to: string, limit?: unknown): string {
  const max = limit === undefined || limit === null ? -1 : count(limit, 'replace count');
  if (max < 0) return value.split(from).join(to);
  let out = value;
  let at = 0;
  for (let n = 0; n < max; n++) {
    const found = out.indexOf(from, at);
    if (found === -1) break;
    out = out.slice(0, found) + to + out.slice(found + from.length);
    at = found + to.length + (from === '' ? 1 : 0);
  }
  return out;
}

/** Python's `%` string formatting for the common `%s`/`%d`/`%i`/`%f`/`%r` conversions. */
function percentFormat(format: string, args: unknown[]): string {
  let index = 0;
  return format.replace(
    /%(\(([^)]*)\))?([-+ 0#]*)([0-9]*)(\.[0-9]+)?([sdifrx%])/g,
    (
      _all,
      _k,
      key: string | undefined,
      flags: string,
      width: string,
      precision: string | undefined,
      conversion: string,
    ) => {
      if (conversion === '%') return '%';
      const source = key !== undefined && isMapping(args[0]) ? args[0][key] : args[index++];
      let out: string;
      if (conversion === 's') out = pythonString(source);
      else if (conversion === 'r') out = pythonRepr(source);
      else if (conversion === 'x') out = Math.trunc(Number(source)).toString(16);
      else if (conversion === 'f') out = Number(source).toFixed(precision ? Number(precision.slice(1)) : 6);
      else out = String(Math.trunc(Number(source)));
      const w = Number(width || 0);
      if (out.length < w)
        out = flags.includes('-')
          ? out.padEnd(w)
          : flags.includes('0') && conversion !== 's'
            ? out.padStart(w, '0')
            : out.padStart(w);
      return out;
    },
  );
}

function capitalize(value: string): string {
  return value.length === 0 ? value : value[0]!.toUpperCase() + value.slice(1).toLowerCase();
}

function titleCase(value: string): string {
  return value.replace(/[A-Za-z0-9']+/g, (word) => word[0]!.toUpperCase() + word.slice(1).toLowerCase());
}

/** Python's shlex.quote, as Ansible's quote filter. */
export function shellQuote(value: string): string {
  if (value === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'"'"'`)}'`;
}

function regexFlags(kwargs: Record<string, unknown>): RegexFlags {
  return { ignorecase: isTruthy(kwargs['ignorecase']), multiline: isTruthy(kwargs['multiline']) };
}

/** Ansible's regex_search: the match, or the listed groups (`'\\1'`, `'\\g<name>'`); None when none. */
function regexSearchFilter(
  value: string,
  pattern: string,
  groupArgs: unknown[],
  kwargs: Record<string, unknown>,
): unknown {
  const match = regexSearch(value, pattern, regexFlags(kwargs));
  if (!match) return null;
  if (groupArgs.length === 0) return match.groups[0];
  return groupArgs.map((arg) => {
    const ref = text(arg, 'regex_search group');
    const numbered = /^\\(\d+)$/.exec(ref);
    const named = /^\\g<(\w+)>$/.exec(ref);
    if (numbered) return match.groups[Number(numbered[1])] ?? null;
    if (named)
      return /^\d+$/.test(named[1]!) ? (match.groups[Number(named[1])] ?? null) : (match.named[named[1]!] ?? null);
    throw new ValueTypeError(
      `regex_search: unknown group reference ${JSON.stringify(ref)} (write '\\\\1' or '\\\\g<name>')`,
    );
  });
}

function regexFindall(value: string, pattern: string, kwargs: Record<string, unknown>): unknown[] {
  return regexAll(value, pattern, regexFlags(kwargs)).map((match) => {
    if (match.groups.length === 1) return match.groups[0];
    if (match.groups.length === 2) return match.groups[1] ?? '';
    return match.groups.slice(1).map((g) => g ?? '');
  });
}

/** Ansible's `random` with `seed=`: Python's Random is not reproducible here, so a seeded pick is a hash. */
function randomPick(value: unknown, args: unknown[], kwargs: Record<string, unknown>): unknown {
  const seed = kwargs['seed'];
  const draw = (n: number): number => {
    if (seed === undefined || seed === null) return randomBytes(4).readUInt32BE(0) % n;
    return createHash('sha256').update(pythonString(seed)).digest().readUInt32BE(0) % n;
  };
  if (typeof value === 'number') {
    const start = args[0] === undefined ? 0 : count(args[0], 'random start');
    const step = args[1] === undefined ? 1 : count(args[1], 'random step');
    const choices = Math.ceil((value - start) / step);
    if (choices <= 0) throw new ValueTypeError('random: empty range');
    return start + draw(choices) * step;
  }
  const items = iterable(value, 'random');
  if (items.length === 0) throw new ValueTypeError('random: the list is empty');
  return items[draw(items.length)];
}

const HASH_ALGORITHMS: Record<string, string> = {
  md5: 'md5',
  sha1: 'sha1',
  sha224: 'sha224',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
};

// ---------------------------------------------------------------------------------------------------------
// ipaddr basics (ansible.utils.ipaddr): validation and the common queries, IPv4 and IPv6 via node:net
// ---------------------------------------------------------------------------------------------------------

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

function ipaddr(value: unknown, query: unknown): unknown {
  if (typeof value !== 'string') return false;
  const [address = '', prefixText] = value.trim().split('/');
  const family = isIP(address);
  if (family === 0) return false;
  const maxPrefix = family === 4 ? 32 : 128;
  if (prefixText !== undefined && (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix)) return false;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  const q = query === undefined || query === null ? '' : String(query);
  if (q === '' || q === 'bool') return q === 'bool' ? true : value;
  if (q === 'address')
    return prefixText !== undefined && family === 4 && prefix < 31 && ipv4ToNumber(address) % 2 ** (32 - prefix) === 0
      ? false
      : address;
  if (q === 'prefix') return prefix;
  if (q === 'version') return family;
  if (q === 'ipv4') return family === 4 ? value : false;
  if (q === 'ipv6') return family === 6 ? value : false;
  if (family !== 4) throw new ValueTypeError(`ipaddr("${q}") is only supported for IPv4 here`);
  const size = 2 ** (32 - prefix);
  const network = Math.floor(ipv4ToNumber(address) / size) * size;
  switch (q) {
    case 'network':
      return numberToIpv4(network);
    case 'netmask':
      return numberToIpv4(2 ** 32 - size);
    case 'broadcast':
      return numberToIpv4(network + size - 1);
    case 'size':
      return size;
    case 'host':
      return `${address}/${prefix}`;
    case 'net':
    case 'subnet':
      return ipv4ToNumber(address) === network
        ? `${numberToIpv4(network)}/${prefix}`
        : q === 'subnet'
          ? `${numberToIpv4(network)}/${prefix}`
          : false;
    case 'private':
      return /^(10\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.)/.test(address) ? value : false;
    case 'public':
      return /^(10\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.|127\.)/.test(address) ? false : value;
    default:
      throw new ValueTypeError(
        `ipaddr: the query "${q}" is not supported (address, network, netmask, prefix, broadcast, size, host, net, version, ipv4, ipv6, private, public)`,
      );
  }
}

// ---------------------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------------------

/** What a filter or test may call back into: other filters and tests (map, select), and lookups. */
export interface FilterEnvironment {
  filter(name: string, value: unknown, args: unknown[], kwargs: Record<string, unknown>): unknown;
  test(name: string, value: unknown, args: unknown[], kwargs: Record<string, unknown>): boolean;
}

export interface FilterSpec {
  /** Only `default`, `mandatory` and the like look at an undefined value; every other filter fails on one. */
  acceptsUndefined?: boolean;
  run(value: unknown, args: unknown[], kwargs: Record<string, unknown>, env: FilterEnvironment): unknown;
}

function kw(
  kwargs: Record<string, unknown>,
  name: string,
  args: unknown[],
  index: number,
  fallback?: unknown,
): unknown {
  if (hasOwn(kwargs, name)) return kwargs[name];
  return args[index] === undefined ? fallback : args[index];
}

function defaultFilter(value: unknown, args: unknown[], kwargs: Record<string, unknown>): unknown {
  const fallback = kw(kwargs, 'default_value', args, 0, '');
  const falsy = isTruthy(kw(kwargs, 'boolean', args, 1, false));
  return value instanceof UndefinedValue || (falsy && !isTruthy(value)) ? fallback : value;
}

function lengthFilter(value: unknown): number {
  return lengthOf(value);
}

function edge(value: unknown, filter: string, index: 0 | -1): unknown {
  const items = typeof value === 'string' ? value : iterable(value, filter);
  if (items.length === 0)
    return new UndefinedValue(
      `${filter} of an empty ${typeName(value)}`,
      `${filter} of an empty ${typeName(value)}`,
      `the ${typeName(value)} is empty`,
    );
  return index === 0 ? items[0] : items[items.length - 1];
}

function selectFilter(keep: boolean, byAttribute: boolean): FilterSpec {
  return {
    run: (value, args, kwargs, env) => {
      const items = iterable(value, byAttribute ? (keep ? 'selectattr' : 'rejectattr') : keep ? 'select' : 'reject');
      const [first, testName, ...testArgs] = byAttribute ? args : [undefined, ...args];
      return items.filter((item) => {
        const subject = byAttribute ? attributeOf(item, text(first, 'attribute')) : item;
        const passed =
          testName === undefined
            ? isTruthy(defined(subject))
            : env.test(text(testName, 'test name'), subject, testArgs, kwargs);
        return passed === keep;
      });
    },
  };
}

function minMax(sign: 1 | -1): FilterSpec {
  return {
    run: (value, args, kwargs) => {
      const attribute = kw(kwargs, 'attribute', [], 0) as string | undefined;
      const items = sorted(
        iterable(value, sign === 1 ? 'max' : 'min'),
        sign === 1,
        isTruthy(kwargs['case_sensitive']),
        attribute,
      );
      return items.length === 0
        ? new UndefinedValue('min/max of an empty list', 'min/max of an empty list', 'the list is empty')
        : items[0];
    },
  };
}

function toYaml(value: unknown, nice: boolean, kwargs: Record<string, unknown>): string {
  const indent = kwargs['indent'] === undefined ? (nice ? 4 : 2) : count(kwargs['indent'], 'indent');
  return yamlStringify(value, {
    indent,
    indentSeq: false,
    sortMapEntries: nice,
    lineWidth: 0,
    collectionStyle: nice ? 'block' : 'any',
  });
}

export const FILTERS: Record<string, FilterSpec> = {
  default: { acceptsUndefined: true, run: defaultFilter },
  d: { acceptsUndefined: true, run: defaultFilter },
  mandatory: {
    acceptsUndefined: true,
    run: (value, args) => {
      if (value instanceof UndefinedValue)
        throw new ExpressionFault(
          args[0] === undefined ? `mandatory variable "${value.path}" is not defined` : text(args[0], 'mandatory msg'),
          value.explanation,
        );
      return value;
    },
  },
  bool: { run: (value) => ansibleBool(value) },
  int: {
    run: (value, args, kwargs) => jinjaInt(value, kw(kwargs, 'default', args, 0, 0), kw(kwargs, 'base', args, 1, 10)),
  },
  float: { run: (value, args, kwargs) => jinjaFloat(value, kw(kwargs, 'default', args, 0, 0)) },
  string: { run: (value) => pythonString(value) },
  length: { run: lengthFilter },
  count: { run: lengthFilter },
  abs: { run: (value) => Math.abs(Number(value)) },
  round: {
    run: (value, args, kwargs) => {
      const precision = count(kw(kwargs, 'precision', args, 0, 0), 'round precision');
      const method = String(kw(kwargs, 'method', args, 1, 'common'));
      const factor = 10 ** precision;
      const scaled = Number(value) * factor;
      const rounded =
        method === 'ceil'
          ? Math.ceil(scaled)
          : method === 'floor'
            ? Math.floor(scaled)
            : Math.sign(scaled) * Math.round(Math.abs(scaled));
      return rounded / factor;
    },
  },
  // Jinja's soft_str: these turn any value into text first (`{'a': 1} | lower` is "{'a': 1}").
  lower: { run: (value) => pythonString(value).toLowerCase() },
  upper: { run: (value) => pythonString(value).toUpperCase() },
  capitalize: { run: (value) => capitalize(pythonString(value)) },
  title: { run: (value) => titleCase(pythonString(value)) },
  trim: { run: (value, args) => pythonStrip(pythonString(value), args[0], 'both') },
  center: {
    run: (value, args) => {
      const t = text(value, 'center');
      const w = count(args[0] ?? 80, 'center width');
      const left = Math.floor((w - t.length) / 2);
      return w <= t.length ? t : ' '.repeat(left) + t + ' '.repeat(w - t.length - left);
    },
  },
  replace: {
    run: (value, args, kwargs) =>
      pythonReplace(
        text(value, 'replace'),
        text(args[0], 'replace (old)'),
        text(args[1], 'replace (new)'),
        kw(kwargs, 'count', args, 2),
      ),
  },
  split: { run: (value, args) => pythonSplit(text(value, 'split'), args[0], args[1]) },
  join: {
    run: (value, args, kwargs) => {
      const attribute = kw(kwargs, 'attribute', args, 1) as string | undefined;
      return iterable(value, 'join')
        .map((item) => pythonString(attribute === undefined ? item : defined(attributeOf(item, attribute))))
        .join(text(kw(kwargs, 'd', args, 0, ''), 'join separator'));
    },
  },
  first: { run: (value) => edge(value, 'first', 0) },
  last: { run: (value) => edge(value, 'last', -1) },
  min: minMax(-1),
  max: minMax(1),
  sum: {
    run: (value, args, kwargs) => {
      const attribute = kw(kwargs, 'attribute', args, 0) as string | undefined;
      let total: unknown = kw(kwargs, 'start', args, 1, 0);
      for (const item of iterable(value, 'sum')) {
        const term = attribute === undefined ? item : defined(attributeOf(item, attribute));
        if (Array.isArray(total) && Array.isArray(term)) total = [...total, ...term];
        else total = Number(total) + Number(term);
      }
      return total;
    },
  },
  unique: {
    run: (value, args, kwargs) =>
      unique(
        iterable(value, 'unique'),
        isTruthy(kw(kwargs, 'case_sensitive', args, 0, false)),
        kwargs['attribute'] as string | undefined,
      ),
  },
  sort: {
    run: (value, args, kwargs) =>
      sorted(
        [...iterable(value, 'sort')],
        isTruthy(kw(kwargs, 'reverse', args, 0, false)),
        isTruthy(kw(kwargs, 'case_sensitive', args, 1, false)),
        kw(kwargs, 'attribute', args, 2) as string | undefined,
      ),
  },
  reverse: {
    run: (value) =>
      typeof value === 'string' ? [...value].reverse().join('') : [...iterable(value, 'reverse')].reverse(),
  },
  list: { run: (value) => [...iterable(value, 'list')] },
  map: {
    run: (value, args, kwargs, env) => {
      const items = iterable(value, 'map');
      if (hasOwn(kwargs, 'attribute')) {
        const attribute = text(kwargs['attribute'], 'map attribute');
        return items.map((item) => {
          const found = attributeOf(item, attribute);
          if (found instanceof UndefinedValue && hasOwn(kwargs, 'default')) return kwargs['default'];
          return found;
        });
      }
      if (args.length === 0)
        throw new ValueTypeError('map: name a filter (map("upper")) or an attribute (map(attribute="name"))');
      const [name, ...rest] = args;
      const filterKwargs = { ...kwargs };
      return items.map((item) => env.filter(text(name, 'map filter name'), item, rest, filterKwargs));
    },
  },
  // extract(container, morekeys): container[value], then each of morekeys (Ansible's, used with map).
  extract: {
    acceptsUndefined: false,
    run: (value, args, kwargs) => {
      let found = attributeOf(args[0], pythonString(value));
      const more = kw(kwargs, 'morekeys', args, 1);
      for (const key of more === undefined || more === null ? [] : Array.isArray(more) ? more : [more]) {
        found = found instanceof UndefinedValue ? found : attributeOf(found, pythonString(key));
      }
      return found;
    },
  },
  select: selectFilter(true, false),
  reject: selectFilter(false, false),
  selectattr: selectFilter(true, true),
  rejectattr: selectFilter(false, true),
  combine: {
    run: (value, args, kwargs) =>
      combine([value, ...args], isTruthy(kwargs['recursive']), String(kwargs['list_merge'] ?? 'replace')),
  },
  dict2items: {
    run: (value, args, kwargs) => {
      const keyName = text(kw(kwargs, 'key_name', args, 0, 'key'), 'key_name');
      const valueName = text(kw(kwargs, 'value_name', args, 1, 'value'), 'value_name');
      return Object.entries(mapping(value, 'dict2items')).map(([key, item]) => ({ [keyName]: key, [valueName]: item }));
    },
  },
  items2dict: {
    run: (value, args, kwargs) => {
      const keyName = text(kw(kwargs, 'key_name', args, 0, 'key'), 'key_name');
      const valueName = text(kw(kwargs, 'value_name', args, 1, 'value'), 'value_name');
      const out: Record<string, unknown> = {};
      for (const item of iterable(value, 'items2dict')) {
        const entry = mapping(item, 'items2dict (each item)');
        out[pythonString(defined(attributeOf(entry, keyName)))] = defined(attributeOf(entry, valueName));
      }
      return out;
    },
  },
  dict: {
    run: (value) =>
      Object.fromEntries(
        iterable(value, 'dict').map((pair) => {
          const p = iterable(pair, 'dict (each pair)');
          return [pythonString(p[0]), p[1]];
        }),
      ),
  },
  items: { run: (value) => Object.entries(mapping(value, 'items')).map(([k, v]) => [k, v]) },
  zip: {
    run: (value, args) => {
      const lists = [iterable(value, 'zip'), ...args.map((arg) => iterable(arg, 'zip'))];
      const length = Math.min(...lists.map((l) => l.length));
      return Array.from({ length }, (_, i) => lists.map((l) => l[i]));
    },
  },
  zip_longest: {
    run: (value, args, kwargs) => {
      const lists = [iterable(value, 'zip_longest'), ...args.map((arg) => iterable(arg, 'zip_longest'))];
      const length = Math.max(...lists.map((l) => l.length));
      const fill = kwargs['fillvalue'] ?? null;
      return Array.from({ length }, (_, i) => lists.map((l) => (i < l.length ? l[i] : fill)));
    },
  },
  flatten: {
    run: (value, args, kwargs) =>
      flatten(
        iterable(value, 'flatten'),
        kw(kwargs, 'levels', args, 0) === undefined ? undefined : count(kw(kwargs, 'levels', args, 0), 'levels'),
        isTruthy(kwargs['skip_nulls'] ?? true),
      ),
  },
  product: {
    run: (value, args) => {
      let out: unknown[][] = [[]];
      for (const list of [value, ...args])
        out = out.flatMap((prefix) => iterable(list, 'product').map((item) => [...prefix, item]));
      return out;
    },
  },
  difference: {
    run: (value, [other]) =>
      unique(iterable(value, 'difference').filter((x) => !iterable(other, 'difference').some((y) => deepEqual(x, y)))),
  },
  intersect: {
    run: (value, [other]) =>
      unique(iterable(value, 'intersect').filter((x) => iterable(other, 'intersect').some((y) => deepEqual(x, y)))),
  },
  union: { run: (value, [other]) => unique([...iterable(value, 'union'), ...iterable(other, 'union')]) },
  symmetric_difference: {
    run: (value, [other]) => {
      const a = iterable(value, 'symmetric_difference');
      const b = iterable(other, 'symmetric_difference');
      return unique([
        ...a.filter((x) => !b.some((y) => deepEqual(x, y))),
        ...b.filter((x) => !a.some((y) => deepEqual(x, y))),
      ]);
    },
  },
  batch: {
    run: (value, args) => {
      const size = count(args[0], 'batch size');
      const items = iterable(value, 'batch');
      const out: unknown[][] = [];
      for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
      if (args[1] !== undefined && out.length > 0)
        while (out[out.length - 1]!.length < size) out[out.length - 1]!.push(args[1]);
      return out;
    },
  },
  to_json: {
    run: (value, _args, kwargs) =>
      pythonJson(value, {
        indent: kwargs['indent'] === undefined ? undefined : count(kwargs['indent'], 'indent'),
        sortKeys: isTruthy(kwargs['sort_keys']),
        ensureAscii: kwargs['ensure_ascii'] === undefined ? true : isTruthy(kwargs['ensure_ascii']),
      }),
  },
  to_nice_json: {
    run: (value, _args, kwargs) =>
      pythonJson(value, {
        indent: kwargs['indent'] === undefined ? 4 : count(kwargs['indent'], 'indent'),
        sortKeys: kwargs['sort_keys'] === undefined ? true : isTruthy(kwargs['sort_keys']),
        ensureAscii: false,
      }),
  },
  from_json: {
    run: (value) => {
      try {
        return JSON.parse(text(value, 'from_json')) as unknown;
      } catch (err) {
        throw new ValueTypeError(`from_json: not JSON (${err instanceof Error ? err.message : String(err)})`);
      }
    },
  },
  to_yaml: { run: (value, _args, kwargs) => toYaml(value, false, kwargs) },
  to_nice_yaml: { run: (value, _args, kwargs) => toYaml(value, true, kwargs) },
  from_yaml: {
    run: (value) => {
      try {
        return yamlParse(text(value, 'from_yaml'), { maxAliasCount: 100 }) as unknown;
      } catch (err) {
        throw new ValueTypeError(
          `from_yaml: not YAML (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
        );
      }
    },
  },
  regex_replace: {
    run: (value, args, kwargs) =>
      regexSub(
        text(value, 'regex_replace'),
        text(kw(kwargs, 'pattern', args, 0, ''), 'regex_replace pattern'),
        text(kw(kwargs, 'replacement', args, 1, ''), 'regex_replace replacement'),
        regexFlags(kwargs),
        count(kw(kwargs, 'count', args, 4, 0), 'count'),
      ),
  },
  regex_search: {
    run: (value, args, kwargs) =>
      regexSearchFilter(text(value, 'regex_search'), text(args[0], 'regex_search pattern'), args.slice(1), kwargs),
  },
  regex_findall: {
    run: (value, args, kwargs) =>
      regexFindall(text(value, 'regex_findall'), text(args[0], 'regex_findall pattern'), kwargs),
  },
  regex_escape: { run: (value) => regexEscape(text(value, 'regex_escape')) },
  basename: {
    run: (value) => (posix.basename(text(value, 'basename')) === '' ? '' : pythonBasename(text(value, 'basename'))),
  },
  dirname: { run: (value) => pythonDirname(text(value, 'dirname')) },
  expanduser: { run: (value) => text(value, 'expanduser').replace(/^~(?=\/|$)/, homedir()) },
  realpath: { run: (value) => posix.resolve(text(value, 'realpath')) },
  splitext: {
    run: (value) => {
      const t = text(value, 'splitext');
      const ext = posix.extname(t);
      return [t.slice(0, t.length - ext.length), ext];
    },
  },
  b64encode: { run: (value) => Buffer.from(text(value, 'b64encode'), 'utf8').toString('base64') },
  b64decode: { run: (value) => Buffer.from(text(value, 'b64decode'), 'base64').toString('utf8') },
  hash: {
    run: (value, args) => {
      const algorithm = text(args[0] ?? 'sha1', 'hash algorithm');
      if (!hasOwn(HASH_ALGORITHMS, algorithm))
        throw new ValueTypeError(
          `hash: unsupported algorithm "${algorithm}" (${Object.keys(HASH_ALGORITHMS).join(', ')})`,
        );
      return createHash(HASH_ALGORITHMS[algorithm]!).update(text(value, 'hash'), 'utf8').digest('hex');
    },
  },
  md5: { run: (value) => createHash('md5').update(text(value, 'md5'), 'utf8').digest('hex') },
  sha1: { run: (value) => createHash('sha1').update(text(value, 'sha1'), 'utf8').digest('hex') },
  checksum: { run: (value) => createHash('sha1').update(text(value, 'checksum'), 'utf8').digest('hex') },
  password_hash: {
    run: () => {
      // crypt(3)'s sha512 scheme is not in node:crypto; a wrong hash would lock users out, so refuse.
      throw new ValueTypeError(
        'password_hash: crypt(3) hashes are not available on this controller (node:crypto has no crypt); hash on the host instead',
      );
    },
  },
  quote: { run: (value) => shellQuote(text(value, 'quote')) },
  ternary: {
    run: (value, args) => (value === null && args.length > 2 ? args[2] : isTruthy(value) ? args[0] : args[1]),
  },
  random: { run: randomPick },
  shuffle: { run: (value) => [...iterable(value, 'shuffle')] },
  ipaddr: {
    run: (value, args) =>
      Array.isArray(value)
        ? value.filter((v) => ipaddr(v, args[0]) !== false).map((v) => ipaddr(v, args[0]))
        : ipaddr(value, args[0]),
  },
  ipv4: {
    run: (value, args) => {
      const r = ipaddr(value, 'ipv4');
      return r === false || args[0] === undefined ? r : ipaddr(r, args[0]);
    },
  },
  ipv6: {
    run: (value, args) => {
      const r = ipaddr(value, 'ipv6');
      return r === false || args[0] === undefined ? r : ipaddr(r, args[0]);
    },
  },
  indent: {
    run: (value, args, kwargs) => {
      const width = count(kw(kwargs, 'width', args, 0, 4), 'indent width');
      const first = isTruthy(kw(kwargs, 'first', args, 1, false));
      const blank = isTruthy(kw(kwargs, 'blank', args, 2, false));
      const pad = ' '.repeat(width);
      return text(value, 'indent')
        .split('\n')
        .map((line, i) => ((i > 0 || first) && (blank || line.trim() !== '') ? pad + line : line))
        .join('\n');
    },
  },
  comment: {
    run: (value, args) => {
      const style = String(args[0] ?? 'plain');
      const prefix = style === 'c' ? '// ' : style === 'erlang' ? '% ' : '# ';
      const body = text(value, 'comment')
        .split('\n')
        .map((line) => `${prefix}${line}`.trimEnd())
        .join('\n');
      return `${prefix.trim()}\n${body}\n${prefix.trim()}`;
    },
  },
  wordcount: {
    run: (value) =>
      text(value, 'wordcount')
        .split(/\s+/)
        .filter((w) => w !== '').length,
  },
  format: {
    run: (value, args, kwargs) =>
      Object.keys(kwargs).length
        ? percentFormat(text(value, 'format'), [kwargs])
        : percentFormat(text(value, 'format'), args),
  },
  type_debug: { run: (value) => pythonTypeName(value) },
  truncate: {
    run: (value, args) => {
      const t = text(value, 'truncate');
      const length = count(args[0] ?? 255, 'truncate length');
      const end = String(args[2] ?? '...');
      return t.length <= length ? t : t.slice(0, length - end.length) + end;
    },
  },
  urlencode: { run: (value) => encodeURIComponent(text(value, 'urlencode')).replace(/%2F/g, '/') },
  attr: { run: (value, args) => attributeOf(value, text(args[0], 'attr')) },
  to_datetime: {
    run: () => {
      throw new ValueTypeError('to_datetime is not supported');
    },
  },
  human_readable: { run: (value) => humanReadable(Number(value)) },
  bool_to_string: { run: (value) => pythonString(value) },
};

function pythonBasename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Python's os.path.dirname: everything before the last slash, trailing slashes removed unless all slashes. */
function pythonDirname(path: string): string {
  const head = path.slice(0, path.lastIndexOf('/') + 1);
  return /^\/+$/.test(head) ? head : head.replace(/\/+$/, '');
}

function humanReadable(bytes: number): string {
  const units = ['Bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(2)} ${units[unit]}`;
}

function pythonTypeName(value: unknown): string {
  if (value === null) return 'NoneType';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'string') return 'str';
  if (Array.isArray(value)) return 'list';
  return 'dict';
}

// ---------------------------------------------------------------------------------------------------------
// Tests (`x is defined`, `result is failed`, `v is version('12', '>=')`)
// ---------------------------------------------------------------------------------------------------------

export interface TestSpec {
  acceptsUndefined?: boolean;
  run(value: unknown, args: unknown[], kwargs: Record<string, unknown>): boolean;
}

function registeredResult(value: unknown, test: string): Record<string, unknown> {
  if (!isMapping(value))
    throw new ValueTypeError(
      `the "${test}" test needs a registered task result (a mapping), got ${describeValue(value)}`,
    );
  return value;
}

function resultFlag(value: unknown, test: string, flag: 'failed' | 'changed' | 'skipped'): boolean {
  const found = lookupKey(registeredResult(value, test), flag);
  return found.found && isTruthy(found.value);
}

function regexTest(kind: 'match' | 'search'): TestSpec {
  return {
    run: (value, args, kwargs) => {
      const subject = text(value, `the "${kind}" test`);
      const pattern = text(kw(kwargs, 'pattern', args, 0), `the "${kind}" pattern`);
      const flags = {
        ignorecase: isTruthy(kw(kwargs, 'ignorecase', args, 1)),
        multiline: isTruthy(kw(kwargs, 'multiline', args, 2)),
      };
      return (kind === 'match' ? regexMatch(subject, pattern, flags) : regexSearch(subject, pattern, flags)) !== null;
    },
  };
}

/** Loose version order as Ansible's default `version` test: numbers compare as numbers, words as text. */
export function compareVersions(a: string, b: string): number {
  const partsA = a.match(/[0-9]+|[A-Za-z]+/g) ?? [];
  const partsB = b.match(/[0-9]+|[A-Za-z]+/g) ?? [];
  for (let i = 0; i < Math.max(partsA.length, partsB.length); i++) {
    const x = partsA[i];
    const y = partsB[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const xNumeric = /^[0-9]+$/.test(x);
    const yNumeric = /^[0-9]+$/.test(y);
    // LooseVersion compares int with str as Python 2 did: numbers first.
    const order =
      xNumeric && yNumeric
        ? Number(x) - Number(y)
        : xNumeric !== yNumeric
          ? xNumeric
            ? -1
            : 1
          : x < y
            ? -1
            : x > y
              ? 1
              : 0;
    if (order !== 0) return Math.sign(order);
  }
  return 0;
}

const VERSION_OPERATORS: Record<string, (order: number) => boolean> = {
  '<': (o) => o < 0,
  lt: (o) => o < 0,
  '<=': (o) => o <= 0,
  le: (o) => o <= 0,
  '>': (o) => o > 0,
  gt: (o) => o > 0,
  '>=': (o) => o >= 0,
  ge: (o) => o >= 0,
  '==': (o) => o === 0,
  '=': (o) => o === 0,
  eq: (o) => o === 0,
  '!=': (o) => o !== 0,
  '<>': (o) => o !== 0,
  ne: (o) => o !== 0,
};

const versionTest: TestSpec = {
  run: (value, args, kwargs) => {
    const op = String(kw(kwargs, 'operator', args, 1, 'eq'));
    const check = hasOwn(VERSION_OPERATORS, op) ? VERSION_OPERATORS[op] : undefined;
    if (!check)
      throw new ValueTypeError(
        `the "version" test: unknown operator "${op}" (use one of ${Object.keys(VERSION_OPERATORS).join(' ')})`,
      );
    return check(compareVersions(pythonString(value), pythonString(kw(kwargs, 'version', args, 0))));
  },
};

const isNumber = (value: unknown): value is number => typeof value === 'number';
const comparisonTest = (check: (order: number) => boolean): TestSpec => ({
  run: (value, [other]) => check(compareValues(value, other)),
});

function subset(a: unknown, b: unknown): boolean {
  const small = iterable(a, 'subset');
  const big = iterable(b, 'subset');
  return small.every((x) => big.some((y) => deepEqual(x, y)));
}

/** Type tests look at an undefined value without failing (Jinja: it is none of these types). */
export const TESTS: Record<string, TestSpec> = {
  defined: { acceptsUndefined: true, run: (value) => !(value instanceof UndefinedValue) },
  undefined: { acceptsUndefined: true, run: (value) => value instanceof UndefinedValue },
  none: { acceptsUndefined: true, run: (value) => value === null },
  failed: { run: (value) => resultFlag(value, 'failed', 'failed') },
  failure: { run: (value) => resultFlag(value, 'failure', 'failed') },
  succeeded: { run: (value) => !resultFlag(value, 'succeeded', 'failed') },
  success: { run: (value) => !resultFlag(value, 'success', 'failed') },
  successful: { run: (value) => !resultFlag(value, 'successful', 'failed') },
  changed: { run: (value) => resultFlag(value, 'changed', 'changed') },
  change: { run: (value) => resultFlag(value, 'change', 'changed') },
  skipped: { run: (value) => resultFlag(value, 'skipped', 'skipped') },
  skip: { run: (value) => resultFlag(value, 'skip', 'skipped') },
  number: { acceptsUndefined: true, run: (value) => isNumber(value) },
  integer: { acceptsUndefined: true, run: (value) => isNumber(value) && Number.isInteger(value) },
  float: { acceptsUndefined: true, run: (value) => isNumber(value) && !Number.isInteger(value) },
  string: { acceptsUndefined: true, run: (value) => typeof value === 'string' },
  boolean: { acceptsUndefined: true, run: (value) => typeof value === 'boolean' },
  mapping: { acceptsUndefined: true, run: (value) => isMapping(value) },
  sequence: { run: (value) => typeof value === 'string' || Array.isArray(value) || isMapping(value) },
  iterable: { run: (value) => typeof value === 'string' || Array.isArray(value) || isMapping(value) },
  callable: { run: () => false },
  true: { acceptsUndefined: true, run: (value) => value === true },
  false: { acceptsUndefined: true, run: (value) => value === false },
  truthy: { run: (value) => isTruthy(value) },
  falsy: { run: (value) => !isTruthy(value) },
  lower: { run: (value) => typeof value === 'string' && value === value.toLowerCase() },
  upper: { run: (value) => typeof value === 'string' && value === value.toUpperCase() },
  even: { run: (value) => Number(value) % 2 === 0 },
  odd: { run: (value) => Math.abs(Number(value) % 2) === 1 },
  divisibleby: { run: (value, [divisor]) => Number(value) % Number(divisor) === 0 },
  match: regexTest('match'),
  search: regexTest('search'),
  regex: {
    run: (value, args, kwargs) => {
      const matchType = String(kwargs['match_type'] ?? 'search');
      return (matchType === 'match' ? regexTest('match') : regexTest('search')).run(value, args, kwargs);
    },
  },
  version: versionTest,
  version_compare: versionTest,
  in: { run: (value, [container]) => containsValue(container, value) },
  contains: { run: (value, [item]) => containsValue(value, item) },
  subset: { run: (value, [other]) => subset(value, other) },
  superset: { run: (value, [other]) => subset(other, value) },
  issubset: { run: (value, [other]) => subset(value, other) },
  issuperset: { run: (value, [other]) => subset(other, value) },
  sameas: { run: (value, [other]) => value === other },
  eq: { run: (value, [other]) => deepEqual(value, other) },
  equalto: { run: (value, [other]) => deepEqual(value, other) },
  '==': { run: (value, [other]) => deepEqual(value, other) },
  ne: { run: (value, [other]) => !deepEqual(value, other) },
  '!=': { run: (value, [other]) => !deepEqual(value, other) },
  lt: comparisonTest((o) => o < 0),
  '<': comparisonTest((o) => o < 0),
  lessthan: comparisonTest((o) => o < 0),
  le: comparisonTest((o) => o <= 0),
  '<=': comparisonTest((o) => o <= 0),
  gt: comparisonTest((o) => o > 0),
  '>': comparisonTest((o) => o > 0),
  greaterthan: comparisonTest((o) => o > 0),
  ge: comparisonTest((o) => o >= 0),
  '>=': comparisonTest((o) => o >= 0),
  abs: { run: (value) => typeof value === 'string' && value.startsWith('/') },
  ip: { run: (value) => ipaddr(value, 'bool') === true },
  ipaddr: { run: (value) => ipaddr(value, 'bool') === true },
  ipv4: { run: (value) => ipaddr(value, 'ipv4') !== false },
  ipv6: { run: (value) => ipaddr(value, 'ipv6') !== false },
};

export { RegexError, ValueTypeError };
