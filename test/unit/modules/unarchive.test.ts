/**
 * unarchive's pure parts: the host's tree listings (validated, hostile names refused), the comparison that
 * decides between unpacking, setting attributes and nothing, tar's escaped names, the extraction command
 * lines (every word quoted), and the handler name. The real unpacking is in
 * test/integration/modules-exact.test.ts against a real sshd.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeTarName,
  extractCommand,
  handlerName,
  parsePathList,
  parseTree,
  planEntries,
  type TreeEntry,
} from '../../../runner/core/modules/unarchive.js';
import { ProbeError } from '../../../runner/core/modules/remote.js';

/** One find -printf record as the host prints it (path, type, mode, uid, gid, owner, group, mtime, link). */
const rec = (...fields: string[]): string => fields.map((f) => `${f}\0`).join('');

function entry(path: string, over: Partial<TreeEntry> = {}): TreeEntry {
  return {
    path,
    type: 'f',
    mode: '0644',
    uid: 0,
    gid: 0,
    owner: 'root',
    group: 'root',
    mtime: '1700000000',
    linkTarget: '',
    ...over,
  };
}
const tree = (...entries: TreeEntry[]) => new Map(entries.map((e) => [e.path, e]));

describe('parseTree', () => {
  it('reads records and pads modes', () => {
    const got = parseTree(
      'x',
      Buffer.from(
        rec('./app', 'd', '755', '0', '0', 'root', 'root', '1700000000', '') +
          rec('./app/start', 'l', '777', '0', '0', 'root', 'root', '1700000000', 'bin/run'),
      ),
    );
    expect([...got.keys()]).toEqual(['app', 'app/start']);
    expect(got.get('app')!.mode).toBe('0755');
    expect(got.get('app/start')!.linkTarget).toBe('bin/run');
  });

  it.each([
    ['a path outside the tree', rec('./../etc/passwd', 'f', '644', '0', '0', 'r', 'r', '1', '')],
    ['an absolute path', rec('/etc/passwd', 'f', '644', '0', '0', 'r', 'r', '1', '')],
    ['an empty component', rec('./a//b', 'f', '644', '0', '0', 'r', 'r', '1', '')],
    ['a bad type', rec('./a', 'x', '644', '0', '0', 'r', 'r', '1', '')],
    ['a bad mode', rec('./a', 'f', '999', '0', '0', 'r', 'r', '1', '')],
    ['a bad uid', rec('./a', 'f', '644', '-1', '0', 'r', 'r', '1', '')],
    ['a short record', rec('./a', 'f', '644')],
    ['no final NUL', rec('./a', 'f', '644', '0', '0', 'r', 'r', '1', '').slice(0, -1)],
    ['a name twice', rec('./a', 'f', '644', '0', '0', 'r', 'r', '1', '').repeat(2)],
  ])('refuses %s', (_what, text) => {
    expect(() => parseTree('x', Buffer.from(text))).toThrow(ProbeError);
  });

  it('an absent listing is an empty tree', () => {
    expect(parseTree('x', undefined).size).toBe(0);
  });
});

describe('parsePathList', () => {
  it('reads NUL-ended ./paths and refuses ..', () => {
    expect([...parsePathList('x', Buffer.from('./a b\0./c\nd\0'))]).toEqual(['a b', 'c\nd']);
    expect(() => parsePathList('x', Buffer.from('./../x\0'))).toThrow(ProbeError);
  });
});

describe('planEntries', () => {
  const staged = tree(
    entry('app', { type: 'd', mode: '0755' }),
    entry('app/README'),
    entry('app/start', { type: 'l', mode: '0777', linkTarget: 'bin/run' }),
  );
  const cases: Array<{
    name: string;
    present: Map<string, TreeEntry>;
    differ?: string[];
    args?: { owner?: string; group?: string; mode?: string };
    root?: boolean;
    reasons: string[];
    attributeEntries?: string[];
    chmod?: Record<string, string[]>;
    chown?: Record<string, string[]>;
  }> = [
    {
      name: 'everything there: nothing to do',
      present: staged,
      reasons: [],
      attributeEntries: [],
    },
    {
      name: 'dest empty: every entry missing, modes from the archive, owners kept as root',
      present: tree(),
      reasons: ['app: missing', 'app/README: missing', 'app/start: missing'],
      chmod: { '0755': ['app'], '0644': ['app/README'] },
      chown: { '0:0': ['app', 'app/README', 'app/start'] },
    },
    {
      name: 'other content, mtime, link target, mode and owner are each a reason',
      present: tree(
        entry('app', { type: 'd', mode: '0700' }),
        entry('app/README', { mtime: '1' }),
        entry('app/start', { type: 'l', linkTarget: 'elsewhere' }),
      ),
      differ: ['app/README'],
      reasons: ['app: mode differs', 'app/README: content differs', 'app/start: symlink differs'],
    },
    {
      name: 'the archive owner is not compared when not root, nor when owner is given',
      present: tree(
        entry('app', { type: 'd', mode: '0755', uid: 5 }),
        entry('app/README', { uid: 5 }),
        staged.get('app/start')!,
      ),
      root: false,
      reasons: [],
      attributeEntries: [],
    },
    {
      name: 'mode given: the archive mode is ignored; only entries whose mode differs are set (not links)',
      present: tree(
        entry('app', { type: 'd', mode: '0700' }),
        entry('app/README', { mode: '0600' }),
        staged.get('app/start')!,
      ),
      args: { mode: '0600' },
      reasons: [],
      attributeEntries: ['app'],
      chmod: { '0600': ['app'] },
    },
    {
      name: 'owner given by name or id',
      present: tree(
        entry('app', { type: 'd', mode: '0755', owner: 'nobody', uid: 65534 }),
        entry('app/README'),
        staged.get('app/start')!,
      ),
      args: { owner: '65534' },
      reasons: [],
      attributeEntries: ['app/README', 'app/start'],
      chown: { '65534': ['app/README', 'app/start'] },
    },
  ];
  it.each(cases)('$name', (c) => {
    const plan = planEntries(staged, c.present, new Set(c.differ ?? []), c.args ?? {}, c.root ?? true, 0o022);
    expect(plan.reasons.map((r) => `${r.path}: ${r.why}`)).toEqual(c.reasons);
    if (c.attributeEntries) expect(plan.attributeEntries).toEqual(c.attributeEntries);
    if (c.chmod) expect(Object.fromEntries(plan.chmod)).toEqual(c.chmod);
    if (c.chown) expect(Object.fromEntries(plan.chown)).toEqual(c.chown);
  });

  it('symbolic modes are computed per entry (X only for folders and executables)', () => {
    const plan = planEntries(staged, tree(), new Set(), { mode: 'u=rwX,g=rX,o=' }, true, 0o022);
    expect(Object.fromEntries(plan.chmod)).toEqual({ '0750': ['app'], '0640': ['app/README'] });
  });

  it('owner alone is never written "owner:" (that would also set the login group)', () => {
    const plan = planEntries(staged, tree(), new Set(), { owner: 'nobody' }, false, 0o022);
    expect([...plan.chown.keys()]).toEqual(['nobody']);
  });
});

describe('decodeTarName', () => {
  it.each([
    ['plain/name', 'plain/name'],
    ['a\\nb', 'a\nb'],
    ['back\\\\slash', 'back\\slash'],
    ['caf\\303\\251', 'café'],
  ])('%s', (text, expected) => {
    expect(decodeTarName(text)).toBe(expected);
  });
});

describe('extractCommand', () => {
  it.each([
    [
      'tar with options, excludes and quoted words',
      'tar' as const,
      { src: 'x', dest: '/d', extra_opts: ['--strip-components=1', "it's"], exclude: ['docs/'] },
      `tar --extract -C "$s" --show-transformed-names --strip-components=1 'it'\\''s' --exclude=docs -f "$t"`,
    ],
    [
      'tar with members after --',
      'tar' as const,
      { src: 'x', dest: '/d', include: ['-rf'] },
      'tar --extract -C "$s" -f "$t" -- -rf',
    ],
    [
      'unzip with excludes',
      'zip' as const,
      { src: 'x', dest: '/d', exclude: ['*.txt'] },
      `unzip -o "$t" -x '*.txt' -d "$s"`,
    ],
  ])('%s', (_name, kind, args, expected) => {
    expect(extractCommand(kind, args, '"$s"')).toBe(expected);
  });
});

describe('handlerName', () => {
  it.each([
    ['zip', Buffer.from('PK\x03\x04'), 'ZipArchive'],
    ['tar', Buffer.from([0x1f, 0x8b, 8, 0]), 'TgzArchive'],
    ['tar', Buffer.from('BZh91'), 'TarBzipArchive'],
    ['tar', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), 'TarXzArchive'],
    ['tar', Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'TarZstdArchive'],
    ['tar', Buffer.from('app/\0\0'), 'TarArchive'],
  ] as const)('%s %s', (kind, magic, expected) => {
    expect(handlerName(kind, magic)).toBe(expected);
  });
});
