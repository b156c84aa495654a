/**
 * editLineInFile follows Ansible's lineinfile `present()`/`absent()` (ansible/modules/lineinfile.py); each
 * row is input text + arguments -> output text and message, as that code computes them.
 */
import { quote } from '../../../runner/core/transport/quote.js';
import { describe, expect, it } from 'vitest';
import {
  editLineInFile,
  lineinfileModule,
  readLines,
  type LineEditArgs,
} from '../../../runner/core/modules/lineinfile.js';
import { FakeConnection, contextFor, fileProbeOutput } from '../../helpers/fake-connection.js';

type Row = [string, string | undefined, LineEditArgs, string, string];

const rows: Row[] = [
  ['appends a missing line', 'a\nb\n', { line: 'c' }, 'a\nb\nc\n', 'line added'],
  ['adds a newline before appending to a file without one', 'a\nb', { line: 'c' }, 'a\nb\nc\n', 'line added'],
  ['creates content for a missing file', undefined, { line: 'only' }, 'only\n', 'line added'],
  ['leaves an exact line alone', 'a\nc\nb\n', { line: 'c' }, 'a\nc\nb\n', ''],
  [
    'replaces the last regexp match',
    'x=1\ny=2\nx=3\n',
    { regexp: '^x=', line: 'x=9' },
    'x=1\ny=2\nx=9\n',
    'line replaced',
  ],
  [
    'firstmatch replaces the first match',
    'x=1\ny=2\nx=3\n',
    { regexp: '^x=', line: 'x=9', firstmatch: true },
    'x=9\ny=2\nx=3\n',
    'line replaced',
  ],
  [
    'a regexp with no match but the exact line present changes nothing',
    'a\nPort 22\n',
    { regexp: '^#Port', line: 'Port 22' },
    'a\nPort 22\n',
    '',
  ],
  ['a regexp with no match appends', 'a\n', { regexp: '^Port', line: 'Port 22' }, 'a\nPort 22\n', 'line added'],
  [
    '$ matches before the newline as in Python',
    'Port 2222\n',
    { regexp: '^Port \\d+$', line: 'Port 22' },
    'Port 22\n',
    'line replaced',
  ],
  [
    'insertafter the last matching line',
    '[a]\nk=1\n[a]\nk=2\n',
    { line: 'new', insertafter: '^\\[a\\]' },
    '[a]\nk=1\n[a]\nnew\nk=2\n',
    'line added',
  ],
  [
    'insertafter firstmatch',
    '[a]\nk=1\n[a]\n',
    { line: 'new', insertafter: '^\\[a\\]', firstmatch: true },
    '[a]\nnew\nk=1\n[a]\n',
    'line added',
  ],
  [
    'insertafter a last line without newline',
    'k=1\n[a]',
    { line: 'new', insertafter: '^\\[a\\]' },
    'k=1\n[a]\nnew\n',
    'line added',
  ],
  [
    'insertafter that does not match appends',
    'k=1\n',
    { line: 'new', insertafter: '^nomatch' },
    'k=1\nnew\n',
    'line added',
  ],
  [
    'insertbefore the last matching line',
    'a\nb\nend\n',
    { line: 'new', insertbefore: '^end' },
    'a\nb\nnew\nend\n',
    'line added',
  ],
  ['insertbefore BOF', 'a\n', { line: '#!/bin/sh', insertbefore: 'BOF' }, '#!/bin/sh\na\n', 'line added'],
  ['insertafter EOF', 'a\n', { line: 'z', insertafter: 'EOF' }, 'a\nz\n', 'line added'],
  [
    'regexp wins over insertafter when it matches',
    'a\nx=1\n',
    { regexp: '^x=', line: 'x=2', insertafter: '^a' },
    'a\nx=2\n',
    'line replaced',
  ],
  [
    'backrefs expand groups',
    'listen 80 default;\n',
    { regexp: '^listen (\\d+) (\\w+);', line: 'listen \\1 \\2_server;', backrefs: true },
    'listen 80 default_server;\n',
    'line replaced',
  ],
  [
    'backrefs with named groups (Python syntax)',
    'port=80\n',
    { regexp: '^port=(?P<n>\\d+)$', line: 'port=\\g<n>0', backrefs: true },
    'port=800\n',
    'line replaced',
  ],
  ['backrefs without a match do nothing', 'a\n', { regexp: '^nomatch(.*)', line: '\\1', backrefs: true }, 'a\n', ''],
  [
    'search_string matches literally',
    'a.b=1\naxb=2\n',
    { search_string: 'a.b', line: 'a.b=9' },
    'a.b=9\naxb=2\n',
    'line replaced',
  ],
  [
    'absent removes every regexp match',
    'x=1\ny\nx=2\n',
    { state: 'absent', regexp: '^x=' },
    'y\n',
    '2 line(s) removed',
  ],
  [
    'absent removes exact lines only',
    'keep me\nme\n',
    { state: 'absent', line: 'me' },
    'keep me\n',
    '1 line(s) removed',
  ],
  ['absent with nothing to remove', 'a\n', { state: 'absent', line: 'zz' }, 'a\n', ''],
  [
    'a value with shell syntax is only text',
    'a\n',
    { line: `v='$(touch /tmp/x)'` },
    `a\nv='$(touch /tmp/x)'\n`,
    'line added',
  ],
];

describe('editLineInFile', () => {
  it.each(rows)('%s', (_name, original, args, text, msg) => {
    const edit = editLineInFile(original, args);
    expect(edit.text).toBe(text);
    expect(edit.msg).toBe(msg);
    expect(edit.changed).toBe(text !== (original ?? '') || (original === undefined && text !== ''));
  });

  it('is idempotent: applying the result again changes nothing', () => {
    for (const [, original, args] of rows) {
      if (args.backrefs) continue;
      const once = editLineInFile(original, args);
      expect(editLineInFile(once.text, args).changed).toBe(false);
    }
  });

  it('readLines keeps line endings like Python readlines()', () => {
    expect(readLines('a\r\nb\nc')).toEqual(['a\r\n', 'b\n', 'c']);
    expect(readLines('')).toEqual([]);
  });

  it('an invalid regexp is named', () => {
    expect(() => editLineInFile('a', { regexp: '(', line: 'x' })).toThrow(
      /regexp: invalid regular expression "\(": .*missing closing \)/,
    );
  });
});

describe('lineinfile module', () => {
  it('check plans from one probe; apply writes the computed text atomically (in the script), with become', async () => {
    const conn = new FakeConnection([
      {
        match: '::cairn-section:: file',
        reply: { stdout: fileProbeOutput({ content: 'PermitRootLogin yes\n', mode: '600' }) },
      },
      { match: '.cairn-tmp.', reply: { stdout: '' } },
    ]);
    const ctx = contextFor(conn, { become: true, becomeUser: 'root' });
    const args = { path: '/etc/ssh/sshd_config', regexp: '^PermitRootLogin', line: 'PermitRootLogin no' };
    const plan = await lineinfileModule.check(ctx, args);
    expect(plan).toMatchObject({ changed: true, actions: ['update /etc/ssh/sshd_config: line replaced'] });
    expect(plan.diffs).toEqual([
      { path: '/etc/ssh/sshd_config', before: 'PermitRootLogin yes\n', after: 'PermitRootLogin no\n' },
    ]);
    const result = await lineinfileModule.apply(ctx, args, plan);
    expect(result.changed).toBe(true);
    expect(conn.calls).toHaveLength(2);
    expect(conn.calls[1]!.opts).toEqual({ become: true, becomeUser: 'root' });
    expect(conn.calls[1]!.script).toContain(`printf '%s' ${quote('PermitRootLogin no\n')} >&3`);
    expect(conn.calls[1]!.script).toContain('mv -fT -- "$tmp" "$dest"');
  });

  it('fails on a missing file without create, and plans creation with it', async () => {
    const conn = new FakeConnection([
      { match: '::cairn-section:: file', reply: { stdout: fileProbeOutput({ absent: true }) } },
    ]);
    const ctx = contextFor(conn);
    expect((await lineinfileModule.check(ctx, { path: '/etc/x', line: 'a' })).failed).toBe(
      'Destination /etc/x does not exist !',
    );
    const created = await lineinfileModule.check(ctx, { path: '/etc/x', line: 'a', create: true, mode: '0600' });
    expect(created.actions).toEqual(['create /etc/x: line added', 'set mode 0600 on /etc/x']);
    expect(created.diffs?.[0]).toMatchObject({ beforeMissing: true, after: 'a\n', attributes: ['mode 0600'] });
  });
});
