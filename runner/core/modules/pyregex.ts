/**
 * Regular expressions written for Ansible are Python `re` patterns. JavaScript's RegExp reads nearly all of
 * them; this translates the Python-only spellings that roles do use (named groups, \A and \Z) and expands
 * Python-style replacement templates for `backrefs`.
 */

/** Compile a Python-style pattern; throws an Error naming the pattern when it is invalid. */
export function pythonRegex(pattern: string, what = 'regexp'): RegExp {
  const translated = pattern
    .replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, '(?<$1>')
    .replace(/\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/g, '\\k<$1>')
    .replace(/\\A/g, '^')
    .replace(/\\Z/g, '$');
  try {
    return new RegExp(translated);
  } catch (err) {
    throw new Error(
      `${what} ${JSON.stringify(pattern)} is not a valid regular expression: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

/** Python's `match.expand(template)`: \1, \g<1>, \g<name>, and the escapes \n \t \\ . */
export function expandBackrefs(template: string, match: RegExpExecArray): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    if (ch !== '\\' || i + 1 >= template.length) {
      out += ch;
      continue;
    }
    const next = template[i + 1]!;
    if (/\d/.test(next)) {
      const digits = /^\d{1,2}/.exec(template.slice(i + 1))![0];
      out += match[Number(digits)] ?? '';
      i += digits.length;
    } else if (next === 'g') {
      const named = /^g<([^>]+)>/.exec(template.slice(i + 1));
      if (!named) throw new Error(`bad group reference in ${JSON.stringify(template)}`);
      const ref = named[1]!;
      out += (/^\d+$/.test(ref) ? match[Number(ref)] : match.groups?.[ref]) ?? '';
      i += named[0].length;
    } else {
      const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\' };
      out += escapes[next] ?? `\\${next}`;
      i += 1;
    }
  }
  return out;
}
