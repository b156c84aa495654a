/**
 * editBlockInFile follows Ansible's blockinfile (ansible/modules/blockinfile.py): markers found by exact
 * line, block replaced in place, inserted after the last insertafter match (or at EOF), removed for absent.
 */
import { quote } from '../../../runner/core/transport/quote.js';
import { describe, expect, it } from 'vitest';
import {
  blockinfileModule,
  editBlockInFile,
  splitLinesKeepEnds,
  type BlockEditArgs,
} from '../../../runner/core/modules/blockinfile.js';
import { FakeConnection, contextFor, fileProbeOutput } from '../../helpers/fake-connection.js';

const B = '# BEGIN CAIRN MANAGED BLOCK\n';
const E = '# END CAIRN MANAGED BLOCK\n';
type Row = [string, string | undefined, BlockEditArgs, string, string];

const rows: Row[] = [
  ['appends a new block at EOF', 'a\n', { block: 'x\ny' }, `a\n${B}x\ny\n${E}`, 'Block inserted'],
  ['adds the missing newline before the block', 'a', { block: 'x' }, `a\n${B}x\n${E}`, 'Block inserted'],
  ['creates a file', undefined, { block: 'x' }, `${B}x\n${E}`, 'File created'],
  [
    'replaces the block between markers in place',
    `a\n${B}old\n${E}z\n`,
    { block: 'new' },
    `a\n${B}new\n${E}z\n`,
    'Block inserted',
  ],
  ['leaves an identical block alone', `a\n${B}x\n${E}`, { block: 'x' }, `a\n${B}x\n${E}`, ''],
  ['removes the block with state=absent', `a\n${B}x\n${E}z\n`, { state: 'absent' }, 'a\nz\n', 'Block removed'],
  ['an empty block removes it too', `a\n${B}x\n${E}`, { block: '' }, 'a\n', 'Block removed'],
  ['absent with no block present changes nothing', 'a\n', { state: 'absent' }, 'a\n', ''],
  [
    'insertafter the last match',
    'h\nk\nh\nz\n',
    { block: 'x', insertafter: '^h' },
    `h\nk\nh\n${B}x\n${E}z\n`,
    'Block inserted',
  ],
  [
    'insertbefore the last match',
    'a\nend\n',
    { block: 'x', insertbefore: '^end' },
    `a\n${B}x\n${E}end\n`,
    'Block inserted',
  ],
  ['insertbefore BOF', 'a\n', { block: 'x', insertbefore: 'BOF' }, `${B}x\n${E}a\n`, 'Block inserted'],
  [
    'insertafter with no match goes to EOF',
    'a\n',
    { block: 'x', insertafter: '^zzz' },
    `a\n${B}x\n${E}`,
    'Block inserted',
  ],
  [
    'custom marker and mark words',
    'a\n',
    { block: 'x', marker: '// {mark} app', marker_begin: 'START', marker_end: 'STOP' },
    'a\n// START app\nx\n// STOP app\n',
    'Block inserted',
  ],
  ['a markers pair in reverse order is still replaced', `${E}x\n${B}`, { block: 'y' }, `${B}y\n${E}`, 'Block inserted'],
];

describe('editBlockInFile', () => {
  it.each(rows)('%s', (_name, original, args, text, msg) => {
    const edit = editBlockInFile(original, args);
    expect(edit.text).toBe(text);
    expect(edit.msg).toBe(msg);
    expect(edit.changed).toBe(msg !== '');
  });

  it('is idempotent', () => {
    for (const [, original, args] of rows) {
      const once = editBlockInFile(original, args);
      expect(editBlockInFile(once.text, args).changed).toBe(false);
    }
  });

  it('splits lines like Python splitlines(True)', () => {
    expect(splitLinesKeepEnds('a\r\nb\rc\nd')).toEqual(['a\r\n', 'b\r', 'c\n', 'd']);
  });
});

describe('blockinfile module', () => {
  it('plans an insert from the probe and writes the same text on apply', async () => {
    const conn = new FakeConnection([
      { match: '::cairn-section:: file', reply: { stdout: fileProbeOutput({ content: '127.0.0.1 localhost\n' }) } },
      { match: '.cairn-tmp.', reply: {} },
    ]);
    const ctx = contextFor(conn);
    const args = { path: '/etc/hosts', block: '10.0.0.1 db1' };
    const plan = await blockinfileModule.check(ctx, args);
    expect(plan.actions).toEqual(['update /etc/hosts: Block inserted']);
    await blockinfileModule.apply(ctx, args, plan);
    // Small text travels in the write script (printf, a builtin), not on stdin.
    expect(conn.calls[1]!.opts.stdin).toBeUndefined();
    expect(conn.calls[1]!.script).toContain(`printf '%s' ${quote(`127.0.0.1 localhost\n${B}10.0.0.1 db1\n${E}`)} >&3`);
  });

  it('a missing file without create fails as Ansible', async () => {
    const conn = new FakeConnection([
      { match: '::cairn-section:: file', reply: { stdout: fileProbeOutput({ absent: true }) } },
    ]);
    expect((await blockinfileModule.check(contextFor(conn), { path: '/etc/nope', block: 'x' })).failed).toBe(
      'Path /etc/nope does not exist !',
    );
  });
});
