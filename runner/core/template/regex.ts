/**
 * Python-style regular expressions (Ansible's `match`/`search`/`regex` tests and `regex_*` filters) on a
 * linear-time engine. JavaScript's RegExp backtracks: `'aaaa…b' is match('^(a+)+$')` blocks the event
 * loop for minutes, and with it Ctrl-C and SIGTERM. re2js (a pure JavaScript port of Google's RE2; no
 * native build, no download at install) runs every pattern in time linear in the input, so no pattern a
 * playbook or a managed host supplies can hang the controller. RE2 has no backreferences or lookarounds;
 * such a pattern is refused with a message saying so.
 */
import { RE2JS } from 're2js';

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

const CACHE_LIMIT = 500;
const compiled = new Map<string, RE2JS>();

export function compileRegex(pattern: string, flags: RegexFlags = {}): RE2JS {
  let bits = 0;
  if (flags.ignorecase) bits |= RE2JS.CASE_INSENSITIVE;
  if (flags.multiline) bits |= RE2JS.MULTILINE;
  if (flags.dotall) bits |= RE2JS.DOTALL;
  const key = `${bits}:${pattern}`;
  const cached = compiled.get(key);
  if (cached) return cached;
  let regex: RE2JS;
  try {
    regex = RE2JS.compile(pattern, bits);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const hint = /\\[1-9]|\(\?[=!<]/.test(pattern)
      ? ' (backreferences and lookarounds are not supported: cairn uses a linear-time engine)'
      : '';
    throw new RegexError(`invalid regular expression ${JSON.stringify(pattern)}: ${reason}${hint}`);
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

/** Python's re.sub replacement template (`\1`, `\g<1>`, `\g<name>`, `\n`) for one match. */
function expandReplacement(replacement: string, match: RegexMatch): string {
  let out = '';
  for (let i = 0; i < replacement.length; i++) {
    const ch = replacement[i]!;
    if (ch !== '\\' || i + 1 >= replacement.length) {
      out += ch;
      continue;
    }
    const rest = replacement.slice(i + 1);
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
    const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\' };
    const next = rest[0]!;
    out += Object.prototype.hasOwnProperty.call(escapes, next) ? escapes[next] : `\\${next}`;
    i += 1;
  }
  return out;
}

/** Python's re.sub(pattern, replacement, text, count). */
export function regexSub(text: string, pattern: string, replacement: string, flags?: RegexFlags, count = 0): string {
  let out = '';
  let last = 0;
  let done = 0;
  for (const match of regexAll(text, pattern, flags)) {
    if (count > 0 && done >= count) break;
    out += text.slice(last, match.index) + expandReplacement(replacement, match);
    last = match.end;
    done += 1;
  }
  return out + text.slice(last);
}

/** Python's re.escape (3.7+: only the characters special in a pattern). */
export function regexEscape(text: string): string {
  return text.replace(/[()[\]{}?*+\-|^$\\.&~# \t\n\r\v\f]/g, (c) => `\\${c}`);
}
