import { describe, expect, it } from 'vitest';
import {
  fileApplyScript,
  fileModule,
  parseTree,
  planFile,
  type FileArgs,
  type TreeEntry,
} from '../../../runner/core/modules/file.js';
import { parseFileProbe, parseSections, type FileProbe } from '../../../runner/core/modules/remote.js';
import {
  FakeConnection,
  contextFor,
  fileProbeOutput,
  outsideSingleQuotes,
  shellWords,
  type ProbeFixture,
} from '../../helpers/fake-connection.js';

const probeOf = (path: string, f: ProbeFixture): FileProbe =>
  parseFileProbe(path, parseSections(fileProbeOutput(f)).get('file'));

type Row = [string, FileArgs, ProbeFixture, { actions: string[]; failed?: string; script?: string[] }];

const rows: Row[] = [
  [
    'directory: creates a missing one with a mode',
    { path: '/srv/app', state: 'directory', mode: '0750' },
    { absent: true },
    {
      actions: ['create directory /srv/app', 'set mode 0750 on /srv/app'],
      script: ['mkdir -p -- /srv/app || exit 1', 'chmod -- 0750 /srv/app || exit 1'],
    },
  ],
  [
    'directory: right already',
    { path: '/srv/app', state: 'directory', mode: '0750', owner: 'root' },
    { type: 'directory', mode: '750' },
    { actions: [] },
  ],
  [
    'directory: a file in the way fails',
    { path: '/srv/app', state: 'directory' },
    { type: 'file' },
    { actions: [], failed: '/srv/app already exists as a file; it is not a directory' },
  ],
  [
    'file: fixes owner and symbolic mode',
    { path: '/f', state: 'file', owner: 'www-data', mode: 'g+w' },
    { mode: '644' },
    {
      actions: ['set owner root -> www-data, mode 0644 -> 0664 on /f'],
      script: ['chown -- www-data /f || exit 1', 'chmod -- 0664 /f || exit 1'],
    },
  ],
  [
    'file: missing fails as Ansible',
    { path: '/f', state: 'file' },
    { absent: true },
    { actions: [], failed: 'file (/f) is absent, cannot continue' },
  ],
  [
    'absent: removes a file',
    { path: '/f', state: 'absent' },
    {},
    { actions: ['remove /f'], script: ['rm -rf -- /f || exit 1'] },
  ],
  [
    'absent: removes a directory tree',
    { path: '/d', state: 'absent' },
    { type: 'directory' },
    { actions: ['remove directory /d and everything in it'] },
  ],
  ['absent: nothing there', { path: '/f', state: 'absent' }, { absent: true }, { actions: [] }],
  [
    'touch: always a change',
    { path: '/f', state: 'touch' },
    {},
    { actions: ['update the times of /f'], script: ['touch -- /f || exit 1'] },
  ],
  [
    'touch: creates',
    { path: '/f', state: 'touch', mode: '0600' },
    { absent: true },
    { actions: ['create /f (touch)', 'set mode 0600 on /f'] },
  ],
  ['link: creates', { path: '/cur', state: 'link', src: '/v1' }, { absent: true }, { actions: ['link /cur -> /v1'] }],
  [
    'link: right already',
    { path: '/cur', state: 'link', src: '/v1' },
    { type: 'link', linkTarget: '/v1' },
    { actions: [] },
  ],
  [
    'link: repoints',
    { path: '/cur', state: 'link', src: '/v2' },
    { type: 'link', linkTarget: '/v1' },
    { actions: ['point /cur at /v2 (was /v1)'] },
  ],
  [
    'link: refuses a file without force',
    { path: '/cur', state: 'link', src: '/v1' },
    {},
    { actions: [], failed: 'refusing to convert from file to symlink for /cur; use force: true' },
  ],
  [
    'link: owner uses chown -h',
    { path: '/cur', state: 'link', src: '/v1', owner: 'app' },
    { type: 'link', linkTarget: '/v1' },
    {
      actions: ['set owner root -> app on /cur'],
      script: ['chown -h -- app /cur || exit 1'],
    },
  ],
  [
    'touch: both times preserved leaves an existing file alone',
    { path: '/log', state: 'touch', modification_time: 'preserve', access_time: 'preserve' },
    {},
    { actions: [] },
  ],
  [
    'touch: a preserved modification time touches the access time only',
    { path: '/log', state: 'touch', modification_time: 'preserve' },
    {},
    { actions: ['update the access time of /log'], script: ['touch -a -- /log || exit 1'] },
  ],
  [
    'touch: preserve still creates a missing file',
    { path: '/log', state: 'touch', modification_time: 'preserve', access_time: 'preserve' },
    { absent: true },
    { actions: ['create /log (touch)'] },
  ],
  [
    'a given timestamp is refused by name',
    { path: '/log', state: 'touch', modification_time: '202401011200.00' },
    {},
    {
      actions: [],
      failed:
        'file: modification_time=202401011200.00 is not implemented by cairn (it keeps times, or touch sets them now)',
    },
  ],
];

describe('planFile', () => {
  it.each(rows)('%s', (_name, args, fixture, expected) => {
    const plan = planFile(args, probeOf(args.path, fixture), { srcExists: true });
    expect(plan.failed).toBe(expected.failed);
    expect(plan.actions).toEqual(expected.actions);
    expect(plan.changed).toBe(expected.actions.length > 0);
    if (expected.script) expect(fileApplyScript(plan.state!).split('\n')).toEqual(expected.script);
  });

  it('link: a missing src needs force', () => {
    const plan = planFile({ path: '/cur', state: 'link', src: 'nope' }, probeOf('/cur', { absent: true }), {
      srcExists: false,
    });
    expect(plan.failed).toMatch(/src file nope does not exist/);
  });

  it('recurse plans exactly the entries that differ', () => {
    const tree: TreeEntry[] = [
      { path: '/d/a', mode: '0644', uid: 0, gid: 0, owner: 'root', group: 'root', isDir: false, isLink: false },
      { path: '/d/b', mode: '0600', uid: 33, gid: 0, owner: 'www-data', group: 'root', isDir: false, isLink: false },
      { path: '/d/sub', mode: '0700', uid: 33, gid: 0, owner: 'www-data', group: 'root', isDir: true, isLink: false },
      { path: '/d/ln', mode: '0777', uid: 0, gid: 0, owner: 'root', group: 'root', isDir: false, isLink: true },
    ];
    const plan = planFile(
      { path: '/d', state: 'directory', recurse: true, owner: 'www-data', mode: 'u=rwX,g=rX,o=rX' },
      probeOf('/d', { type: 'directory', owner: 'www-data', uid: 33, mode: '755' }),
      { tree },
    );
    expect(plan.actions).toEqual([
      'set owner www-data on 2 entries under /d',
      'set mode 0644 on 1 entries under /d',
      'set mode 0755 on 1 entries under /d',
    ]);
    expect(fileApplyScript(plan.state!).split('\n')).toEqual([
      'chown -h -- www-data /d/a /d/ln || exit 1',
      'chmod -- 0644 /d/b || exit 1',
      'chmod -- 0755 /d/sub || exit 1',
    ]);
  });

  it('parses the recurse probe (find -printf, NUL-terminated; a name may hold a tab or newline)', () => {
    const out = '\n755\t0\t0\troot\troot\td\t/d/sub\u0000644\t33\t33\twww-data\twww-data\tf\t/d/we\tird\nname\u0000';
    expect(parseTree(out.replace(/^\n/, ''), '/d')).toEqual([
      { path: '/d/sub', mode: '0755', uid: 0, gid: 0, owner: 'root', group: 'root', isDir: true, isLink: false },
      {
        path: '/d/we\tird\nname',
        mode: '0644',
        uid: 33,
        gid: 33,
        owner: 'www-data',
        group: 'www-data',
        isDir: false,
        isLink: false,
      },
    ]);
  });

  it('refuses a recurse listing with a path outside the tree, a bad mode or type, or a cut record', () => {
    expect(() => parseTree('644\t0\t0\troot\troot\tf\t/etc/shadow\u0000', '/d')).toThrow(/path outside it/);
    expect(() => parseTree('644\t0\t0\troot\troot\tf\t/d/../etc\u0000', '/d')).toThrow(/path outside it/);
    expect(() => parseTree('644\t0\t0\troot\troot\tf\t/dx/a\u0000', '/d')).toThrow(/path outside it/);
    expect(() => parseTree('9x9\t0\t0\troot\troot\tf\t/d/a\u0000', '/d')).toThrow(/not an octal mode/);
    expect(() => parseTree('644\tx\t0\troot\troot\tf\t/d/a\u0000', '/d')).toThrow(/not a number/);
    expect(() => parseTree('644\t0\t0\troot\troot\tq\t/d/a\u0000', '/d')).toThrow(/unknown file type/);
    expect(() => parseTree('644\t0\t0\troot\troot\tf\t/d/a', '/d')).toThrow(/unterminated record/);
  });

  it('quotes every path: hostile names stay single words', () => {
    const path = "/tmp/$(touch /tmp/pwned) 'x'";
    const plan = planFile({ path, state: 'directory', mode: '0700' }, probeOf(path, { absent: true }), {});
    const script = fileApplyScript(plan.state!);
    expect(outsideSingleQuotes(script)).not.toContain('$(touch');
    expect(
      shellWords(
        script
          .split('\n')[0]!
          .replace(/^mkdir -p -- /, '')
          .replace(/ \|\| exit 1$/, ''),
      ),
    ).toEqual([path]);
  });
});

describe('file module', () => {
  it('probes once (follow for directory, not for link) and applies once, with become', async () => {
    const conn = new FakeConnection([
      { match: /stat -L --printf/, reply: { stdout: fileProbeOutput({ absent: true }) } },
      { match: 'mkdir -p', reply: {} },
    ]);
    const ctx = contextFor(conn, { become: true, becomeUser: 'root' });
    const plan = await fileModule.check(ctx, { path: '/srv/x', state: 'directory' });
    const result = await fileModule.apply(ctx, { path: '/srv/x', state: 'directory' }, plan);
    expect(result).toMatchObject({ changed: true, data: { path: '/srv/x', state: 'directory' } });
    expect(conn.calls.map((c) => c.opts.become)).toEqual([true, true]);
  });

  it('rejects argument combinations with the task location', async () => {
    const ctx = contextFor(new FakeConnection([]));
    await expect(fileModule.check(ctx, { path: '/x', state: 'link' })).rejects.toThrow(
      /state=link needs src \(host fake1\)/,
    );
    await expect(fileModule.check(ctx, { path: '/x', state: 'file', recurse: true })).rejects.toThrow(
      /recurse needs state=directory/,
    );
    await expect(fileModule.check(ctx, { path: '/x', mode: 'bogus' })).rejects.toMatchObject({
      location: { file: 'roles/test/tasks/main.yaml', line: 3 },
    });
  });
});
