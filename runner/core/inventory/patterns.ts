/**
 * Ansible host patterns: which hosts a play's `hosts:` or `--limit` means.
 *
 *   all, *            every host
 *   web1, web         a host or a group (a group means every host in it and in its descendants)
 *   web*, lb?, db[ab] globs over host and group names (fnmatch: * ? [seq] [!seq])
 *   ~web[0-9]+        a regular expression, matched from the start of the name (as Python's re.match)
 *   a:b  a,b          union
 *   a:&b              intersection      a:!b   exclusion
 *   web[0] web[-1] web[0:1] web[1:] web[:2]   subscripts over the term's hosts in inventory order;
 *                     ranges include their end, as Ansible's
 *
 * Unions are applied first, then intersections, then exclusions, whatever the order written; a pattern of
 * only intersections and exclusions starts from `all`. The result is in inventory order without duplicates.
 */
import { CairnError, inputError, optionsError } from '../util/errors.js';
import { readTextFile } from '../util/yaml-source.js';
import type { Inventory, SelectOptions } from './types.js';

export type PatternOperator = 'union' | 'intersection' | 'exclusion';

export type Subscript = { kind: 'index'; index: number } | { kind: 'range'; start: number; end?: number };

export type TermMatcher =
  | { kind: 'name'; name: string }
  | { kind: 'glob'; glob: string; regex: RegExp }
  | { kind: 'regex'; source: string; regex: RegExp };

export interface PatternTerm {
  operator: PatternOperator;
  /** The term as written, operator included (for messages). */
  text: string;
  matcher: TermMatcher;
  subscript?: Subscript;
}

/** What pattern selection needs from an inventory. */
export type PatternInventory = Pick<Inventory, 'hosts' | 'groups'>;

function syntaxError(pattern: string, why: string): CairnError {
  return optionsError(`bad host pattern ${JSON.stringify(pattern)}: ${why}`);
}

/** Split on `:` and `,` outside brackets, so `web[0:1]` stays one term. */
function splitTerms(pattern: string): string[] {
  const terms: string[] = [];
  let current = '';
  let bracketAt = -1;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '[') {
      if (bracketAt >= 0)
        throw syntaxError(
          pattern,
          `"[" at position ${i + 1} opens inside another "[" (opened at position ${bracketAt + 1})`,
        );
      bracketAt = i;
    } else if (ch === ']') {
      if (bracketAt < 0) throw syntaxError(pattern, `unbalanced "]" at position ${i + 1}`);
      bracketAt = -1;
    } else if ((ch === ':' || ch === ',') && bracketAt < 0) {
      terms.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  if (bracketAt >= 0) throw syntaxError(pattern, `unbalanced "[" at position ${bracketAt + 1}`);
  terms.push(current);
  return terms;
}

const SUBSCRIPT = /^(.+)\[\s*(?:(-?\d+)|(\d*)\s*[:-]\s*(\d*))\s*\]$/;
const NUMERIC_BRACKETS = /\[[\s\d:-]*\]$/;
const NAME_CHAR = /[A-Za-z0-9_.-]/;

function parseSubscript(pattern: string, term: string): { expr: string; subscript?: Subscript } {
  const m = SUBSCRIPT.exec(term);
  if (!m) {
    // `web[-1:]` and friends are not globs anybody means: say what subscripts look like.
    if (NUMERIC_BRACKETS.test(term)) {
      throw syntaxError(pattern, `bad subscript in "${term}" (expected [N], [-N], [A:B], [A:] or [:B])`);
    }
    return { expr: term };
  }
  const expr = m[1]!;
  if (m[2] !== undefined) return { expr, subscript: { kind: 'index', index: Number(m[2]) } };
  const start = m[3] ? Number(m[3]) : 0;
  const end = m[4] ? Number(m[4]) : undefined;
  if (end !== undefined && end < start) throw syntaxError(pattern, `subscript in "${term}" ends before it starts`);
  return { expr, subscript: { kind: 'range', start, end } };
}

/** fnmatch's translation: * ? [seq] [!seq], anchored at both ends, case-sensitive. */
function globToRegExp(pattern: string, glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else if (ch === '[') {
      const close = glob.indexOf(']', i + 1);
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith('!');
      if (negate) body = body.slice(1);
      if (body === '') throw syntaxError(pattern, `empty character class in "${glob}"`);
      out += `[${negate ? '^' : ''}${body.replace(/[\\^\]]/g, '\\$&')}]`;
      i = close;
    } else if (NAME_CHAR.test(ch)) out += ch === '.' ? '\\.' : ch;
    else throw syntaxError(pattern, `unexpected character ${JSON.stringify(ch)} in "${glob}"`);
  }
  try {
    return new RegExp(`^(?:${out})$`);
  } catch (err) {
    throw syntaxError(pattern, `bad character class in "${glob}": ${err instanceof Error ? err.message : String(err)}`);
  }
}

function parseTerm(pattern: string, raw: string, position: number): PatternTerm {
  const text = raw.trim();
  if (text === '') {
    throw syntaxError(
      pattern,
      position === 0 ? 'empty pattern' : `empty term (term ${position + 1}; separate terms with one ":" or ",")`,
    );
  }
  let operator: PatternOperator = 'union';
  let body = text;
  if (body[0] === '&' || body[0] === '!') {
    operator = body[0] === '&' ? 'intersection' : 'exclusion';
    body = body.slice(1).trim();
    if (body === '' || body[0] === '&' || body[0] === '!') {
      throw syntaxError(pattern, `"${text[0]}" must be followed by a host, group or pattern in "${text}"`);
    }
  }
  if (body[0] === '~') {
    const source = body.slice(1);
    if (source === '') throw syntaxError(pattern, `"~" must be followed by a regular expression in "${text}"`);
    try {
      return { operator, text, matcher: { kind: 'regex', source, regex: new RegExp(`^(?:${source})`) } };
    } catch (err) {
      throw syntaxError(
        pattern,
        `bad regular expression ${JSON.stringify(source)}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  if (/\s/.test(body)) throw syntaxError(pattern, `spaces inside the term "${body}" (separate terms with ":" or ",")`);
  const { expr, subscript } = parseSubscript(pattern, body);
  if (/[*?[]/.test(expr)) {
    return { operator, text, subscript, matcher: { kind: 'glob', glob: expr, regex: globToRegExp(pattern, expr) } };
  }
  const bad = [...expr].find((ch) => !NAME_CHAR.test(ch));
  if (bad !== undefined) throw syntaxError(pattern, `unexpected character ${JSON.stringify(bad)} in "${expr}"`);
  return { operator, text, subscript, matcher: { kind: 'name', name: expr } };
}

/** Parse a pattern into terms; throws "bad host pattern" CairnErrors (kind options). */
export function parseHostPattern(pattern: string): PatternTerm[] {
  return splitTerms(pattern).map((raw, i) => parseTerm(pattern, raw, i));
}

/** Edit distance (insertions, deletions, substitutions). */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Up to `limit` names within `maxDistance` edits of `word` (case-insensitive), closest first. */
export function closestNames(word: string, names: Iterable<string>, maxDistance = 2, limit = 3): string[] {
  const lower = word.toLowerCase();
  const scored: Array<{ name: string; distance: number }> = [];
  for (const name of new Set(names)) {
    // Cheap bound first: the length difference alone is a lower bound on the distance.
    if (Math.abs(name.length - word.length) > maxDistance) continue;
    const distance = levenshtein(lower, name.toLowerCase());
    if (distance <= maxDistance) scored.push({ name, distance });
  }
  scored.sort((a, b) => a.distance - b.distance || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return scored.slice(0, limit).map((s) => s.name);
}

/** `"a"`, `"a" or "b"`, `"a", "b" or "c"`. */
export function quotedAlternatives(names: string[]): string {
  const quoted = names.map((n) => `"${n}"`);
  return quoted.length <= 1 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]!}`;
}

/** Every group's hosts (its own and its descendants'), in inventory order. */
function membersByGroup(inventory: PatternInventory): Map<string, string[]> {
  const members = new Map<string, string[]>();
  for (const group of inventory.groups.keys()) members.set(group, []);
  for (const host of inventory.hosts.values()) {
    for (const group of host.groups) {
      let list = members.get(group);
      if (!list) members.set(group, (list = []));
      list.push(host.name);
    }
  }
  return members;
}

function matches(matcher: TermMatcher, name: string): boolean {
  switch (matcher.kind) {
    case 'name':
      return matcher.name === name;
    case 'glob':
      return matcher.regex.test(name);
    case 'regex':
      return matcher.regex.test(name);
  }
}

function describeTerm(matcher: TermMatcher): string {
  return matcher.kind === 'name' ? matcher.name : matcher.kind === 'glob' ? matcher.glob : `~${matcher.source}`;
}

/** Hosts one term selects, in inventory order (before its subscript). */
function termHosts(
  pattern: string,
  term: PatternTerm,
  inventory: PatternInventory,
  members: Map<string, string[]>,
  order: Map<string, number>,
  allowUnknown: boolean,
): string[] {
  const selected = new Set<string>();
  let matchedSomething = false;
  for (const [group, hosts] of members) {
    if (!matches(term.matcher, group)) continue;
    matchedSomething = true;
    for (const host of hosts) selected.add(host);
  }
  // As Ansible: a plain name that is a group is not also looked up as a host.
  if (!(term.matcher.kind === 'name' && matchedSomething)) {
    for (const host of inventory.hosts.keys()) {
      if (matches(term.matcher, host)) {
        matchedSomething = true;
        selected.add(host);
      }
    }
  }
  if (!matchedSomething && term.matcher.kind !== 'regex' && !allowUnknown) {
    const written = describeTerm(term.matcher);
    const suggestions = closestNames(written, [...inventory.hosts.keys(), ...inventory.groups.keys()]);
    const hint = suggestions.length ? `; did you mean ${quotedAlternatives(suggestions)}?` : '';
    throw optionsError(`host pattern ${JSON.stringify(pattern)}: no host or group matches "${written}"${hint}`);
  }
  return [...selected].sort((a, b) => order.get(a)! - order.get(b)!);
}

function applySubscript(pattern: string, term: PatternTerm, hosts: string[]): string[] {
  const sub = term.subscript;
  if (!sub) return hosts;
  if (sub.kind === 'index') {
    const at = sub.index < 0 ? hosts.length + sub.index : sub.index;
    if (at < 0 || at >= hosts.length) {
      throw optionsError(
        `host pattern ${JSON.stringify(pattern)}: "${term.text}" is out of range ("${describeTerm(term.matcher)}" has ${hosts.length} host${hosts.length === 1 ? '' : 's'})`,
      );
    }
    return [hosts[at]!];
  }
  return hosts.slice(sub.start, sub.end === undefined ? undefined : sub.end + 1);
}

/**
 * The hosts `pattern` selects, in inventory order, each once. Bad syntax and terms naming nothing throw
 * CairnErrors (kind options); a regular expression that matches nothing is not an error.
 */
export function selectHosts(inventory: PatternInventory, pattern: string, opts: SelectOptions = {}): string[] {
  const terms = parseHostPattern(pattern);
  const members = membersByGroup(inventory);
  const order = new Map<string, number>();
  for (const host of inventory.hosts.keys()) order.set(host, order.size);
  const hostsOf = (term: PatternTerm) =>
    new Set(
      applySubscript(pattern, term, termHosts(pattern, term, inventory, members, order, opts.allowUnknown === true)),
    );

  const unions = terms.filter((t) => t.operator === 'union');
  let selected: Set<string>;
  if (unions.length === 0) selected = new Set(inventory.hosts.keys());
  else {
    selected = new Set();
    for (const term of unions) for (const host of hostsOf(term)) selected.add(host);
  }
  for (const term of terms.filter((t) => t.operator === 'intersection')) {
    const keep = hostsOf(term);
    selected = new Set([...selected].filter((h) => keep.has(h)));
  }
  for (const term of terms.filter((t) => t.operator === 'exclusion')) {
    for (const host of hostsOf(term)) selected.delete(host);
  }
  return [...selected].sort((a, b) => order.get(a)! - order.get(b)!);
}

/**
 * `--limit @file`: one pattern per line, `#` starts a comment, blank lines skipped; the lines are joined
 * with ":" (a union, with any `&`/`!` terms applying to the whole). Each line's syntax is checked here so
 * an error names the file and line.
 */
export function readLimitFile(path: string): string {
  const text = readTextFile(path, 'limit file');
  const patterns: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const hash = line.indexOf('#');
    const pattern = (hash >= 0 ? line.slice(0, hash) : line).trim();
    if (pattern === '') return;
    try {
      parseHostPattern(pattern);
    } catch (err) {
      if (err instanceof CairnError)
        throw inputError(err.message, { file: path, line: i + 1, col: line.indexOf(pattern) + 1 });
      throw err;
    }
    patterns.push(pattern);
  });
  if (patterns.length === 0)
    throw inputError('limit file names no hosts (only blank lines and comments)', { file: path });
  return patterns.join(':');
}
