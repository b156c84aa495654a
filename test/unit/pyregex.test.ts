/**
 * The one regex path (runner/core/template/regex.ts, used by the filters and, through
 * runner/core/modules/pyregex.ts, by lineinfile and blockinfile): Python `re` syntax on re2js.
 * Expected matches are CPython 3.11's `re.search(pattern, text).group(0)` (checked with python3 when the rows
 * were written); the refusals name the construct RE2 cannot run.
 */
import { describe, expect, it } from 'vitest';
import { blockinfileModule } from '../../runner/core/modules/blockinfile.js';
import { editLineInFile, lineinfileModule } from '../../runner/core/modules/lineinfile.js';
import { checkRegexArgs, expandBackrefs, pythonRegex, RegexError } from '../../runner/core/modules/pyregex.js';
import { regexSearch, regexSub } from '../../runner/core/template/regex.js';
import { CairnError } from '../../runner/core/util/errors.js';
import { FakeConnection, contextFor } from '../helpers/fake-connection.js';

// [pattern, text, Python's group(0) or null]
const searches: Array<[string, string, string | null]> = [
  ['a\\Z', 'xa', 'a'],
  ['a\\Z', 'xa\n', null],
  ['\\Ab', 'ab', null],
  ['(?P<key>\\w+)=(?P<val>\\d+)', 'x port=22', 'port=22'],
  ['(?x) port \\s* = \\s* (\\d+)  # the port\n', 'port = 22', 'port = 22'],
  ['[]a]+', 'x]a]', ']a]'],
  ['[[:a]+', 'x:[a', ':[a'],
  ['a{,2}b', 'aaab', 'aab'],
  ['\\101\\x42\\u0043', 'ABC', 'ABC'],
  ['(?i)port', 'PORT', 'PORT'],
  ['p(?#comment)ort', 'port', 'port'],
  ['(?s)a.b', 'a\nb', 'a\nb'],
  ['^b', 'a\nb', null],
  ['(?m)^b', 'a\nb', 'b'],
  ['a+?', 'aaa', 'a'],
];

describe('Python patterns on the linear-time engine', () => {
  it.each(searches)('%j over %j finds %j, as CPython', (pattern, text, expected) => {
    expect(regexSearch(text, pattern)?.groups[0] ?? null).toBe(expected);
    expect(pythonRegex(pattern).exec(text)?.[0] ?? null).toBe(expected);
  });

  it('named groups, replacement templates and escapes follow Python', () => {
    expect(regexSub('a=1 b=2', '(?P<k>\\w+)=(\\d+)', '\\g<k>: \\2\\n')).toBe('a: 1\n b: 2\n');
    const match = pythonRegex('(a)|b').exec('b')!;
    expect(match[1]).toBeUndefined();
    expect(expandBackrefs('[\\1]', match)).toBe('[]');
    expect(regexSub('a', 'a', '\\101\\0')).toBe('A\0');
    expect(() => regexSub('a', 'a', '\\d')).toThrow(/bad escape \\d/);
    const port = pythonRegex('^(?P<key>Port)\\s+(\\d+)$').exec('Port 22')!;
    expect(port.groups).toEqual({ key: 'Port' });
    expect(expandBackrefs('\\g<key> 2\\2', port)).toBe('Port 222');
  });

  it('sub is re.subn and keeps flags (the replace module calls it with multiline)', () => {
    const regex = pythonRegex('^#(\\w+)', 'regexp', { multiline: true });
    expect(regex.sub('#a\n#b\nc', '\\1')).toEqual({ text: 'a\nb\nc', count: 2 });
    expect(regex.sub('#a\n#b\nc', '\\1', 1)).toEqual({ text: 'a\n#b\nc', count: 1 });
    expect(regex.matchAll('#a\n#b').map((m) => m[1])).toEqual(['a', 'b']);
  });

  // [pattern, the construct the message must name]
  const refusals: Array<[string, RegExp]> = [
    ['(a)\\1', /the backreference \\1 is not supported: .*linear-time engine \(RE2\), which has no backreferences/],
    ['(?P<n>a)(?P=n)', /the backreference \(\?P=n\)/],
    ['a(?=b)', /the lookahead \(\?=\.\.\.\)/],
    ['a(?!b)', /the lookahead \(\?!\.\.\.\)/],
    ['(?<=a)b', /the lookbehind \(\?<=\.\.\.\)/],
    ['(?<!a)b', /the lookbehind \(\?<!\.\.\.\)/],
    ['(?>a+)b', /the atomic group/],
    ['a*+b', /a possessive quantifier \(the "\+" at offset 2\)/],
    ['(?(1)a|b)', /the conditional group/],
    ['\\N{EM DASH}', /named characters/],
  ];
  it.each(refusals)('%j is refused naming the construct', (pattern, message) => {
    expect(() => pythonRegex(pattern, 'regexp')).toThrow(RegexError);
    expect(() => pythonRegex(pattern, 'regexp')).toThrow(message);
    expect(() => regexSearch('', pattern)).toThrow(message);
  });

  // JavaScript's backtracking RegExp needs about 2^n steps for these over n characters: with n in the tens
  // of thousands the test could not end before the heat death of the universe. Linear time ends it at once
  // (no timing is asserted: the point is that it ends).
  it('catastrophic patterns over a hostile line end', () => {
    const hostile = `${'a'.repeat(50_000)}!`;
    expect(pythonRegex('^(a+)+$').test(hostile)).toBe(false);
    expect(pythonRegex('^(a|aa)*$').test(hostile)).toBe(false);
    expect(pythonRegex('(\\s*a+\\s*)*$').test(`${' a'.repeat(20_000)}!`)).toBe(true);
    const edit = editLineInFile(`x\n${hostile}\n`, { regexp: '^(a+)+$', line: 'replaced' });
    expect(edit.text).toBe(`x\n${hostile}\nreplaced\n`);
  });
});

describe('module regex arguments are checked before the host is probed', () => {
  const ctx = () => contextFor(new FakeConnection([]));

  it('lineinfile names the argument, the construct, the host and the task location; nothing runs', async () => {
    const context = ctx();
    const args = { path: '/etc/x', regexp: '^(\\w+)=\\1$', line: 'x' };
    const error = await lineinfileModule.check(context, args).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CairnError);
    expect(String((error as Error).message)).toMatch(
      /^lineinfile regexp: invalid regular expression "\^\(\\\\w\+\)=\\\\1\$": the backreference \\1 is not supported/,
    );
    expect((error as CairnError).location).toEqual(context.taskLocation);
    expect((error as Error).message).toContain(`host ${context.host}`);
    expect((context.conn as FakeConnection).calls).toHaveLength(0);
  });

  it('lineinfile insertafter/insertbefore and blockinfile are checked; BOF and EOF are not patterns', async () => {
    await expect(lineinfileModule.check(ctx(), { path: '/x', line: 'a', insertafter: '(?<=a)' })).rejects.toThrow(
      /lineinfile insertafter: .*the lookbehind/,
    );
    await expect(lineinfileModule.check(ctx(), { path: '/x', line: 'a', insertbefore: 'x(?!y)' })).rejects.toThrow(
      /lineinfile insertbefore: .*the lookahead/,
    );
    await expect(blockinfileModule.check(ctx(), { path: '/x', block: 'a', insertafter: '(a)\\1' })).rejects.toThrow(
      /blockinfile insertafter: .*the backreference \\1/,
    );
    expect(() => checkRegexArgs('lineinfile', { insertafter: undefined }, (m) => new Error(m))).not.toThrow();
  });

  it('a backrefs line that names a group the regexp does not have is refused before the probe', async () => {
    const context = ctx();
    await expect(
      lineinfileModule.check(context, { path: '/x', regexp: '^(a)=', line: '\\2', backrefs: true }),
    ).rejects.toThrow(/lineinfile line: the replacement refers to group 2, which the pattern does not have/);
    expect((context.conn as FakeConnection).calls).toHaveLength(0);
  });
});
