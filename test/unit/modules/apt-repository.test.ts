/**
 * apt_repository's pure parts, against Ansible's rules (lib/ansible/modules/apt_repository.py): how a line is
 * read and written back, the file name made from a URL, and what present/absent change. The real files and
 * apt-get update are in test/integration/modules-exact.test.ts (real sshd, an APT_CONFIG root).
 */
import { describe, expect, it } from 'vitest';
import {
  dumpSources,
  parseSourceLine,
  parseSourcesFiles,
  planSources,
  suggestFilename,
  type SourcesFile,
} from '../../../runner/core/modules/apt-repository.js';
import { ProbeError } from '../../../runner/core/modules/remote.js';

describe('parseSourceLine / dumpSources', () => {
  it.each([
    [
      'deb  http://a/debian   bookworm main',
      { valid: true, enabled: true, source: 'deb http://a/debian bookworm main', comment: '' },
      'deb http://a/debian bookworm main\n',
    ],
    [
      '#deb http://a b c # old one',
      { valid: true, enabled: false, source: 'deb http://a b c', comment: 'old one' },
      '# deb http://a b c # old one\n',
    ],
    ['# just a comment', { valid: false, enabled: false, source: 'just a comment', comment: '' }, '# just a comment\n'],
    ['', { valid: false, enabled: true, source: '', comment: '' }, '\n'],
    [
      'deb-src [arch=amd64] http://a b c',
      { valid: true, enabled: true, source: 'deb-src [arch=amd64] http://a b c', comment: '' },
      'deb-src [arch=amd64] http://a b c\n',
    ],
  ])('%j', (line, parsed, dumped) => {
    expect(parseSourceLine(line)).toEqual(parsed);
    expect(dumpSources([parseSourceLine(line)])).toBe(dumped);
  });
});

describe("suggestFilename (Ansible's _suggest_filename)", () => {
  it.each([
    ['deb http://dl.google.com/linux/chrome/deb/ stable main', 'dl_google_com_linux_chrome_deb.list'],
    [
      'deb [arch=amd64 signed-by=/k.asc] https://download.example.com/linux/ubuntu jammy stable',
      'download_example_com_linux_ubuntu.list',
    ],
    ['deb https://user:secret@repo.example.com/apt ./', 'repo_example_com_apt.list'],
    ['deb [trusted=yes] file:/srv/repo ./', 'file_srv_repo.list'],
  ])('%s', (line, expected) => {
    expect(suggestFilename(parseSourceLine(line).source)).toBe(expected);
  });
});

const file = (path: string, text: string, over: Partial<SourcesFile> = {}): SourcesFile => ({
  path,
  content: Buffer.from(text),
  mode: '0644',
  isLink: false,
  ...over,
});
const PARTS = '/etc/apt/sources.list.d';
const LIST = '/etc/apt/sources.list';

describe('planSources', () => {
  const repo = 'deb http://x.example/debian bookworm main';
  it.each([
    {
      name: 'present, nowhere yet: a new file from the URL with the mode',
      files: [file(LIST, 'deb http://deb.debian.org/debian bookworm main\n')],
      state: 'present' as const,
      changes: [{ path: `${PARTS}/x_example_debian.list`, after: `${repo}\n`, mode: '0644' }],
    },
    {
      name: 'present with a filename: appended to that file, other lines kept',
      files: [file(`${PARTS}/x.list`, '# mine\ndeb http://other b c\n')],
      state: 'present' as const,
      filename: 'x',
      changes: [
        {
          path: `${PARTS}/x.list`,
          after: `# mine\ndeb http://other b c\n${repo}\n`,
          before: Buffer.from('# mine\ndeb http://other b c\n'),
          mode: '0644',
        },
      ],
    },
    {
      name: 'present, already there with other spacing: nothing',
      files: [file(LIST, 'deb   http://x.example/debian bookworm   main  # kept\n')],
      state: 'present' as const,
      changes: [],
    },
    {
      name: 'present, commented out: enabled in place',
      files: [file(LIST, '#deb http://x.example/debian bookworm main\n')],
      state: 'present' as const,
      changes: [
        { path: LIST, after: `${repo}\n`, before: Buffer.from('#deb http://x.example/debian bookworm main\n') },
      ],
    },
    {
      name: 'absent: removed from every file, a file left empty is deleted, disabled lines stay',
      files: [file(LIST, `# ${repo}\n${repo}\n`), file(`${PARTS}/x.list`, `${repo}\n`)],
      state: 'absent' as const,
      changes: [
        { path: LIST, after: `# ${repo}\n`, before: Buffer.from(`# ${repo}\n${repo}\n`) },
        { path: `${PARTS}/x.list`, before: Buffer.from(`${repo}\n`) },
      ],
    },
    {
      name: 'absent, not there: nothing',
      files: [file(LIST, `# ${repo}\n`)],
      state: 'absent' as const,
      changes: [],
    },
  ])('$name', ({ files, state, changes, filename }) => {
    expect(planSources(files, repo, state, PARTS, filename, '0644')).toEqual(changes);
  });

  it('refuses a line that is not a source', () => {
    expect(() => planSources([], 'http://x b c', 'present', PARTS, undefined, '0644')).toThrow(
      /Invalid repository string/,
    );
  });
});

describe('parseSourcesFiles', () => {
  it('reads path, type, mode and base64 content; refuses anything else', () => {
    const ok = Buffer.from(`/etc/apt/sources.list\0file\x00644\0${Buffer.from('deb a b c\n').toString('base64')}\0`);
    expect(parseSourcesFiles(ok)).toEqual([file(LIST, 'deb a b c\n')]);
    expect(() => parseSourcesFiles(Buffer.from('relative\0file\x00644\0\0'))).toThrow(ProbeError);
    expect(() => parseSourcesFiles(Buffer.from('/x\0dir\x00644\0\0'))).toThrow(ProbeError);
    expect(() => parseSourcesFiles(Buffer.from('/x\0file\x00644\0!!\0'))).toThrow(ProbeError);
    expect(() => parseSourcesFiles(undefined)).toThrow(ProbeError);
  });
});
