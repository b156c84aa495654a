/**
 * Ansible Vault, format 1.1 and 1.2 with the AES256 cipher, as ansible-core's lib/ansible/parsing/vault
 * writes it (read there, not copied):
 *
 *   $ANSIBLE_VAULT;1.1;AES256            (1.2 adds ";LABEL", the vault id)
 *   hex( hex(salt) "\n" hex(hmac) "\n" hex(ciphertext) ), wrapped at 80 columns
 *
 * Keys: PBKDF2-HMAC-SHA256(password, salt, 10000 rounds) gives 80 bytes: a 32-byte AES key, a 32-byte HMAC
 * key and a 16-byte counter block. The HMAC-SHA256 of the ciphertext is checked (in constant time) before
 * anything is decrypted; the cipher is AES-256-CTR over PKCS#7-padded plaintext. Node's crypto does all of it,
 * synchronously, so the YAML loader can open inline `!vault` values as it meets them.
 *
 * Secrets given here are kept in this process's memory only; every value opened is remembered so the
 * reporters mask it like cairn's own vault secrets.
 */
import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const ANSIBLE_VAULT_HEADER = '$ANSIBLE_VAULT;';

export interface AnsibleVaultSecret {
  /** The vault id (`--vault-id LABEL@file`); "default" when none was given. */
  label: string;
  password: string;
}

export interface ParsedAnsibleVault {
  version: '1.1' | '1.2';
  label?: string;
  salt: Buffer;
  hmac: Buffer;
  ciphertext: Buffer;
}

export class AnsibleVaultError extends Error {}

export function isAnsibleVaultText(text: string): boolean {
  return text.trimStart().startsWith(ANSIBLE_VAULT_HEADER);
}

function unhex(text: string, what: string): Buffer {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text))
    throw new AnsibleVaultError(`the vault's ${what} is not hexadecimal`);
  return Buffer.from(text, 'hex');
}

export function parseAnsibleVault(text: string): ParsedAnsibleVault {
  const lines = text
    .trim()
    .split(/\r?\n/)
    .map((l) => l.trim());
  const header = lines[0]!.split(';');
  if (header[0] !== '$ANSIBLE_VAULT') throw new AnsibleVaultError('not an Ansible Vault (no $ANSIBLE_VAULT header)');
  const version = header[1];
  if (version !== '1.1' && version !== '1.2') {
    throw new AnsibleVaultError(`Ansible Vault format ${version ?? '?'} is not supported (cairn reads 1.1 and 1.2)`);
  }
  if (header[2] !== 'AES256')
    throw new AnsibleVaultError(`vault cipher ${header[2] ?? '?'} is not supported (Ansible writes AES256)`);
  const label = version === '1.2' ? header[3] : undefined;
  const inner = unhex(lines.slice(1).join(''), 'body').toString('latin1').split('\n');
  if (inner.length !== 3) throw new AnsibleVaultError('the vault body is damaged (expected salt, HMAC and ciphertext)');
  return {
    version,
    label,
    salt: unhex(inner[0]!, 'salt'),
    hmac: unhex(inner[1]!, 'HMAC'),
    ciphertext: unhex(inner[2]!, 'ciphertext'),
  };
}

function deriveKeys(password: string, salt: Buffer): { aesKey: Buffer; hmacKey: Buffer; counter: Buffer } {
  const derived = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, 10_000, 80, 'sha256');
  return { aesKey: derived.subarray(0, 32), hmacKey: derived.subarray(32, 64), counter: derived.subarray(64, 80) };
}

/** Decrypt with one password; undefined when the HMAC does not match (a wrong password). */
function tryPassword(vault: ParsedAnsibleVault, password: string): string | undefined {
  const { aesKey, hmacKey, counter } = deriveKeys(password, vault.salt);
  const mac = createHmac('sha256', hmacKey).update(vault.ciphertext).digest();
  if (mac.length !== vault.hmac.length || !timingSafeEqual(mac, vault.hmac)) return undefined;
  const decipher = createDecipheriv('aes-256-ctr', aesKey, counter);
  const padded = Buffer.concat([decipher.update(vault.ciphertext), decipher.final()]);
  const pad = padded[padded.length - 1] ?? 0;
  if (pad < 1 || pad > 16 || pad > padded.length || !padded.subarray(padded.length - pad).every((b) => b === pad)) {
    throw new AnsibleVaultError('the vault decrypted to badly padded data (the file is damaged)');
  }
  return padded.subarray(0, padded.length - pad).toString('utf8');
}

/**
 * Decrypt with the first secret that opens it: as ansible-vault, the secret whose label matches a 1.2 vault's
 * id is tried first, then the others.
 */
export function decryptAnsibleVault(text: string, secrets: readonly AnsibleVaultSecret[]): string {
  const vault = parseAnsibleVault(text);
  if (!secrets.length) {
    throw new AnsibleVaultError(
      'this is encrypted with Ansible Vault; give its password with --vault-password-file FILE or --vault-id [LABEL@]FILE',
    );
  }
  const ordered = [
    ...secrets.filter((s) => s.label === vault.label),
    ...secrets.filter((s) => s.label !== vault.label),
  ];
  for (const secret of ordered) {
    const plain = tryPassword(vault, secret.password);
    if (plain !== undefined) return plain;
  }
  const ids = secrets.map((s) => s.label).join(', ');
  throw new AnsibleVaultError(
    `no vault password given opens this Ansible Vault${vault.label ? ` (vault id "${vault.label}")` : ''}; tried: ${ids}`,
  );
}

/** Encrypt as ansible-vault does (tests and round trips; cairn's own secrets are age files). */
export function encryptAnsibleVault(plaintext: string, password: string, label?: string): string {
  const salt = randomBytes(32);
  const { aesKey, hmacKey, counter } = deriveKeys(password, salt);
  const data = Buffer.from(plaintext, 'utf8');
  const pad = 16 - (data.length % 16);
  const cipher = createCipheriv('aes-256-ctr', aesKey, counter);
  const ciphertext = Buffer.concat([cipher.update(Buffer.concat([data, Buffer.alloc(pad, pad)])), cipher.final()]);
  const mac = createHmac('sha256', hmacKey).update(ciphertext).digest();
  const body = Buffer.from(
    `${salt.toString('hex')}\n${mac.toString('hex')}\n${ciphertext.toString('hex')}`,
    'latin1',
  ).toString('hex');
  const header = label ? `$ANSIBLE_VAULT;1.2;AES256;${label}` : '$ANSIBLE_VAULT;1.1;AES256';
  return `${header}\n${body.match(/.{1,80}/g)!.join('\n')}\n`;
}

// ------------------------------------------------------------------ this process's secrets

let configured: AnsibleVaultSecret[] = [];
const revealed = new Set<string>();

export function setAnsibleVaultSecrets(secrets: readonly AnsibleVaultSecret[]): void {
  configured = [...secrets];
}

export function ansibleVaultSecrets(): readonly AnsibleVaultSecret[] {
  return configured;
}

/** Open a vault with the configured secrets and remember the plaintext (and each of its lines) for masking. */
export function openAnsibleVault(text: string): string {
  const plain = decryptAnsibleVault(text, configured);
  rememberSecret(plain);
  return plain;
}

function rememberSecret(plain: string): void {
  if (plain.trim() !== '') revealed.add(plain);
  const trimmed = plain.replace(/\r?\n$/, '');
  if (trimmed !== plain && trimmed.trim() !== '') revealed.add(trimmed);
}

/** Every string inside a value read from an encrypted file (mapping keys excluded), for masking. */
export function rememberSecretValues(value: unknown): void {
  if (typeof value === 'string') rememberSecret(value);
  else if (Array.isArray(value)) for (const item of value) rememberSecretValues(item);
  else if (value !== null && typeof value === 'object')
    for (const item of Object.values(value)) rememberSecretValues(item);
}

/** Every value opened so far, longest first (a longer secret is masked before a shorter one inside it). */
export function revealedAnsibleVaultValues(): string[] {
  return [...revealed].sort((a, b) => b.length - a.length);
}
