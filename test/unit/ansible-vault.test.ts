/**
 * Ansible Vault 1.1/1.2 decryption (runner/core/vault/ansible.ts) and `cairn vault import`, against files
 * made by ansible-vault itself (test/fixtures/ansible-vault/README.md says how).
 */
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importAnsibleVault } from '../../runner/commands/vault.js';
import { AnsibleVaultError, openAnsibleVault, parseAnsibleVault } from '../../runner/core/vault/ansible.js';
import { openVaultFile } from '../../runner/core/vault/index.js';

const fixtures = resolve(import.meta.dirname, '../fixtures/ansible-vault');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');
const PLAIN = fixture('plain.yml');
const secret = (password: string, label?: string) => ({ password, origin: 'test', ...(label ? { label } : {}) });
const work = mkdtempSync(join(tmpdir(), 'cairn-ansible-vault-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('Ansible Vault decryption', () => {
  it.each([
    ['1.1', 'v11.yml', undefined],
    ['1.2 with a vault id', 'v12.yml', 'prod'],
  ])('opens format %s', (_what, name, label) => {
    const envelope = parseAnsibleVault(fixture(name));
    expect(envelope.label).toBe(label);
    expect(openAnsibleVault(fixture(name), [secret('correct horse battery')]).toString('utf8')).toBe(PLAIN);
  });

  it('tries the secret whose label matches first, then the others', () => {
    const opened = openAnsibleVault(fixture('v12.yml'), [
      secret('wrong', 'dev'),
      secret('correct horse battery', 'prod'),
    ]);
    expect(opened.toString('utf8')).toBe(PLAIN);
  });

  it('a wrong password, a changed byte and a bad header are clear errors', () => {
    expect(() => openAnsibleVault(fixture('v11.yml'), [secret('wrong')])).toThrow(/none of the vault secrets opens it/);
    const lines = fixture('v11.yml').split('\n');
    const last = lines[lines.length - 2]!;
    lines[lines.length - 2] = last.slice(0, -1) + (last.endsWith('0') ? '1' : '0');
    expect(() => openAnsibleVault(lines.join('\n'), [secret('correct horse battery')])).toThrow(AnsibleVaultError);
    expect(() => parseAnsibleVault('$ANSIBLE_VAULT;1.1;AES\nabcd')).toThrow(/unsupported Ansible Vault cipher AES/);
    expect(() => parseAnsibleVault('plain: yaml')).toThrow(/not an Ansible Vault file/);
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
    ).rejects.toThrow(/none of the vault secrets opens it/);
    expect(readFileSync(file, 'utf8')).toBe(fixture('v11.yml'));
    chmodSync(wrong, 0o700);
    await expect(
      importAnsibleVault(file, { vaultPasswordFile: [wrong], newVaultPasswordFile: newPass }, io().io),
    ).rejects.toThrow(/executable/);
  });
});
