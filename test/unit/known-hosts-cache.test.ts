/**
 * The known_hosts index: a file is read and parsed once however many hosts are checked against it, and read
 * again as soon as it changes (another run, a user's edit, a trust-on-first-use append), so nothing stale is
 * trusted. readFileSync is wrapped (not replaced) to count the reads of the file under test.
 */
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

vi.mock('node:fs', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs')>();
  return { ...original, readFileSync: vi.fn(original.readFileSync) };
});

const { appendHostKey, checkHostKey, knownKeysFor } = await import('../../runner/core/transport/known-hosts.js');

const haveKeygen = fs.existsSync('/usr/bin/ssh-keygen');
let dir: string;
interface TestKey {
  type: string;
  base64: string;
  blob: Buffer;
}
let keyA: TestKey;
let keyB: TestKey;

function makeKey(name: string): TestKey {
  const path = join(dir, name);
  const run = spawnSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  if (run.status !== 0) throw new Error(`ssh-keygen failed: ${run.stderr}`);
  const [type, base64] = fs.readFileSync(`${path}.pub`, 'utf8').trim().split(/\s+/) as [string, string];
  return { type, base64, blob: Buffer.from(base64, 'base64') };
}

function readsOf(path: string): number {
  return vi.mocked(fs.readFileSync).mock.calls.filter((call) => call[0] === path).length;
}

function hashedName(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe.skipIf(!haveKeygen)('known_hosts index', () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'cairn-known-hosts-cache-'));
    keyA = makeKey('a');
    keyB = makeKey('b');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads and parses a file once for 500 hosts, plain, hashed, wildcard and @revoked lines alike', () => {
    const path = join(dir, 'fleet');
    const lines = Array.from({ length: 500 }, (_, i) => `[127.77.0.${i}]:2222 ${keyA.type} ${keyA.base64}`);
    lines.push(`${hashedName('10.9.9.9')} ${keyB.type} ${keyB.base64}`);
    lines.push(`@revoked [127.77.0.7]:2222 ${keyA.type} ${keyA.base64}`);
    lines.push(`*.wild.example,!bad.wild.example ${keyB.type} ${keyB.base64}`);
    fs.writeFileSync(path, lines.join('\n') + '\n');
    for (let i = 0; i < 500; i++) {
      const expected = i === 7 ? { status: 'revoked', line: 502 } : { status: 'match' };
      expect(checkHostKey(path, `127.77.0.${i}`, 2222, keyA.blob)).toEqual(expected);
    }
    expect(checkHostKey(path, '10.9.9.9', 22, keyB.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, '10.9.9.9', 22, keyA.blob)).toEqual({ status: 'mismatch', line: 501 });
    expect(checkHostKey(path, 'a.WILD.example', 22, keyB.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, 'bad.wild.example', 22, keyB.blob)).toEqual({ status: 'unknown' });
    expect(knownKeysFor(path, '127.77.0.3', 2222).map((entry) => entry.line)).toEqual([4]);
    expect(readsOf(path)).toBe(1);
  });

  it('keeps file order across indexed and pattern lines: a mismatch names the first line for the host', () => {
    const path = join(dir, 'order');
    fs.writeFileSync(path, `*.example ${keyA.type} ${keyA.base64}\nweb.example ${keyA.type} ${keyA.base64}\n`);
    expect(checkHostKey(path, 'web.example', 22, keyB.blob)).toEqual({ status: 'mismatch', line: 1 });
    expect(knownKeysFor(path, 'web.example', 22).map((entry) => entry.line)).toEqual([1, 2]);
  });

  it('sees a file changed between runs, even one of the same size, and a file that went away', () => {
    const path = join(dir, 'changing');
    fs.writeFileSync(path, `h1 ${keyA.type} ${keyA.base64}\n`);
    expect(checkHostKey(path, 'h1', 22, keyA.blob)).toEqual({ status: 'match' });
    // Same length (both ed25519), other key: the host's key was rotated by someone else.
    fs.writeFileSync(path, `h1 ${keyB.type} ${keyB.base64}\n`);
    expect(checkHostKey(path, 'h1', 22, keyA.blob)).toEqual({ status: 'mismatch', line: 1 });
    expect(checkHostKey(path, 'h1', 22, keyB.blob)).toEqual({ status: 'match' });
    fs.writeFileSync(path, `@revoked h1 ${keyB.type} ${keyB.base64}\n`);
    expect(checkHostKey(path, 'h1', 22, keyB.blob)).toEqual({ status: 'revoked', line: 1 });
    fs.rmSync(path);
    expect(checkHostKey(path, 'h1', 22, keyB.blob)).toEqual({ status: 'unknown' });
  });

  it('sees its own trust-on-first-use append at once', () => {
    const path = join(dir, 'tofu');
    fs.writeFileSync(path, `h1 ${keyA.type} ${keyA.base64}\n`);
    expect(checkHostKey(path, '127.0.0.9', 2200, keyB.blob)).toEqual({ status: 'unknown' });
    appendHostKey(path, '127.0.0.9', 2200, keyB.type, keyB.blob);
    expect(checkHostKey(path, '127.0.0.9', 2200, keyB.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, 'h1', 22, keyA.blob)).toEqual({ status: 'match' });
  });
});
