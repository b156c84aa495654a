/**
 * Split a command line into words as Python's `shlex.split` (POSIX mode) does, which is what Ansible's
 * command module and `validate` use: quotes group, backslashes escape, and nothing else of the shell
 * (no variables, globs, pipes or redirections) has any meaning.
 */

export class ShlexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShlexError';
  }
}

/** Characters that end a word. */
const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
/** Inside double quotes a backslash only escapes these (as in POSIX sh and shlex). */
const DOUBLE_QUOTE_ESCAPABLE = new Set(['\\', '"', '$', '`', '\n']);

export function shlexSplit(line: string): string[] {
  const words: string[] = [];
  let word = '';
  /** A word has started (so '' counts as a word). */
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const ch = line[i]!;
    if (WHITESPACE.has(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw new ShlexError(`no closing quotation (') in ${JSON.stringify(line)}`);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      i++;
      let closed = false;
      while (i < line.length) {
        const c = line[i]!;
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        if (c === '\\' && i + 1 < line.length && DOUBLE_QUOTE_ESCAPABLE.has(line[i + 1]!)) {
          word += line[i + 1];
          i += 2;
        } else {
          word += c;
          i++;
        }
      }
      if (!closed) throw new ShlexError(`no closing quotation (") in ${JSON.stringify(line)}`);
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 >= line.length)
        throw new ShlexError(`no escaped character after the final backslash in ${JSON.stringify(line)}`);
      word += line[i + 1];
      inWord = true;
      i += 2;
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
