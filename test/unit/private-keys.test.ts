/**
 * Private key files: read and parsed once per path however many connections use them, and read again as soon
 * as the file changes (replaced, rewritten), so a stale key is never offered. readFileSync is wrapped (not
 * replaced) to count the reads of the file under test; the keys are real ones from ssh-keygen.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

vi.mock('node:fs', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs')>();
  return { ...original, readFileSync: vi.fn(original.readFileSync) };
});

const { loadPrivateKey, PrivateKeyError } = await import('../../runner/core/transport/private-keys.js');

const haveKeygen = fs.existsSync('/usr/bin/ssh-keygen');
let dir: string;

/** A new ed25519 key pair in dir: the private key's path and the public key's base64 blob. */
function makeKey(name: string): { path: string; publicBlob: string } {
  const path = join(dir, name);
  const run = spawnSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  if (run.status !== 0) throw new Error(`ssh-keygen failed: ${run.stderr}`);
  return { path, publicBlob: fs.readFileSync(`${path}.pub`, 'utf8').trim().split(/\s+/)[1] as string };
}

function readsOf(path: string): number {
  return vi.mocked(fs.readFileSync).mock.calls.filter((call) => call[0] === path).length;
}

describe.skipIf(!haveKeygen)('private key cache', () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'cairn-private-keys-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads and parses a key file once for 1000 connections, and hands out the same parsed key', () => {
    const key = makeKey('fleet');
    const first = loadPrivateKey(key.path);
    for (let i = 0; i < 999; i++) expect(loadPrivateKey(key.path)).toBe(first);
    expect(readsOf(key.path)).toBe(1);
    expect(first.isPrivateKey()).toBe(true);
    expect(first.getPublicSSH().toString('base64')).toBe(key.publicBlob);
  });

  it('reads the file again when it is replaced or rewritten in place', () => {
    const a = makeKey('a');
    const b = makeKey('b');
    const path = join(dir, 'current');
    fs.copyFileSync(a.path, path);
    expect(loadPrivateKey(path).getPublicSSH().toString('base64')).toBe(a.publicBlob);
    // Renamed over (a new inode), as a key rotation would do.
    fs.copyFileSync(b.path, `${path}.new`);
    fs.renameSync(`${path}.new`, path);
    expect(loadPrivateKey(path).getPublicSSH().toString('base64')).toBe(b.publicBlob);
    // Rewritten in place (same inode, same size: ed25519 keys with equal comments have one length).
    fs.writeFileSync(path, fs.readFileSync(a.path));
    expect(loadPrivateKey(path).getPublicSSH().toString('base64')).toBe(a.publicBlob);
    expect(readsOf(path)).toBe(3);
  });

  it('says why a file cannot be used, and tries again next time (a failure is not kept)', () => {
    const path = join(dir, 'later');
    expect(() => loadPrivateKey(path)).toThrow(PrivateKeyError);
    expect(() => loadPrivateKey(path)).toThrow(`cannot read private key ${path}: ENOENT`);
    fs.writeFileSync(path, 'not a key\n');
    expect(() => loadPrivateKey(path)).toThrow(`private key ${path} cannot be used: Unsupported key format`);
    fs.copyFileSync(makeKey('good').path, path);
    expect(loadPrivateKey(path).isPrivateKey()).toBe(true);
    expect(() => loadPrivateKey(dir)).toThrow(`cannot read private key ${dir}: EISDIR`);
  });
});
