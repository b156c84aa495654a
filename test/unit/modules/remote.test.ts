/**
 * The shared remote pieces, run with this machine's real /bin/sh (dash) on real files: the file probe and the
 * atomic write script are shell, so they are tested as shell.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  atomicWriteScript,
  inlineContent,
  INLINE_CONTENT_LIMIT,
  describeValidationFailure,
  diffText,
  fileProbeScript,
  formatSection,
  parseFileProbe,
  parseKeyValues,
  parseSections,
  parseWriteResult,
  section,
  SECTION_MARK,
  validateCommandLine,
  WriteExit,
} from '../../../runner/core/modules/remote.js';
import { quote } from '../../../runner/core/transport/quote.js';
import type { ExecResult } from '../../../runner/core/transport/types.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-remote-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sh(script: string, stdin?: string | Buffer): ExecResult {
  const res = spawnSync('/bin/sh', ['-c', script], { input: stdin ?? '', encoding: 'utf8' });
  return { stdout: res.stdout, stderr: res.stderr, code: res.status ?? 255 };
}

const leftovers = (): string[] => readdirSync(dir).filter((n) => n.startsWith('.cairn-'));

describe('parseSections', () => {
  it('reads one framed line per section and keeps unframed text apart', () => {
    const s = parseSections(
      `pre\n${formatSection('a', '1\n2')}${formatSection('b-c', '\n')}${formatSection('empty', '')}`,
    );
    expect(s.get('')).toBe('pre\n');
    expect(s.get('a')).toBe('1\n2');
    expect(s.get('b-c')).toBe('\n');
    expect(s.get('empty')).toBe('');
  });

  it('content holding the marker stays content (real sh runs `section`)', () => {
    const forged = `x\n${SECTION_MARK} file dHlwZT1maWxlCg==\n${SECTION_MARK} end\n`;
    const script = [section('file', `printf '%s' ${quote(forged)}`), section('end')].join('\n');
    const s = parseSections(sh(script).stdout);
    expect(s.get('file')).toBe(forged);
    expect(s.get('end')).toBe('');
    expect([...s.keys()].sort()).toEqual(['end', 'file']);
  });

  it('refuses a section printed twice, a malformed marker line and a bad key repeated', () => {
    expect(() => parseSections(formatSection('a', '1') + formatSection('a', '2'))).toThrow(/section "a" twice/);
    expect(() => parseSections(`${SECTION_MARK} a\n1\n`)).toThrow(/malformed section line/);
    expect(() => parseSections(`${SECTION_MARK} a b!c\n`)).toThrow(/malformed section line/);
    expect(() => parseKeyValues('mode=644\nmode=777')).toThrow(/repeats "mode="/);
  });

  it('a probe value that is not what stat prints is refused', () => {
    const probe = (extra: string): string => `umask=0022\ntype=file\nuid=0\ngid=0\n${extra}`;
    expect(() => parseFileProbe('/f', probe('mode=9x9'))).toThrow(/not an octal mode/);
    expect(() => parseFileProbe('/f', 'umask=0022\ntype=fifo')).toThrow(/reported type "fifo"/);
    expect(() => parseFileProbe('/f', 'umask=0022\ntype=file\nmode=644\nuid=-1')).toThrow(/not a number/);
    expect(() => parseFileProbe('/f', probe('mode=644\nsha256=zz'))).toThrow(/not sha256/);
    expect(() => parseFileProbe('/f', probe('mode=644\ncontent_b64=%%%'))).toThrow(/not base64/);
  });

  it('owner and group names come last and NUL-terminated: a name holding a newline and a key adds nothing', () => {
    const probe = (names: string): string => `umask=0022\ntype=file\nmode=644\nuid=0\ngid=0\nsize=0\nnames=${names}`;
    const forged = parseFileProbe('/f', probe('ev\nil\ncontent_b64=aGk=\nomitted=unreadable\0wheel\0'));
    expect(forged).toMatchObject({ owner: 'ev\nil\ncontent_b64=aGk=\nomitted=unreadable', group: 'wheel' });
    expect(forged.content).toBeUndefined();
    expect(forged.contentOmitted).toBeUndefined();
    expect(() => parseFileProbe('/f', probe('root\0root'))).toThrow(/malformed owner and group/);
    expect(() => parseFileProbe('/f', probe('root\0root\0x'))).toThrow(/malformed owner and group/);
    expect(() => parseFileProbe('/f', probe('root\0'))).toThrow(/malformed owner and group/);
  });

  it('a fetched content is hashed by the controller; a host-side sha256sum line is read without its "  -"', () => {
    const head = 'umask=0022\ntype=file\nmode=644\nuid=0\ngid=0\nsize=3\n';
    const got = parseFileProbe('/f', `${head}content_b64=${Buffer.from('hi\n').toString('base64')}\nnames=a\0b\0`);
    expect(got.sha256).toBe(createHash('sha256').update('hi\n').digest('hex'));
    const digest = 'a'.repeat(64);
    expect(parseFileProbe('/f', `${head}sha256=${digest}  -\nnames=a\0b\0`).sha256).toBe(digest);
  });
});

describe('file probe (real sh, real files)', () => {
  it('describes a regular file with its content', () => {
    const path = join(dir, "probe me 'q'");
    writeFileSync(path, 'hello\nworld\n');
    chmodSync(path, 0o640);
    const probe = parseFileProbe(
      path,
      parseSections(sh(fileProbeScript('f', path, { content: true })).stdout).get('f'),
    );
    expect(probe).toMatchObject({
      type: 'file',
      mode: '0640',
      uid: 0,
      owner: 'root',
      size: 12,
      sha256: '4a1e67f2fe1d1cc7b31d0ca2ec441da4778203a036a77da10344c85e24ff0f92',
    });
    expect(probe.content?.toString()).toBe('hello\nworld\n');
  });

  it('describes links, followed or not, and absent paths with their parent', () => {
    const target = join(dir, 'target');
    writeFileSync(target, 'x');
    const link = join(dir, 'link');
    symlinkSync('target', link);
    const own = parseFileProbe(link, parseSections(sh(fileProbeScript('f', link)).stdout).get('f'));
    expect(own).toMatchObject({ type: 'link', isLink: true, linkTarget: 'target', linkResolved: target });
    const followed = parseFileProbe(
      link,
      parseSections(sh(fileProbeScript('f', link, { follow: true })).stdout).get('f'),
    );
    expect(followed).toMatchObject({ type: 'file', isLink: true, size: 1 });
    const absent = parseFileProbe(
      join(dir, 'none'),
      parseSections(sh(fileProbeScript('f', join(dir, 'none'))).stdout).get('f'),
    );
    expect(absent).toEqual({ path: join(dir, 'none'), type: 'absent', parentExists: true, umask: 0o022 });
    const deep = parseFileProbe('/x', parseSections(sh(fileProbeScript('f', join(dir, 'no', 'x'))).stdout).get('f'));
    expect(deep.parentExists).toBe(false);
  });
});

describe('atomic write (real sh, real files)', () => {
  it('lets a module run its own steps after the write (sysctl writes the file, then the live value)', () => {
    const dest = join(dir, 'composed.conf');
    const script = `${atomicWriteScript({ dest, expectedBytes: 6 })}\necho after-the-write`;
    const res = sh(script, 'a = 1\n');
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(dest, 'utf8')).toBe('a = 1\n');
    expect(res.stdout).toContain('after-the-write');
  });

  it('creates a file with 0666 minus the umask, or the mode asked', () => {
    const dest = join(dir, 'new.conf');
    expect(sh(atomicWriteScript({ dest }), 'one\n').code).toBe(0);
    expect(readFileSync(dest, 'utf8')).toBe('one\n');
    expect(statSync(dest).mode & 0o777).toBe(0o644);
    const dest2 = join(dir, 'new2.conf');
    expect(sh(atomicWriteScript({ dest: dest2, mode: '0600', owner: 'nobody', group: 'nogroup' }), 'two\n').code).toBe(
      0,
    );
    expect(statSync(dest2).mode & 0o777).toBe(0o600);
    expect(statSync(dest2).uid).toBe(65534);
    expect(leftovers()).toEqual([]);
  });

  it('gives every new or replaced file exactly the mode and owner asked, however it is made', () => {
    // New files within 0666 with no owner given are created at their mode (umask); the rest get chown/chmod.
    const cases: Array<{ mode?: string; existing?: boolean; umask: number; want: number }> = [
      { umask: 0o022, want: 0o644 },
      { umask: 0o027, want: 0o640 },
      { mode: '0644', umask: 0o077, want: 0o644 },
      { mode: '0600', umask: 0o000, want: 0o600 },
      { mode: '0755', umask: 0o022, want: 0o755 },
      { mode: '2644', umask: 0o022, want: 0o2644 },
      { mode: '0644', existing: true, umask: 0o022, want: 0o644 },
      { existing: true, umask: 0o022, want: 0o640 },
    ];
    for (const [i, c] of cases.entries()) {
      const dest = join(dir, `modes-${i}`);
      if (c.existing) {
        writeFileSync(dest, 'old\n');
        chmodSync(dest, 0o640);
        chownSync(dest, 65534, 65534);
      }
      const script = `umask ${c.umask.toString(8)}\n${atomicWriteScript({ dest, ...(c.mode ? { mode: c.mode } : {}), expectedBytes: 4 })}`;
      const res = sh(script, 'new\n');
      expect(res.code, `${JSON.stringify(c)}: ${res.stderr}`).toBe(0);
      const st = statSync(dest);
      expect([st.mode & 0o7777, st.uid], JSON.stringify(c)).toEqual([c.want, c.existing ? 65534 : 0]);
      expect(readFileSync(dest, 'utf8')).toBe('new\n');
    }
    expect(leftovers()).toEqual([]);
  });

  it('small text content travels in the script, written byte for byte by printf; binary and large go on stdin', () => {
    const text = 'quote \' "double" $(touch pwned) `x` \\ %s %% é ✓\n\n\nend\n\n';
    expect(inlineContent(Buffer.from(text))).toBe(text);
    const dest = join(dir, 'inline.conf');
    const res = sh(`cd ${dir} && ${atomicWriteScript({ dest, mode: '0640', content: text })}`, 'stdin is not read');
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(dest, 'utf8')).toBe(text);
    expect(statSync(dest).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).not.toContain('pwned');
    expect(inlineContent(Buffer.from('a\0b'))).toBeUndefined();
    expect(inlineContent(Buffer.from([0x66, 0xff, 0x0a]))).toBeUndefined();
    expect(inlineContent(Buffer.alloc(INLINE_CONTENT_LIMIT + 1, 'a'))).toBeUndefined();
    expect(inlineContent(Buffer.alloc(INLINE_CONTENT_LIMIT, 'a'))).toHaveLength(INLINE_CONTENT_LIMIT);
  });

  it('two writes get different temp names (from the controller, unpredictable)', () => {
    const names = new Set(
      Array.from({ length: 50 }, () => /\.cairn-tmp\.(\w{12})/.exec(atomicWriteScript({ dest: '/x/y' }))![1]),
    );
    expect(names.size).toBe(50);
  });

  it("keeps the live file's owner and mode when replacing it", () => {
    const dest = join(dir, 'keep.conf');
    writeFileSync(dest, 'old\n');
    chmodSync(dest, 0o640);
    chownSync(dest, 65534, 65534);
    expect(sh(atomicWriteScript({ dest }), 'new\n').code).toBe(0);
    const st = statSync(dest);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, 65534, 65534]);
  });

  it('a failing validator leaves the live file as it was, no temp file, and reports its output', () => {
    const dest = join(dir, 'validated.conf');
    writeFileSync(dest, 'live ok\n');
    const before = statSync(dest);
    const res = sh(
      atomicWriteScript({ dest, validate: 'sh -c \'grep -q ok %s || { echo "missing ok at line 1"; exit 3; }\'' }),
      'no good\n',
    );
    expect(res.code).toBe(WriteExit.validate);
    expect(readFileSync(dest, 'utf8')).toBe('live ok\n');
    expect(statSync(dest).ino).toBe(before.ino);
    expect(leftovers()).toEqual([]);
    const outcome = parseWriteResult(res, dest, 'no good\n');
    expect(outcome.error).toBe(
      `validation of ${dest} failed (exit 3); the live file was left unchanged:\nmissing ok at line 1\nrendered line 1: no good`,
    );
  });

  it('a passing validator sees the temp file in the destination directory; backup keeps the old file', () => {
    const dest = join(dir, 'backed.conf');
    writeFileSync(dest, 'v1 ok\n');
    const res = sh(
      atomicWriteScript({
        dest,
        backup: true,
        validate: `sh -c 'echo "$1" > ${dir}/validated-path; grep -q ok "$1"' sh %s`,
      }),
      'v2 ok\n',
    );
    expect(res.code).toBe(0);
    expect(readFileSync(join(dir, 'validated-path'), 'utf8')).toMatch(new RegExp(`^${dir}/\\.cairn-tmp\\.\\w{12}\\n$`));
    const outcome = parseWriteResult(res, dest, 'v2 ok\n');
    expect(outcome.backupFile).toMatch(/backed\.conf\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d\.\w{6}~$/);
    expect(readFileSync(outcome.backupFile!, 'utf8')).toBe('v1 ok\n');
    expect(readFileSync(dest, 'utf8')).toBe('v2 ok\n');
  });

  it('a missing directory fails at the temp file with a message', () => {
    const res = sh(atomicWriteScript({ dest: join(dir, 'no', 'such', 'f') }), 'x');
    expect(res.code).toBe(WriteExit.tempFile);
    expect(parseWriteResult(res, join(dir, 'no', 'such', 'f'), 'x').error).toMatch(
      /^cannot create a temporary file in .*no\/such: .*(Directory nonexistent|No such file)/,
    );
  });

  it('hostile destination names are data, not shell', () => {
    const dest = join(dir, "$(touch pwned) 'a' b");
    expect(sh(`cd ${dir} && ${atomicWriteScript({ dest })}`, 'safe\n').code).toBe(0);
    expect(readFileSync(dest, 'utf8')).toBe('safe\n');
    expect(readdirSync(dir)).not.toContain('pwned');
  });
});

describe('validate command lines', () => {
  it('shlex-splits, quotes each word and puts "$tmp" where %s was', () => {
    expect(validateCommandLine('visudo -cf %s')).toBe('visudo -cf "$tmp"');
    expect(validateCommandLine("sh -c 'grep -q ok %s'")).toBe(`sh -c 'grep -q ok '"$tmp"`);
    expect(validateCommandLine('check --file=%s.conf')).toBe('check --file="$tmp".conf');
    expect(() => validateCommandLine('nginx -t')).toThrow(/must contain %s/);
  });

  it('quotes the rendered line a validator names', () => {
    expect(describeValidationFailure('/etc/x', '1', 'x:3: bad', 'a\nb\nc\n')).toContain('rendered line 3: c');
    expect(describeValidationFailure('/etc/x', '1', 'bad at line 99', 'a\n')).not.toContain('rendered line');
  });

  it('diffText shows text and summarises binary', () => {
    expect(diffText(Buffer.from('a\n'))).toBe('a\n');
    expect(diffText(Buffer.from([0, 1]))).toBe('(binary content, 2 bytes)\n');
    expect(diffText(undefined, 'abc')).toBe('(content not shown; sha256 abc)\n');
  });
});
