/**
 * Ansible Vault 1.1/1.2 decryption (runner/core/vault/ansible.ts) and `cairn vault import`, against files
 * made by ansible-vault itself (test/fixtures/ansible-vault/README.md says how).
 */
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importAnsibleVault } from '../../runner/commands/vault.js';
import { decryptAnsibleVault } from '../../runner/core/util/ansible-vault.js';
import { openVaultFile } from '../../runner/core/vault/index.js';

const fixtures = resolve(import.meta.dirname, '../fixtures/ansible-vault');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');
const PLAIN = fixture('plain.yml');
const work = mkdtempSync(join(tmpdir(), 'cairn-ansible-vault-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the Ansible Vault fixtures open with the shared decryptor', () => {
  it.each(['v11.yml', 'v12.yml'])('%s', (name) => {
    expect(decryptAnsibleVault(fixture(name), [{ label: 'default', password: 'correct horse battery' }])).toBe(PLAIN);
  });
});

describe('cairn vault import', () => {
  const env = { CAIRN_VAULT_SCRYPT_WORK_FACTOR: '10' };
  const io = () => {
    const err: string[] = [];
    return { err, io: { stdout: { write: () => true }, stderr: { write: (t: string) => err.push(t) }, env } };
  };
  const newPass = join(work, 'cairn-pass');
  writeFileSync(newPass, 'the new cairn passphrase\n');

  it('converts a 1.2 file in place into a cairn vault the same content opens from, saying nothing secret', async () => {
    const file = join(work, 'secrets.yml');
    copyFileSync(join(fixtures, 'v12.yml'), file);
    const out = io();
    await importAnsibleVault(
      file,
      { vaultId: [`prod@${join(fixtures, 'password.txt')}`], newVaultPasswordFile: newPass },
      out.io,
    );
    expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----/);
    const opened = await openVaultFile(file, [
      { kind: 'passphrase', passphrase: 'the new cairn passphrase', origin: 't' },
    ]);
    expect(opened.text).toBe(PLAIN);
    expect(out.err.join('')).not.toMatch(/s3cr3t|correct horse/);
  });

  it('a wrong password leaves the file as it was; a password script is refused', async () => {
    const file = join(work, 'keep.yml');
    copyFileSync(join(fixtures, 'v11.yml'), file);
    const wrong = join(work, 'wrong-pass');
    writeFileSync(wrong, 'nope\n');
    await expect(
      importAnsibleVault(file, { vaultPasswordFile: [wrong], newVaultPasswordFile: newPass }, io().io),
    ).rejects.toThrow(/no vault password given opens this Ansible Vault/);
    expect(readFileSync(file, 'utf8')).toBe(fixture('v11.yml'));
    chmodSync(wrong, 0o700);
    await expect(
      importAnsibleVault(file, { vaultPasswordFile: [wrong], newVaultPasswordFile: newPass }, io().io),
    ).rejects.toThrow(/executable/);
  });
});
