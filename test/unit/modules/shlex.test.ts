import { describe, expect, it } from 'vitest';
import { ShlexError, shlexSplit } from '../../../runner/core/modules/shlex.js';
import { shellWords } from '../../helpers/fake-connection.js';
import { argv } from '../../../runner/core/transport/quote.js';

// Expected words are what Python's shlex.split (POSIX mode) returns for the same input.
const table: Array<[string, string[]]> = [
  ['ls -l /etc', ['ls', '-l', '/etc']],
  ['  spaced   out  ', ['spaced', 'out']],
  [`echo 'single quoted $HOME'`, ['echo', 'single quoted $HOME']],
  [`echo "double \\"quoted\\" \\$x \\n"`, ['echo', 'double "quoted" $x \\n']],
  [`a\\ b c`, ['a b', 'c']],
  [`''`, ['']],
  [`x'y'"z"`, ['xyz']],
  [
    'echo $(touch /tmp/x); rm -rf / | cat > out',
    ['echo', '$(touch', '/tmp/x);', 'rm', '-rf', '/', '|', 'cat', '>', 'out'],
  ],
  [`it"'"s`, ["it's"]],
  ['tab\there', ['tab', 'here']],
];

describe('shlexSplit', () => {
  it.each(table)('%s', (line, words) => {
    expect(shlexSplit(line)).toEqual(words);
  });

  it('rejects unclosed quotes and a trailing backslash', () => {
    expect(() => shlexSplit(`echo 'open`)).toThrow(ShlexError);
    expect(() => shlexSplit('echo "open')).toThrow(/no closing quotation/);
    expect(() => shlexSplit('echo \\')).toThrow(/final backslash/);
  });

  it('split then quoted words reach sh as the same literal words', () => {
    for (const [line] of table) {
      const words = shlexSplit(line);
      expect(shellWords(argv(...words))).toEqual(words);
    }
  });
});
