/**
 * known_hosts parsing and checking, on files written the way OpenSSH writes them. Keys come from ssh-keygen
 * and the hashed entries from `ssh-keygen -H`, so the format under test is OpenSSH's own.
 */
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendHostKey,
  checkHostKey,
  hostFieldMatches,
  keyTypeOfBlob,
  knownHostsName,
  parseKnownHosts,
} from '../../runner/core/transport/known-hosts.js';

const haveKeygen = existsSync('/usr/bin/ssh-keygen');
if (!haveKeygen)
  throw new Error('ssh-keygen is not installed: apt-get install -y openssh-client (scripts/test-prereqs.sh does it)');

interface TestKey {
  type: string;
  base64: string;
  blob: Buffer;
}

let dir: string;
let keyA: TestKey;
let keyB: TestKey;
let keyC: TestKey;

function makeKey(name: string): TestKey {
  const path = join(dir, name);
  const run = spawnSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  if (run.status !== 0) throw new Error(`ssh-keygen failed: ${run.stderr}`);
  const [type, base64] = readFileSync(`${path}.pub`, 'utf8').trim().split(/\s+/) as [string, string];
  return { type, base64, blob: Buffer.from(base64, 'base64') };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('known_hosts', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-known-hosts-'));
    keyA = makeKey('a');
    keyB = makeKey('b');
    keyC = makeKey('c');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names hosts as OpenSSH does', () => {
    expect(knownHostsName('web1.example', 22)).toBe('web1.example');
    expect(knownHostsName('10.0.0.5', 2222)).toBe('[10.0.0.5]:2222');
  });

  it('reads the key type from a key blob', () => {
    expect(keyTypeOfBlob(keyA.blob)).toBe('ssh-ed25519');
    expect(keyTypeOfBlob(Buffer.from([0, 0]))).toBeUndefined();
  });

  it('matches plain entries with several names, and finds mismatches by line', () => {
    const path = file(
      'plain',
      [
        '# comment line',
        '',
        `web1,10.0.0.1 ${keyA.type} ${keyA.base64} root@web1`,
        `   `,
        `[10.0.0.2]:2222 ${keyB.type} ${keyB.base64}`,
      ].join('\n'),
    );
    expect(checkHostKey(path, 'web1', 22, keyA.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, '10.0.0.1', 22, keyA.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, 'WEB1', 22, keyA.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, 'web1', 22, keyB.blob)).toEqual({ status: 'mismatch', line: 3 });
    expect(checkHostKey(path, '10.0.0.2', 2222, keyB.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, '10.0.0.2', 2222, keyC.blob)).toEqual({ status: 'mismatch', line: 5 });
    // The port is part of the name: the same address on 22 or another port is a different host.
    expect(checkHostKey(path, '10.0.0.2', 22, keyB.blob)).toEqual({ status: 'unknown' });
    expect(checkHostKey(path, '10.0.0.2', 2200, keyB.blob)).toEqual({ status: 'unknown' });
    expect(checkHostKey(path, 'web2', 22, keyA.blob)).toEqual({ status: 'unknown' });
  });

  it('accepts any of several keys recorded for one host', () => {
    const path = file('two-keys', `h ${keyA.type} ${keyA.base64}\nh ${keyB.type} ${keyB.base64}\n`);
    expect(checkHostKey(path, 'h', 22, keyB.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, 'h', 22, keyC.blob)).toEqual({ status: 'mismatch', line: 1 });
  });

  it('matches entries hashed by ssh-keygen -H', () => {
    const path = file('hashed', `db1 ${keyA.type} ${keyA.base64}\n[10.1.1.1]:2200 ${keyB.type} ${keyB.base64}\n`);
    const run = spawnSync('/usr/bin/ssh-keygen', ['-H', '-f', path]);
    expect(run.status).toBe(0);
    const text = readFileSync(path, 'utf8');
    // The names are gone from the file: only |1|salt|hmac remains.
    expect(text).not.toContain('db1');
    expect(text).not.toContain('10.1.1.1');
    expect(parseKnownHosts(text).every((entry) => entry.hosts.startsWith('|1|'))).toBe(true);
    expect(checkHostKey(path, 'db1', 22, keyA.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, 'db1', 22, keyC.blob)).toEqual({ status: 'mismatch', line: 1 });
    expect(checkHostKey(path, '10.1.1.1', 2200, keyB.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, '10.1.1.1', 22, keyB.blob)).toEqual({ status: 'unknown' });
    expect(checkHostKey(path, 'db2', 22, keyA.blob)).toEqual({ status: 'unknown' });
  });

  it('matches a hashed entry computed by hand (HMAC-SHA1 keyed by the salt)', () => {
    const salt = randomBytes(20);
    const hmac = createHmac('sha1', salt).update('[192.0.2.7]:2022').digest();
    const hashed = `|1|${salt.toString('base64')}|${hmac.toString('base64')}`;
    expect(hostFieldMatches(hashed, '[192.0.2.7]:2022')).toBe(true);
    expect(hostFieldMatches(hashed, '192.0.2.7')).toBe(false);
    const path = file('hand-hashed', `${hashed} ${keyC.type} ${keyC.base64}\n`);
    expect(checkHostKey(path, '192.0.2.7', 2022, keyC.blob)).toEqual({ status: 'match' });
  });

  it('refuses a @revoked key even when another line accepts it, and ignores @cert-authority', () => {
    const path = file(
      'markers',
      [
        `@cert-authority *.example ${keyC.type} ${keyC.base64}`,
        `app.example ${keyA.type} ${keyA.base64}`,
        `@revoked app.example,other ${keyA.type} ${keyA.base64}`,
        `@unknown-marker app.example ${keyB.type} ${keyB.base64}`,
      ].join('\n'),
    );
    expect(checkHostKey(path, 'app.example', 22, keyA.blob)).toEqual({ status: 'revoked', line: 3 });
    // The CA line does not make its key acceptable as a host key, nor make the host known.
    expect(checkHostKey(path, 'api.example', 22, keyC.blob)).toEqual({ status: 'unknown' });
    expect(checkHostKey(path, 'app.example', 22, keyC.blob)).toEqual({ status: 'mismatch', line: 2 });
    // A revoked line alone does not make a host known.
    expect(checkHostKey(path, 'other', 22, keyB.blob)).toEqual({ status: 'unknown' });
    expect(checkHostKey(path, 'other', 22, keyA.blob)).toEqual({ status: 'revoked', line: 3 });
  });

  it('supports wildcards and negation in host patterns', () => {
    expect(hostFieldMatches('*.example,!bad.example', 'good.example')).toBe(true);
    expect(hostFieldMatches('*.example,!bad.example', 'bad.example')).toBe(false);
    expect(hostFieldMatches('web?', 'web1')).toBe(true);
    expect(hostFieldMatches('web?', 'web12')).toBe(false);
    expect(hostFieldMatches('[10.0.0.*]:2222', '[10.0.0.9]:2222')).toBe(true);
    expect(hostFieldMatches('10.0.0.1', '10.0.0.10')).toBe(false);
  });

  it('skips malformed lines', () => {
    const text = [
      'onlyhost',
      `host ${keyA.type}`,
      `host ${keyA.type} !!!notbase64`,
      // The type field disagrees with the type inside the blob.
      `host ssh-rsa ${keyA.base64}`,
      `good ${keyB.type} ${keyB.base64}`,
    ].join('\n');
    const entries = parseKnownHosts(text);
    expect(entries.map((entry) => [entry.line, entry.hosts])).toEqual([[5, 'good']]);
  });

  it('knows nothing when the file is missing', () => {
    expect(checkHostKey(join(dir, 'absent', 'known_hosts'), 'h', 22, keyA.blob)).toEqual({ status: 'unknown' });
  });

  it('appends keys, creating the file 0600, with [addr]:port off port 22', () => {
    const path = join(dir, 'new', 'known_hosts');
    appendHostKey(path, '10.9.9.9', 2222, keyA.type, keyA.blob);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    appendHostKey(path, 'plain-host', 22, keyB.type, keyB.blob);
    expect(readFileSync(path, 'utf8')).toBe(
      `[10.9.9.9]:2222 ${keyA.type} ${keyA.base64}\nplain-host ${keyB.type} ${keyB.base64}\n`,
    );
    expect(checkHostKey(path, '10.9.9.9', 2222, keyA.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, 'plain-host', 22, keyB.blob)).toEqual({ status: 'match' });
    // OpenSSH's own client agrees with what we wrote.
    const found = spawnSync('/usr/bin/ssh-keygen', ['-F', '[10.9.9.9]:2222', '-f', path], { encoding: 'utf8' });
    expect(found.status).toBe(0);
    expect(found.stdout).toContain(keyA.base64);
  });

  it('never glues an appended entry onto a last line without a newline', () => {
    const path = file('no-newline', `first ${keyA.type} ${keyA.base64}`);
    appendHostKey(path, 'second', 22, keyB.type, keyB.blob);
    expect(checkHostKey(path, 'first', 22, keyA.blob)).toEqual({ status: 'match' });
    expect(checkHostKey(path, 'second', 22, keyB.blob)).toEqual({ status: 'match' });
  });
});
