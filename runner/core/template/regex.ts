/**
 * Python-style regular expressions on a linear-time engine: the one compile path for every pattern a
 * playbook or a managed host supplies (Ansible's `match`/`search`/`regex` tests and `regex_*` filters here,
 * and the lineinfile/blockinfile arguments through ../modules/pyregex.ts). JavaScript's RegExp backtracks:
 * `'aaaa…b' is match('^(a+)+$')`, or a hostile file under a careless lineinfile regexp, blocks the event loop
 * for minutes, and with it Ctrl-C and SIGTERM. re2js (a pure JavaScript port of Google's RE2; no native build,
 * no download at install) runs every pattern in time linear in the input.
 *
 * Patterns are written in Python's `re` syntax (Ansible runs Python). `translatePythonPattern` maps the
 * spellings RE2 reads differently (\Z, octal and \u escapes, `{,n}`, (?x) verbose mode, (?#…) comments, a
 * leading `]` or a `[` inside a set) and refuses, by name, what RE2 cannot do in linear time: backreferences,
 * lookahead, lookbehind, atomic groups, possessive quantifiers and conditional groups.
 *
 * Known differences from Python, all documented in docs/ansible-compat.md: \d \w \s \b are ASCII (Python's
 * re.ASCII), and `$` without multiline matches only at the very end of the text (Python's also matches
 * before a final newline; lineinfile and blockinfile match each line without its newline, as Ansible sees it).
 */
import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';

let engine: typeof RE2JS | undefined;
/**
 * re2js, loaded on the first pattern: most plays use no regex, and re2js is the largest module a play would
 * otherwise load (266 KB of the bundle's chunks; issue 17). A synchronous require (re2js ships CommonJS) keeps
 * compileRegex synchronous; only this file loads re2js, so its classes never meet those of an ESM copy.
 */
function re2(): typeof RE2JS {
  engine ??= (createRequire(import.meta.url)('re2js') as { RE2JS: typeof RE2JS }).RE2JS;
  return engine;
}

/** A pattern or replacement refused: the message names it. */
export class RegexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegexError';
  }
}

export interface RegexFlags {
  ignorecase?: boolean;
  multiline?: boolean;
  dotall?: boolean;
}

/** Why RE2 has none of these: each needs backtracking (or memory exponential in the pattern) to run. */
const LINEAR_TIME = 'cairn runs regular expressions on a linear-time engine (RE2), which has no';

function unsupported(pattern: string, construct: string, family: string): RegexError {
  return new RegexError(
    `invalid regular expression ${JSON.stringify(pattern)}: ${construct} is not supported: ${LINEAR_TIME} ${family}`,
  );
}

function refused(pattern: string, reason: string): RegexError {
  return new RegexError(`invalid regular expression ${JSON.stringify(pattern)}: ${reason}`);
}

const isOctal = (ch: string | undefined): boolean => ch !== undefined && ch >= '0' && ch <= '7';
const isSpace = (ch: string): boolean => /\s/.test(ch);
const hexEscape = (code: number): string => `\\x{${code.toString(16)}}`;

/**
 * Python `re` syntax to RE2 syntax, or a RegexError naming the construct RE2 cannot run. One pass over the
 * pattern, tracking sets (`[...]`) and groups (for scoped verbose mode, `(?x:...)`).
 */
export function translatePythonPattern(pattern: string): string {
  let out = '';
  let inSet = false;
  // The verbose flag of each open group; index 0 is the whole pattern.
  const verbose: boolean[] = [false];
  // The last thing emitted was a quantifier: a `+` after it would make it possessive.
  let afterQuantifier = false;
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i]!;
    const quantified: boolean = afterQuantifier;
    afterQuantifier = false;
    if (!inSet && verbose[verbose.length - 1]) {
      if (isSpace(ch)) {
        i += 1;
        afterQuantifier = quantified;
        continue;
      }
      if (ch === '#') {
        while (i < pattern.length && pattern[i] !== '\n') i += 1;
        afterQuantifier = quantified;
        continue;
      }
    }
    if (ch === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw refused(pattern, 'it ends with a lone backslash');
      if (next === 'Z' && !inSet) {
        out += '\\z';
        i += 2;
      } else if (next >= '0' && next <= '9') {
        // Python: \0 and three octal digits are an octal escape (so is any digit in a set); else a group number.
        let digits = next;
        if (next === '0' || inSet) {
          while (digits.length < 3 && isOctal(pattern[i + 1 + digits.length])) digits += pattern[i + 1 + digits.length];
        } else if (isOctal(next) && isOctal(pattern[i + 2]) && isOctal(pattern[i + 3])) {
          digits = pattern.slice(i + 1, i + 4);
        } else {
          const group = /^[0-9]{1,2}/.exec(pattern.slice(i + 1))![0];
          throw unsupported(pattern, `the backreference \\${group}`, 'backreferences');
        }
        if (/[89]/.test(digits)) throw refused(pattern, `\\${digits} is not an octal escape`);
        out += hexEscape(parseInt(digits, 8));
        i += 1 + digits.length;
      } else if (next === 'u' || next === 'U') {
        const width = next === 'u' ? 4 : 8;
        const hex = pattern.slice(i + 2, i + 2 + width);
        if (!new RegExp(`^[0-9a-fA-F]{${width}}$`).test(hex))
          throw refused(pattern, `\\${next} needs ${width} hexadecimal digits`);
        out += hexEscape(parseInt(hex, 16));
        i += 2 + width;
      } else if (next === 'N') {
        throw refused(pattern, 'named characters (\\N{...}) are not supported: write the character itself');
      } else if (next === 'b' && inSet) {
        out += '\\x08';
        i += 2;
      } else {
        out += ch + next;
        i += 2;
      }
      continue;
    }
    if (inSet) {
      if (ch === ']') inSet = false;
      // Python reads `[` inside a set as itself; RE2 would start a POSIX class ([:alpha:]).
      out += ch === '[' ? '\\[' : ch;
      i += 1;
      continue;
    }
    if (ch === '[') {
      inSet = true;
      out += ch;
      i += 1;
      if (pattern[i] === '^') {
        out += '^';
        i += 1;
      }
      // A `]` first in a set is a literal in Python.
      if (pattern[i] === ']') {
        out += '\\]';
        i += 1;
      }
      continue;
    }
    if (ch === '(') {
      const rest = pattern.slice(i);
      const named = /^\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      if (named) {
        out += `(?P<${named[1]}>`;
        verbose.push(verbose[verbose.length - 1]!);
        i += named[0].length;
        continue;
      }
      if (rest.startsWith('(?P=')) {
        const name = /^\(\?P=([^)]*)\)/.exec(rest)?.[1] ?? '';
        throw unsupported(pattern, `the backreference (?P=${name})`, 'backreferences');
      }
      if (rest.startsWith('(?=') || rest.startsWith('(?!'))
        throw unsupported(pattern, `the lookahead ${rest.slice(0, 3)}...)`, 'lookahead or lookbehind');
      if (rest.startsWith('(?<=') || rest.startsWith('(?<!'))
        throw unsupported(pattern, `the lookbehind ${rest.slice(0, 4)}...)`, 'lookahead or lookbehind');
      if (rest.startsWith('(?>')) throw unsupported(pattern, 'the atomic group (?>...)', 'atomic groups');
      if (rest.startsWith('(?(')) throw unsupported(pattern, 'the conditional group (?(...)...)', 'conditional groups');
      if (rest.startsWith('(?#')) {
        const end = pattern.indexOf(')', i);
        if (end === -1) throw refused(pattern, 'a (?# comment is not closed');
        i = end + 1;
        afterQuantifier = quantified;
        continue;
      }
      const flagged = /^\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?(:|\))/.exec(rest);
      if (flagged && (flagged[1] || flagged[2] || flagged[3] === ':')) {
        const [whole, on = '', off = '', end] = flagged;
        for (const flag of on + off) {
          if (!'aiLmsux'.includes(flag)) throw refused(pattern, `unknown flag "${flag}" in ${whole}`);
          if (flag === 'L')
            throw refused(pattern, 'the locale flag (?L) is for bytes patterns, which cairn has none of');
        }
        // RE2's classes are ASCII already (Python's (?a)); (?u) is Python 3's default; (?x) is read here.
        const keep = (flags: string) => flags.replace(/[aux]/g, '');
        const verboseHere = on.includes('x') ? true : off.includes('x') ? false : verbose[verbose.length - 1]!;
        const spelled = keep(on) + (keep(off) ? `-${keep(off)}` : '');
        if (end === ')') {
          // A global flag group: Python applies it to the whole pattern.
          if (on.includes('x')) verbose[0] = true;
          if (spelled) out += `(?${spelled})`;
        } else {
          out += `(?${spelled}:`;
          verbose.push(verboseHere);
        }
        i += whole.length;
        continue;
      }
      if (rest.startsWith('(?')) throw refused(pattern, `unknown group syntax ${rest.slice(0, 3)}`);
      out += '(';
      verbose.push(verbose[verbose.length - 1]!);
      i += 1;
      continue;
    }
    if (ch === ')') {
      if (verbose.length > 1) verbose.pop();
      out += ch;
      i += 1;
      continue;
    }
    if (ch === '{') {
      const repeat = /^\{([0-9]*)(,([0-9]*))?\}/.exec(pattern.slice(i));
      if (repeat && (repeat[1] || repeat[3])) {
        // Python's {,n} is {0,n}; RE2 would read it as text.
        out += `{${repeat[1] || '0'}${repeat[2] !== undefined ? `,${repeat[3]}` : ''}}`;
        i += repeat[0].length;
        afterQuantifier = true;
        continue;
      }
    }
    if (ch === '+' && quantified)
      throw unsupported(pattern, `a possessive quantifier (the "+" at offset ${i})`, 'possessive quantifiers');
    if (ch === '*' || ch === '+' || ch === '?') afterQuantifier = !(ch === '?' && quantified);
    out += ch;
    i += 1;
  }
  return out;
}

const CACHE_LIMIT = 500;
const compiled = new Map<string, RE2JS>();

export function compileRegex(pattern: string, flags: RegexFlags = {}): RE2JS {
  const RE2 = re2();
  let bits = 0;
  if (flags.ignorecase) bits |= RE2.CASE_INSENSITIVE;
  if (flags.multiline) bits |= RE2.MULTILINE;
  if (flags.dotall) bits |= RE2.DOTALL;
  const key = `${bits}:${pattern}`;
  const cached = compiled.get(key);
  if (cached) return cached;
  let regex: RE2JS;
  const translated = translatePythonPattern(pattern);
  try {
    regex = RE2.compile(translated, bits);
  } catch (err) {
    throw refused(pattern, err instanceof Error ? err.message : String(err));
  }
  if (compiled.size >= CACHE_LIMIT) compiled.clear();
  compiled.set(key, regex);
  return regex;
}

export interface RegexMatch {
  index: number;
  end: number;
  /** Group 0 is the whole match; an unmatched group is null. */
  groups: Array<string | null>;
  named: Record<string, string | null>;
}

function matchOf(matcher: ReturnType<RE2JS['matcher']>, regex: RE2JS): RegexMatch {
  const groups: Array<string | null> = [];
  for (let g = 0; g <= regex.groupCount(); g++) groups.push(matcher.group(g));
  const named: Record<string, string | null> = {};
  for (const name of Object.keys(regex.namedGroups())) named[name] = matcher.group(name);
  return { index: matcher.start(), end: matcher.end(), groups, named };
}

/** Python's re.search: the first match anywhere. */
export function regexSearch(text: string, pattern: string, flags?: RegexFlags): RegexMatch | null {
  const regex = compileRegex(pattern, flags);
  const matcher = regex.matcher(text);
  return matcher.find() ? matchOf(matcher, regex) : null;
}

/** Python's re.match: a match starting at the beginning. */
export function regexMatch(text: string, pattern: string, flags?: RegexFlags): RegexMatch | null {
  const regex = compileRegex(pattern, flags);
  const matcher = regex.matcher(text);
  return matcher.lookingAt() ? matchOf(matcher, regex) : null;
}

/** Every non-overlapping match, left to right (Python's re.finditer). */
export function regexAll(text: string, pattern: string, flags?: RegexFlags): RegexMatch[] {
  const regex = compileRegex(pattern, flags);
  const matcher = regex.matcher(text);
  const out: RegexMatch[] = [];
  while (matcher.find()) out.push(matchOf(matcher, regex));
  return out;
}

/** Python's template escapes (sre_parse's ESCAPES); any other ASCII letter after a backslash is an error. */
const TEMPLATE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
};

/**
 * Python's `match.expand(template)`, which re.sub uses for each match: `\1`..`\99`, `\g<1>`, `\g<name>`,
 * `\0` and three-digit octal escapes, and the escapes above. A group the pattern does not have is an error;
 * a group that did not take part in the match is empty (Python 3.5+).
 */
export function expandReplacement(replacement: string, match: RegexMatch): string {
  let out = '';
  for (let i = 0; i < replacement.length; i++) {
    const ch = replacement[i]!;
    if (ch !== '\\' || i + 1 >= replacement.length) {
      out += ch;
      continue;
    }
    const rest = replacement.slice(i + 1);
    const octal = /^(?:0[0-7]{0,2}|[0-3][0-7]{2})/.exec(rest);
    if (octal) {
      out += String.fromCharCode(parseInt(octal[0], 8));
      i += octal[0].length;
      continue;
    }
    const numbered = /^[0-9]{1,2}/.exec(rest);
    const group = /^g<([A-Za-z_][A-Za-z0-9_]*|[0-9]+)>/.exec(rest);
    if (numbered || group) {
      const ref = numbered ? numbered[0] : group![1]!;
      const value = /^[0-9]+$/.test(ref) ? match.groups[Number(ref)] : match.named[ref];
      if (value === undefined)
        throw new RegexError(`the replacement refers to group ${ref}, which the pattern does not have`);
      out += value ?? '';
      i += numbered ? numbered[0].length : group![0].length;
      continue;
    }
    const next = rest[0]!;
    if (rest.startsWith('g'))
      throw new RegexError(`bad group reference in the replacement ${JSON.stringify(replacement)}`);
    if (Object.prototype.hasOwnProperty.call(TEMPLATE_ESCAPES, next)) out += TEMPLATE_ESCAPES[next];
    else if (/[A-Za-z]/.test(next))
      throw new RegexError(`bad escape \\${next} in the replacement ${JSON.stringify(replacement)}`);
    else out += `\\${next}`;
    i += 1;
  }
  return out;
}

/** Python's re.subn(pattern, replacement, text, count): the new text and how many matches were replaced. */
export function regexSubn(
  text: string,
  pattern: string,
  replacement: string,
  flags?: RegexFlags,
  count = 0,
): { text: string; count: number } {
  let out = '';
  let last = 0;
  let done = 0;
  for (const match of regexAll(text, pattern, flags)) {
    if (count > 0 && done >= count) break;
    out += text.slice(last, match.index) + expandReplacement(replacement, match);
    last = match.end;
    done += 1;
  }
  return { text: out + text.slice(last), count: done };
}

/** Python's re.sub(pattern, replacement, text, count). */
export function regexSub(text: string, pattern: string, replacement: string, flags?: RegexFlags, count = 0): string {
  return regexSubn(text, pattern, replacement, flags, count).text;
}

/** Python's re.escape (3.7+: only the characters special in a pattern). */
export function regexEscape(text: string): string {
  return text.replace(/[()[\]{}?*+\-|^$\\.&~# \t\n\r\v\f]/g, (c) => `\\${c}`);
}
