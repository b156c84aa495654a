import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyModule, type CopyArgs } from '../../../runner/core/modules/copy.js';
import { formatSection } from '../../../runner/core/modules/remote.js';
import {
  FakeConnection,
  contextFor,
  fileProbeOutput,
  outsideSingleQuotes,
  type ProbeFixture,
} from '../../helpers/fake-connection.js';

const dest = '/etc/app/app.conf';
type Row = [
  string,
  Partial<CopyArgs>,
  ProbeFixture,
  string[],
  { attributes?: string[]; before?: string; beforeMissing?: boolean } | undefined,
];

const rows: Row[] = [
  [
    'creates a missing file',
    { content: 'a\n' },
    { absent: true },
    [`create ${dest}`],
    { before: '', beforeMissing: true },
  ],
  ['updates different content', { content: 'a\n' }, { content: 'old\n' }, [`update ${dest}`], { before: 'old\n' }],
  ['identical content is no change', { content: 'a\n' }, { content: 'a\n' }, [], undefined],
  [
    'only the mode differs',
    { content: 'a\n', mode: '0600' },
    { content: 'a\n', mode: '644' },
    [`set mode 0644 -> 0600 on ${dest}`],
    { attributes: ['mode 0644 -> 0600'] },
  ],
  [
    'owner by numeric id already right',
    { content: 'a\n', owner: '0', group: 'root' },
    { content: 'a\n' },
    [],
    undefined,
  ],
  [
    'content and owner',
    { content: 'b\n', owner: 'www-data' },
    { content: 'a\n' },
    [`update ${dest}`, `set owner root -> www-data on ${dest}`],
    { attributes: ['owner root -> www-data'] },
  ],
  ['force false keeps existing content', { content: 'b\n', force: false }, { content: 'a\n' }, [], undefined],
  [
    'a symlink at dest is replaced by a file',
    { content: 'a\n' },
    { type: 'link', linkTarget: '/x' },
    [`update ${dest}`],
    {},
  ],
];

describe('copy check', () => {
  it.each(rows)('%s', async (_name, args, fixture, actions, diff) => {
    const conn = new FakeConnection([{ match: '::cairn-section:: file', reply: { stdout: fileProbeOutput(fixture) } }]);
    const plan = await copyModule.check(contextFor(conn), { dest, ...args });
    expect(plan.failed).toBeUndefined();
    expect(plan.actions).toEqual(actions);
    expect(plan.changed).toBe(actions.length > 0);
    if (diff) expect(plan.diffs?.[0]).toMatchObject({ path: dest, ...diff });
    expect(conn.calls).toHaveLength(1);
  });

  it('fails for a directory at dest; plans a missing parent directory with a note', async () => {
    const dir = new FakeConnection([
      { match: 'cairn-section', reply: { stdout: fileProbeOutput({ type: 'directory' }) } },
    ]);
    expect((await copyModule.check(contextFor(dir), { dest, content: 'x' })).failed).toMatch(/is a directory/);
    const noParent = new FakeConnection([
      { match: 'cairn-section', reply: { stdout: fileProbeOutput({ absent: true, parentMissing: true }) } },
    ]);
    const plan = await copyModule.check(contextFor(noParent), { dest, content: 'x' });
    expect(plan.failed).toBeUndefined();
    expect(plan.changed).toBe(true);
    expect(plan.actions).toContain(
      `${dest} will be created in a directory that does not exist yet (an earlier task must create it, or apply fails)`,
    );
  });

  it('reads src through findLocalFile("files", ...) and sends the bytes unchanged', async () => {
    const local = mkdtempSync(join(tmpdir(), 'cairn-copy-'));
    const bytes = Buffer.from([0, 1, 2, 255, 10]);
    writeFileSync(join(local, 'blob.bin'), bytes);
    const conn = new FakeConnection([
      { match: '::cairn-section:: file', reply: { stdout: fileProbeOutput({ absent: true }) } },
      { match: '.cairn-tmp.', reply: {} },
    ]);
    const seen: string[] = [];
    const ctx = contextFor(conn, { findLocalFile: (kind, rel) => (seen.push(`${kind}/${rel}`), join(local, rel)) });
    const plan = await copyModule.check(ctx, { dest: '/opt/blob.bin', src: 'blob.bin' });
    expect(seen).toEqual(['files/blob.bin']);
    expect(plan.diffs?.[0]?.after).toBe('(binary content, 5 bytes)\n');
    await copyModule.apply(ctx, { dest: '/opt/blob.bin', src: 'blob.bin' }, plan);
    expect(conn.calls[1]!.opts.stdin).toEqual(bytes);
  });

  it('rejects content and src together', async () => {
    await expect(
      copyModule.check(contextFor(new FakeConnection([])), { dest, content: 'a', src: 'b' }),
    ).rejects.toThrow(/either content or src/);
  });
});

describe('copy apply', () => {
  it('writes through the atomic script with the planned attributes, validate and backup; hostile paths quoted', async () => {
    const hostile = "/etc/$(touch /tmp/pwned)/it's.conf";
    const conn = new FakeConnection([
      { match: '::cairn-section:: file', reply: { stdout: fileProbeOutput({ content: 'old\n' }) } },
      { match: '.cairn-tmp.', reply: { stdout: formatSection('backup', `${hostile}.2026-01-01@00:00:00.Ab12Cd~`) } },
    ]);
    const ctx = contextFor(conn, { become: true, becomeUser: 'root' });
    const args = {
      dest: hostile,
      content: 'new\n',
      owner: 'app',
      mode: '0640',
      backup: true,
      validate: 'nginx -t -c %s',
    };
    const plan = await copyModule.check(ctx, args);
    const result = await copyModule.apply(ctx, args, plan);
    expect(result).toMatchObject({ changed: true, data: { backup_file: `${hostile}.2026-01-01@00:00:00.Ab12Cd~` } });
    const script = conn.calls[1]!.script;
    expect(outsideSingleQuotes(script)).not.toContain('$(touch');
    // Owner and mode go on the open, still empty temp file (fd 3) before printf writes the content.
    expect(script).toContain('o=app');
    const chownAt = script.indexOf('chown -- "$o:$g" /proc/self/fd/3');
    const chmodAt = script.indexOf('chmod -- 0640 /proc/self/fd/3');
    expect(chownAt).toBeGreaterThan(-1);
    expect(chmodAt).toBeGreaterThan(chownAt);
    expect(script.indexOf(`printf '%s' 'new\n' >&3`)).toBeGreaterThan(chmodAt);
    expect(script).toContain('out=$( nginx -t -c "$tmp" 2>&1 )');
    expect(script).not.toContain('cp -p');
    expect(conn.calls.every((c) => c.opts.become === true)).toBe(true);
  });

  it('attribute-only changes use chown/chmod on the live file, not a rewrite', async () => {
    const conn = new FakeConnection([
      { match: '::cairn-section:: file', reply: { stdout: fileProbeOutput({ content: 'a\n', mode: '644' }) } },
      { match: 'chmod', reply: {} },
    ]);
    const ctx = contextFor(conn);
    const plan = await copyModule.check(ctx, { dest, content: 'a\n', mode: '0600' });
    await copyModule.apply(ctx, { dest, content: 'a\n', mode: '0600' }, plan);
    expect(conn.calls[1]!.script).toBe(`set -e\nchmod -- 0600 ${dest}`);
  });

  it('a failed validation is a failed task naming the validator output', async () => {
    const conn = new FakeConnection([
      { match: '::cairn-section:: file', reply: { stdout: fileProbeOutput({ absent: true }) } },
      {
        match: '.cairn-tmp.',
        reply: { code: 74, stdout: formatSection('validate', 'rc=1\nconfig error on line 2\n') },
      },
    ]);
    const ctx = contextFor(conn);
    const args = { dest, content: 'ok\nbad directive\n', validate: 'check %s' };
    const result = await copyModule.apply(ctx, args, await copyModule.check(ctx, args));
    expect(result.failed).toBe(true);
    expect(result.changed).toBe(false);
    expect(result.msg).toBe(
      `validation of ${dest} failed (exit 1); the live file was left unchanged:\nconfig error on line 2\nrendered line 2: bad directive`,
    );
  });
});
