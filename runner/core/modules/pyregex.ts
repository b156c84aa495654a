/**
 * The regular expressions modules take (lineinfile's regexp, insertafter and insertbefore, blockinfile's,
 * replace's): Python `re` patterns, as Ansible runs them, matched against text a managed host returned. They
 * go through the one compile path of the expression filters (../template/regex.ts): Python syntax translated
 * to RE2, and matched by re2js in time linear in the text, so neither a hostile file nor a pathological
 * pattern can hold the controller (a backtracking RegExp took minutes on `^(a+)+$` over 30 characters, with
 * Ctrl-C and SIGTERM unheard). What RE2 cannot run (backreferences, lookaround) is refused by name.
 *
 * `pythonRegex` returns a small RegExp-shaped object (exec, test, source) rather than a RegExp, so callers
 * written against RegExp keep working; do not rebuild a RegExp from `source`, that brings backtracking back.
 */
import {
  compileRegex,
  expandReplacement,
  regexAll,
  regexSearch,
  regexSubn,
  RegexError,
  type RegexFlags,
  type RegexMatch,
} from '../template/regex.js';

export { RegexError, type RegexFlags };

/** A compiled Python pattern. Matching never backtracks; `exec` is Python's `re.search` (first match anywhere). */
export interface PythonRegex {
  /** The pattern as written (Python syntax). */
  readonly source: string;
  readonly flags: Readonly<RegexFlags>;
  /** How many capturing groups the pattern has, and the names of the named ones. */
  readonly groupCount: number;
  readonly groupNames: readonly string[];
  /** The first match anywhere in `text`, shaped as RegExp's (an unmatched group is undefined), or null. */
  exec(text: string): RegExpExecArray | null;
  test(text: string): boolean;
  /** Every non-overlapping match, left to right (Python's re.finditer). */
  matchAll(text: string): RegExpExecArray[];
  /**
   * Python's re.subn: every match (or the first `count`) replaced by the expanded template (`\1`, `\g<name>`,
   * see expandBackrefs), and how many were replaced.
   */
  sub(text: string, template: string, count?: number): { text: string; count: number };
}

function execArray(text: string, match: RegexMatch): RegExpExecArray {
  const groups = match.groups.map((group) => group ?? undefined);
  const named = Object.keys(match.named).length > 0 ? { ...match.named } : undefined;
  const array = Object.assign(groups, {
    index: match.index,
    input: text,
    groups: named && Object.fromEntries(Object.entries(named).map(([name, value]) => [name, value ?? undefined])),
  });
  return array as unknown as RegExpExecArray;
}

/** The RegExpExecArray's groups as the shared engine's match, for template expansion. */
function matchOfExec(match: RegExpExecArray): RegexMatch {
  const groups = Array.from(match, (group) => group ?? null);
  const named: Record<string, string | null> = {};
  for (const [name, value] of Object.entries(match.groups ?? {})) named[name] = value ?? null;
  return { index: match.index, end: match.index + (match[0]?.length ?? 0), groups, named };
}

/**
 * Compile a Python-style pattern. Throws a RegexError naming `what` and the pattern when it is invalid or
 * uses a construct RE2 cannot run (the message names the construct: "the backreference \1", "the lookahead
 * (?=...)"); callers turn it into a task error at the task's location.
 */
export function pythonRegex(pattern: string, what = 'regexp', flags: RegexFlags = {}): PythonRegex {
  let compiled: ReturnType<typeof compileRegex>;
  try {
    compiled = compileRegex(pattern, flags);
  } catch (err) {
    if (!(err instanceof RegexError)) throw err;
    throw new RegexError(`${what}: ${err.message}`);
  }
  return {
    source: pattern,
    flags: { ...flags },
    groupCount: compiled.groupCount(),
    groupNames: Object.keys(compiled.namedGroups()),
    exec(text) {
      const match = regexSearch(text, pattern, flags);
      return match ? execArray(text, match) : null;
    },
    test(text) {
      return regexSearch(text, pattern, flags) !== null;
    },
    matchAll(text) {
      return regexAll(text, pattern, flags).map((match) => execArray(text, match));
    },
    sub(text, template, count = 0) {
      return regexSubn(text, pattern, template, flags, count);
    },
  };
}

/**
 * Python's `match.expand(template)`: \1, \g<1>, \g<name>, octal and the escapes \n \t \\ ...; one
 * implementation with the regex_replace filter. A group the pattern does not have is a RegexError.
 */
export function expandBackrefs(template: string, match: RegExpExecArray): string {
  return expandReplacement(template, matchOfExec(match));
}

/**
 * Compile a module's pattern arguments before anything runs on the host, and check a backrefs template
 * (`templateArg`, expanded from the match of pattern `from`) against that pattern's groups. A bad pattern,
 * or one RE2 cannot run, is a task error built by `fail` (the module's argError: host and task location),
 * never a failure after the probe. Messages start with `module what`.
 */
export function checkRegexArgs(
  module: string,
  patterns: Record<string, string | undefined>,
  fail: (message: string) => Error,
  backrefs?: { from: string; template: string; templateArg: string },
): void {
  const attempt = (compile: () => void): void => {
    try {
      compile();
    } catch (err) {
      if (err instanceof RegexError) throw fail(err.message);
      throw err;
    }
  };
  for (const [what, pattern] of Object.entries(patterns)) {
    if (pattern === undefined) continue;
    attempt(() => {
      const regex = pythonRegex(pattern, `${module} ${what}`);
      if (backrefs?.from !== what) return;
      const unmatched: RegexMatch = {
        index: 0,
        end: 0,
        groups: Array.from({ length: regex.groupCount + 1 }, () => null),
        named: Object.fromEntries(regex.groupNames.map((name) => [name, null])),
      };
      try {
        expandReplacement(backrefs.template, unmatched);
      } catch (err) {
        if (err instanceof RegexError) throw new RegexError(`${module} ${backrefs.templateArg}: ${err.message}`);
        throw err;
      }
    });
  }
}
