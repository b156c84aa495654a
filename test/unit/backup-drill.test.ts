/**
 * The restore drill's parts on real things: the marker tree script runs in /bin/sh and writes real random
 * files here, the manifest program runs in python3 over it, a copy made with `cp -a` compares equal and a
 * single flipped byte (or mode, or symlink target) does not. borgmatic's JSON is the output captured on the
 * lab (test/fixtures/backup/SOURCES.md); the role's status helper reads it through a stand-in `borgmatic`
 * on PATH that prints that captured output.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MANIFEST_PROGRAM,
  compareManifests,
  createdArchiveName,
  markerTreeScript,
  parseManifest,
  planMarkerTree,
  type ManifestEntry,
} from '../../runner/features/drills/backup.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'backup');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');
const python = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));
if (!python) throw new Error('python3 is not installed: apt-get install -y python3 (scripts/test-prereqs.sh does it)');

describe('compareManifests', () => {
  const base: ManifestEntry[] = [
    { path: 't', type: 'dir', mode: '0755', size: 0 },
    { path: 't/a', type: 'file', mode: '0644', size: 3, sha256: 'aaa' },
    { path: 't/l', type: 'link', mode: '0777', size: 0, target: 'a' },
  ];
  const edit = (i: number, change: Partial<ManifestEntry>) => base.map((e, j) => (j === i ? { ...e, ...change } : e));

  it.each<[string, ManifestEntry[], string[]]>([
    ['identical', base.map((e) => ({ ...e })), []],
    ['other content', edit(1, { sha256: 'bbb' }), ['t/a: sha256 aaa -> bbb']],
    ['other size', edit(1, { size: 4 }), ['t/a: size 3 -> 4']],
    ['other mode', edit(1, { mode: '0600' }), ['t/a: mode 0644 -> 0600']],
    ['other link target', edit(2, { target: 'b' }), ['t/l: target a -> b']],
    [
      'a file where a link was',
      edit(2, { type: 'file', target: undefined, sha256: 'ccc' }),
      ['t/l: type link -> file', 't/l: sha256 - -> ccc', 't/l: target a -> -'],
    ],
    ['a missing entry', base.slice(0, 2), ['missing: t/l']],
    [
      'an extra entry',
      [...base, { path: 't/new', type: 'file', mode: '0644', size: 0, sha256: 'e3b0' }],
      ['unexpected: t/new'],
    ],
  ])('%s', (_what, after, differences) => {
    expect(compareManifests(base, after)).toEqual(differences);
  });
});

describe('parseManifest', () => {
  it('refuses lines that are not entries', () => {
    expect(() => parseManifest('{"path": "x"}')).toThrow('line 1 is not an entry');
    expect(() => parseManifest('garbage')).toThrow('line 1 is not JSON');
    expect(parseManifest('\n')).toEqual([]);
  });
});

describe('planMarkerTree', () => {
  it('always has the edge cases, then random files up to the size', () => {
    let n = 0;
    const files = planMarkerTree(12, 1000, (max) => n++ % max);
    expect(files).toHaveLength(12);
    expect(files.slice(0, 4).map((f) => f.path)).toEqual([
      'empty',
      'one-byte',
      'data/with space/name with spaces.txt',
      'data/ünïcødé/fïlé.bin',
    ]);
    expect(files[0]!.bytes).toBe(0);
    expect(files[1]!.bytes).toBe(1);
    for (const f of files) expect(f.bytes).toBeLessThanOrEqual(1000 + 1);
    expect(new Set(files.map((f) => f.path)).size).toBe(12);
  });
});

describe('borgmatic JSON (captured)', () => {
  it('names the archive borgmatic create --json made', () => {
    expect(createdArchiveName(fixture('borgmatic-create.json'))).toBe('web2-2026-11-21T13:56:37.744696');
  });

  it.each([
    ['', 'did not print JSON'],
    ['[{"repository": {}}]', 'no archive name'],
  ])('refuses %j', (stdout, message) => {
    expect(() => createdArchiveName(stdout)).toThrow(message);
  });
});

describe('a marker tree, its manifest and a restored copy (sh, python3, cp -a here)', () => {
  let dir: string;
  let before: ManifestEntry[];
  const manifest = (tree: string) =>
    parseManifest(execFileSync(python!, ['-', tree], { input: MANIFEST_PROGRAM, encoding: 'utf8' }));

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-restore-'));
    const files = planMarkerTree(30, 64 * 1024, (n) => Math.floor(Math.random() * n));
    execFileSync('/bin/sh', ['-c', markerTreeScript(join(dir, 'orig', 'drill-1'), files)]);
    before = manifest(join(dir, 'orig', 'drill-1'));
    mkdirSync(join(dir, 'copy'));
    execFileSync('cp', ['-a', join(dir, 'orig', 'drill-1'), join(dir, 'copy', 'drill-1')]);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists every file, folder and the symlink with modes and checksums', () => {
    const byPath = new Map(before.map((e) => [e.path, e]));
    expect(byPath.get('drill-1')?.type).toBe('dir');
    expect(byPath.get('drill-1/etc')).toMatchObject({ type: 'dir', mode: '0700' });
    expect(byPath.get('drill-1/empty')).toMatchObject({
      type: 'file',
      size: 0,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
    expect(byPath.get('drill-1/one-byte')).toMatchObject({ type: 'file', size: 1, mode: '0600' });
    expect(byPath.get('drill-1/link-to-unicode')).toMatchObject({ type: 'link', target: 'data/ünïcødé/fïlé.bin' });
    expect(byPath.get('drill-1/data/with space/name with spaces.txt')).toMatchObject({ type: 'file', mode: '0640' });
    expect(before.filter((e) => e.type === 'file')).toHaveLength(30);
  });

  it('a faithful copy compares equal', () => {
    expect(compareManifests(before, manifest(join(dir, 'copy', 'drill-1')))).toEqual([]);
  });

  it('one flipped byte, a mode, a retargeted link and a lost file are each found', () => {
    const copy = join(dir, 'copy', 'drill-1');
    const victim = before.find((e) => e.type === 'file' && e.size > 10)!;
    const path = join(dir, 'copy', victim.path);
    const bytes = readFileSync(path);
    bytes[5] = bytes[5]! ^ 0x01;
    writeFileSync(path, bytes);
    chmodSync(join(copy, 'one-byte'), 0o644);
    unlinkSync(join(copy, 'link-to-unicode'));
    symlinkSync('empty', join(copy, 'link-to-unicode'));
    rmSync(join(copy, 'empty'));
    const differences = compareManifests(before, manifest(copy));
    expect(differences).toContain(
      `${victim.path}: sha256 ${victim.sha256} -> ${manifest(copy).find((e) => e.path === victim.path)!.sha256}`,
    );
    expect(differences).toContain('drill-1/one-byte: mode 0600 -> 0644');
    expect(differences).toContain('drill-1/link-to-unicode: target data/ünïcødé/fïlé.bin -> empty');
    expect(differences).toContain('missing: drill-1/empty');
    expect(differences).toHaveLength(4);
  });

  it('the marker script refuses to write over an existing tree', () => {
    const res = spawnSync('/bin/sh', [
      '-c',
      markerTreeScript(
        join(dir, 'orig', 'drill-1'),
        planMarkerTree(4, 10, () => 0),
      ),
    ]);
    expect(res.status).not.toBe(0);
  });
});

describe("the role's status helper on borgmatic's captured rlist output", () => {
  let dir: string;
  const helper = join(import.meta.dirname, '..', '..', 'roles', 'backup', 'files', 'cairn-backup-status.py');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-backup-status-'));
    // A stand-in borgmatic that prints what the real one printed on the lab (only `rlist --json` is asked).
    writeFileSync(join(dir, 'rlist.json'), fixture('borgmatic-rlist.json'));
    writeFileSync(
      join(dir, 'borgmatic'),
      `#!/bin/sh\n[ "$1 $2" = "rlist --json" ] || exit 9\ncat ${JSON.stringify(join(dir, 'rlist.json'))}\n`,
      { mode: 0o755 },
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const status = (...args: string[]) =>
    spawnSync(python!, [helper, ...args], { encoding: 'utf8', env: { PATH: `${dir}:/usr/bin:/bin` } });

  it('names the newest of the two archives', () => {
    const res = status();
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('archives=2\n');
    expect(res.stdout).toContain('newest=web2-2026-11-21T13:56:37.744696\n');
    expect(res.stdout).toMatch(/^age_s=\d+$/m);
  });

  it('fails when the newest is older than the limit, passes under a generous one', () => {
    expect(status('0.0001').status).toBe(1);
    expect(status('1000000').status).toBe(0);
  });

  it('fails on no archive, and says when borgmatic itself fails', () => {
    writeFileSync(join(dir, 'rlist.json'), '[{"archives": [], "repository": {}}]');
    expect(status('2')).toMatchObject({ status: 1, stdout: 'archives=0\nnewest=\n' });
    writeFileSync(join(dir, 'borgmatic'), '#!/bin/sh\necho "Repository does not exist" >&2\nexit 2\n', { mode: 0o755 });
    const res = status('2');
    expect(res.status).toBe(2);
    expect(res.stdout).toContain('Repository does not exist');
  });
});
